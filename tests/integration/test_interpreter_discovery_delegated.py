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
import subprocess
import sys
from typing import Any

import pytest

from rustle_deploy.cli import main

from .conftest import ansible_env
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
        (work / "inv.ini").write_text(
            f"a ansible_connection=local ansible_python_interpreter={sys.executable} rustle_remote_dir={work / 'remote-a'}\n"
            f"db ansible_connection=local rustle_remote_dir={work / 'remote-db'}\n")
        args = ["-i", str(work / "inv.ini"), "-e", f"out={work / 'out'}"]
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), str(work / "site.yml"), *args], capture_output=True,
                                  text=True, env={**ansible_env(work), "PATH": PATH}, timeout=600)
            code, text = proc.returncode, proc.stdout + proc.stderr
        else:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("HOME", str(work / "home"))
                mp.setenv("PATH", PATH)
                mp.setenv("ANSIBLE_CONFIG", str(work / "no-ansible.cfg"))
                for var in ("ANSIBLE_PYTHON_INTERPRETER", "RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_STATE_DB"):
                    mp.delenv(var, raising=False)
                with open(work / "rustle.out", "w") as stream:
                    mp.setattr(sys, "stdout", stream)
                    mp.setattr(sys, "stderr", stream)
                    code = main([str(work / "site.yml"), *args, "--run", "--output", "text"])
            text = (work / "rustle.out").read_text()
        out[tool] = {"code": code, "text": text,
                     "files": {p.name: p.read_text() for p in sorted((work / "out").iterdir())}}
    return out


def test_a_task_delegated_to_another_host_discovers_there_and_warns(runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert rustle["files"] == ansible["files"], rustle["text"]
    theirs = WARNING.findall(ansible["text"])
    assert [w.split("'")[1] for w in theirs] == ["a"] and "/usr/bin/python3.11" in theirs[0]
    assert WARNING.findall(rustle["text"]) == theirs, rustle["text"]
