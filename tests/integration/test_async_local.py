"""``async``/``poll`` job files on the local connection, against ansible-playbook.

A job polled to its end leaves no job file (ansible-core's poll runs ``async_status
mode=cleanup`` once the job finished: the async target's "validate automatic cleanup of temp
async status file on completed run"), and a later ``async_status`` of it finds no job; a job
started with ``poll: 0`` keeps its file until ``async_status`` reads it finished. Both tools run
the same playbook with ``ansible_async_dir`` under the work directory; compared: the files the
host wrote. ansible-playbook's side is recorded (tests/oracle.py).
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
  vars:
    ansible_async_dir: "{{ out }}/../jobs"
  tasks:
    - name: polled
      shell: echo polled
      async: 30
      poll: 1
      register: polled
    - stat: {path: "{{ polled.results_file }}"}
      register: polled_file
    - async_status: {jid: "{{ polled.ansible_job_id }}"}
      register: polled_status
      ignore_errors: true
    - name: background
      shell: echo background
      async: 30
      poll: 0
      register: background
    - async_status: {jid: "{{ background.ansible_job_id }}"}
      register: waited
      until: waited is finished
      retries: 30
      delay: 1
    - stat: {path: "{{ background.results_file }}"}
      register: background_file
    - name: a module that writes to stderr
      noisy: {}
      async: 30
      poll: 1
      register: noisy
    - copy:
        dest: "{{ out }}/{{ inventory_hostname }}.txt"
        content: |
          polled: {{ polled.stdout }} {{ polled.finished }} file={{ polled_file.stat.exists }}
          status: {{ polled_status.failed }} {{ polled_status.msg }}
          background: {{ waited.stdout }} file={{ background_file.stat.exists }}
          noisy: {{ noisy.stderr | default('none') }}|{{ noisy.said }}
"""
NOISY = """#!/usr/bin/python
import sys
from ansible.module_utils.basic import AnsibleModule

module = AnsibleModule(argument_spec={})
print("printed to stderr", file=sys.stderr)
module.exit_json(changed=False, said="hi")
"""


def _ansible(work: Path, inv: list[str]) -> dict[str, Any]:
    places: dict[str, str | Path] = {"{tmp}": work}
    inputs = oracle.norm({"playbook": PLAYBOOK, "module": NOISY, "inventory": inv, "env": oracle.env(ansible_env(work))},
                         places)
    return oracle.denorm(oracle.recorded("async_local", inputs, lambda: oracle.norm(run_tool("ansible", work, inv, {}), places),
                                         volatile=("text",)), places)


@pytest.mark.ansible
def test_a_job_polled_to_its_end_leaves_no_file_as_in_ansible(tmp_path: Path) -> None:
    runs = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        (work / "out").mkdir(parents=True)
        (work / "site.yml").write_text(PLAYBOOK)
        (work / "library").mkdir()
        (work / "library" / "noisy.py").write_text(NOISY)
        inv = local_inventory(work, h=f"ansible_python_interpreter={sys.executable}")
        runs[tool] = _ansible(work, inv) if tool == "ansible" else run_tool(tool, work, inv, {})
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert rustle["files"] == ansible["files"], rustle["text"]
    assert ansible["files"]["h.txt"] == ("polled: polled True file=False\nstatus: True could not find job\n"
                                         "background: background file=True\nnoisy: printed to stderr\n|hi\n")
