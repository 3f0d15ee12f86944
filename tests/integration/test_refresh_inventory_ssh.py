"""``meta: refresh_inventory`` (docs/phases.md), over the real sshd, against ansible-playbook.

The inventory given with ``-i`` is a symlink. A task delegated to the controller points it at
another inventory, which drops n00 and adds s00 to group fleet (and a group ``late``), then the
play refreshes the inventory and points the symlink back right away, as ansible-core's
``meta_tasks`` target does (refresh.yml): what the later plays see is the inventory as it was
read at the refresh, not as it is when the play ends. n00 leaves the play at the refresh (its
later tasks run nowhere, the run_once task after it runs on n01); the play's later tasks see the
inventory read again (groups, the host's own and other hosts' variables); the groups
``group_by`` made before the refresh are kept, as ansible-core keeps them. ansible-playbook runs the same
playbook over local connections: both must leave the same files and count the same recaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: group by the host's own data (kept across the refresh)
      group_by:
        key: "parity_{{ inventory_hostname[-1] | int % 2 }}"
    - name: before the refresh, on every host
      copy: {content: "{{ groups['fleet'] }}\\n", dest: "{{ root }}/before.txt"}
    - name: point the inventory at the new one
      file: {src: "{{ new_inventory }}", dest: "{{ inventory_link }}", state: link, force: true}
      delegate_to: localhost
      run_once: true
    - name: read it again
      meta: refresh_inventory
    - name: put the old one back right away (the later plays see what the refresh read)
      file: {src: "{{ old_inventory }}", dest: "{{ inventory_link }}", state: link, force: true}
      delegate_to: localhost
      run_once: true
      register: put_back
    - name: after the refresh, on the hosts still in the inventory
      copy: {content: "after\\n", dest: "{{ root }}/after.txt"}
    - name: the same play sees the inventory read again (groups, its own and a new host's variables)
      copy:
        content: "{{ groups['fleet'] }} {{ groups['late'] | default([]) }} {{ groups['parity_0'] | default([]) }} {{ group_names }} {{ which }} {{ hostvars['s00'].root | default('none') | basename }} {{ ansible_play_batch }} {{ ansible_play_hosts }} {{ ansible_play_hosts_all }}\\n"
        dest: "{{ root }}/same-play.txt"

- hosts: fleet
  gather_facts: false
  tasks:
    - name: what a later play sees
      copy:
        content: "{{ ansible_play_hosts_all }} {{ groups['late'] | default([]) }} {{ groups['parity_0'] | default([]) | sort }} {{ put_back is defined }}\\n"
        dest: "{{ root }}/seen.txt"

- hosts: late
  gather_facts: false
  tasks:
    - name: a group only the new inventory has
      copy: {content: "late {{ group_names }}\\n", dest: "{{ root }}/late.txt"}
"""


def _inventories(fleet: Fleet, tmp_path: Path) -> None:
    """Old and new inventories for each tool, and the symlink ``-i`` names (to the old one)."""
    for tool, path in (("rustle", fleet.inventory), ("ansible", fleet.local_inventory)):
        groups = yaml.safe_load(path.read_text())["all"]["children"]
        hosts = {**groups["fleet"]["hosts"], **groups["spare"]["hosts"]}
        link, old, new = (tmp_path / f"{tool}-{kind}.yml" for kind in ("link", "old", "new"))
        common = {"inventory_link": str(link), "old_inventory": str(old), "new_inventory": str(new)}
        old.write_text(yaml.safe_dump({"all": {"vars": {**common, "which": "old"}, "children": {
            "fleet": {"hosts": {h: hosts[h] for h in ("n00", "n01", "n02")}}}}}))
        new.write_text(yaml.safe_dump({"all": {"vars": {**common, "which": "new"}, "children": {
            "fleet": {"hosts": {h: hosts[h] for h in ("n01", "n02", "s00")}},
            "late": {"hosts": {"s00": None}}}}}))
        link.symlink_to(old)
        if tool == "rustle":
            fleet.inventory = link
        else:
            fleet.local_inventory = link


def test_refresh_inventory_gives_the_later_plays_the_inventory_read_again_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3, others={"spare": ["s00"]})
    _inventories(fleet, tmp_path)
    playbook = playbook_file(tmp_path, PLAYBOOK)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    assert (code, acode) == (0, 0), doc
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert files["n00"] == {"before.txt": '["n00", "n01", "n02"]'}  # left the play at the refresh
    assert files["n01"]["after.txt"] == "after\n"
    # the play's tasks after the refresh see what it read: n00 gone, s00 and its group there
    # (s00 runs none of the play's tasks), the group_by groups kept, the new variables
    # (s00 runs none of the play's tasks, but its pattern lists it now, outside the batch)
    lists = "['n01', 'n02'] ['n01', 'n02', 's00'] ['n01', 'n02', 's00']"
    assert files["n01"]["same-play.txt"] == f"['n01', 'n02', 's00'] ['s00'] ['n02'] ['fleet', 'parity_1'] new s00 {lists}\n"
    assert files["n02"]["same-play.txt"] == f"['n01', 'n02', 's00'] ['s00'] ['n02'] ['fleet', 'parity_0'] new s00 {lists}\n"
    # what the run_once task registered reached n01 and n02, not s00 (new, it ran no earlier play)
    assert files["n01"]["seen.txt"] == "['n01', 'n02', 's00'] ['s00'] ['n02'] True\n"
    assert files["s00"]["seen.txt"] == "['n01', 'n02', 's00'] ['s00'] ['n02'] False\n"
    assert files["s00"]["late.txt"] == "late ['fleet', 'late']\n"
    assert (tmp_path / "rustle-link.yml").readlink() == tmp_path / "rustle-old.yml"
    recaps = {h["name"]: recap_counts(h["recap"]) for h in doc["hosts"] if h.get("recap")}
    assert {h: r for h, r in recaps.items() if any(r.values())} == \
        {h: recap_counts(r) for h, r in arecaps.items()}
    assert "n00" not in [h["name"] for h in doc["hosts"] if h.get("status") == "failed"]
    # n00 is done, not "partly updated": no later play is its
    assert "n00" in doc["rollout"]["updated"] and doc["rollout"]["partial"] == [], doc["rollout"]
