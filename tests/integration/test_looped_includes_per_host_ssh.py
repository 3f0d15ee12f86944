"""Loops over includes whose tasks run differently (docs/phases.md "Loops over includes that mix
kinds") over items the controller knows per host: inventory variables that differ between the
hosts, a condition on the include false for some hosts' items, with_<lookup> forms, a file named
by the item, an include_role, and a loop over an include whose tasks all run on the hosts. ansible-core runs one included file per distinct file and item (with its loop
variables) in the order the hosts' results list them, each for the hosts that have that item: a
host may run its items out of its own order (its IncludedFile.process_include_results). Plays of two or three hosts over the shared sshd
fleet, against ansible-playbook (one fork: its order is the hosts'). One playbook, one run of
each tool: each play has hosts of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

PLAYBOOK = """\
# each host's items from its inventory variables (a1 repeats one): the includes run b, c, a, b
- hosts: a
  gather_facts: false
  tasks:
    - include_tasks: mixed.yml
      loop: "{{ words }}"
    - shell: echo end >> {{ root }}/order.log

# the same written items, the include's condition false for b0's first: b1 runs its second first
- hosts: b
  gather_facts: false
  tasks:
    - include_tasks: local_only.yml
      loop: [x, y]
      when: item != skip
    - shell: echo end >> {{ root }}/order.log

# with_<lookup> forms, a count from the inventory; index_var makes an item's place part of it
- hosts: c
  gather_facts: false
  tasks:
    - include_tasks: local_only.yml
      with_sequence: start=1 end={{ count }}
    - include_tasks: local_only.yml
      with_dict: "{{ pairs }}"
    - include_tasks: local_only.yml
      with_together: [[1, 2], "{{ words }}"]
    - include_tasks: local_only.yml
      loop: "{{ words }}"
      loop_control: {index_var: i}

# the file each item names (d1 repeats one): the includes run one (d0, d1), two (d0, d1), one (d1)
- hosts: d
  gather_facts: false
  tasks:
    - include_tasks: "step_{{ item }}.yml"
      loop: "{{ steps }}"

# a looped include_role (its defaults in each item), loop_var, the condition false for e0's z
- hosts: e
  gather_facts: false
  tasks:
    - include_role: {name: looped}
      loop: "{{ words }}"
      loop_control: {loop_var: w}
      when: w != 'z'

# a loop over an include whose tasks all run on the hosts (one unit): ansible-core's order too
- hosts: f
  gather_facts: false
  tasks:
    - include_tasks: host_only.yml
      loop: "{{ words }}"
"""

HOST_ONLY = """\
- shell: echo host-{{ item }} >> {{ root }}/order.log
"""

ROLE_TASKS = """\
- shell: echo role-{{ w }}-{{ suffix }} >> {{ root }}/order.log
- shell: echo role-local-{{ w }}-{{ inventory_hostname }} >> {{ root }}/order.log
  delegate_to: localhost
- command: echo role-once-{{ w }}-{{ inventory_hostname }}
  run_once: true
  register: once
- shell: echo {{ once.stdout }} >> {{ root }}/order.log
"""

STEP_ONE = """\
- shell: echo one-{{ item }} >> {{ root }}/order.log
- shell: echo one-local-{{ inventory_hostname }} >> {{ root }}/order.log
  delegate_to: localhost
"""

STEP_TWO = """\
- command: echo two-once-{{ inventory_hostname }}
  run_once: true
  register: once
- shell: echo two {{ once.stdout }} >> {{ root }}/order.log
"""

MIXED = """\
- shell: echo host-{{ item }} >> {{ root }}/order.log
- shell: echo local-{{ item }}-{{ inventory_hostname }} | tee -a {{ root }}/order.log
  delegate_to: localhost
  register: local
- command: echo once-{{ item }}-{{ inventory_hostname }}
  run_once: true
  register: once
- shell: echo {{ local.stdout }} {{ once.stdout }} >> {{ root }}/order.log
"""

LOCAL_ONLY = """\
- shell: echo host-{{ item }}{{ i | default('') }} >> {{ root }}/order.log
- shell: echo local-{{ item }}{{ i | default('') }} >> {{ root }}/order.log
  delegate_to: localhost
"""

HOST_VARS = {
    "a0": {"words": ["b", "c"]}, "a1": {"words": ["a", "b", "c", "b"]}, "a2": {"words": ["c", "a"]},
    "b0": {"skip": "x"}, "b1": {"skip": "none"},
    "c0": {"count": 2, "pairs": {"k": 1}, "words": ["p", "q"]},
    "c1": {"count": 3, "pairs": {"k": 1, "m": 2}, "words": ["q", "p"]},
    "d0": {"steps": ["one", "two"]}, "d1": {"steps": ["two", "one", "one"]},
    "e0": {"words": ["m", "z", "n"]}, "e1": {"words": ["n", "m"]},
    "f0": {"words": ["b", "c"]}, "f1": {"words": ["a", "b", "c"]},
}


def test_loops_over_includes_with_items_per_host_run_in_ansible_core_order(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 0, others={"a": ["a0", "a1", "a2"], "b": ["b0", "b1"], "c": ["c0", "c1"],
                                                "d": ["d0", "d1"], "e": ["e0", "e1"],
                                                "f": ["f0", "f1"]})
    (tmp_path / "host_vars").mkdir()
    for name, data in HOST_VARS.items():  # inventory variables beside the playbook, for both tools
        (tmp_path / "host_vars" / f"{name}.yml").write_text(
            "".join(f"{k}: {v!r}\n" if not isinstance(v, str) else f"{k}: {v}\n" for k, v in data.items()))
    playbook = playbook_file(tmp_path, PLAYBOOK)
    for name, text in (("mixed.yml", MIXED), ("local_only.yml", LOCAL_ONLY), ("step_one.yml", STEP_ONE),
                       ("step_two.yml", STEP_TWO), ("roles/looped/tasks/main.yml", ROLE_TASKS),
                       ("roles/looped/defaults/main.yml", "suffix: D\n"),
                       ("host_only.yml", HOST_ONLY)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert (code, acode) == (0, 0)
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name in fleet.every:
        assert recap_counts(by_name[name]["recap"]) == recap_counts(arecaps.get(name, {})), name
    # ansible-core's includes: b (a0, a1), c (a0, a1, a2), a (a1, a2), b (a1): a1 and a2 run
    # their items out of their own order; each run_once task ran on the include's first host
    assert files["a1"]["order.log"] == (
        "host-b\nlocal-b-a1\nlocal-b-a1 once-b-a0\nhost-c\nlocal-c-a1\nlocal-c-a1 once-c-a0\n"
        "host-a\nlocal-a-a1\nlocal-a-a1 once-a-a1\nhost-b\nlocal-b-a1\nlocal-b-a1 once-b-a1\nend\n")
    assert files["a2"]["order.log"].startswith("host-c\n")
    assert files["b1"]["order.log"] == "host-y\nlocal-y\nhost-x\nlocal-x\nend\n"
    assert files["c1"]["order.log"].startswith("".join(f"host-{n}\nlocal-{n}\n" for n in (1, 2, 3)))
    assert files["d1"]["order.log"] == "one-one\none-local-d1\ntwo two-once-d0\none-one\none-local-d1\n"
    assert files["e1"]["order.log"] == ("role-m-D\nrole-local-m-e1\nrole-once-m-e0\n"
                                        "role-n-D\nrole-local-n-e1\nrole-once-n-e0\n")
    assert files["f1"]["order.log"] == "host-b\nhost-c\nhost-a\n"
