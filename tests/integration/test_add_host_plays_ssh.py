"""Plays after add_host and group_by (docs/phases.md), over the real sshd, against ansible-playbook.

Three inventory hosts share the test's sshd (each its own remote dir and ``root``). The first
play adds hosts the inventory does not name, aliases of the same sshd (``ansible_host``,
``ansible_port``, ``ansible_user`` and the key given by add_host itself), one directly and two
in a loop, and groups every host by a fact. The later plays target the new hosts and groups;
they read ``groups``, ``group_names`` and ``hostvars`` of the added hosts (their
``inventory_file``/``inventory_dir`` are None, as ansible-core sets them). ansible-playbook
applies the same playbook over local connections (the added hosts then get
``ansible_connection: local``): both must leave the same files and count the same recaps.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Fleet, playbook_file, recap_counts, remote_state

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

ADDED = ("extra1", "loop1", "loop2")

# the connection of an added host comes from these inventory variables (ssh for rustle-deploy,
# local for ansible-playbook), so that add_host itself names ansible_host/port/user/connection
CONNECTION = """\
        ansible_host: "{{ new_host }}"
        ansible_port: "{{ new_port }}"
        ansible_user: "{{ new_user }}"
        ansible_connection: "{{ new_connection }}"
        ansible_ssh_private_key_file: "{{ new_key }}"
        ansible_ssh_common_args: "{{ new_ssh_args }}"
        ansible_python_interpreter: "{{ new_python }}"
"""

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: each host registers something
      command: echo reg-{{ inventory_hostname }}
      register: mine
      changed_when: false
    - name: an alias of the sshd the inventory does not name (runs once, as in Ansible)
      add_host:
        name: extra1
        groups: [added, extras]
        marker: "from {{ inventory_hostname }}"
        rustle_remote_dir: "{{ remote_base }}/extra1"
        root: "{{ roots }}/extra1"
@CONNECTION@
    - name: a loop of add_host
      add_host:
        hostname: "loop{{ item }}"
        group: looped
        rustle_remote_dir: "{{ remote_base }}/loop{{ item }}"
        root: "{{ roots }}/loop{{ item }}"
        number: "{{ item }}"
@CONNECTION@
      loop: [1, 2]
    - name: facts for group_by
      setup:
        gather_subset: [min]
    - name: group by a fact
      group_by:
        key: "os_{{ ansible_system }}"
        parents: [unix_like]
    - name: group by the host's own data
      group_by:
        key: "parity_{{ inventory_hostname[-1] | int % 2 }}"

- hosts: added:looped
  gather_facts: false
  tasks:
    - name: what an added host sees
      copy:
        content: "{{ inventory_hostname }} {{ group_names }} {{ groups['added'] }} {{ groups['looped'] }} {{ marker | default('-') }} {{ number | default('-') }} {{ hostvars['n01'].mine.stdout }} {{ inventory_file is none }} {{ hostvars['loop1'].inventory_dir is none }}\\n"
        dest: "{{ root }}/seen.txt"
      register: wrote
    - name: the added host's own facts
      shell: echo "{{ ansible_connection }}" > /dev/null; hostname > /dev/null
      changed_when: false

# group_by's groups are sorted: ansible-core adds their members in the order its workers'
# results arrive, which varies from run to run
- hosts: os_Linux
  gather_facts: false
  tasks:
    - name: what the grouped hosts see
      copy:
        content: "{{ groups['os_Linux'] | sort }} {{ groups['unix_like'] | sort }} {{ group_names }} {{ hostvars['extra1'].marker }} {{ hostvars['loop2'].number }} {{ groups['parity_0'] | default([]) | sort }}\\n"
        dest: "{{ root }}/os.txt"

- hosts: parity_0:&fleet
  gather_facts: false
  tasks:
    - name: only the even hosts
      copy: {content: "even {{ mine.stdout }}\\n", dest: "{{ root }}/even.txt"}

- hosts: fleet
  gather_facts: false
  tasks:
    - name: a play over the inventory's hosts alone, after the change
      copy: {content: "{{ groups['all'] | length }} {{ wrote is defined }}\\n", dest: "{{ root }}/last.txt"}
""".replace("@CONNECTION@", CONNECTION.rstrip("\n"))


def _fleet(sshd: Any, tmp_path: Path) -> Fleet:
    fleet = Fleet(sshd, tmp_path, 3)
    for name in ADDED:
        fleet.root(name, "rustle").mkdir(parents=True)
        fleet.root(name, "ansible").mkdir(parents=True)
    fleet.every = [*fleet.every, *ADDED]
    ssh = {"new_host": "127.0.0.1", "new_port": sshd.port, "new_user": sshd.user, "new_connection": "ssh",
           "new_key": str(sshd.client_key), "new_ssh_args": f"-o UserKnownHostsFile={sshd.known_hosts}",
           "new_python": "python3", "remote_base": str(tmp_path / "remote-added"),
           "roots": str(tmp_path / "rustle")}
    local = dict(ssh, new_connection="local", new_python=sys.executable, roots=str(tmp_path / "ansible"))
    for path, values in ((fleet.inventory, ssh), (fleet.local_inventory, local)):
        doc = yaml.safe_load(path.read_text())
        doc["all"]["vars"] = values
        path.write_text(yaml.safe_dump(doc))
    return fleet


def _same_recaps(doc: dict[str, Any], arecaps: dict[str, dict[str, int]]) -> None:
    assert {h["name"] for h in doc["hosts"]} == set(arecaps)
    for h in doc["hosts"]:
        assert recap_counts(h["recap"]) == recap_counts(arecaps[h["name"]]), h["name"]


def test_plays_after_add_host_and_group_by_target_the_new_hosts_and_groups_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _fleet(sshd, tmp_path)
    playbook = playbook_file(tmp_path, PLAYBOOK)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0), doc
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert files["loop2"]["seen.txt"] == ("loop2 ['looped'] ['extra1'] ['loop1', 'loop2'] - 2 reg-n01 True True\n")
    assert files["extra1"]["seen.txt"].startswith("extra1 ['added', 'extras'] ['extra1'] ['loop1', 'loop2'] from n00 ")
    assert files["n02"]["os.txt"].startswith("['n00', 'n01', 'n02'] ['n00', 'n01', 'n02'] ")
    assert set(files["n01"]) == {"os.txt", "last.txt"}
    _same_recaps(doc, arecaps)
    # the added hosts were deployed to over ssh, each in its own remote dir, and are in the
    # history as any host is
    for name in ADDED:
        assert any((tmp_path / "remote-added" / name / "artifacts").iterdir()), name
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["extra1"]["round_trips"] == 1
    db = Path.home() / ".rustle" / "state.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT DISTINCT host FROM host_outcomes WHERE deployment_id = ?",
                            (doc["deployment_id"],)).fetchall()
        current = {h: (sha, name) for h, sha, name in conn.execute(
            "SELECT host, sha256, binary_name FROM host_outcomes WHERE deployment_id = ?", (doc["deployment_id"],))}
    assert {r[0] for r in rows} == {*fleet.names, *ADDED}
    # n00 ran plays before and after the change: the later plays' artifact is its release now,
    # and the history says so (a --rollback restores what it had before the deployment)
    sha, binary = current["n00"]
    state = remote_state(tmp_path / "remote00", binary)
    assert len(state["artifacts"]) == 2 and state["current"] is not None and sha in state["current"]


def test_limit_and_check_apply_to_the_added_hosts_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--limit selects among the new hosts too (loop1, loop2 are left out); --check adds the
    hosts and groups (add_host and group_by run in check mode) and changes no file."""
    fleet = _fleet(sshd, tmp_path)
    playbook = playbook_file(tmp_path, PLAYBOOK)
    code, doc = fleet.rustle(capsys, playbook, "--limit", "fleet:extra1", "--check")
    acode, arecaps = fleet.ansible(playbook, "--limit", "fleet:extra1", "--check")
    assert (code, acode) == (0, 0), doc
    assert fleet.files("rustle") == fleet.files("ansible")
    assert all(not files for files in fleet.files("rustle").values())
    _same_recaps(doc, arecaps)
    assert "loop1" not in {h["name"] for h in doc["hosts"]}
    code, doc = fleet.rustle(capsys, playbook, "--limit", "fleet:extra1")
    acode, arecaps = fleet.ansible(playbook, "--limit", "fleet:extra1")
    assert (code, acode) == (0, 0), doc
    assert fleet.files("rustle") == fleet.files("ansible")
    assert "seen.txt" in fleet.files("rustle")["extra1"] and not fleet.files("rustle")["loop1"]
    _same_recaps(doc, arecaps)

