"""How many phases (round trips) a play's handlers cost (docs/phases.md), over the real sshd
fleet, against ansible-playbook (one run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

# The first play, of one host: its task delegated to the controller notifies a delegated
# handler; the plain handler before it is never notified (include_import runme line 31: role3's
# handler before the delegated one). It used to get a host phase of its own between the two,
# which ran nothing: a second round trip. The controller's run has no RUSTLE_RUN_MARK. The
# second: a run_once handler after one that nothing notifies runs on the first host that
# notified it, its result reaching every host. The third has force_handlers and a delegated
# handler that nothing notifies: it runs (the failed host runs the plain handler it notified, as
# in Ansible; test_force_handlers_ssh.py covers one that a task notifies).
PLAYS = """\
- hosts: n00
  gather_facts: false
  tasks:
    - name: on the host
      shell: echo host >> {{ root }}/log
    - name: on the controller
      shell: echo "task-${RUSTLE_RUN_MARK:-controller}" >> {{ root }}/log
      delegate_to: localhost
      notify: [delegated]
  handlers:
    - name: unnotified
      shell: echo unnotified >> {{ root }}/log
    - name: delegated
      shell: echo "handler-${RUSTLE_RUN_MARK:-controller}" >> {{ root }}/log
      delegate_to: localhost
- hosts: fleet
  gather_facts: false
  tasks:
    - name: notify
      command: "true"
      notify: [once, after]
  handlers:
    - name: unnotified
      shell: echo unnotified >> {{ root }}/log
    - name: once
      shell: echo once-{{ inventory_hostname }} | tee -a {{ root }}/log
      register: once_result
      run_once: true
    - name: after
      shell: echo "after-{{ once_result.stdout | default('none') }}" >> {{ root }}/log
- hosts: fleet
  gather_facts: false
  force_handlers: true
  tasks:
    - name: notify
      shell: echo task >> {{ root }}/log
      notify: [plain]
    - name: fail on n01
      fail:
      when: inventory_hostname == 'n01'
    - name: later
      shell: echo later >> {{ root }}/log
  handlers:
    - name: plain
      shell: echo forced >> {{ root }}/log
    - name: delegated, never notified
      shell: echo never >> {{ root }}/log
      delegate_to: localhost
"""


def test_a_handler_nothing_notifies_costs_no_round_trip(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2)
    playbook = playbook_file(tmp_path, PLAYS)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (1, 2), json.dumps(doc["hosts"])[:6000]  # n01 failed in the third play
    assert fleet.files("rustle") == fleet.files("ansible")
    logs = {n: f["log"].split() for n, f in fleet.files("rustle").items()}
    assert logs == {"n00": ["host", "task-controller", "handler-controller", "once-n00", "after-once-n00",
                            "task", "later", "forced"],
                    "n01": ["after-once-n00", "task", "forced"]}
    for host in doc["hosts"]:
        assert recap_counts(host["recap"]) == recap_counts(arecaps[host["name"]]), host["name"]
    # n00's exchanges: the first play's [on the host] (its [on the controller: the task, then
    # the handler] costs none; the handler "unnotified" used to get a host phase between
    # them: one more), the second play's [notify] [once] [after], the third play's one
    rounds = {h["name"]: h["round_trips"] for h in doc["hosts"]}
    assert rounds == {"n00": 5, "n01": 3}, rounds
