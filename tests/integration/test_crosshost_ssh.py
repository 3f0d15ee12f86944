"""Cross-host handlers and lockstep in plays of several hosts (docs/phases.md), over the real
sshd fleet of test_phases_ssh, against ansible-playbook (one fork: its order is the hosts')."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .test_phases_ssh import Fleet, _counts, _playbook

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.usefixtures("rustle_home")]

# n00 notifies nothing: the run_once handler runs on n01, the first host that notified it, and
# what it registers reaches every host of the play (a later handler, a later play); a run_once
# handler that no host notified runs nowhere; a handler delegated to the controller runs there
# (no RUSTLE_RUN_MARK: outside the host's agent), one delegated to db1 over db1's connection,
# each for every host that notified it, with that host's variables; a play of one host runs its
# delegated task on the controller too
HANDLERS = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: change where asked
      command: echo {{ inventory_hostname }}
      changed_when: inventory_hostname != 'n00'
      notify: [first, once, on the controller, on db1, last]
  handlers:
    - name: first
      copy: {content: "first\\n", dest: "{{ root }}/first.txt"}
    - name: once
      command: echo {{ inventory_hostname }}
      register: once_result
      run_once: true
    - name: never
      copy: {content: "never\\n", dest: "{{ root }}/never.txt"}
      run_once: true
    - name: on the controller
      shell: echo "[${RUSTLE_RUN_MARK:-controller}] {{ inventory_hostname }}"
      register: here
      delegate_to: localhost
    - name: on db1
      command: echo {{ inventory_hostname }} {{ root | basename }}
      register: on_db
      delegate_to: db1
    - name: last
      copy:
        content: "{{ once_result.stdout | default('none') }}|{{ here.stdout }}|{{ on_db.stdout }}\\n"
        dest: "{{ root }}/last.txt"
- hosts: fleet
  gather_facts: false
  tasks:
    - copy: {content: "{{ once_result.stdout | default('none') }}\\n", dest: "{{ root }}/later.txt"}
- hosts: n00
  gather_facts: false
  tasks:
    - name: a play of one host, delegated to the controller
      shell: echo "[${RUSTLE_RUN_MARK:-controller}]"
      register: alone
      delegate_to: localhost
    - copy: {content: "{{ alone.stdout }}\\n", dest: "{{ root }}/alone.txt"}
"""


@pytest.mark.ansible
def test_run_once_and_delegated_handlers_in_a_play_of_several_hosts_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 4, others={"db": ["db1"]})
    playbook = _playbook(tmp_path, HANDLERS)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    assert (code, acode) == (0, 0)
    assert fleet.files("rustle") == fleet.files("ansible")
    files = fleet.files("rustle")
    assert files["n00"] == {"later.txt": "n01\n", "alone.txt": "[controller]\n"}
    assert files["n02"] == {"first.txt": "first\n", "last.txt": "n01|[controller] n02|n02 n02\n", "later.txt": "n01\n"}
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name, host in by_name.items():
        assert _counts(host["recap"]) == _counts(arecaps[name]), name
    # the run_once handler is shown (and counted) on n01 alone
    assert by_name["n01"]["recap"]["changed"] == by_name["n02"]["recap"]["changed"] + 1
    # [task, first] [once: n01 alone] [never: nobody] [on the controller] [on db1] [last] [the
    # later play], and n00's play alone: [on the controller] [the copy]
    trips = {n: h["round_trips"] for n, h in by_name.items()}
    assert trips["n01"] == trips["n02"] + 1 == trips["n00"] == 5, trips


# n01 fails the second task: under any_errors_fatal every host stops after it (no host writes
# after.txt, the later play runs nowhere); a task with ignore_errors cannot stop them, and
# shares its phase with the task after it
FATAL = """\
- hosts: fleet
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - command: /bin/false
      ignore_errors: true
    - copy: {content: "before\\n", dest: "{{ root }}/before.txt"}
    - name: n01 fails
      fail: {msg: stop}
      when: inventory_hostname == 'n01'
    - copy: {content: "after\\n", dest: "{{ root }}/after.txt"}
- hosts: fleet
  gather_facts: false
  tasks:
    - copy: {content: "later\\n", dest: "{{ root }}/later.txt"}
"""


@pytest.mark.ansible
def test_any_errors_fatal_stops_every_host_after_the_failing_task_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)
    playbook = _playbook(tmp_path, FATAL)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    assert (code, acode) == (1, 2)
    assert fleet.files("rustle") == fleet.files("ansible") == {n: {"before.txt": "before\n"} for n in fleet.names}
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name, host in by_name.items():
        assert _counts(host["recap"]) == _counts(arecaps[name]), name
    assert doc["rollout"]["state"] == "stopped" and "any_errors_fatal" in doc["rollout"]["reason"], doc["rollout"]
    # [ignored, before] [n01 fails]: two exchanges each, the third phase never starts
    assert {h["round_trips"] for h in doc["hosts"]} == {2}
