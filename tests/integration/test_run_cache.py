"""The run cache (runcache.py, issue 16): a deployment whose inputs have not changed deploys
what the last one compiled, without reading the inventory or parsing the plan; a change to any
kind of input compiles again, and what the host ends up with is the new input's. Local hosts
(``ansible_connection=local``), in this process; each case checks the files the run made."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from ..conftest import make_plan

HIT = "note: run cache: the plan, inventory and files are unchanged"


def _case(tmp_path: Path, tasks: list[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """A plan (a copy, a template, a debug of an inventory variable) and its inventory."""
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    plan = make_plan(tmp_path, tasks if tasks is not None else [
        {"module": "copy", "args": {"src": "files/motd.txt", "dest": f"{out}/motd"}},
        {"module": "template", "args": {"src": "templates/t.j2", "dest": f"{out}/t.conf"}},
        {"module": "copy", "args": {"content": "{{ greeting | default('none') }}\n", "dest": f"{out}/greeting"}},
    ], play_vars={"release": 1})
    (plan.parent / "templates" / "t.j2").write_text("release={{ release }} on {{ inventory_hostname }}\n")
    (tmp_path / "inventory").mkdir()
    inv = tmp_path / "inventory" / "hosts.yml"
    inv.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "rustle_remote_dir": str(tmp_path / "remote")}}}}))
    return plan, inv


def _deploy(capsys: pytest.CaptureFixture[str], plan: Path | str, inv: Path, *extra: str) -> tuple[int, str]:
    code = main([str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz", "-vv", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [h["name"] for h in json.loads(out)["hosts"]] == ["localhost"]
    return code, err


def _out(tmp_path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((tmp_path / "out").iterdir())}


def _entries(home: Path) -> list[Path]:
    run = home / ".rustle" / "cache" / "run"
    return sorted(run.iterdir()) if run.exists() else []


def _change_plan(plan: Path, _inv: Path) -> None:
    doc = json.loads(plan.read_text())
    doc["plays"][0]["vars"]["release"] = 2
    plan.write_text(json.dumps(doc))


def _change_copy_src(plan: Path, _inv: Path) -> None:
    (plan.parent / "files" / "motd.txt").write_text("a new motd\n")


def _change_template(plan: Path, _inv: Path) -> None:
    (plan.parent / "templates" / "t.j2").write_text("changed release={{ release }}\n")


def _change_inventory(_plan: Path, inv: Path) -> None:
    doc = json.loads(inv.read_text())
    doc["all"]["hosts"]["localhost"]["greeting"] = "from the inventory"
    inv.write_text(json.dumps(doc))


def _add_group_vars(_plan: Path, inv: Path) -> None:
    (inv.parent / "group_vars").mkdir()
    (inv.parent / "group_vars" / "all.yml").write_text("greeting: from group_vars\n")


def _add_host_vars(_plan: Path, inv: Path) -> None:
    (inv.parent / "host_vars").mkdir()
    (inv.parent / "host_vars" / "localhost.yml").write_text("greeting: from host_vars\n")


def _add_playbook_dir_vars(plan: Path, _inv: Path) -> None:
    # group_vars/ beside the plan (its playbook_dir): read as ansible-playbook reads a playbook's
    (plan.parent / "group_vars").mkdir()
    (plan.parent / "group_vars" / "all.yml").write_text("greeting: beside the plan\n")


CHANGES = {
    "plan": (_change_plan, "t.conf", "release=2 on localhost\n"),
    "copy src": (_change_copy_src, "motd", "a new motd\n"),
    "template": (_change_template, "t.conf", "changed release=1\n"),
    "inventory": (_change_inventory, "greeting", "from the inventory\n"),
    "group_vars added": (_add_group_vars, "greeting", "from group_vars\n"),
    "host_vars added": (_add_host_vars, "greeting", "from host_vars\n"),
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_an_unchanged_run_is_served_from_the_cache_and_a_changed_input_compiles_again(
        kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, rustle_home: Path) -> None:
    plan, inv = _case(tmp_path)
    _, err = _deploy(capsys, plan, inv)
    assert HIT not in err
    first = _out(tmp_path)
    assert [p.stat().st_mode & 0o777 for p in _entries(rustle_home)] == [0o600]
    assert stat.S_IMODE((rustle_home / ".rustle" / "cache" / "run").stat().st_mode) == 0o700
    _, err = _deploy(capsys, plan, inv)
    assert HIT in err
    assert _out(tmp_path) == first

    change, name, expected = CHANGES[kind]
    change(plan, inv)
    _, err = _deploy(capsys, plan, inv)
    assert HIT not in err
    assert _out(tmp_path)[name] == expected
    _, err = _deploy(capsys, plan, inv)  # and the new inputs are the cache's now
    assert HIT in err
    assert _out(tmp_path)[name] == expected


def test_options_and_environment_are_part_of_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     rustle_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, inv = _case(tmp_path)
    _deploy(capsys, plan, inv, "-e", "greeting=one")
    _, err = _deploy(capsys, plan, inv, "-e", "greeting=two")
    assert HIT not in err
    assert _out(tmp_path)["greeting"] == "two\n"
    monkeypatch.setenv("RUSTLE_TEST_SOMETHING", "1")
    _, err = _deploy(capsys, plan, inv, "-e", "greeting=two")
    assert HIT not in err
    _, err = _deploy(capsys, plan, inv, "-e", "greeting=two")
    assert HIT in err


def test_a_missing_file_is_the_full_paths_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                rustle_home: Path) -> None:
    plan, inv = _case(tmp_path)
    _deploy(capsys, plan, inv)
    (plan.parent / "files" / "motd.txt").unlink()
    code = main([str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz", "-v"])
    err = capsys.readouterr().err
    assert code == 2
    assert HIT not in err and "motd.txt" in err


def test_a_run_whose_compile_reads_more_than_files_is_not_stored(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path, rustle_home: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A controller lookup (pipe: a command's output may change while no file does), a random
    filter, a plan on standard input: compiled every time."""
    source = tmp_path / "source.txt"
    source.write_text("first\n")
    out = tmp_path / "out"
    out.mkdir()
    plan, inv = _case(tmp_path, [
        {"module": "copy", "args": {"content": "{{ lookup('pipe', 'cat " + str(source) + "') }}\n",
                                    "dest": f"{out}/piped"}}])
    _deploy(capsys, plan, inv)
    assert _entries(rustle_home) == []
    source.write_text("second\n")
    _, err = _deploy(capsys, plan, inv)
    assert HIT not in err
    assert _out(tmp_path)["piped"] == "second\n"

    plan, inv = _case(tmp_path / "random", [
        {"module": "copy", "args": {"content": "{{ 1000000 | random }}\n", "dest": f"{out}/random"}}])
    _deploy(capsys, plan, inv)
    assert _entries(rustle_home) == []

    plan, inv = _case(tmp_path / "stdin")
    monkeypatch.chdir(plan.parent)  # a plan on stdin finds its files from the working directory
    text = plan.read_text()
    for _ in range(2):
        sys.stdin = io.TextIOWrapper(io.BytesIO(text.encode()))
        try:
            _deploy(capsys, "-", inv)
        finally:
            sys.stdin = sys.__stdin__
    assert _entries(rustle_home) == []


def test_an_entry_others_could_write_is_not_used(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 rustle_home: Path) -> None:
    plan, inv = _case(tmp_path)
    _deploy(capsys, plan, inv)
    [entry] = _entries(rustle_home)
    os.chmod(entry, 0o620)
    _, err = _deploy(capsys, plan, inv)
    assert HIT not in err
    os.chmod(entry, 0o600)
    os.chmod(entry.parent, 0o770)
    _, err = _deploy(capsys, plan, inv)
    assert HIT not in err
    os.chmod(entry.parent, 0o700)
    _, err = _deploy(capsys, plan, inv)
    assert HIT in err


def test_a_run_from_the_cache_is_verified_and_recorded_as_any_other(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path, rustle_home: Path) -> None:
    plan, inv = _case(tmp_path)
    _deploy(capsys, plan, inv, "--verify")
    _, err = _deploy(capsys, plan, inv, "--verify")
    assert HIT in err
    assert main(["--list-deployments", "--output", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 2
    assert len({d["plan_sha256"] for d in listed}) == 1
    assert [(d["status"], [h["host"] for h in d["hosts"]]) for d in listed] == [("done", ["localhost"])] * 2
    assert all(not h.get("error") for d in listed for h in d["hosts"])


def _playbook(tmp_path: Path) -> tuple[Path, Path]:
    """A playbook with vars_files and a role (tasks, defaults) writing ``out/greeting``."""
    _, inv = _case(tmp_path, [])
    work = tmp_path / "pb"
    (work / "roles" / "r" / "tasks").mkdir(parents=True)
    (work / "roles" / "r" / "defaults").mkdir()
    (work / "roles" / "r" / "tasks" / "main.yml").write_text(
        "- copy:\n    content: \"{{ greeting }} {{ where }}\\n\"\n    dest: " + str(tmp_path / "out" / "greeting") + "\n")
    (work / "roles" / "r" / "defaults" / "main.yml").write_text("where: from the defaults\n")
    (work / "vars.yml").write_text("greeting: hello\n")
    (work / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  vars_files: [vars.yml]\n  roles: [r]\n")
    return work / "site.yml", inv


PLAYBOOK_CHANGES = {
    "playbook": (lambda pb: pb.write_text(pb.read_text().replace("vars_files: [vars.yml]",
                                                                 "vars: {greeting: inline}")), "inline from the defaults\n"),
    "vars_files": (lambda pb: (pb.parent / "vars.yml").write_text("greeting: changed\n"), "changed from the defaults\n"),
    "role tasks": (lambda pb: (pb.parent / "roles" / "r" / "tasks" / "main.yml").write_text(
        (pb.parent / "roles" / "r" / "tasks" / "main.yml").read_text().replace("{{ greeting }}", "bye")),
        "bye from the defaults\n"),
    "role defaults": (lambda pb: (pb.parent / "roles" / "r" / "defaults" / "main.yml").write_text("where: here\n"),
                      "hello here\n"),
    "role vars added": (lambda pb: ((pb.parent / "roles" / "r" / "vars").mkdir(),
                                    (pb.parent / "roles" / "r" / "vars" / "main.yml").write_text("where: in vars\n")),
                        "hello in vars\n"),
}


@pytest.mark.parametrize("kind", list(PLAYBOOK_CHANGES))
def test_a_playbooks_files_are_inputs_too(kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          rustle_home: Path) -> None:
    playbook, inv = _playbook(tmp_path)
    _deploy(capsys, playbook, inv)
    assert _out(tmp_path)["greeting"] == "hello from the defaults\n"
    _, err = _deploy(capsys, playbook, inv)
    assert HIT in err
    change, expected = PLAYBOOK_CHANGES[kind]
    change(playbook)
    _, err = _deploy(capsys, playbook, inv)
    assert HIT not in err
    assert _out(tmp_path)["greeting"] == expected
    _, err = _deploy(capsys, playbook, inv)
    assert HIT in err


def test_an_ansible_cfg_that_appears_compiles_again(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    rustle_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    playbook, inv = _playbook(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    _deploy(capsys, playbook, inv)
    _, err = _deploy(capsys, playbook, inv)
    assert HIT in err
    (tmp_path / "ansible.cfg").write_text("[defaults]\nforks = 3\n")
    _, err = _deploy(capsys, playbook, inv)
    assert HIT not in err
    _, err = _deploy(capsys, playbook, inv)
    assert HIT in err


@pytest.mark.parametrize("secret", ["no_log task", "no_log parameter", "connection password"])
def test_a_deployment_holding_a_secret_is_not_stored(secret: str, capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path, rustle_home: Path) -> None:
    """The artifact must carry what a no_log task or parameter is given; the run cache would be a
    second copy (and hosts' connection passwords travel nowhere): nothing is stored."""
    out = tmp_path / "out"
    task = {"module": "copy", "args": {"content": "s3cret\n", "dest": f"{out}/s"}}
    if secret == "no_log task":
        task["no_log"] = True
    elif secret == "no_log parameter":
        task = {"module": "user", "args": {"name": "nobody", "password": "s3cret"}, "check_mode": True,
                "ignore_errors": True}
    plan, inv = _case(tmp_path, [task])
    if secret == "connection password":
        doc = json.loads(inv.read_text())
        doc["all"]["hosts"]["localhost"]["ansible_password"] = "s3cret"
        inv.write_text(json.dumps(doc))
    _, err = _deploy(capsys, plan, inv)
    assert "note: run cache: not stored" in err
    assert _entries(rustle_home) == []
    home = rustle_home / ".rustle"
    assert not [p for p in home.rglob("*") if p.is_file() and "artifacts" not in p.parts and "index" not in p.parts
                and b"s3cret" in p.read_bytes()]


def test_the_oldest_entries_are_removed(capsys: pytest.CaptureFixture[str], tmp_path: Path, rustle_home: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from rustle_deploy import runcache

    monkeypatch.setattr(runcache, "KEEP", 2)
    plan, inv = _case(tmp_path)
    names = []
    for greeting in ("a", "b", "c"):
        _deploy(capsys, plan, inv, "-e", f"greeting={greeting}")
        names.append({p.name for p in _entries(rustle_home)})
    assert [len(n) for n in names] == [1, 2, 2]
    assert names[0] - names[2]  # the first went
    (rustle_home / ".rustle" / "cache" / "run" / "mine").write_text("not an entry")
    _deploy(capsys, plan, inv, "-e", "greeting=d")
    assert (rustle_home / ".rustle" / "cache" / "run" / "mine").exists()  # only what it made


def test_a_run_from_the_cache_has_a_compile_span_saying_so(tmp_path: Path, rustle_home: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    plan, inv = _case(tmp_path)
    argv = [str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz"]
    assert main(argv) == 0
    err = capfd.readouterr().err
    assert '"name": "compile"' in err and "rustle.run_cache" not in err
    assert main(argv) == 0
    err = capfd.readouterr().err
    assert '"name": "compile"' in err and '"rustle.run_cache": "hit"' in err


def test_a_sources_mode_is_an_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, rustle_home: Path) -> None:
    """``mode: preserve`` copies the source's mode: a chmod (no content change) compiles again."""
    out = tmp_path / "out"
    plan, inv = _case(tmp_path, [
        {"module": "copy", "args": {"src": "files/motd.txt", "dest": f"{out}/motd", "mode": "preserve"}}])
    src = plan.parent / "files" / "motd.txt"
    os.chmod(src, 0o640)
    _deploy(capsys, plan, inv)
    assert stat.S_IMODE((out / "motd").stat().st_mode) == 0o640
    _, err = _deploy(capsys, plan, inv)
    assert HIT in err
    os.chmod(src, 0o604)
    _, err = _deploy(capsys, plan, inv)
    assert HIT not in err
    assert stat.S_IMODE((out / "motd").stat().st_mode) == 0o604


def test_inputs_written_again_unchanged_are_still_a_hit(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        rustle_home: Path) -> None:
    """rustle-plan writes the plan again for every run: the same bytes with a new mtime hit."""
    plan, inv = _case(tmp_path)
    _deploy(capsys, plan, inv)
    for path in (plan, inv, plan.parent / "templates" / "t.j2", plan.parent / "files" / "motd.txt"):
        data = path.read_bytes()
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
        path.write_bytes(data)
    _, err = _deploy(capsys, plan, inv)
    assert HIT in err
