"""Loops over includes whose tasks run differently (docs/phases.md "Loops over includes that mix
kinds"): an include_tasks looping over items the controller knows (a written list, play vars,
range(), a vars_files list, inventory and extra vars) whose file holds host tasks and a task
delegated to the controller or run once is cut into phases item by item, in ansible-core's
lock-step order; a failing item and a `when` on the include. Plays of several hosts over the
shared sshd fleet, against ansible-playbook (one fork: its order is the hosts'). One playbook,
one run of each tool: each play has hosts of its own, so a failure in one leaves the others
alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

PLAYBOOK = """\
# play vars: each item's host task, its task on the controller and its run_once task, item by item
- hosts: a
  gather_facts: false
  vars: {words: [x, y]}
  tasks:
    - include_tasks: mixed.yml
      loop: "{{ words }}"
    - shell: echo end >> {{ root }}/order.log

# a written list, a condition on the include (item 2 skipped), b1 failing at item 3: it runs
# nothing after, b0 goes on
- hosts: b
  gather_facts: false
  tasks:
    - include_tasks: failing.yml
      loop: [1, 2, 3]
      when: item != 2
    - shell: echo end >> {{ root }}/order.log

# range() with loop_var/index_var, the file's first task run once; extra and inventory vars in it
- hosts: c
  gather_facts: false
  tasks:
    - include_tasks: once_first.yml
      loop: "{{ range(2) | list }}"
      loop_control: {loop_var: n, index_var: i}

# a vars_files list and an inventory variable's list (the same on both hosts), with_items
- hosts: d
  gather_facts: false
  vars_files: [words.yml]
  tasks:
    - include_tasks: local_only.yml
      with_items: "{{ file_words }}"
    - include_tasks: local_only.yml
      loop: "{{ host_words }}"
"""

MIXED = """\
- shell: echo host-{{ item }} >> {{ root }}/order.log
- shell: echo local-{{ item }}-{{ inventory_hostname }} | tee -a {{ root }}/order.log
  delegate_to: localhost
  register: local
- command: echo once-{{ item }}-{{ inventory_hostname }}
  run_once: true
  register: once
- copy: {content: "{{ local.stdout }}{{ once.stdout }}\\n", dest: "{{ root }}/after-{{ item }}.txt"}
"""

FAILING = """\
- shell: echo host-{{ item }} >> {{ root }}/order.log
- fail: {msg: b1 fails at 3}
  when: inventory_hostname == 'b1' and item == 3
- shell: echo local-{{ item }} >> {{ root }}/order.log
  delegate_to: localhost
"""

ONCE_FIRST = """\
- command: echo once-{{ n }}-{{ inventory_hostname }}
  run_once: true
  register: once
- shell: echo {{ once.stdout }} {{ i }} {{ extra_word }} {{ host_word }} >> {{ root }}/order.log
"""

LOCAL_ONLY = """\
- shell: echo host-{{ item }} >> {{ root }}/order.log
- shell: echo local-{{ item }} >> {{ root }}/order.log
  delegate_to: localhost
"""


def test_loops_over_includes_that_mix_kinds_run_item_by_item_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 0, others={g: [f"{g}0", f"{g}1"] for g in "abcd"})
    (tmp_path / "host_vars").mkdir()
    for name in ("c0", "c1", "d0", "d1"):  # inventory variables beside the playbook, for both tools
        (tmp_path / "host_vars" / f"{name}.yml").write_text(f"host_word: {name}\nhost_words: [p, q]\n")
    playbook = playbook_file(tmp_path, PLAYBOOK)
    for name, text in (("mixed.yml", MIXED), ("failing.yml", FAILING), ("once_first.yml", ONCE_FIRST),
                       ("local_only.yml", LOCAL_ONLY), ("words.yml", "file_words: [[f1, f2], f3]\n")):
        (tmp_path / name).write_text(text)
    code, doc = fleet.rustle(capsys, playbook, "-e", "extra_word=E")
    acode, arecaps = fleet.ansible(playbook, "-f", "1", "-e", "extra_word=E")
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert (code, acode) == (1, 2)
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name in fleet.every:
        assert recap_counts(by_name[name]["recap"]) == recap_counts(arecaps.get(name, {})), name
    assert files["a0"]["order.log"] == "host-x\nlocal-x-a0\nhost-y\nlocal-y-a0\nend\n"
    assert files["a1"]["after-y.txt"] == "local-y-a1once-y-a0\n"
    assert files["b1"]["order.log"] == "host-1\nlocal-1\nhost-3\n"
    assert files["b0"]["order.log"] == "host-1\nlocal-1\nhost-3\nlocal-3\nend\n"
    assert files["c1"]["order.log"] == "once-0-c0 0 E c1\nonce-1-c0 1 E c1\n"
    assert files["d0"]["order.log"] == "".join(f"host-{w}\nlocal-{w}\n" for w in ("f1", "f2", "f3", "p", "q"))
    # a: each item's host, controller and run_once phases, then the end: the hosts' round trips
    # are their own phases (a run_once one only for the host that runs it)
    trips = {n: h["round_trips"] for n, h in by_name.items()}
    assert trips["a1"] < trips["a0"], trips
