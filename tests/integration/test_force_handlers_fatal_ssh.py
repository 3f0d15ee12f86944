"""force_handlers with any_errors_fatal in a play with run_once and delegated handlers
(docs/phases.md "force_handlers"), over the real sshd fleet, against ansible-playbook (one run
for the module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

# n00 fails a task with any_errors_fatal: the play stops on every host there, and yet each host
# runs the handlers it notified, as ansible-core's force_handlers flushes them: n00's and n01's
# plain and delegated handlers, the run_once one on n00 (the first that notified it). No later
# task runs, nor the later play.
PLAYS = """\
- hosts: fleet
  gather_facts: false
  force_handlers: true
  any_errors_fatal: true
  tasks:
    - name: a
      shell: echo a >> {{ root }}/log
      notify: [plain, once, local]
    - name: fail n00
      fail:
      when: inventory_hostname == 'n00'
    - name: later
      shell: echo later >> {{ root }}/log
  handlers:
    - name: plain
      shell: echo plain >> {{ root }}/log
    - name: once
      shell: echo once-{{ inventory_hostname }} >> {{ root }}/log
      run_once: true
    - name: local
      shell: echo "local-${RUSTLE_RUN_MARK:-controller}" >> {{ root }}/log
      delegate_to: localhost
- hosts: fleet
  gather_facts: false
  tasks:
    - name: second play
      shell: echo second >> {{ root }}/log
"""


def test_force_handlers_run_every_hosts_handlers_when_any_errors_fatal_stops_the_play(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2)
    playbook = playbook_file(tmp_path, PLAYS)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (1, 2), json.dumps(doc["hosts"])[:6000]
    assert fleet.files("rustle") == fleet.files("ansible")
    logs = {n: f["log"].split() for n, f in fleet.files("rustle").items()}
    assert logs == {"n00": ["a", "plain", "once-n00", "local-controller"],
                    "n01": ["a", "plain", "local-controller"]}, logs
    for host in doc["hosts"]:
        assert recap_counts(host["recap"]) == recap_counts(arecaps[host["name"]]), host["name"]
