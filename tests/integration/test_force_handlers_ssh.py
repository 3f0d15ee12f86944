"""force_handlers with run_once and delegated handlers (docs/phases.md "force_handlers"), over
the real sshd fleet, against ansible-playbook (one run for the module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

# Four hosts. The first play: n00 fails a task (its block's always notifies) before an explicit
# flush, which it skips; the handlers it notified (a plain one, a run_once one, one delegated to
# the controller) run at the end of its section (the play's end), the run_once one on n00 again
# although it ran on n01 at the flush (n00's notification was not spent there). The second play
# (n01-n03) has pre_tasks and post_tasks: n02 fails in pre_tasks and runs its handlers (one
# delegated to the controller) at the pre_tasks' implicit flush; n01 alone notifies a run_once
# handler and fails in the tasks: the handler runs on n01 at the flush before post_tasks, its
# result reaching n03. The third play's only host, n03, fails: the rollout stops there (every
# host failed), after its handlers ran. Each handler writes into the log of the host it runs for.
PLAYS = """\
- hosts: fleet
  gather_facts: false
  force_handlers: true
  tasks:
    - name: a
      shell: echo a >> {{ root }}/log
      notify: [plain, once, local]
    - block:
        - name: fail n00
          fail:
          when: inventory_hostname == 'n00'
      always:
        - name: always notifies
          shell: echo always >> {{ root }}/log
          notify: [after]
          when: inventory_hostname == 'n00'
    - name: b
      shell: echo b >> {{ root }}/log
    - meta: flush_handlers
    - name: c
      shell: echo c >> {{ root }}/log
      notify: [plain]
  handlers:
    - name: plain
      shell: echo plain >> {{ root }}/log
    - name: once
      shell: echo once-{{ inventory_hostname }} >> {{ root }}/log
      run_once: true
    - name: local
      shell: echo "local-${RUSTLE_RUN_MARK:-controller}" >> {{ root }}/log
      delegate_to: localhost
    - name: after
      shell: echo after >> {{ root }}/log
- hosts: fleet
  gather_facts: false
  force_handlers: true
  pre_tasks:
    - name: pre n02 notifies
      shell: echo pre >> {{ root }}/log
      notify: [plain2, local2]
      when: inventory_hostname == 'n02'
    - name: pre n02 fails
      fail:
      when: inventory_hostname == 'n02'
  tasks:
    - name: n01 notifies once2
      shell: echo t >> {{ root }}/log
      notify: [once2, plain2]
      when: inventory_hostname == 'n01'
    - name: n01 fails
      fail:
      when: inventory_hostname == 'n01'
    - name: later
      shell: echo later >> {{ root }}/log
  post_tasks:
    - name: post
      shell: echo post >> {{ root }}/log
      notify: [local2]
  handlers:
    - name: plain2
      shell: echo plain2 >> {{ root }}/log
    - name: once2
      shell: echo once2-{{ inventory_hostname }} | tee -a {{ root }}/log
      register: once2_result
      run_once: true
    - name: local2
      shell: echo "local2-{{ once2_result.stdout | default('none') }}-${RUSTLE_RUN_MARK:-controller}" >> {{ root }}/log
      delegate_to: localhost
- hosts: n03
  gather_facts: false
  force_handlers: true
  tasks:
    - name: n03 notifies
      shell: echo three >> {{ root }}/log
      notify: [plain3, local3]
    - name: n03 fails
      fail:
    - name: never
      shell: echo never >> {{ root }}/log
  handlers:
    - name: plain3
      shell: echo plain3 >> {{ root }}/log
    - name: local3
      shell: echo "local3-${RUSTLE_RUN_MARK:-controller}" >> {{ root }}/log
      delegate_to: localhost
- hosts: fleet
  gather_facts: false
  tasks:
    - name: nobody left
      shell: echo nobody >> {{ root }}/log
"""


def test_force_handlers_run_a_failed_hosts_run_once_and_delegated_handlers_at_its_sections_end(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 4)
    playbook = playbook_file(tmp_path, PLAYS)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (1, 2), json.dumps(doc["hosts"])[:6000]
    assert fleet.files("rustle") == fleet.files("ansible")
    logs = {n: f["log"].split() for n, f in fleet.files("rustle").items()}
    # n00 skipped the flush: what it notified (in the failing block's always too) ran after c,
    # the run_once handler on it although it ran on n01 at the flush; the delegated handlers ran
    # on the controller for the failed hosts; n02's ran at the pre_tasks' end, n01's once2 at
    # the tasks' end, its result reaching n03's post_tasks handler
    assert logs == {
        "n00": ["a", "always", "plain", "once-n00", "local-controller", "after"],
        "n01": ["a", "b", "plain", "once-n01", "local-controller", "c", "plain", "t", "plain2", "once2-n01"],
        "n02": ["a", "b", "plain", "local-controller", "c", "plain", "pre", "plain2", "local2-none-controller"],
        "n03": ["a", "b", "plain", "local-controller", "c", "plain", "later", "post",
                "local2-once2-n01-controller", "three", "plain3", "local3-controller"]}, logs
    for host in doc["hosts"]:
        assert recap_counts(host["recap"]) == recap_counts(arecaps[host["name"]]), host["name"]
    print({h["name"]: h["round_trips"] for h in doc["hosts"]})
