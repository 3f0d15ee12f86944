"""ansible-core's PYTHON_MODULE_RLIMIT_NOFILE setting, against ansible-playbook.

``ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE`` (and ansible.cfg's ``[defaults]
python_module_rlimit_nofile``) sets the soft limit on open files while a module runs, for hosts
and tasks whose variables set no ``ansible_python_module_rlimit_nofile`` (ansible-test sets it to
1024 for every integration target; ansiballz_python asserts it). Both tools run the same
playbook over two local hosts, one that sets the variable in the inventory, in a play without
and a play with its own value; each host writes the limit its ``shell: ulimit -n`` saw.
ansible-playbook's side is recorded (tests/oracle.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from .. import oracle
from .conftest import ansible_env, local_inventory, run_tool

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - shell: ulimit -n
      register: limit
    - copy: {dest: "{{ out }}/{{ inventory_hostname }}.play1", content: "{{ limit.stdout }}"}
- hosts: all
  gather_facts: false
  vars:
    ansible_python_module_rlimit_nofile: 321
  tasks:
    - shell: ulimit -n
      register: limit
    - copy: {dest: "{{ out }}/{{ inventory_hostname }}.play2", content: "{{ limit.stdout }}"}
"""


def _project(work: Path, how: str) -> tuple[list[str], dict[str, str | None]]:
    (work / "out").mkdir(parents=True)
    (work / "site.yml").write_text(PLAYBOOK)
    inv = local_inventory(work, plain=f"ansible_python_interpreter={sys.executable}",
                          own=f"ansible_python_interpreter={sys.executable} ansible_python_module_rlimit_nofile=200")
    env: dict[str, str | None] = {"ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE": None}
    if how == "env":
        env["ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE"] = "123"
    else:
        (work / "ansible.cfg").write_text("[defaults]\npython_module_rlimit_nofile = 150\n")
        env["ANSIBLE_CONFIG"] = str(work / "ansible.cfg")
    return inv, env


def _ansible(work: Path, inv: list[str], env: dict[str, str | None], how: str) -> dict[str, Any]:
    places: dict[str, str | Path] = {"{tmp}": work}
    inputs = oracle.norm({"playbook": PLAYBOOK, "inventory": inv, "how": how,
                          "env": oracle.env({**ansible_env(work), **{k: v for k, v in env.items() if v}})}, places)
    return oracle.recorded("rlimit_setting", inputs,
                           lambda: oracle.norm(run_tool("ansible", work, inv, env), places), volatile=("text",))


@pytest.mark.ansible
@pytest.mark.parametrize("how", ["env", "cfg"])
def test_the_setting_is_the_limit_of_hosts_and_plays_that_set_none(how: str, tmp_path: Path) -> None:
    runs = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        inv, env = _project(work, how)
        runs[tool] = _ansible(work, inv, env, how) if tool == "ansible" else run_tool(tool, work, inv, env)
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert rustle["files"] == ansible["files"], rustle["text"]
    setting = "123" if how == "env" else "150"
    # the host's variable and the play's beat the setting
    assert ansible["files"] == {"own.play1": "200", "own.play2": "321", "plain.play1": setting, "plain.play2": "321"}
