"""Cross-host semantics inside blocks (docs/phases.md "Blocks cut into phases"): run_once and
any_errors_fatal inside a block with rescue/always, hostvars read in a block of what an earlier
task of it set, and the play's live hosts after a failure,
in plays of several hosts over the shared sshd fleet, against ansible-playbook (one fork: its
order is the hosts'). One playbook, one run of each tool: each play has hosts of its own, so a
failure in one leaves the others alone; the play that stops the run comes last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

PLAYBOOK = """\
# run_once inside a block with rescue/always (ansible-core's issue71306.yml): a0 fails before
# it and goes to the rescue; a1, the first host still at the run_once task, runs it, and what
# it registers reaches both hosts (a0's always reads it)
- hosts: a
  gather_facts: false
  tasks:
    - block:
        - block:
            - name: a0 fails
              fail: {msg: a0 stops here}
              when: inventory_hostname == 'a0'
            - name: once
              command: echo {{ inventory_hostname }}
              register: once
              run_once: true
            - copy: {content: "after\\n", dest: "{{ root }}/after.txt"}
          rescue:
            - copy: {content: "{{ ansible_failed_task.name }} {{ ansible_failed_result.msg }}\\n",
                     dest: "{{ root }}/rescued.txt"}
      always:
        - copy: {content: "{{ once.stdout | default('none') }}\\n", dest: "{{ root }}/always.txt"}

# a run_once task that fails inside a block: the host that ran it goes to its rescue, the others
# fail (ansible-core marks them failed twice, which fails them out of the rescue too)
# (the run_once rescue task runs on b0, the one host left; so does the run_once handler)
- hosts: b
  gather_facts: false
  tasks:
    - block:
        - name: on every host
          copy: {content: "x\\n", dest: "{{ root }}/every.txt"}
          notify: once handler
        - name: once fails
          command: /bin/false
          register: failing
          run_once: true
        - copy: {content: "never\\n", dest: "{{ root }}/never.txt"}
      rescue:
        - name: rescued
          copy: {content: "{{ failing.rc }}\\n", dest: "{{ root }}/rescued.txt"}
          run_once: true
  handlers:
    - name: once handler
      copy: {content: "handled\\n", dest: "{{ root }}/handler.txt"}
      run_once: true

# any_errors_fatal inside a block (ansible-core's 80981.yml): c0 fails, c1 goes to its rescue
# right after that task, not through the rest of the block
- hosts: c
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - block:
        - fail: {msg: c0 stops here}
          when: inventory_hostname == 'c0'
        - copy: {content: "should not happen\\n", dest: "{{ root }}/never.txt"}
      rescue:
        - copy: {content: "rescued\\n", dest: "{{ root }}/rescued.txt"}
    - copy: {content: "recovered\\n", dest: "{{ root }}/recovered.txt"}

# the play's live hosts leave out a host that failed (ansible-core's 78612.yml)
- hosts: d
  gather_facts: false
  tasks:
    - command: /bin/false
      when: inventory_hostname == 'd0'
    - name: a template whose file reads them (templates/live.j2) starts the phase
      template: {src: live.j2, dest: "{{ root }}/live-template.txt"}
    - copy:
        content: "{{ ansible_play_hosts | join(',') }} {{ ansible_play_batch | join(',') }} {{ play_hosts | join(',') }} {{ ansible_play_hosts_all | join(',') }}\\n"
        dest: "{{ root }}/live.txt"

# a task delegated to the controller inside a block: f0 fails before it and goes to its rescue;
# it fails for f1 on the controller, and f1's rescue runs on f1 with its result
- hosts: f
  gather_facts: false
  tasks:
    - block:
        - fail: {msg: f0 stops here}
          when: inventory_hostname == 'f0'
        - name: on the controller
          command: sh -c 'exit 3'
          delegate_to: localhost
        - copy: {content: "never\\n", dest: "{{ root }}/never.txt"}
      rescue:
        - copy: {content: "{{ ansible_failed_result.rc | default('none') }}\\n", dest: "{{ root }}/rescued.txt"}

# a handler reading the play's live hosts after a task that may fail: g0 failed, g1's handler
# leaves it out (the handlers run in a phase of their own)
- hosts: g
  gather_facts: false
  tasks:
    - command: /bin/false
      when: inventory_hostname == 'g0'
    - copy: {content: "notify\\n", dest: "{{ root }}/notify.txt"}
      notify: live hosts
  handlers:
    - name: live hosts
      copy: {content: "{{ ansible_play_hosts | join(',') }}\\n", dest: "{{ root }}/handler.txt"}

# the same at a meta: flush_handlers inside the play: j0 failed, j1's handler leaves it out (the
# flush starts a phase)
- hosts: j
  gather_facts: false
  tasks:
    - command: /bin/false
      when: inventory_hostname == 'j0'
    - copy: {content: "notify\\n", dest: "{{ root }}/notify.txt"}
      notify: live hosts at the flush
    - meta: flush_handlers
    - debug: {msg: after the flush}
  handlers:
    - name: live hosts at the flush
      copy: {content: "{{ ansible_play_hosts | join(',') }}\\n", dest: "{{ root }}/handler.txt"}

# a template that reads the live hosts in a template it includes (templates/outer.j2)
- hosts: k
  gather_facts: false
  tasks:
    - command: /bin/false
      when: inventory_hostname == 'k0'
    - template: {src: outer.j2, dest: "{{ root }}/live-include.txt"}

# an include of a file known when compiling, whose tasks run differently (mixed.yml: a task on
# every host, a run_once one, a task reading its result): cut inside, as a block is
- hosts: h
  gather_facts: false
  tasks:
    - include_tasks: mixed.yml

# includes with a condition whose tasks run differently: cut inside, the condition decided once,
# in the include's first phase, as ansible-core decides it (mixed_when.yml's first task makes it
# false; l1 passes the second include by in each of its phases; l1 takes no part in the third's
# first phase, run_once on l0, and decides it in the next)
- hosts: l
  gather_facts: false
  tasks:
    - include_tasks: mixed_when.yml
      when: flag is not defined
    - include_tasks: mixed_skip.yml
      when: inventory_hostname == 'l0'
    - include_tasks: mixed_once_first.yml
      when: flag == 'set'

# a block's always reading (hostvars) what another host's rescue set (ansible-core's handlers
# test_flush_in_rescue_always.yml): the block is cut before the read, so i1 sees i0's value
- hosts: i
  gather_facts: false
  tasks:
    - block:
        - fail: {msg: i0 stops here}
          when: inventory_hostname == 'i0'
      rescue:
        - set_fact: {was_in_rescue: true}
      always:
        - copy: {content: "{{ hostvars['i0']['was_in_rescue'] | default(false) }}\\n", dest: "{{ root }}/always.txt"}

# any_errors_fatal in nested blocks (ansible-core's 72781.yml): e0's rescue fails, e1 goes to
# the same rescue and fails too; nothing after runs, no later play either
- hosts: e
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - block:
        - block:
            - fail: {msg: e0 stops here}
              when: inventory_hostname == 'e0'
          rescue:
            - copy: {content: "rescue\\n", dest: "{{ root }}/rescue.txt"}
            - fail: {msg: the rescue fails}
        - copy: {content: "should not happen\\n", dest: "{{ root }}/never.txt"}
- hosts: all
  gather_facts: false
  tasks:
    - copy: {content: "later\\n", dest: "{{ root }}/later.txt"}
"""


MIXED = """\
- copy: {content: "{{ inventory_hostname }}\\n", dest: "{{ root }}/first.txt"}
- command: echo once-{{ inventory_hostname }}
  run_once: true
  register: once
- copy: {content: "{{ once.stdout }}\\n", dest: "{{ root }}/once.txt"}
"""

MIXED_WHEN = """\
- set_fact: {flag: set}
- command: echo once-{{ inventory_hostname }}
  run_once: true
  register: once
- copy: {content: "{{ once.stdout }} {{ flag }}\\n", dest: "{{ root }}/once.txt"}
"""

MIXED_ONCE_FIRST = """\
- command: echo once
  run_once: true
- copy: {content: "{{ flag }}\\n", dest: "{{ root }}/after-once.txt"}
"""

MIXED_SKIP = """\
- copy: {content: "first\\n", dest: "{{ root }}/skip-first.txt"}
- command: echo once
  run_once: true
- copy: {content: "last\\n", dest: "{{ root }}/skip-last.txt"}
"""


def test_run_once_any_errors_fatal_and_live_hosts_inside_blocks_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 0, others={g: [f"{g}0", f"{g}1"] for g in "abcdefghijkl"})
    playbook = playbook_file(tmp_path, PLAYBOOK)
    (tmp_path / "mixed.yml").write_text(MIXED)
    (tmp_path / "mixed_when.yml").write_text(MIXED_WHEN)
    (tmp_path / "mixed_skip.yml").write_text(MIXED_SKIP)
    (tmp_path / "mixed_once_first.yml").write_text(MIXED_ONCE_FIRST)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "live.j2").write_text("{{ ansible_play_hosts | join(',') }}\n")
    (tmp_path / "templates" / "outer.j2").write_text("{% include 'live.j2' %}")
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert (code, acode) == (1, 2)
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name in fleet.every:
        assert recap_counts(by_name[name]["recap"]) == recap_counts(arecaps.get(name, {})), name  # b1: nothing counted
    # run_once: a1 ran it (a0 was in the rescue), and both registered its result
    assert files["a0"] == {"rescued.txt": "a0 fails a0 stops here\n", "always.txt": "a1\n"}
    assert files["a1"] == {"after.txt": "after\n", "always.txt": "a1\n"}
    # a failed run_once task: b0 ran it and is rescued; ansible-core marks b1 failed twice (the
    # run_once failure, then any_errors_fatal's, which run_once implies): no rescue for it
    assert files["b0"] == {"every.txt": "x\n", "rescued.txt": "1", "handler.txt": "handled\n"}
    assert files["b1"] == {"every.txt": "x\n"}
    # any_errors_fatal: c1 goes to its rescue right after c0 failed
    assert files["c0"] == files["c1"] == {"rescued.txt": "rescued\n", "recovered.txt": "recovered\n"}
    assert files["d1"] == {"live.txt": "d1 d1 d1 d0,d1\n", "live-template.txt": "d1\n"} and files["d0"] == {}
    assert files["e0"] == files["e1"] == {"rescue.txt": "rescue\n"}
    assert files["f0"] == {"rescued.txt": "none\n"} and files["f1"] == {"rescued.txt": "3"}
    assert files["g0"] == {} and files["g1"] == {"notify.txt": "notify\n", "handler.txt": "g1\n"}
    assert files["h1"] == {"first.txt": "h1\n", "once.txt": "once-h0\n"}
    # the conditions decided once: each host ran all of the first include, only l0 the second
    assert files["l0"] == {"once.txt": "once-l0 set\n", "skip-first.txt": "first\n", "skip-last.txt": "last\n",
                           "after-once.txt": "set\n"}
    assert files["l1"] == {"once.txt": "once-l0 set\n", "after-once.txt": "set\n"}
    assert files["i0"] == files["i1"] == {"always.txt": "True"}  # a lone expression: no newline (both tools)
    assert files["k0"] == {} and files["k1"] == {"live-include.txt": "k1"}
    assert files["j0"] == {} and files["j1"] == {"notify.txt": "notify\n", "handler.txt": "j1\n"}
    assert doc["rollout"]["state"] == "stopped" and "any_errors_fatal" in doc["rollout"]["reason"], doc["rollout"]
    trips = {n: h["round_trips"] for n, h in by_name.items()}
    # a: [a0 fails] [once: a0 passes it by, a1 runs it] [after, rescue, always]; b: [every]
    # [once fails] [never] [rescued, once] [the handler, once]
    # c: [fail] [never] [rescue] [recovered] (under any_errors_fatal every task that may fail
    # ends its phase)
    # d: [false] [live-template.txt] [live.txt]: each read of the live hosts after a task that
    # may fail (the template's in its file, after /bin/false; the copy's, after the template)
    assert (trips["a0"], trips["a1"], trips["b0"], trips["b1"]) == (3, 3, 5, 2), trips
    assert (trips["c0"], trips["c1"], trips["d0"], trips["d1"]) == (4, 4, 1, 3), trips
    # g: [false, notify.txt] [the handler, with the live hosts]
    assert (trips["g0"], trips["g1"]) == (1, 2), trips
    # h: [first.txt] [once, on h0] [once.txt]
    assert (trips["h0"], trips["h1"]) == (3, 2), trips
    # i: [fail, rescue] [always, after i0's value was set]; j: [false, notify.txt] [the flush,
    # with the live hosts, and the debug]
    assert (trips["j0"], trips["j1"]) == (1, 2), trips
    # k: [false] [the template, whose include reads the live hosts]
    assert (trips["k0"], trips["k1"]) == (1, 2), trips
    assert (trips["i0"], trips["i1"]) == (2, 2), trips
