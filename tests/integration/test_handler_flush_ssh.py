"""run_once and delegated handlers flushed mid-play (``meta: flush_handlers`` and the implicit
flushes after pre_tasks and before post_tasks; docs/phases.md), over the real sshd fleet,
against ansible-playbook (one fork: its order is the hosts')."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

# every task and handler appends to the host's log, so the log is the order they ran in: n00
# notifies nothing in pre_tasks, so the flush after them runs the run_once handler on n01; the
# explicit flush runs it on n00 (every host notified it); the flush before post_tasks on n02
# alone; the handler delegated to the controller (no RUSTLE_RUN_MARK there) runs at each flush
# for every host that notified it and reads what the run_once handler registered. In the second
# play, a handler delegated to a host that each host names (its peer in the fleet) runs there
# for each host that notified it; a run_once handler delegated to db1 runs once there, for n01
# (n00 notified nothing), with n01's variables, and what it registers reaches the run_once
# handler delegated to the controller
FLUSHES = """\
- hosts: fleet
  gather_facts: false
  pre_tasks:
    - name: pre
      shell: echo pre >> {{ root }}/log
      changed_when: inventory_hostname != 'n00'
      notify: [plain, once, local]
  tasks:
    - name: main
      shell: echo "main${RUSTLE_RUN_MARK:+@host}" >> {{ root }}/log
      notify: [once, local, after]
    - meta: flush_handlers
    - name: after the flush
      shell: echo after-flush >> {{ root }}/log
      changed_when: inventory_hostname == 'n02'
      notify: [plain, once]
  post_tasks:
    - name: post
      shell: echo post >> {{ root }}/log
      notify: [local]
  handlers:
    - name: plain
      shell: echo plain >> {{ root }}/log
    - name: once
      shell: echo once-{{ inventory_hostname }} | tee -a {{ root }}/log
      register: once_result
      run_once: true
    - name: local
      shell: echo "local-${RUSTLE_RUN_MARK:-controller}-{{ once_result.stdout | default('none') }}" >> {{ root }}/log
      delegate_to: localhost
    - name: after
      shell: echo after >> {{ root }}/log
- hosts: fleet
  gather_facts: false
  vars:
    peer: "{{ groups['fleet'][(groups['fleet'].index(inventory_hostname) + 1) % 3] }}"
  tasks:
    - name: notify
      command: echo {{ inventory_hostname }}
      changed_when: inventory_hostname != 'n00'
      notify: [to my peer, once on db1, once here]
  handlers:
    - name: to my peer
      shell: echo "peer-of-{{ inventory_hostname }}" >> {{ hostvars[peer].root }}/peers
      delegate_to: "{{ peer }}"
    - name: once on db1
      shell: echo "{{ inventory_hostname }} on {{ root | basename }}" | tee -a {{ root }}/db
      register: on_db
      delegate_to: db1
      run_once: true
    - name: once here
      shell: echo "${RUSTLE_RUN_MARK:-controller} {{ inventory_hostname }} {{ on_db.stdout }}" >> {{ root }}/once
      delegate_to: localhost
      run_once: true
"""


def test_run_once_and_delegated_handlers_run_at_every_flush_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # the handler delegated to each host's peer is ansible-core's call over ssh: no ssh master
    # outlives the test (its socket path under the test's HOME would be too long, too)
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")
    fleet = Fleet(sshd, tmp_path, 3, others={"db": ["db1"]})
    playbook = playbook_file(tmp_path, FLUSHES)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    assert (code, acode) == (0, 0), json.dumps(doc["hosts"])[:6000]
    # "main" ran on each host (in rustle-deploy's agent), not on the controller: another play's
    # task of the same id delegated per call once made it a local phase
    files = fleet.files("rustle")
    assert all(files[n]["log"].count("main@host\n") == 1 for n in fleet.names), files
    assert {n: {k: v.replace("main@host", "main") for k, v in f.items()} for n, f in files.items()} \
        == fleet.files("ansible")
    logs = {n: files[n]["log"].replace("main@host", "main").split() for n in fleet.names}
    assert logs["n00"] == ["pre", "main", "once-n00", "local-controller-once-n00", "after", "after-flush", "post",
                           "local-controller-once-n02"]
    assert logs["n01"] == ["pre", "plain", "once-n01", "local-controller-once-n01", "main",
                           "local-controller-once-n00", "after", "after-flush", "post", "local-controller-once-n02"]
    assert logs["n02"][-5:] == ["after-flush", "plain", "once-n02", "post", "local-controller-once-n02"]
    assert {n: f.get("peers") for n, f in files.items()} == {
        "n00": "peer-of-n02\n", "n01": None, "n02": "peer-of-n01\n", "db1": None}
    assert files["n01"]["db"] == "n01 on n01\n" and files["n01"]["once"] == "controller n01 n01 on n01\n"
    assert "db" not in files["db1"] and "once" not in files["n02"]
    for host in doc["hosts"]:
        assert recap_counts(host["recap"]) == recap_counts(arecaps[host["name"]]), host["name"]
