"""force_handlers in a play cut into phases whose handlers are plain (docs/phases.md
"force_handlers"), over the real sshd fleet, against ansible-playbook (one run for the module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

# any_errors_fatal cuts the play after the task that may fail. n00 fails it: the play stops
# there on both hosts, and each runs the handler it notified at the section's end (n00's in
# the play's last phase, not when it failed; n01's although the stop held it), as ansible-core's
# force_handlers flushes them. Neither runs the later task, nor the later play.
PLAYS = """\
- hosts: fleet
  gather_facts: false
  force_handlers: true
  any_errors_fatal: true
  tasks:
    - name: a
      shell: echo a >> {{ root }}/log
      notify: [plain]
    - name: fail n00
      fail:
      when: inventory_hostname == 'n00'
    - name: later
      shell: echo later >> {{ root }}/log
  handlers:
    - name: plain
      shell: echo plain >> {{ root }}/log
- hosts: fleet
  gather_facts: false
  tasks:
    - name: second play
      shell: echo second >> {{ root }}/log
"""


def test_force_handlers_run_every_hosts_plain_handlers_when_any_errors_fatal_stops_the_play(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2)
    playbook = playbook_file(tmp_path, PLAYS)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (1, 2), json.dumps(doc["hosts"])[:6000]
    assert fleet.files("rustle") == fleet.files("ansible")
    logs = {n: f["log"].split() for n, f in fleet.files("rustle").items()}
    assert logs == {"n00": ["a", "plain"], "n01": ["a", "plain"]}, logs
    for host in doc["hosts"]:
        assert recap_counts(host["recap"]) == recap_counts(arecaps[host["name"]]), host["name"]
    # each task that may fail ends its phase ([a] [fail n00] [later]): both hosts run the first
    # two, then only their handler in the last (on main n00 ran it when it failed, n01 never)
    assert {h["name"]: h["round_trips"] for h in doc["hosts"]} == {"n00": 3, "n01": 3}
