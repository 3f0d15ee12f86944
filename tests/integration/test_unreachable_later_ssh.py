"""A host whose own connection fails at the start of a later phase (docs/phases.md,
"Unreachable"), over the real sshd, against ansible-playbook.

The host ``flaky`` is reached through a ProxyCommand that stops connecting once a flag file
exists; a task delegated to the controller creates the flag after its first task. Both tools then meet an unreachable host at the
next task that needs the connection: with ``ignore_unreachable`` the task is unreachable,
ignored, and the host goes on (a ``set_fact`` still runs, a task delegated to the controller
records what it saw); without it the host stops there, as in Ansible.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

PROXY = """\
import os, socket, sys, threading
flag, port = sys.argv[1], int(sys.argv[2])
if os.path.exists(flag):
    sys.exit(1)
s = socket.create_connection(("127.0.0.1", port))
def up():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    data = s.recv(65536)
    if not data:
        break
    os.write(1, data)
"""

LATER = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: first
      command: echo {{ inventory_hostname }}
      register: first
    - name: cut the connection of flaky for what follows
      copy: {content: "cut\\n", dest: "{{ flag }}"}
      delegate_to: localhost
      when: flag is defined
    - name: a cut point
      command: echo once
      run_once: true
    - name: needs the connection, ignored
      command: echo after
      register: after
      ignore_unreachable: true
    - name: no connection needed
      set_fact: {seen: "{{ first.stdout }} {{ after.unreachable | default(false) }}"}
    - name: record on the controller
      copy: {content: "{{ seen }}\\n", dest: "{{ out }}/{{ inventory_hostname }}.txt"}
      delegate_to: localhost
    - name: needs it again, not ignored
      command: echo again
    - name: the last
      copy: {content: "{{ seen }}\\n", dest: "{{ out }}/{{ inventory_hostname }}.last"}
      delegate_to: localhost
"""


def test_a_host_unreachable_at_a_later_phase_is_unreachable_or_ignored_task_by_task_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")  # no master connection outlives the flag
    proxy = tmp_path / "proxy.py"
    proxy.write_text(PROXY)
    fleet = Fleet(sshd, tmp_path, 1, {"flakes": ["flaky"]})
    outs = {tool: tmp_path / f"out-{tool}" for tool in ("rustle", "ansible")}
    for tool, inventory in (("rustle", fleet.inventory), ("ansible", fleet.local_inventory)):
        outs[tool].mkdir()
        doc = yaml.safe_load(inventory.read_text())
        children = doc["all"]["children"]
        flaky = sshd.host("flaky", tmp_path / f"remote-{tool}-flaky").vars
        flag = tmp_path / f"flag-{tool}"
        children["flakes"]["hosts"]["flaky"] = dict(
            flaky, flag=str(flag), ansible_python_interpreter=sys.executable,
            ansible_ssh_common_args=f"{flaky['ansible_ssh_common_args']} -o 'ProxyCommand={sys.executable} "
                                    f"{proxy} {flag} {flaky['ansible_port']}'")
        doc["all"]["vars"] = {"out": str(outs[tool])}
        inventory.write_text(yaml.safe_dump(doc))
    playbook = playbook_file(tmp_path, LATER.replace("hosts: fleet", "hosts: fleet:flakes"))
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (1, 4), json.dumps(doc["hosts"])[:6000]
    files = {tool: {p.name: p.read_text() for p in sorted(out.iterdir())} for tool, out in outs.items()}
    assert files["rustle"] == files["ansible"]
    assert files["rustle"] == {"n00.txt": "n00 False\n", "n00.last": "n00 False\n", "flaky.txt": "flaky True\n"}
    recaps = {h["name"]: h["recap"] for h in doc["hosts"]}
    for name in ("n00", "flaky"):
        assert recap_counts(recaps[name]) == recap_counts(arecaps[name]), (name, recaps[name], arecaps[name])
        assert int(recaps[name].get("unreachable", 0)) == arecaps[name]["unreachable"], name
    assert arecaps["flaky"]["unreachable"] == 1 and arecaps["flaky"]["ignored"] == 1
