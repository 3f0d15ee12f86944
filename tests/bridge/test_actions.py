"""Controller-side action plugins that rustle-deploy reproduces (docs/bridge.md, "Action plugins"),
each against ansible-playbook on the same files.

A case is a project directory (a playbook, its files/ and roles) copied once per tool, with the
target tree ``{T}`` inside the copy. Every task registers its result; a last task writes them all
as JSON (the same ``copy`` + ``to_json`` in both tools) and the two files are compared task by
task. Both tools run over the local connection, so a script's stderr stays apart from its
stdout (ansible-playbook over ssh runs a script on a terminal, which merges them).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import BridgeRun, write_plan

pytestmark = pytest.mark.ansible

# every failed result carries "exception": "(traceback unavailable)", as in ansible-core 2.19
_DROP = frozenset({"invocation"})


def _normal(value: Any, root: Path) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, root) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [_normal(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(str(root), "{T}").replace(str(root.parent), "{W}")
    return value


def _subst(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{T}", str(root))
    if isinstance(value, dict):
        return {k: _subst(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, root) for v in value]
    return value


def _playbook(tasks: list[dict[str, Any]], out: Path, roles: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    tasks = [dict(t, register=f"r{i}", ignore_errors=True) for i, t in enumerate(tasks)]
    names = ", ".join(f"'r{i}': r{i} | default('UNDEFINED')" for i in range(len(tasks)))
    tasks.append({"name": "write results", "copy": {"dest": str(out), "content": "{{ {" + names + "} | to_json }}"}})
    return [{"hosts": "all", "gather_facts": False, "roles": list(roles), "tasks": tasks}]


def _inventory(path: Path, hosts: tuple[str, ...]) -> Path:
    """``hosts`` over the local connection, each with its own remote directory."""
    path.write_text(json.dumps({"all": {"hosts": {h: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "rustle_remote_dir": str(path.parent / "remote" / h)} for h in hosts}}}))
    return path


def _ansible_playbook(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RUSTLE_"))}
    env.update(HOME=str(work / "ahome"), ANSIBLE_LOCAL_TEMP=str(work / "atmp"), ANSIBLE_REMOTE_TEMP=str(work / "rtmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_CONFIG=str(work / "no-ansible.cfg"))
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), *args, "site.yml"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=ORACLE_TIMEOUT)


def both(tmp_path: Path, bridge: BridgeRun, project: Path, tasks: list[dict[str, Any]],
         roles: tuple[str, ...] = (), hosts: tuple[str, ...] = ("localhost",), runs: int = 1) -> dict[str, tuple[Any, Any]]:
    """Run ``tasks`` on ``hosts`` in a copy of ``project`` under each tool, each from its copy
    (the local connection's working directory), ``runs`` times; {"rN": (ansible's, ours)},
    prefixed with "HOST " when there are several hosts and with "RUN " for each run after the
    first."""
    results = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        shutil.copytree(project, work)
        root = work / "T"
        out = work / "results-{{ inventory_hostname }}.json"
        (work / "site.yml").write_text(yaml.safe_dump(_subst(_playbook(tasks, out, roles), root), sort_keys=False))
        inventory = _inventory(work / "inventory.json", hosts)
        results[tool] = {}
        for run in range(runs):
            if tool == "ansible":
                proc = _ansible_playbook(work, "-i", str(inventory))
                assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            else:
                with pytest.MonkeyPatch.context() as mp:
                    mp.chdir(work)
                    code, stdout, err = bridge.main("site.yml", "-i", str(inventory), "--run", "--output", "json")
                    assert code == 0, err + stdout
            results[tool].update({(f"{run + 1} " if run else "") + (f"{h} " if len(hosts) > 1 else "") + k:
                                  _normal(v, root) for h in hosts
                                  for k, v in json.loads((work / f"results-{h}.json").read_text()).items()})
    return {k: (results["ansible"][k], results["rustle"].get(k)) for k in results["ansible"]}


def assert_same(pairs: dict[str, tuple[Any, Any]], tasks: list[dict[str, Any]]) -> None:
    bad = [f"{k} {tasks[int(k.split()[-1][1:])].get('name', '')}:\n  ansible: {json.dumps(a, sort_keys=True)}\n"
           f"  rustle:  {json.dumps(r, sort_keys=True)}" for k, (a, r) in pairs.items() if a != r]
    assert not bad, "\n".join(bad)


SCRIPT = """#!/bin/sh
echo "args: $# [$1] [$2]"
echo "cwd: $(pwd)"
echo "env: ${GREETING:-none}"
echo "to stderr" >&2
touch "$MARK"
exit ${EXIT:-0}
"""


def test_script_runs_the_controllers_script_as_ansible_does(tmp_path: Path, bridge: BridgeRun) -> None:
    project = tmp_path / "project"
    (project / "files").mkdir(parents=True)
    (project / "files" / "hello.sh").write_text(SCRIPT)
    (project / "files" / "plain.sh").write_text("echo plain $1\n")  # no shebang, not executable
    (project / "T" / "there").mkdir(parents=True)
    env = {"MARK": "{T}/mark"}
    tasks: list[dict[str, Any]] = [
        {"name": "free form with quoted args", "script": 'hello.sh one "two words"', "environment": env},
        {"name": "cmd and chdir", "script": {"cmd": "hello.sh a", "chdir": "{T}/there"}, "environment": env},
        {"name": "creates exists", "script": "hello.sh creates={T}/there"},
        {"name": "removes missing", "script": "hello.sh removes={T}/nope"},
        {"name": "removes exists", "script": "hello.sh x removes={T}/there", "environment": env},
        {"name": "executable", "script": {"cmd": "plain.sh arg", "executable": "/bin/sh"}},
        {"name": "fails", "script": "hello.sh", "environment": {"EXIT": "3", "MARK": "{T}/mark"}},
        {"name": "environment", "script": "hello.sh", "environment": {"GREETING": "hi", "MARK": "{T}/mark"}},
        {"name": "relative chdir", "script": {"cmd": "hello.sh", "chdir": "there"}},
        {"name": "check mode", "script": "hello.sh", "check_mode": True},
        {"name": "check mode with creates", "script": "hello.sh creates={T}/not-yet", "check_mode": True},
        {"name": "check mode, creates exists", "script": "hello.sh creates={T}/there", "check_mode": True},
    ]
    pairs = both(tmp_path, bridge, project, tasks)
    assert_same(pairs, tasks)
    ours = {k: r for k, (_, r) in pairs.items()}
    assert ours["r0"]["stdout_lines"][0] == "args: 2 [one] [two words]" and ours["r0"]["changed"]
    assert ours["r1"]["stdout_lines"][1] == "cwd: {T}/there"
    assert ours["r2"]["skipped"] and ours["r9"]["skipped"]
    assert ours["r6"]["rc"] == 3 and ours["r6"]["failed"]
    for tool in ("ansible", "rustle"):
        assert (tmp_path / tool / "T" / "mark").exists()
        assert not (tmp_path / tool / "T" / "not-yet").exists()


def test_script_in_a_role_is_found_in_its_files(tmp_path: Path, bridge: BridgeRun) -> None:
    project = tmp_path / "project"
    role = project / "roles" / "runner"
    (role / "files").mkdir(parents=True)
    (role / "tasks").mkdir()
    (project / "T").mkdir()
    (role / "files" / "from_role.sh").write_text("#!/bin/sh\necho from the role files\n")
    (role / "tasks" / "main.yml").write_text("- name: role script\n  script: from_role.sh\n  register: role_r\n")
    tasks: list[dict[str, Any]] = [{"name": "the role's result", "debug": {"var": "role_r.stdout"}}]
    pairs = both(tmp_path, bridge, project, tasks, roles=("runner",))
    assert_same(pairs, tasks)
    assert pairs["r0"][1]["role_r.stdout"] == "from the role files\n"


def test_a_missing_script_is_refused_at_its_line(tmp_path: Path, bridge: BridgeRun) -> None:
    (tmp_path / "site.yml").write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                                       "    - name: run it\n      script: nowhere.sh --flag\n")
    code, out, err = bridge.main(str(tmp_path / "site.yml"), "-i", str(bridge.inventory()), "--run")
    assert code == 2, err
    assert "site.yml:5" in err and "could not find script 'nowhere.sh'" in err
    assert str(tmp_path / "files" / "nowhere.sh") in err
    assert not (tmp_path / "remote").exists()


def test_a_plans_script_is_found_beside_it_and_embedded(tmp_path: Path, bridge: BridgeRun) -> None:
    from rustle_deploy.errors import PlanError
    from rustle_deploy.plan import load_plan

    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "say.sh").write_text("#!/bin/sh\necho \"said $1\"\n")
    plan = write_plan(tmp_path / "p", [{"name": "say", "module": "script", "args": {"_raw_params": "../files/say.sh it"}},
                                       {"name": "say more", "module": "ansible.builtin.script",
                                        "args": {"cmd": str(tmp_path / "files" / "say.sh") + " more"}}])
    results = bridge.run(plan)
    assert results["say"]["stdout"] == "said it\n" and results["say more"]["stdout"] == "said more\n"
    missing = write_plan(tmp_path / "q", [{"name": "say", "module": "script", "args": {"cmd": "nope.sh x"}}])
    with pytest.raises(PlanError) as err:
        load_plan(str(missing))
    assert err.value.pointer == "/plays/0/batches/0/tasks/0/args/cmd"
    assert "no such file 'nope.sh'" in err.value.message and str(tmp_path / "q" / "files" / "nope.sh") in err.value.message


def _timeless(result: Any) -> Any:
    """A pause's or wait's result without its clock readings (start, stop, elapsed, the
    measured duration in stdout): the rest must be equal."""
    if not isinstance(result, dict):
        return result
    out = {k: v for k, v in result.items() if k not in ("start", "stop", "elapsed")}
    if isinstance(out.get("stdout"), str):
        out["stdout"] = re.sub(r"[0-9.]+", "N", out["stdout"])
    return out


def test_pause_runs_once_on_the_controller_and_wait_for_connection_on_each_host(
        tmp_path: Path, bridge: BridgeRun) -> None:
    project = tmp_path / "project"
    (project / "T").mkdir(parents=True)
    tasks: list[dict[str, Any]] = [
        {"name": "pause seconds", "pause": {"seconds": 1}},
        {"name": "pause minutes as text", "pause": "minutes=0.5 echo=no"},
        {"name": "pause minutes as a number", "pause": {"minutes": 0.01, "echo": False}},
        {"name": "pause both", "pause": {"seconds": 1, "minutes": 1}},
        {"name": "wait", "wait_for_connection": {"delay": 1, "timeout": 30}},
        {"name": "wait in check mode", "wait_for_connection": {}, "check_mode": True},
        {"name": "wait, bad option", "wait_for_connection": {"color": "blue"}},
    ]
    pairs = both(tmp_path, bridge, project, tasks, hosts=("h1", "h2"))
    assert_same({k: (_timeless(a), _timeless(r)) for k, (a, r) in pairs.items()}, tasks)
    ours = {k: r for k, (_, r) in pairs.items()}
    assert ours["h1 r0"]["stdout"].startswith("Paused for 1") and ours["h1 r4"]["elapsed"] >= 1
    # one pause for the batch (ansible-core's BYPASS_HOST_LOOP), its result registered on the
    # first host only
    assert ours["h2 r0"] == ours["h2 r2"] == "UNDEFINED"
    assert ours["h1 r4"]["changed"] is False and ours["h2 r4"]["elapsed"] >= 1


@pytest.mark.parametrize(("args", "where", "why"), [
    ({"prompt": "Go on?"}, "/args/prompt", "has a prompt"),
    ({}, "/args", "has no seconds or minutes"),
])
def test_a_pause_that_waits_for_the_operator_is_refused(tmp_path: Path, args: dict[str, Any], where: str,
                                                        why: str) -> None:
    from rustle_deploy.errors import PlanError
    from rustle_deploy.plan import load_plan

    plan = write_plan(tmp_path, [{"name": "ask", "module": "pause", "args": args}])
    with pytest.raises(PlanError) as err:
        load_plan(str(plan))
    assert err.value.pointer == "/plays/0/batches/0/tasks/0" + where
    assert f"pause in task 'ask' {why}" in err.value.message and "seconds" in (err.value.hint or "")


def test_set_stats_gives_ansibles_result(tmp_path: Path, bridge: BridgeRun) -> None:
    project = tmp_path / "project"
    (project / "T").mkdir(parents=True)
    tasks: list[dict[str, Any]] = [
        {"name": "defaults", "set_stats": {"data": {"deployed": 1, "who": "{{ inventory_hostname }}"}}},
        {"name": "per host", "set_stats": {"data": {"n": [1, 2]}, "per_host": "yes", "aggregate": False}},
        {"name": "no data", "set_stats": {}},
        {"name": "data not a dict", "set_stats": {"data": "text"}},
        {"name": "bad name", "set_stats": {"data": {"not-a-name": 1}}},
        {"name": "bad option", "set_stats": {"date": {}}},
    ]
    pairs = both(tmp_path, bridge, project, tasks)
    assert_same(pairs, tasks)
    assert pairs["r0"][1]["ansible_stats"] == {"data": {"deployed": 1, "who": "localhost"}, "per_host": False,
                                               "aggregate": True}
    assert pairs["r4"][1]["failed"]


def test_fetch_brings_each_hosts_file_to_the_controller_as_ansible_does(tmp_path: Path, bridge: BridgeRun) -> None:
    project = tmp_path / "project"
    (project / "T" / "adir").mkdir(parents=True)
    (project / "T" / "data.txt").write_text("fetched data\n")
    (project / "flatdir").mkdir()
    tasks: list[dict[str, Any]] = [
        {"name": "into dest/host/path", "fetch": {"src": "{T}/data.txt", "dest": "out"}},
        {"name": "flat", "fetch": "src={T}/data.txt dest=flat/{{ inventory_hostname }}.txt flat=yes"},
        {"name": "flat into a directory", "fetch": {"src": "{T}/data.txt", "dest": "flatdir/{{ inventory_hostname }}/",
                                                    "flat": True}},
        {"name": "flat onto a directory", "fetch": {"src": "{T}/data.txt", "dest": "flatdir", "flat": True}},
        {"name": "missing", "fetch": {"src": "{T}/nope", "dest": "out"}},
        {"name": "missing, ignored", "fetch": {"src": "{T}/nope", "dest": "out", "fail_on_missing": False}},
        {"name": "a directory", "fetch": {"src": "{T}/adir", "dest": "out"}},
        {"name": "check mode", "fetch": {"src": "{T}/data.txt", "dest": "out"}, "check_mode": True},
        {"name": "no src", "fetch": {"dest": "out"}},
    ]
    pairs = both(tmp_path, bridge, project, tasks, hosts=("h1", "h2"), runs=2)
    assert_same(pairs, tasks)
    ours = {k: r for k, (_, r) in pairs.items()}
    assert ours["h1 r0"]["changed"] and not ours["2 h1 r0"]["changed"]  # the second run finds it there
    assert ours["h2 r0"]["dest"] == "{W}/out/h2{T}/data.txt"
    for tool in ("ansible", "rustle"):
        for host in ("h1", "h2"):
            assert (tmp_path / tool / "flat" / f"{host}.txt").read_text() == "fetched data\n"
    assert tree(tmp_path / "rustle" / "out") == tree(tmp_path / "ansible" / "out")
    # the bytes travel to the controller only: the hosts' journals do not keep them
    journals = list((tmp_path / "rustle" / "remote").rglob("*.jsonl"))
    encoded = base64.b64encode(b"fetched data\n").decode()
    assert journals and not any(encoded in p.read_text() for p in journals)


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)).replace(str(root.parent), ""): p.read_text()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("src", "message"), [
    ("/../../etc/passwd", "src '/../../etc/passwd' would be written outside"),
    ("{{ wanted }}", "src '{{ wanted }}' is a template over what only the host knows"),
])
def test_a_fetch_that_cannot_be_placed_now_is_refused(tmp_path: Path, bridge: BridgeRun, src: str,
                                                      message: str) -> None:
    plan = write_plan(tmp_path, [{"name": "up", "module": "fetch", "args": {"src": src, "dest": "out"}}])
    code, out, err = bridge.main(str(plan), "-i", str(bridge.inventory()), "--run")
    assert code == 2, err + out
    assert f"fetch in task 'up': {message}" in err and "/plays/0/batches/0/tasks/0/args/src" in err
    assert not (tmp_path / "remote").exists() and not (tmp_path / "out").exists()


def test_an_async_script_fails_as_ansible_does_without_looking_for_it(tmp_path: Path, bridge: BridgeRun) -> None:
    """ansible-core's script action refuses async before it looks for the script (its
    integration target runs /some/script.sh with async), so the compiler does not refuse it."""
    project = tmp_path / "project"
    (project / "T").mkdir(parents=True)
    tasks: list[dict[str, Any]] = [{"name": "async script", "script": "/some/script.sh", "async": 2,
                                    "ignore_errors": True}]
    pairs = both(tmp_path, bridge, project, tasks)
    assert_same(pairs, tasks)
    assert pairs["r0"][1]["failed"] and pairs["r0"][1]["msg"] == "This action (script) does not support async."
