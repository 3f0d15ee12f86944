"""The command line end to end: real plans, real artifacts, localhost and a real sshd fleet."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import exec_main, main

from ..conftest import ANSIBLE_PLAYBOOK, EXAMPLE_PLAN, ORACLE_TIMEOUT, PLAN_FIXTURES
from .conftest import ansible_env

pytestmark = pytest.mark.usefixtures("rustle_home")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def example(tmp_path: Path, workdir: Path, hosts: list[str] | None = None) -> Path:
    """The bundled example plan, writing under ``workdir`` for ``hosts``."""
    plan = json.loads(EXAMPLE_PLAN.read_text())
    plan["plays"][0]["vars"]["workdir"] = "{{ rustle_test_root }}" if hosts else str(workdir)
    if hosts:
        plan["hosts"] = hosts
        plan["plays"][0]["hosts"] = hosts
        plan["plays"][0]["batches"][0]["hosts"] = hosts
        for task in plan["plays"][0]["batches"][0]["tasks"]:
            task["hosts"] = hosts
    dest = tmp_path / "plan"
    shutil.copytree(EXAMPLE_PLAN.parent, dest)
    (dest / "plan.json").write_text(json.dumps(plan))
    return dest / "plan.json"


def tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", oct(p.stat().st_mode & 0o777))
        else:
            out[rel] = ("file", oct(p.stat().st_mode & 0o777), p.read_bytes())
    return out


# -- without hosts: dry run, compile, errors ---------------------------------------------


@pytest.mark.parametrize("plan", sorted(p.name for p in PLAN_FIXTURES.glob("*.json")))
def test_every_fixture_plan_dry_runs_and_touches_nothing(plan: str, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    code, out, err = run_cli(capsys, str(PLAN_FIXTURES / plan), "--dry-run", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dry_run"] is True
    assert [h["name"] for h in doc["hosts"]] == ["localhost"]
    assert doc["hosts"][0]["connection"] == "local"
    assert all(len(a["sha256"]) == 64 for a in doc["artifacts"])
    assert not list(rustle_home.rglob("*")), "a dry run must write nothing"
    code, out, err = run_cli(capsys, str(PLAN_FIXTURES / plan), "--dry-run", "--output", "text")
    assert code == 0 and "DRY RUN" in out and "would write" in out


@pytest.mark.parametrize("plan", sorted(p.name for p in PLAN_FIXTURES.glob("*.json")))
def test_every_fixture_plan_dry_runs_with_a_localhost_inventory(plan: str, capsys: pytest.CaptureFixture[str]) -> None:
    inv = PLAN_FIXTURES.parent / "rustle-parse" / "inventories" / "simple_localhost.ini"
    code, out, err = run_cli(capsys, str(PLAN_FIXTURES / plan), "-i", str(inv), "--dry-run", "--output", "json")
    assert code == 0, err
    assert [h["name"] for h in json.loads(out)["hosts"]] == ["localhost"]


def test_list_inventory_prints_what_ansible_inventory_prints(capsys: pytest.CaptureFixture[str]) -> None:
    from rustle_deploy.inventory import load_inventory

    inv = PLAN_FIXTURES.parent / "rustle-parse" / "inventories" / "hosts.ini"
    code, out, err = run_cli(capsys, "-i", str(inv), "--list-inventory")
    assert code == 0, err
    assert out == load_inventory(inv).to_ansible_json() + "\n"
    assert "_meta" in json.loads(out)


@pytest.mark.ansible
def test_several_inventory_sources_are_merged_run_and_recorded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated -i (and ansible.cfg's / ANSIBLE_INVENTORY's list) are read in order and merged as
    ansible-playbook merges them, each source's group_vars/ beside it; the manifest keeps every
    source, and rustle-exec reads them all again; each host's inventory_file and inventory_dir
    are those of the source that named it first. Oracle: ansible-playbook over the same files
    (one run), its files compared byte for byte with ours."""
    first, second = tmp_path / "one" / "hosts.ini", tmp_path / "two" / "hosts.yml"
    for inv in (first, second):
        (inv.parent / "group_vars").mkdir(parents=True)
    local = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    first.write_text(f"[g]\na {local} rustle_remote_dir={tmp_path / 'rd-a'} who=one\n")
    (first.parent / "group_vars" / "all.yml").write_text("gv: one\nonly_one: 1\n")
    second.write_text(yaml.safe_dump({"all": {"children": {"g": {"hosts": {
        "b": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "rustle_remote_dir": str(tmp_path / "rd-b")},
        "a": {"who": "two"}}}}}}))
    (second.parent / "group_vars" / "all.yml").write_text("gv: two\n")
    play = tmp_path / "site.yml"
    play.write_text("- hosts: g\n  gather_facts: false\n  tasks:\n    - copy:\n"
                    "        dest: '{{ out }}/{{ inventory_hostname }}'\n"
                    "        content: \"{{ [who | default('-'), gv, only_one, ansible_inventory_sources, inventory_dir,\n"
                    "                     inventory_file, hostvars['b'].inventory_file] | to_json }}\"\n")
    (tmp_path / "ansible").mkdir()
    (tmp_path / "rustle").mkdir()
    sources = ["-i", str(first), "-i", str(second)]
    oracle = subprocess.run([str(ANSIBLE_PLAYBOOK), str(play), *sources, "-e", f"out={tmp_path / 'ansible'}"],
                            capture_output=True, text=True, timeout=ORACLE_TIMEOUT, cwd=tmp_path,
                            env=ansible_env(tmp_path))
    assert oracle.returncode == 0, oracle.stdout + oracle.stderr

    code, out, err = run_cli(capsys, str(play), *sources, "--list-hosts")
    assert code == 0 and "hosts (2):" in out and "      a\n" in out and "      b\n" in out, err
    code, out, err = run_cli(capsys, str(play), *sources, "-e", f"out={tmp_path / 'rustle'}", "--output", "json",
                             "--format", "pyz")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["inventory"] == [str(first), str(second)]
    (tmp_path / "manifest.json").write_text(out)
    monkeypatch.chdir(tmp_path / "one")  # the manifest's sources are absolute
    assert exec_main([str(tmp_path / "manifest.json")]) == 0, capsys.readouterr()
    for host in ("a", "b"):
        theirs = (tmp_path / "ansible" / host).read_text()
        assert (tmp_path / "rustle" / host).read_text() == theirs
    assert json.loads((tmp_path / "rustle" / "a").read_text())[:3] == ["two", "two", 1]
    # each host's inventory_file and inventory_dir: the source that named it first
    assert json.loads((tmp_path / "rustle" / "a").read_text())[4:] == [str(first.parent), str(first), str(second)]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANSIBLE_INVENTORY", f"{first},{second}")
    code, out, err = run_cli(capsys, str(play), "--list-hosts")
    assert code == 0 and "hosts (2):" in out, err
    code, out, err = run_cli(capsys, str(play), "-i", str(first), "--list-hosts")  # -i replaces the list
    assert code == 0 and "hosts (1):" in out and "      b\n" not in out, err


def test_dry_run_lists_artifacts_hosts_files_and_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": {
        "web1": {"ansible_host": "10.0.0.1", "ansible_user": "deploy", "rustle_test_root": "/srv/a"},
        "web2": {"ansible_host": "10.0.0.2", "ansible_port": 2222, "rustle_test_root": "/srv/b"},
    }}}}}))
    plan = example(tmp_path, tmp_path, hosts=["web"])
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--dry-run", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    (art,) = doc["artifacts"]
    assert art["hosts"] == ["web1", "web2"]
    assert {f["path"].rsplit("/", 1)[-1] for f in art["files"]} == {"motd.txt", "app.conf.j2"}
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert (hosts["web1"]["address"], hosts["web1"]["port"], hosts["web1"]["user"]) == ("10.0.0.1", 22, "deploy")
    assert hosts["web2"]["port"] == 2222
    assert f"~/.rustle/artifacts/{art['sha256']}" in hosts["web1"]["writes"]
    code, out, _ = run_cli(capsys, str(plan), "-i", str(inv), "--dry-run", "-l", "web2", "--output", "json")
    assert [h["name"] for h in json.loads(out)["hosts"]] == ["web2"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--compile-only", "--dry-run"], "cannot be combined"),
        (["--incremental", "--rebuild"], "contradict"),
        (["--parallel", "0"], "--parallel must be greater than 0"),
        (["-l", "nomatch*"], "matches none"),
    ],
)
def test_bad_usage_exits_2(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, str(EXAMPLE_PLAN), *args)
    assert code == 2
    assert needle in err


def test_bad_inputs_exit_2_and_touch_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"plays": [')
    code, _, err = run_cli(capsys, str(broken), "--run")
    assert code == 2 and str(broken) in err and "hint:" in err
    bad_inv = tmp_path / "inv.ini"
    bad_inv.write_text("[web\nhost1\n")
    code, _, err = run_cli(capsys, str(EXAMPLE_PLAN), "-i", str(bad_inv), "--run")
    assert code == 2 and f"{bad_inv}:1" in err
    cfg = tmp_path / "config.toml"
    cfg.write_text("[deployment]\nparalel_jobs = 3\n")
    code, _, err = run_cli(capsys, str(EXAMPLE_PLAN), "--config", str(cfg), "--run")
    assert code == 2 and "deployment.paralel_jobs" in err
    assert not (rustle_home / ".rustle" / "releases").exists()


def test_unknown_plan_host_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text("web1\n")
    plan = example(tmp_path, tmp_path, hosts=["web1", "ghost1", "ghost2"])
    code, _, err = run_cli(capsys, str(plan), "-i", str(inv), "--dry-run")
    assert code == 2
    assert "ghost1" in err and "ghost2" in err


def test_compile_only_then_deploy_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(plan), "--compile-only", "-o", str(out_dir), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    (art,) = doc["artifacts"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["artifacts"][0]["hosts"] == ["localhost"]
    assert Path(art["file"]).is_file() and not work.exists()
    # byte-identical on a rebuild
    first = Path(art["file"]).read_bytes()
    code, out, _ = run_cli(capsys, str(plan), "--compile-only", "-o", str(out_dir), "--rebuild", "--output", "json")
    assert Path(json.loads(out)["artifacts"][0]["file"]).read_bytes() == first
    code, out, err = run_cli(capsys, "--deploy-only", "-o", str(out_dir), "--run", "--output", "json")
    assert code == 0, err
    assert (work / "etc" / "app.conf").is_file()


# -- localhost, for real ------------------------------------------------------------------


def test_run_on_localhost_then_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    code, out, err = run_cli(capsys, str(plan), "--run", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    (host,) = doc["hosts"]
    assert host["ok"] and host["uploaded"]
    assert host["platform"]["system"] == os.uname().sysname and host["platform"]["python"]
    assert host["recap"]["changed"] >= 8 and host["recap"]["failed"] == 0
    conf = (work / "etc" / "app.conf").read_text()
    assert "host = localhost" in conf and "workers = 4" in conf
    assert oct((work / "etc" / "app.conf").stat().st_mode & 0o777) == "0o640"
    assert (work / "current.conf").resolve() == work / "etc" / "app.conf"
    before = tree(work)
    code, out, err = run_cli(capsys, str(plan), "--run", "--output", "json")
    assert code == 0, err
    (host,) = json.loads(out)["hosts"]
    assert not host["uploaded"], "the artifact is already on the host"
    assert host["recap"]["changed"] == 0
    assert tree(work) == before
    remote = rustle_home / ".rustle"
    assert oct(remote.stat().st_mode & 0o777) == "0o700"
    assert oct((remote / "artifacts").stat().st_mode & 0o777) == "0o700"
    db = sqlite3.connect(remote / "state.db")
    assert db.execute("SELECT count(*) FROM deployments WHERE status = 'done'").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_check_mode_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    code, out, err = run_cli(capsys, str(plan), "--run", "--check", "--output", "json")
    assert code == 0, err
    (host,) = json.loads(out)["hosts"]
    assert host["recap"]["changed"] >= 1 and host["recap"]["failed"] == 0
    assert not work.exists()


@pytest.mark.parametrize("plan", sorted(p.name for p in PLAN_FIXTURES.glob("*.json")))
def test_fixture_plans_run_in_check_mode(plan: str, capsys: pytest.CaptureFixture[str]) -> None:
    existed = Path("/tmp/rustle_file_test").exists()
    code, out, err = run_cli(capsys, str(PLAN_FIXTURES / plan), "--run", "--check", "--output", "json")
    assert code in (0, 1), err
    (host,) = json.loads(out)["hosts"]
    assert host["recap"] is not None, host
    assert host["error"] is None or "task" in str(host["error"]), host
    if not existed:
        assert not Path("/tmp/rustle_file_test").exists(), "check mode must not create files"


def test_rollback_and_cleanup_on_localhost(tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    assert run_cli(capsys, str(plan), "--output", "json")[0] == 0
    doc = json.loads((tmp_path / "plan" / "plan.json").read_text())
    doc["plays"][0]["batches"][0]["tasks"][4]["args"]["content"] = "release=2\n"
    (tmp_path / "plan" / "plan.json").write_text(json.dumps(doc))
    code, out, _ = run_cli(capsys, str(plan), "--output", "json")
    second = json.loads(out)
    first_sha = second["hosts"][0]["previous_sha256"]
    assert first_sha and first_sha != second["hosts"][0]["sha256"]
    current = rustle_home / ".rustle" / "releases" / second["hosts"][0]["binary_name"] / "current"
    assert os.readlink(current).endswith(second["hosts"][0]["sha256"])
    code, out, err = run_cli(capsys, "--rollback", "--output", "json")
    assert code == 0, err
    assert os.readlink(current).endswith(first_sha)
    code, out, _ = run_cli(capsys, "--list-deployments", "--output", "json")
    ops = [d["op"] for d in json.loads(out)]
    assert ops[:3] == ["rollback", "deploy", "deploy"]
    inv = tmp_path / "inv.ini"
    inv.write_text("localhost ansible_connection=local\n")
    code, out, err = run_cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    left = {p.name for p in (rustle_home / ".rustle").iterdir()}
    assert "artifacts" not in left and "releases" not in left


def test_console_scripts_pipeline(tmp_path: Path, rustle_home: Path) -> None:
    """The seed's pipeline, literally: rustle-deploy plan.json --verify | rustle-exec."""
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(rustle_home)}
    deploy = subprocess.Popen([str(bindir / "rustle-deploy"), str(plan), "--verify"], stdout=subprocess.PIPE, env=env)
    result = subprocess.run([str(bindir / "rustle-exec")], stdin=deploy.stdout, capture_output=True, text=True, env=env, timeout=120)
    assert deploy.wait(60) == 0
    assert result.returncode == 0, result.stderr + result.stdout
    assert "PLAY RECAP" in result.stdout and "localhost" in result.stdout
    assert (work / "etc" / "app.conf").is_file()
    version = subprocess.run([str(bindir / "rustle-deploy"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "rustle-deploy" in version.stdout


def test_exec_rejects_garbage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text("not json")
    assert exec_main([str(bad)]) == 2
    assert "not a JSON deployment manifest" in capsys.readouterr().err


# -- a fleet over a real sshd ---------------------------------------------------------------


@pytest.mark.ssh
@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_fleet_of_twenty_over_ssh(client: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any) -> None:
    hosts = {}
    for i in range(20):
        h = sshd.host(f"node{i:02d}", tmp_path / f"remote{i:02d}", rustle_test_root=str(tmp_path / f"root{i:02d}"))
        hosts[h.name] = dict(h.vars)
    hosts["node07"]["rustle_test_root"] = "/proc/forbidden"  # this host's tasks fail
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    plan = example(tmp_path, tmp_path, hosts=["fleet"])
    code, out, err = run_cli(
        capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--parallel", "8", "--ssh-client", client
    )
    assert code == 1, err
    doc = json.loads(out)
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert len(by_name) == 20
    assert not by_name["node07"]["ok"] or by_name["node07"]["recap"]["failed"] == 1
    assert "node07" in err
    for name, h in by_name.items():
        if name == "node07":
            continue
        assert h["recap"]["failed"] == 0, h
        root = Path(hosts[name]["rustle_test_root"])
        assert f"host = {name}" in (root / "etc" / "app.conf").read_text()
    # warm: nothing uploaded, nothing changed
    code, out, err = run_cli(
        capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-l", "fleet:!node07", "--ssh-client", client
    )
    assert code == 0, err
    for h in json.loads(out)["hosts"]:
        assert not h["uploaded"] and h["recap"]["changed"] == 0


@pytest.mark.ssh
def test_sigint_mid_fleet_leaves_hosts_whole_and_history_right(tmp_path: Path, sshd: Any, rustle_home: Path) -> None:
    """Ctrl-C during a fleet deployment: each host is on its old or new release, and the
    local history says which."""
    import random
    import signal
    import time

    hosts = {}
    for i in range(20):
        h = sshd.host(f"node{i:02d}", tmp_path / f"remote{i:02d}", rustle_test_root=str(tmp_path / f"root{i:02d}"))
        hosts[h.name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    plan = example(tmp_path, tmp_path, hosts=["fleet"])
    # a large embedded file makes each upload take a while
    (tmp_path / "plan" / "files" / "motd.txt").write_bytes(random.Random(1).randbytes(3_000_000))
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(rustle_home)}
    proc = subprocess.Popen(
        [str(bindir / "rustle-deploy"), str(plan), "-i", str(inv), "--run", "--parallel", "3", "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    db_path = rustle_home / ".rustle" / "state.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some hosts are done, but not all
        time.sleep(0.1)
        if db_path.exists():
            try:
                done = sqlite3.connect(db_path).execute(
                    "SELECT count(*) FROM host_outcomes WHERE status != 'pending'").fetchone()[0]
            except sqlite3.Error:
                continue
            if done >= 2:
                break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    db = sqlite3.connect(db_path)
    (status,) = db.execute("SELECT status FROM deployments").fetchone()
    assert status == "interrupted"
    records = {h: (s, sha) for h, s, sha in db.execute("SELECT host, status, sha256 FROM host_outcomes")}
    assert set(records) == set(hosts), "every host of the deployment has a record"
    new_sha = {sha for s, sha in records.values() if s == "activated"}
    assert len(new_sha) == 1
    (new,) = new_sha
    states = set()
    for name in hosts:
        remote = tmp_path / f"remote{int(name[4:]):02d}"
        current = [p for p in (remote / "releases").glob("*/current")] if (remote / "releases").exists() else []
        on_new = bool(current) and os.readlink(current[0]).endswith(new)
        status, _ = records[name]
        states.add(status)
        assert (status == "activated") == on_new, (name, status, current)
        leftovers = list((remote / "artifacts").glob(".tmp-*")) if (remote / "artifacts").exists() else []
        for tmp in leftovers:  # an aborted upload may leave a temp file, never a real name
            assert tmp.name.startswith(".tmp-")
        for art in (remote / "artifacts").glob("[0-9a-f]*") if (remote / "artifacts").exists() else []:
            import hashlib

            assert hashlib.sha256(art.read_bytes()).hexdigest() == art.name
    assert "activated" in states and states - {"activated"}, f"the interrupt should split the fleet: {states}"


def _pyenv(version: str) -> Path | None:
    found = sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python3"))
    return found[-1] if found else None


@pytest.mark.parametrize("version", ["3.8", "3.9", "3.10", "3.12", "3.13"])
def test_deploy_and_run_under_other_pythons(version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    """A host whose Python differs from the controller's cannot use the shipped bytecode: the
    agent unpacks the payload once and that Python caches its own."""
    python = _pyenv(version)
    if python is None:
        pytest.skip(f"no CPython {version} under /root/.pyenv/versions")
    inv = tmp_path / "inv.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={python}\n")
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    for expected_changes in (True, False):
        code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
        assert code == 0, err
        (host,) = json.loads(out)["hosts"]
        assert host["platform"]["python"].startswith(version + ".")
        assert (host["recap"]["changed"] > 0) == expected_changes
    tag = f"cpython-{version.replace('.', '')}"
    unpacked = rustle_home / ".rustle" / "unpacked"
    assert list(unpacked.glob(f"*/rustle_runtime/__pycache__/executor.{tag}.pyc")), "bytecode cached on the host"
    assert (work / "etc" / "app.conf").is_file()


def test_matching_python_runs_from_the_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    plan = example(tmp_path, tmp_path / "work")
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert not (rustle_home / ".rustle" / "unpacked").exists(), "same Python: no unpacking"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--check"], "--check applies to running the plan"),
        (["--tags", "x"], "--tags applies to running the plan"),
        (["--compile-only", "--run"], "--run has no effect with --compile-only"),
        (["--compile-only", "--verify"], "--verify has no effect with --compile-only"),
        (["--compile-only", "-l", "localhost"], "--limit has no effect with --compile-only"),
        (["--output-dir", "x"], "--output-dir has no effect with a deployment"),
        (["--compile-only", "--ssh-client", "openssh"], "--ssh-client has no effect with --compile-only"),
        (["--dry-run", "--ssh-client", "asyncssh"], "--ssh-client has no effect with --dry-run"),
        (["--dry-run", "--format", "native"], "--format native cannot be used with --dry-run"),
    ],
)
def test_flags_that_would_be_ignored_are_refused(args: list[str], needle: str, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    code, _, err = run_cli(capsys, str(EXAMPLE_PLAN), *args)
    assert code == 2 and needle in err
    assert not (rustle_home / ".rustle").exists()


@pytest.mark.parametrize(
    "args",
    [["--list-deployments", "--rebuild"], ["--rollback", "--target", "x"], ["--cleanup", "-i", "inv", "--verify"]],
)
def test_mode_flags_refuse_what_they_do_not_use(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "has no effect" in err


def first_size(mnt: Path) -> int:
    return max(p.stat().st_size for p in (mnt / "rustle" / "artifacts").iterdir())


def test_full_disk_on_the_host_keeps_the_old_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC while uploading: a clear per-host error, no partial file, the old release stays."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        inv = tmp_path / "inv.ini"
        inv.write_text(f"localhost ansible_connection=local rustle_remote_dir={mnt}/rustle\n")
        plan = example(tmp_path, tmp_path / "work")
        code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--output", "json")
        assert code == 0, err
        first = json.loads(out)["hosts"][0]
        used = shutil.disk_usage(mnt).used
        remount = subprocess.run(["mount", "-o", f"remount,size={used // 1024 + 48}k", str(mnt)], capture_output=True, text=True)
        assert remount.returncode == 0, remount.stderr
        assert shutil.disk_usage(mnt).free < first_size(mnt), (used, shutil.disk_usage(mnt))
        doc = json.loads((tmp_path / "plan" / "plan.json").read_text())
        doc["plays"][0]["batches"][0]["tasks"][4]["args"]["content"] = "release=2\n"
        (tmp_path / "plan" / "plan.json").write_text(json.dumps(doc))
        code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--output", "json")
        assert code == 1
        (host,) = json.loads(out)["hosts"]
        assert not host["ok"] and "no space left" in host["error"], host
        assert "free space on the host" in err
        current = mnt / "rustle" / "releases" / first["binary_name"] / "current"
        assert os.readlink(current).endswith(first["sha256"])
        assert [p.name for p in (mnt / "rustle" / "artifacts").iterdir()] == [first["sha256"]]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_run_timeout_after_activation_is_recorded_as_activated_and_can_be_rolled_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    work = tmp_path / "work"
    plan = example(tmp_path, work)
    assert run_cli(capsys, str(plan), "--run", "--output", "json")[0] == 0
    doc = json.loads((tmp_path / "plan" / "plan.json").read_text())
    doc["plays"][0]["batches"][0]["tasks"][9]["args"]["_raw_params"] = "sleep 30"
    (tmp_path / "plan" / "plan.json").write_text(json.dumps(doc))
    code, out, err = run_cli(capsys, str(plan), "--run", "--timeout", "3", "--output", "json")
    assert code == 1
    (host,) = json.loads(out)["hosts"]
    assert "no result within 3s" in host["error"]
    with closing(sqlite3.connect(rustle_home / ".rustle" / "state.db")) as db:
        status, sha, previous = db.execute(
            "SELECT status, sha256, previous_sha256 FROM host_outcomes ORDER BY updated_at DESC LIMIT 1").fetchone()
    assert status == "activated" and sha == host["sha256"] and previous, "the host did switch releases"
    code, out, err = run_cli(capsys, "--rollback", "--output", "json")
    assert code == 0, err
    current = rustle_home / ".rustle" / "releases" / host["binary_name"] / "current"
    assert os.readlink(current).endswith(previous)


def test_deploy_only_and_rollback_refuse_what_would_do_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = example(tmp_path, tmp_path / "work")
    out_dir = tmp_path / "out"
    assert run_cli(capsys, str(plan), "--compile-only", "-o", str(out_dir))[0] == 0
    code, _, err = run_cli(capsys, "--deploy-only", "-o", str(out_dir), "-l", "nosuch")
    assert code == 2 and "matches none" in err
    manifest = json.loads((out_dir / "manifest.json").read_text())
    del manifest["artifacts"][0]["binary_name"]
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(capsys, "--deploy-only", "-o", str(out_dir))
    assert code == 2 and "not a manifest written by --compile-only" in err
    assert run_cli(capsys, str(plan), "--output", "json")[0] == 0
    code, out, _ = run_cli(capsys, "--rollback", "--output", "json")
    rollback_id = json.loads(out)["id"]
    code, _, err = run_cli(capsys, "--rollback", rollback_id)
    assert code == 2 and f"no deployment '{rollback_id}'" in err
    assert exec_main(["--parallel", "0", str(out_dir / "manifest.json")]) == 2
    assert "--parallel must be greater than 0" in capsys.readouterr().err


def test_build_errors_name_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, str(EXAMPLE_PLAN), "--compile-only", "-o", str(blocker / "sub"))
    assert code == 2 and str(blocker / "sub") in err
    code, _, err = run_cli(capsys, str(EXAMPLE_PLAN), "--compile-only", "--cache-dir", str(blocker / "cache"))
    assert code == 2 and "cannot write" in err


@pytest.mark.ssh
@pytest.mark.parametrize("failing", ["build", "history"])
def test_a_build_that_fails_after_ssh_started_touches_no_host(
    failing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ssh processes started while compiling are ended with nothing sent when the build
    fails, or the deployment cannot start after it (the history cannot be opened): exit 2, no
    remote directory on any host, no ssh left running."""
    hosts = {}
    for i in range(3):
        h = sshd.host(f"early{i}", tmp_path / f"remote{i}", rustle_test_root=str(tmp_path / f"root{i}"))
        hosts[h.name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = example(tmp_path, tmp_path, hosts=list(hosts))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    if failing == "history":
        monkeypatch.setenv("RUSTLE_STATE_DB", str(blocker / "state.db"))
    cache = blocker / "cache" if failing == "build" else tmp_path / "cache"
    code, _, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--ssh-client", "openssh",
                           "--cache-dir", str(cache))
    assert code == 2 and ("cannot write" if failing == "build" else "cannot open the history") in err, err
    for i in range(3):
        assert not (tmp_path / f"remote{i}").exists()
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            assert stat[1] != me or not exe.endswith("/ssh"), "an ssh client is left running"


def _local_hosts_a_b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    """An inventory of hosts a and b on a local connection, each with its own remote dir; with
    ``monkeypatch``, ansible-core (run on the controller) gets a private home and no ansible.cfg."""
    if monkeypatch is not None:
        monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
        monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "no-ansible.cfg"))
    inv = tmp_path / "inv.ini"
    inv.write_text("".join(f"{n} ansible_connection=local ansible_python_interpreter={sys.executable} "
                           f"rustle_remote_dir={tmp_path / n}\n" for n in ("a", "b")))
    return inv


def test_exec_names_the_task_it_cannot_run_off_its_host(tmp_path: Path, rustle_home: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A deployment (without --run) of a playbook with a task delegated to the controller:
    rustle-exec refuses the manifest, naming that task, before any host is touched."""
    inv = _local_hosts_a_b(tmp_path)
    site = tmp_path / "site.yml"
    site.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n"
                    "    - name: drain the balancer\n      command: echo drain\n      delegate_to: localhost\n")
    code, out, err = run_cli(capsys, str(site), "-i", str(inv), "--output", "json", "--format", "pyz")
    assert code == 0, err
    manifest = tmp_path / "manifest.json"
    manifest.write_text(out)
    assert json.loads(out)["off_host_tasks"] == ["'drain the balancer' (play 'all')"]
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert exec_main([str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "rustle-exec cannot run task 'drain the balancer' (play 'all'): it runs on the controller" in err, err
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before  # nothing ran there


@pytest.mark.ansible
def test_format_native_falls_back_to_pyz_for_tasks_ansible_core_runs_on_the_controller(
        tmp_path: Path, rustle_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A task delegated to each loop item runs through ansible-core on the controller, from a
    pyz artifact: --format native says it falls back and runs it, as --format auto does."""
    inv = _local_hosts_a_b(tmp_path, monkeypatch)
    site = tmp_path / "site.yml"
    site.write_text("- hosts: a\n  gather_facts: false\n  tasks:\n"
                    "    - shell: echo {{ inventory_hostname }} >> " + str(tmp_path / "out-{{ item }}") + "\n"
                    "      delegate_to: '{{ item }}'\n      loop: [a, b]\n")
    code, out, err = run_cli(capsys, str(site), "-i", str(inv), "--run", "--output", "json", "--format", "native")
    assert code == 0, err
    assert "format: pyz for every host, not native: a play runs tasks through ansible-core on the controller" in err
    assert [(tmp_path / f"out-{n}").read_text() for n in ("a", "b")] == ["a\n", "a\n"]
    assert json.loads(out)["hosts"][0]["ok"]


@pytest.mark.ansible
def test_emitted_plan_of_a_task_delegated_per_item_and_to_an_implicit_host_runs_as_the_playbook(
        tmp_path: Path, rustle_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--emit-plan keeps delegate_to "{{ item }}", delegate_implicit and action_ds: the plan
    fed back leaves what the playbook leaves."""
    inv = _local_hosts_a_b(tmp_path, monkeypatch)
    site = tmp_path / "site.yml"
    site.write_text("- hosts: a\n  gather_facts: false\n  tasks:\n"
                    "    - shell: echo {{ inventory_hostname }} {{ item }} >> {{ out }}\n"
                    "      delegate_to: '{{ item }}'\n      loop: [a, b]\n"
                    "    - shell: echo {{ inventory_hostname }} jump >> {{ out }}\n"
                    "      delegate_to: jump.example\n"
                    f"      vars: {{ansible_connection: local, ansible_python_interpreter: {sys.executable}}}\n")
    code, plan, err = run_cli(capsys, str(site), "-i", str(inv), "--emit-plan")
    assert code == 0, err
    tasks = json.loads(plan)["plays"][0]["batches"][0]["tasks"]
    assert [(t["delegate_to"], t.get("delegate_implicit")) for t in tasks] == [("{{ item }}", None), ("jump.example", True)]
    (tmp_path / "plan.json").write_text(plan)
    for source, out in ((site, tmp_path / "from-playbook"), (tmp_path / "plan.json", tmp_path / "from-plan")):
        code, _, err = run_cli(capsys, str(source), "-i", str(inv), "--run", "-e", f"out={out}")
        assert code == 0, err
    assert (tmp_path / "from-plan").read_text() == (tmp_path / "from-playbook").read_text() == "a a\na b\na jump\n"


def test_the_console_process_collects_garbage_less_often_and_an_in_process_caller_keeps_its_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import gc

    before = gc.get_threshold()
    assert main(["--version"]) == 0 and exec_main(["--help"]) == 0
    capsys.readouterr()
    assert gc.get_threshold() == before  # a library caller's collector is left as it was
    probe = ("import gc, os, sys\nfrom rustle_deploy import cli\n"
             "cli._exit = lambda code, argv: print(gc.get_threshold()) or sys.stdout.flush() or os._exit(code)\n"
             "sys.argv = ['rustle-deploy', '--version']\ncli.main()\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "(100000, 10, 10)"
