"""A copy ``src`` directory that earlier tasks make on the controller, against ansible-playbook.

ansible-core's copy target makes ``source_recursive`` beside the playbook with tasks delegated
to localhost, then copies it (with and without a trailing slash) by that relative name: Ansible
looks for it only when the task runs. rustle-deploy cannot embed it at compile time; it reads it
when the task's phase starts (``run_time_files``, a directory as a tree: fleetops) and the
host's copy walks it as a directory ``src``. Both tools run the same playbook over one
``ansible_connection=local`` host, each in its own directory (the working directory: the
delegated tasks' relative paths are made there); compared: the files copied (and their
modes: a copy with mode=preserve keeps its source's) and the tasks' ``changed``.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from .conftest import local_inventory, run_tool
from .test_playbooks_ansible import ANSIBLE

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: a directory beside the playbook
      file: {path: made_here/sub, state: directory}
      delegate_to: localhost
    - name: a file in it
      copy: {content: "x\\n", dest: made_here/sub/f}
      delegate_to: localhost
    - name: the directory itself
      copy: {src: made_here, dest: "{{ out }}/"}
      register: whole
    - name: its contents
      copy: {src: made_here/, dest: "{{ out }}/contents/"}
      register: contents
    - name: the directory again
      copy: {src: made_here, dest: "{{ out }}/"}
      register: again
    - name: a file of the playbook's, its mode kept
      copy: {src: preserved.txt, dest: "{{ out }}/preserved.txt", mode: preserve}
    - name: what changed
      copy:
        dest: "{{ out }}/changed.txt"
        content: "{{ [whole.changed, contents.changed, again.changed] }}"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    tmp = tmp_path_factory.mktemp("copy-made-dir")
    out: dict[str, Any] = {}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        (work / "out").mkdir(parents=True)
        (work / "site.yml").write_text(PLAYBOOK)
        (work / "files").mkdir()
        (work / "files" / "preserved.txt").write_text("kept\n")
        (work / "files" / "preserved.txt").chmod(0o547)
        run = run_tool(tool, work, local_inventory(work, h=f"ansible_python_interpreter={sys.executable}"), {}, cwd=True)
        root = work / "out"
        out[tool] = {"code": run["code"], "text": run["text"],
                     "tree": {str(p.relative_to(root)): (p.read_text() if p.is_file() else "/", oct(p.stat().st_mode))
                              for p in sorted(root.rglob("*"))}}
    return out


def test_a_directory_made_on_the_controller_is_copied_as_ansible_copies_it(runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert ansible["tree"]["made_here/sub/f"][0] == "x\n" and ansible["tree"]["contents/sub/f"][0] == "x\n"
    assert ansible["tree"]["preserved.txt"] == ("kept\n", oct(0o100547))
    assert rustle["tree"] == ansible["tree"], rustle["text"]
