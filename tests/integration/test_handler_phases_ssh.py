"""How many phases (round trips) a play's handlers cost (docs/phases.md), over the real sshd
fleet, against ansible-playbook (one run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

# A play of one host whose task delegated to the controller notifies a delegated handler; the
# plain handler before it is never notified (include_import runme line 31: role3's handler
# before the delegated one). It used to get a host phase of its own between the two, which ran
# nothing: a second round trip. The controller's run has no RUSTLE_RUN_MARK.
ONE_HOST = """\
- hosts: fleet
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
"""


def test_a_handler_nothing_notifies_costs_no_round_trip(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 1)
    playbook = playbook_file(tmp_path, ONE_HOST)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0), json.dumps(doc["hosts"])[:6000]
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n00"]["log"].split() == ["host", "task-controller", "handler-controller"]
    (host,) = doc["hosts"]
    assert recap_counts(host["recap"]) == recap_counts(arecaps["n00"])
    # phases: [on the host] [on the controller: the task, then the handler]: one exchange with
    # the host (was two: [host] [controller] [host: "unnotified"] [controller: "delegated"])
    assert host["round_trips"] == 1
    assert len(doc["rollout"]["batches"]) == 2, doc["rollout"]["batches"]
