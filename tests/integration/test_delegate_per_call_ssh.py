"""A task delegated to a host each call names, or to a host outside the inventory
(docs/phases.md), over a real sshd fleet.

``delegate_to: "{{ item }}"`` over a group (a load balancer drained for each web host), a
delegate named by the host's own data, and an implicit host (a name the inventory does not
hold, reached with the task's connection variables): ansible-core on the controller renders
the name for each call and runs the call over that host's connection, in one local phase. The playbook is
also applied by ansible-playbook (the oracle, local connections): same files, same recap
counts; SSH_CONNECTION proves the ssh hop on rustle-deploy's side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

PER_CALL = """\
- hosts: fleet
  gather_facts: false
  vars: {jump: JUMP}
  tasks:
    - name: on the host
      command: echo {{ inventory_hostname }}
      register: here
      changed_when: false
    - name: the balancer a fact names
      set_fact: {my_lb: "{{ groups['lbs'][1] }}"}
    - name: drain from each balancer
      shell: echo "{{ here.stdout }} on ${SSH_CONNECTION:+ssh}{{ item }}" >> {{ hostvars[item].root }}/{{ inventory_hostname }}.drain
      delegate_to: "{{ item }}"
      loop: "{{ groups['lbs'] }}"
      register: drained
    - name: delegated by the host's data
      command: echo {{ inventory_hostname }} via {{ my_lb }}
      delegate_to: "{{ my_lb }}"
      register: via
    - name: a !unsafe argument stays text
      debug: {msg: !unsafe "{{ not rendered }}"}
      delegate_to: "{{ my_lb }}"
      register: unsafe_msg
    - name: on a host outside the inventory
      shell: echo "{{ inventory_hostname }} on ${SSH_CONNECTION:+ssh}jump" > {{ root }}-jump
      delegate_to: jump.example
      vars:
        ansible_connection: "{{ jump.connection }}"
        ansible_host: "{{ jump.host }}"
        ansible_port: "{{ jump.port }}"
        ansible_user: "{{ jump.user }}"
        ansible_ssh_private_key_file: "{{ jump.key }}"
        ansible_ssh_common_args: "{{ jump.args }}"
        ansible_python_interpreter: "{{ jump.python }}"
    - copy:
        content: "{{ drained.results | map(attribute='item') | list }}|{{ drained.changed }}|{{ drained.results | map(attribute='rc') | list }}|{{ via.stdout }}|{{ unsafe_msg.msg }}\\n"
        dest: "{{ root }}/out.txt"
"""


def test_a_task_delegated_to_each_loop_item_to_a_host_the_hosts_data_names_and_to_an_implicit_host_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")  # no ssh master outlives the test
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "no-ansible.cfg"))
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    fleet = Fleet(sshd, tmp_path, 2, {"lbs": ["lb0", "lb1"]})
    # the implicit host: over the sshd for rustle-deploy, a local connection for the oracle
    key = sshd.host("x", tmp_path).vars
    jump = {"connection": "ssh", "host": "127.0.0.1", "port": key["ansible_port"], "user": key["ansible_user"],
            "key": key["ansible_ssh_private_key_file"], "args": key["ansible_ssh_common_args"], "python": sys.executable}
    playbook = playbook_file(tmp_path, PER_CALL.replace("JUMP", json.dumps(jump)))
    code, doc = fleet.rustle(capsys, playbook)
    oracle = playbook_file(tmp_path, PER_CALL.replace("JUMP", json.dumps(dict(jump, connection="local"))), "oracle.yml")
    acode, arecaps = fleet.ansible(oracle)
    assert (code, acode) == (0, 0), json.dumps(doc["hosts"])[:6000]
    files = fleet.files("rustle")
    assert files["n01"]["out.txt"] == "['lb0', 'lb1']|True|[0, 0]|n01 via lb1|{{ not rendered }}\n"
    assert files["lb0"] == {"n00.drain": "n00 on sshlb0\n", "n01.drain": "n01 on sshlb0\n"}
    assert (tmp_path / "rustle" / "n01-jump").read_text() == "n01 on sshjump\n"
    assert (tmp_path / "ansible" / "n01-jump").read_text() == "n01 on jump\n"
    assert {n: {k: v.replace("on ssh", "on ") for k, v in f.items()} for n, f in files.items()} == fleet.files("ansible")
    for h in doc["hosts"]:
        assert recap_counts(h["recap"]) == recap_counts(arecaps[h["name"]]), h["name"]
    assert {h["name"] for h in doc["hosts"]} == {"n00", "n01"}  # nothing deployed on the balancers
    # phases: [on the host, set_fact] [the delegated calls, on the controller] [copy]
    assert {h["name"]: h["round_trips"] for h in doc["hosts"]} == {"n00": 2, "n01": 2}
