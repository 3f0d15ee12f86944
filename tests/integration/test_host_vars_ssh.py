"""Each host gets only its own variables (issue 11), over a real sshd and the local connection.

Two hosts share one task set, so they share one artifact; each has its own ``db_password``.
Nothing under host A's remote directory (artifacts, unpacked payloads, journals, history) may
hold host B's secret, inside a zip or not; each run still sees its own variables.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import make_plan
from .test_cli import run_cli

SECRETS = {"a": "s3cret-of-host-a-7f1c", "b": "s3cret-of-host-b-94d2"}


def _texts(root: Path) -> list[tuple[str, bytes]]:
    """Every file's bytes under ``root``, and every zip member's, each with its name."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        out.append((str(path), data))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                out.extend((f"{path}!{n}", zf.read(n)) for n in zf.namelist())
    return out


def _deploy_two(tmp_path: Path, capsys: pytest.CaptureFixture[str], hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tasks = [{"name": "show", "module": "debug", "args": {"msg": "pw={{ db_password }}"}}]
    plan = make_plan(tmp_path, tasks, hosts=tuple(hosts))
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"shared_setting": "for-everyone"}, "hosts": hosts}}))
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    return {h["name"]: h for h in json.loads(out)["hosts"]}


def _check_isolated(tmp_path: Path, result: dict[str, Any]) -> None:
    assert result["a"]["sha256"] == result["b"]["sha256"], "one task set, one artifact"
    for me, other in (("a", "b"), ("b", "a")):
        remote = tmp_path / f"remote-{me}"
        files = _texts(remote)
        assert files, remote
        leaks = [name for name, data in files if SECRETS[other].encode() in data]
        assert not leaks, f"{other}'s secret found under {me}'s remote dir: {leaks}"
        (journal,) = (remote / "runs").glob("*.jsonl")
        shown = [json.loads(line) for line in journal.read_text().splitlines()]
        msgs = [e.get("msg") for e in shown if e.get("event") == "task_result"]
        assert msgs == [f"pw={SECRETS[me]}"]


@pytest.mark.ssh
def test_shared_artifact_carries_no_host_vars_over_ssh(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       sshd: Any, rustle_home: Path) -> None:
    hosts = {}
    for name in ("a", "b"):
        h = sshd.host(name, tmp_path / f"remote-{name}", db_password=SECRETS[name])
        hosts[name] = dict(h.vars)
    _check_isolated(tmp_path, _deploy_two(tmp_path, capsys, hosts))


def test_shared_artifact_carries_no_host_vars_local(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    rustle_home: Path) -> None:
    hosts = {name: {"ansible_connection": "local", "rustle_remote_dir": str(tmp_path / f"remote-{name}"),
                    "db_password": SECRETS[name]} for name in ("a", "b")}
    _check_isolated(tmp_path, _deploy_two(tmp_path, capsys, hosts))


def test_hostvars_of_another_host_carries_only_the_names_the_plan_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    tasks = [{"name": "peer", "module": "debug",
              "args": {"msg": "{{ hostvars['b'].peer_port }}/{{ hostvars[inventory_hostname]['db_password'] }}"}}]
    hosts = {name: {"ansible_connection": "local", "rustle_remote_dir": str(tmp_path / f"remote-{name}"),
                    "db_password": SECRETS[name], "peer_port": 7000 + i} for i, name in enumerate("ab")}
    plan = make_plan(tmp_path, tasks, hosts=tuple(hosts))
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    for me, other in (("a", "b"), ("b", "a")):
        remote = tmp_path / f"remote-{me}"
        assert not [n for n, data in _texts(remote) if SECRETS[other].encode() in data]
        (journal,) = (remote / "runs").glob("*.jsonl")
        msgs = [json.loads(line).get("msg") for line in journal.read_text().splitlines()]
        assert f"7001/{SECRETS[me]}" in msgs


def test_hostvars_read_as_a_whole_carries_every_hosts_variables(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 rustle_home: Path) -> None:
    tasks = [{"name": "all", "module": "debug",
              "args": {"msg": "{{ hostvars | dict2items | map(attribute='key') | sort | join(',') }} "
                              "{{ hostvars['b' if inventory_hostname == 'a' else 'a']['db' ~ '_password'] }}"}}]
    hosts = {name: {"ansible_connection": "local", "rustle_remote_dir": str(tmp_path / f"remote-{name}"),
                    "db_password": SECRETS[name]} for name in "ab"}
    plan = make_plan(tmp_path, tasks, hosts=tuple(hosts))
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {**hosts, "c": {"ansible_connection": "local"}}}}))
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--limit", "a,b", "--output", "json")
    assert code == 0, err
    for me, other in (("a", "b"), ("b", "a")):
        remote = tmp_path / f"remote-{me}"
        (journal,) = (remote / "runs").glob("*.jsonl")
        msgs = [json.loads(line).get("msg") for line in journal.read_text().splitlines()]
        # every inventory host, and another host's variable by a computed name: the artifact
        # carries every host's variables, in a 0700 file only its SSH user reads
        assert f"a,b,c {SECRETS[other]}" in msgs
        (artifact,) = (remote / "artifacts").iterdir()
        assert artifact.stat().st_mode & 0o777 == 0o700
