"""A task delegated to another inventory host discovers that host's Python, against
ansible-playbook.

Both tools run the same playbook over two ``ansible_connection=local`` hosts with ``PATH`` set
to ``/usr/bin:/bin`` (as test_interpreter_discovery_local.py: ansible-core's discovery then
finds Debian's ``/usr/bin/python3.11``): ``a`` names its interpreter, ``db`` names none. A task
of ``a`` delegated to ``db`` runs in the Python discovered on ``db`` (each such task discovers
again) and warns, naming ``a`` as ansible-core 2.19 does; neither host keeps the fact. Compared: the warning texts and what the
tasks wrote.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import pytest

from .conftest import local_inventory, run_tool
from .test_playbooks_ansible import ANSIBLE

PLAYBOOK = """- hosts: a
  gather_facts: false
  tasks:
    - name: on db
      command: echo delegated
      register: there
      delegate_to: db
    - name: on db again
      command: echo again
      delegate_to: db
    - name: on a
      command: echo here
      register: here
    - name: what a knows
      copy:
        dest: "{{ out }}/a.txt"
        content: "{{ there.stdout }} {{ here.stdout }} {{ discovered_interpreter_python | default('undefined') }} {{ there.ansible_facts | default('none') }} {{ hostvars.db.discovered_interpreter_python | default('undefined') }}"
"""
WARNING = re.compile(r"\[WARNING\]: (Host '[^']+' is using the discovered Python interpreter at .*? for more information\.)")
PATH = "/usr/bin:/bin"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    if not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("this test expects /usr/bin/python3.11 (Debian 12's python3)")
    tmp = tmp_path_factory.mktemp("discovery-delegated")
    out: dict[str, Any] = {}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        (work / "out").mkdir(parents=True)
        (work / "site.yml").write_text(PLAYBOOK)
        inv = local_inventory(work, a=f"ansible_python_interpreter={sys.executable}", db="")
        out[tool] = run_tool(tool, work, inv, {"PATH": PATH, "ANSIBLE_PYTHON_INTERPRETER": None})
    return out


def test_a_task_delegated_to_another_host_discovers_there_and_warns(runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert rustle["files"] == ansible["files"], rustle["text"]
    theirs = WARNING.findall(ansible["text"])
    assert [w.split("'")[1] for w in theirs] == ["a"] and "/usr/bin/python3.11" in theirs[0]
    assert WARNING.findall(rustle["text"]) == theirs, rustle["text"]
