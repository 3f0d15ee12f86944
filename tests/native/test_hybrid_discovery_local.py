"""Interpreter discovery in a hybrid run (docs/native.md, "Hybrid artifacts"), against ansible-playbook.

ansible-core reports the discovered interpreter (the ``discovered_interpreter_python`` fact and
its warning) on the result of the first task that runs a Python module. In a hybrid run that
task may be one the host's Python runs (here a ``blockinfile`` with a ``(?i)`` regex, which the
runner does not do): the runner sends its discovery mode with that task, the Python side
discovers and reports it there, and the runner does not report it again on the next module
it runs itself (a ``command``). Both tools run the same playbook over one
``ansible_connection=local`` host with no interpreter set and ``PATH=/usr/bin:/bin`` (as
test_interpreter_discovery_local.py); compared: what each task registered (the fact on the
first module's result only) and the warnings.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rustle_deploy.cli import main

from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT
from ..integration.conftest import ansible_env
from ..integration.test_interpreter_discovery_local import PATH, WARNING

pytestmark = [pytest.mark.ansible]

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: no module yet
      set_fact:
        word: hello
    - name: python module first
      blockinfile:
        path: "{{ out }}/block.txt"
        create: true
        block: "{{ word }}"
        insertbefore: "(?i)^no such line$"
      register: first
    - name: runner module next
      command: echo hi
      register: second
      changed_when: false
    - name: what each reported
      copy:
        dest: "{{ out }}/facts.txt"
        content: "{{ first.ansible_facts | default({}) }} {{ second.ansible_facts | default({}) }}"
"""


def test_a_hybrid_run_reports_discovery_on_the_first_python_module_as_ansible(
        tmp_path: Path, native_cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip("ansible-core is not installed in this environment")
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("this test expects /usr/bin/python3.11 (Debian 12's python3)")
    book = tmp_path / "site.yml"
    book.write_text(PLAYBOOK)
    outs = {tool: tmp_path / tool / "out" for tool in ("ansible", "rustle")}
    for out in outs.values():
        out.mkdir(parents=True)
    inventory = tmp_path / "rustle" / "inv.ini"
    inventory.write_text(f"h ansible_connection=local rustle_remote_dir={tmp_path / 'rustle' / 'remote'}\n")
    env = {k: v for k, v in ansible_env(tmp_path).items() if k != "ANSIBLE_PYTHON_INTERPRETER"}
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), str(book), "-i", "h,", "-c", "local", "-e", f"out={outs['ansible']}"],
                          capture_output=True, text=True, timeout=ORACLE_TIMEOUT, env=dict(env, PATH=PATH))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    monkeypatch.setenv("PATH", PATH)
    monkeypatch.delenv("ANSIBLE_PYTHON_INTERPRETER", raising=False)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "no-ansible.cfg"))
    code = main([str(book), "-i", str(inventory), "-e", f"out={outs['rustle']}", "--run", "--format", "hybrid",
                 "--output", "text", "-v"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    # -v names the tasks the host's Python runs: the blockinfile, not the command
    assert "'python module first'" in err and "'runner module next'" not in err, err
    facts = {tool: (out_dir / "facts.txt").read_text() for tool, out_dir in outs.items()}
    assert facts["ansible"] == "{'discovered_interpreter_python': '/usr/bin/python3.11'} {}"
    assert facts["rustle"] == facts["ansible"]
    theirs = WARNING.findall(proc.stdout + proc.stderr)
    assert len(theirs) == 1 and WARNING.findall(out + err) == theirs
