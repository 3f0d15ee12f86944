"""Controller-side action plugins that rustle-deploy reproduces (docs/bridge.md, "Action plugins"),
each against ansible-playbook on the same files.

A case is a project directory (a playbook, its files/ and roles) copied once per tool, with the
target tree ``{T}`` inside the copy. Every task registers its result; a last task writes them all
as JSON (the same ``copy`` + ``to_json`` in both tools) and the two files are compared task by
task. Both tools run over the local connection, so a script's stderr stays apart from its
stdout (ansible-playbook over ssh runs a script on a terminal, which merges them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import BridgeRun, write_plan

pytestmark = pytest.mark.ansible

# ansible-core 2.19 adds "exception": "(traceback unavailable)" to every failed result it
# registers; the runtime's built-in modules do not (yet) add that placeholder
_DROP = frozenset({"invocation", "exception"})


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
    names = ", ".join(f"'r{i}': r{i}" for i in range(len(tasks)))
    tasks.append({"name": "write results", "copy": {"dest": str(out), "content": "{{ {" + names + "} | to_json }}"}})
    return [{"hosts": "localhost", "gather_facts": False, "roles": list(roles), "tasks": tasks}]


def _ansible_playbook(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RUSTLE_"))}
    env.update(HOME=str(work / "ahome"), ANSIBLE_LOCAL_TEMP=str(work / "atmp"), ANSIBLE_REMOTE_TEMP=str(work / "rtmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_CONFIG=str(work / "no-ansible.cfg"))
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", "site.yml", *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)


def both(tmp_path: Path, bridge: BridgeRun, project: Path, tasks: list[dict[str, Any]],
         roles: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """Run ``tasks`` in a copy of ``project`` under each tool, each from its copy (the local
    connection's working directory); {"rN": (ansible's, ours)}."""
    results = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        shutil.copytree(project, work)
        root = work / "T"
        out = work / "results.json"
        (work / "site.yml").write_text(yaml.safe_dump(_subst(_playbook(tasks, out, roles), root), sort_keys=False))
        if tool == "ansible":
            proc = _ansible_playbook(work)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        else:
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(work)
                bridge.run(work / "site.yml")
        results[tool] = {k: _normal(v, root) for k, v in json.loads(out.read_text()).items()}
    return {k: (results["ansible"][k], results["rustle"].get(k)) for k in results["ansible"]}


def assert_same(pairs: dict[str, tuple[Any, Any]], tasks: list[dict[str, Any]]) -> None:
    bad = [f"{k} {tasks[int(k[1:])].get('name', '')}:\n  ansible: {json.dumps(a, sort_keys=True)}\n"
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
