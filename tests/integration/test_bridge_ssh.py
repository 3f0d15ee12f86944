"""The module bridge over a real sshd: bridged modules run inside each host's one round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy import cli

from ..bridge.conftest import write_plan

WANT_JSON = "#!/bin/sh\n# WANT_JSON\necho '{\"changed\": true, \"msg\": \"from library\"}'\n"


@pytest.mark.ssh
def test_bridged_modules_over_ssh(tmp_path: Path, sshd: Any, rustle_home: Path, request: pytest.FixtureRequest,
                                  capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  discarded_early: list[object]) -> None:
    """With the native runner at hand (--format auto), bridged tasks do not lower: each host's ssh
    process started before the build runs the pyz agent's command and is used (one connection
    per host: none discarded for a second one). Without cargo (no runner) the run is pyz alone."""

    try:
        request.getfixturevalue("native_cache")
    except pytest.skip.Exception:
        pass  # the bridged runs below still happen, all pyz

    discarded = discarded_early
    monkeypatch.delenv("RUSTLE_FORMAT")  # auto, the default (tests/conftest.py sets pyz)
    hosts = {}
    for i in range(3):
        h = sshd.host(f"node{i}", tmp_path / f"remote{i}")
        hosts[h.name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("payload\n")
    plan_dir = tmp_path / "plan"
    (plan_dir / "library").mkdir(parents=True)
    (plan_dir / "library" / "mine.sh").write_text(WANT_JSON)
    plan = write_plan(plan_dir, [
        {"name": "find", "module": "find", "args": {"paths": str(data)}, "register": "found"},
        {"name": "slurp", "module": "ansible.builtin.slurp", "args": {"src": str(data / "x.txt")}},
        {"name": "getent", "module": "getent", "args": {"database": "passwd", "key": "root"}},
        {"name": "mine", "module": "mine", "args": {}},
        {"name": "count", "module": "debug", "args": {"msg": "{{ found.matched }}"}},
    ], hosts=tuple(hosts))
    for attempt in ("cold", "warm"):
        capsys.readouterr()
        code = cli.main([str(plan), "-i", str(inv), "--run", "--output", "json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        doc = json.loads(out)
        assert len(doc["hosts"]) == 3
        for h in doc["hosts"]:
            assert h["ok"] and h["recap"]["failed"] == 0, h
            assert h["uploaded"] is (attempt == "cold")
        assert discarded == [], "an early ssh process started with another command than the host's"
    for i in range(3):
        journal = sorted((tmp_path / f"remote{i}" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)[-1]
        events = {e["task"]: e for e in map(json.loads, journal.read_text().splitlines())
                  if e["event"] == "task_result"}
        assert events["find"]["matched"] == 1 and events["find"]["bridge"] == "ansible.builtin.find"
        assert events["slurp"]["content"] == "cGF5bG9hZAo="
        assert events["mine"]["status"] == "changed" and events["mine"]["msg"] == "from library"
        assert events["count"]["msg"] == 1


@pytest.mark.ssh
def test_playbook_with_library_role_and_own_modules_over_ssh(tmp_path: Path, sshd: Any, rustle_home: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A playbook naming an ansible-core module the runtime lacks, a library/ module of the
    playbook, one of a role, and a rustle-deploy module, on two hosts over the real sshd; a
    fetch brings each host's file back."""
    import shutil

    hosts = {}
    for i in range(2):
        h = sshd.host(f"pb{i}", tmp_path / f"remote{i}")
        hosts[h.name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": hosts}}}}))
    work = tmp_path / "site"
    (work / "library").mkdir(parents=True)
    (work / "library" / "mine.sh").write_text(WANT_JSON)
    shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "modules" / "library" / "kv.py",
                work / "library" / "kv.py")
    role = work / "roles" / "r"
    (role / "library").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "library" / "role_mod.sh").write_text(WANT_JSON.replace("from library", "from the role"))
    (role / "tasks" / "main.yml").write_text("- name: role module\n  role_mod: {}\n")
    (work / "site.yml").write_text(
        "- hosts: web\n  gather_facts: false\n  roles: [r]\n  tasks:\n"
        "    - name: tempfile\n      tempfile: {state: directory, suffix: .pb}\n      register: tmp\n"
        "    - name: mine\n      mine: {}\n"
        "    - name: kv\n      kv: {path: '{{ tmp.path }}/app.conf', key: workers, value: 4}\n"
        "    - name: read back\n      slurp: {src: '{{ tmp.path }}/app.conf'}\n      register: conf\n"
        "    - name: check\n      assert: {that: [\"(conf.content | b64decode) == 'workers = 4\\n'\"]}\n"
        "    - name: fetch\n      fetch: {src: /etc/hostname, dest: fetched}\n")
    capsys.readouterr()
    code = cli.main([str(work / "site.yml"), "-i", str(inv), "--run", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for h in json.loads(out)["hosts"]:
        assert h["ok"] and h["recap"]["failed"] == 0 and h["recap"]["changed"] == 5, h
    for name in hosts:  # fetch brought each host's file back over ssh, under its own name
        assert (work / "fetched" / name / "etc" / "hostname").read_bytes() == Path("/etc/hostname").read_bytes()
    for i in range(2):
        journal = sorted((tmp_path / f"remote{i}" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)[-1]
        events = {e["task"]: e for e in map(json.loads, journal.read_text().splitlines())
                  if e["event"] == "task_result"}
        assert events["r : role module"]["msg"] == "from the role"
        assert events["mine"]["msg"] == "from library"
        assert events["tempfile"]["bridge"] == "ansible.builtin.tempfile"
        assert events["kv"]["bridge"] == "ansible.legacy.kv" and events["kv"]["status"] == "changed"
        assert events["check"]["status"] == "ok"


@pytest.mark.ssh
@pytest.mark.ansible
def test_a_role_of_a_collection_over_ssh(tmp_path: Path, sshd: Any, rustle_home: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A role of a collection beside the playbook (collections/), with its dependency, its
    template and its collection's module by short name, on two hosts over the real sshd."""
    from ..bridge.test_collection_roles import _roles

    hosts = {}
    for i in range(2):
        h = sshd.host(f"cr{i}", tmp_path / f"remote{i}")
        hosts[h.name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": hosts}}}}))
    work = tmp_path / "site"
    _roles(work / "collections")
    out_dir = tmp_path / "out-{{ inventory_hostname }}"
    (work / "site.yml").write_text(
        "- hosts: web\n  gather_facts: false\n"
        f"  vars: {{out: '{out_dir}', who: ssh}}\n"
        "  pre_tasks:\n    - file: {path: '{{ out }}', state: directory}\n"
        "  roles: [rustletest.demo.web]\n")
    capsys.readouterr()
    code = cli.main([str(work / "site.yml"), "-i", str(inv), "--run", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for i in range(2):
        journal = sorted((tmp_path / f"remote{i}" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)[-1]
        events = {e["task"]: e for e in map(json.loads, journal.read_text().splitlines())
                  if e["event"] == "task_result"}
        assert events["rustletest.demo.base : base of the collection"]["greeting"] == "BASE DEP!"
        web = events["rustletest.demo.web : module of the role's collection by its short name"]
        assert web["greeting"] == "SSH!" and web["bridge"] == "rustletest.demo.hello"
        assert (tmp_path / f"out-cr{i}" / "page-ssh.txt").read_text() == "site demo for ssh\n"
