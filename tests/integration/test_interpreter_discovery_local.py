"""Python interpreter discovery on the local connection, against ansible-playbook.

Both tools run the same playbook over ``ansible_connection=local`` hosts with ``PATH`` set to
``/usr/bin:/bin`` (no pyenv shims: ansible-core 2.19's discovery, ``command -v`` over
INTERPRETER_PYTHON_FALLBACK, then finds Debian's ``/usr/bin/python3.11``). A module of the
playbook's ``library/`` reports the interpreter it ran in:

- ``plain`` names no interpreter: the launcher discovers, the module runs there;
- ``named`` names another Python as its host variable, and the task sets
  ``ansible_python_interpreter: auto``: the module runs in the interpreter discovered for the
  task (not in the runtime's own), and its result carries the fact.

Compared: the files each host wrote (the fact before and after, the module's interpreter and
result facts) and the warning texts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import local_inventory, run_tool
from .test_playbooks_ansible import ANSIBLE

MODULE = """#!/usr/bin/python
import sys
from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={})
    module.exit_json(changed=False, executable=sys.executable)


if __name__ == "__main__":
    main()
"""

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: before any module
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.before"
        content: "{{ discovered_interpreter_python | default('undefined') }}"
    - name: which python
      which_python:
      register: which
      vars:
        ansible_python_interpreter: auto
    - name: after
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.after"
        content: "{{ which.executable }} {{ which.ansible_facts | default({}) }} {{ discovered_interpreter_python | default('undefined') }}"
"""

WARNING = re.compile(r"\[WARNING\]: (Host '[^']+' is using the discovered Python interpreter at .*? for more information\.)")
PATH = "/usr/bin:/bin"


def _other_python() -> str | None:
    """A Python >= 3.8 outside /usr/bin (pyenv's), for the host that names its interpreter."""
    root = Path.home() / ".pyenv" / "versions"
    for version in ("3.12", "3.13", "3.10", "3.9"):
        for path in sorted(root.glob(f"{version}.*/bin/python{version}")):
            return str(path)
    return None


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    if not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("this test expects /usr/bin/python3.11 (Debian 12's python3)")
    other = _other_python()
    if other is None:
        pytest.skip("this test needs a second Python outside /usr/bin (pyenv's)")
    tmp = tmp_path_factory.mktemp("discovery-local")
    out: dict[str, Any] = {"other": other}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        (work / "out").mkdir(parents=True)
        (work / "library").mkdir()
        (work / "library" / "which_python.py").write_text(MODULE)
        (work / "site.yml").write_text(PLAYBOOK)
        inv = local_inventory(work, plain="", named=f"ansible_python_interpreter={other}")
        out[tool] = run_tool(tool, work, inv, {"PATH": PATH, "ANSIBLE_PYTHON_INTERPRETER": None})
    return out


def test_a_local_host_discovers_and_a_tasks_auto_runs_its_module_in_the_discovered_python(
        runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert rustle["files"] == ansible["files"], rustle["text"]
    files = ansible["files"]
    assert files["plain.before"] == files["named.before"] == "undefined"
    # the task's own auto: the module ran in the discovered Python, not in the host's named one
    assert files["named.after"] == ("/usr/bin/python3.11 {'discovered_interpreter_python': '/usr/bin/python3.11'} "
                                    "/usr/bin/python3.11")
    assert files["plain.after"].startswith("/usr/bin/python3.11 ")


def test_the_local_discovery_warnings_are_ansibles(runs: dict[str, Any]) -> None:
    theirs = sorted(WARNING.findall(runs["ansible"]["text"]))
    assert sorted(WARNING.findall(runs["rustle"]["text"])) == theirs
    assert [w.split("'")[1] for w in theirs] == ["named", "plain"]
