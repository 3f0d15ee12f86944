"""``ansible_delegated_vars`` in tasks and handlers delegated to the controller or to another
inventory host (docs/phases.md), over the real sshd fleet, against ansible-playbook (one run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet
from .conftest import playbook_file as _playbook
from .conftest import recap_counts as _counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.usefixtures("rustle_home")]

# Each fleet host writes what its delegated tasks saw: the delegate's variables (db1's host and
# group vars, not the delegating host's own `color`), the play's and the task's, and
# inventory_hostname the delegating host's; a task that is not delegated has none; a handler
# delegated to db1 (notified from a task delegated to the controller) sees them too. A role
# imported with delegate_to and vars gives both to its handler, and its condition (false by the
# time the handlers run in the third play), as ansible-core (its handlers are the import's children)
PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  vars:
    pv: play
  tasks:
    - name: not delegated
      debug: {msg: "{{ ansible_delegated_vars is defined }}"}
      register: plain
    - name: to db1
      debug:
        msg: >-
          {{ d.color }} {{ d.dbonly }} {{ d.inventory_hostname }} {{ d.inventory_hostname_short }}
          {{ d.group_names }} {{ d.pv }} {{ d.tv }} {{ d.groups.db }} {{ ansible_delegated_vars | list }}
          {{ color }} {{ inventory_hostname }}
      vars:
        tv: task
        d: "{{ ansible_delegated_vars['db1'] }}"
      delegate_to: db1
      register: on_db
    - name: to the controller
      debug:
        msg: >-
          {{ d.inventory_hostname }} {{ d.inventory_hostname_short }} {{ d.group_names }}
          {{ d.ansible_connection }} {{ d.color | default('none') }} {{ ansible_delegated_vars | list }}
      vars:
        d: "{{ ansible_delegated_vars.localhost }}"
      delegate_to: localhost
      register: on_controller
    - name: a command on the controller
      command: echo {{ ansible_delegated_vars.localhost.inventory_hostname }}
      delegate_to: localhost
      register: command
      notify: on db1
    - name: what each host saw
      copy:
        content: "{{ plain.msg }}|{{ on_db.msg }}|{{ on_controller.msg }}|{{ command.stdout }}|{{ on_db.keys() | sort }}\\n"
        dest: "{{ root }}/out.txt"
  handlers:
    - name: on db1
      assert:
        that:
          - ansible_delegated_vars is defined
          - ansible_delegated_vars.db1.color == 'blue'
          - ansible_delegated_vars.db1.inventory_hostname == inventory_hostname
      delegate_to: db1
- hosts: fleet
  gather_facts: false
  tasks:
    - import_role: {name: notifier}
      delegate_to: db1
      vars: {given: by the import}
- hosts: fleet
  gather_facts: false
  vars: {go: true}
  tasks:
    - import_role: {name: notifier}
      delegate_to: db1
      when: go
      vars: {given: by the third play}
    - set_fact: {go: false}
"""
ROLE_TASKS = """\
- command: "true"
  notify: role handler
"""
ROLE_HANDLERS = """\
- name: role handler
  command: echo {{ ansible_delegated_vars | list }} {{ given }} {{ ansible_delegated_vars.db1.color }}
  register: from_role
- name: after the role handler
  copy: {content: "{{ from_role.stdout }}\\n", dest: "{{ root }}/role.txt"}
  listen: role handler
"""


@pytest.mark.ansible
def test_delegated_tasks_and_handlers_see_the_delegates_variables_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2, others={"db": ["db1"]})
    playbook = _playbook(tmp_path, PLAYBOOK)
    for where, name, text in [("host_vars", "db1", "color: blue\n"), ("host_vars", "n00", "color: red\n"),
                              ("host_vars", "n01", "color: green\n"), ("group_vars", "db", "dbonly: yes\n")]:
        (tmp_path / where).mkdir(exist_ok=True)
        (tmp_path / where / f"{name}.yml").write_text(text)
    role = tmp_path / "roles" / "notifier"
    for where, text in (("tasks", ROLE_TASKS), ("handlers", ROLE_HANDLERS)):
        (role / where).mkdir(parents=True)
        (role / where / "main.yml").write_text(text)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0)
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n01"]["out.txt"] == (
        "False|blue True n01 db1 ['db'] play task ['db1'] ['db1'] green n01|"
        "n01 localhost [] local none ['localhost']|n01|['changed', 'failed', 'msg']\n")
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name, host in by_name.items():
        assert _counts(host["recap"]) == _counts(arecaps[name]), name
    assert by_name["n00"]["recap"]["ok"] == 11  # the handlers ran, their assertions held
    assert fleet.files("rustle")["n00"]["role.txt"] == "[db1] by the import blue\n"
