"""What the lowering learnt from benchmarks/lowering.py's measurement, each run through both
formats: the same files, recaps and task results."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import make_plan
from .test_native_runs import cli, files


def test_loop_control_index_var_and_extended_lower_and_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    tasks = [
        {"name": "numbered", "module": "copy", "loop": ["a", "b", "c"],
         "loop_control": {"index_var": "idx", "extended": True, "label": "{{ idx }}:{{ item }}"},
         "args": {"content": "{{ idx }} {{ ansible_loop.index }}/{{ ansible_loop.length }} "
                             "{{ ansible_loop.first }} {{ ansible_loop.last }} "
                             "{{ ansible_loop.previtem | default('-') }}\n",
                  "dest": "{{ root }}/{{ item }}.txt"},
         "register": "made", "conditions": [{"When": {"expression": "idx != 1"}}]},
        {"name": "check", "module": "assert", "args": {"that": [
            "made.results | length == 3", "made.results[0].idx == 0", "made.results[2].idx == 2",
            "made.results[1] is skipped", "made.results[0].ansible_index_var == 'idx'"]}},
    ]
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        plan = make_plan(tmp_path / fmt, tasks, play_vars={"root": str(root)})
        code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "--format", fmt, "-v")
        assert code == 0, err
        host = doc["hosts"][0]
        outcomes[fmt] = ({k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped")}, files(root))
    assert outcomes["native"] == outcomes["pyz"]
    assert (tmp_path / "native" / "root" / "c.txt").read_text() == "2 3/3 False True b\n"
    assert not (tmp_path / "native" / "root" / "b.txt").exists()


BLOCKS_PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
  tasks:
    - name: remember a word
      set_fact:
        word: hello
        loud: "yes"
    - name: ask the shell
      command: echo {{ word }}
      register: said
      changed_when: false
    - name: keep what it said
      set_fact:
        heard: "{{ said.stdout }}"
        heard_lines: "{{ said.stdout_lines | length }}"
    - name: a block that fails and is rescued
      block:
        - name: write before the failure
          copy:
            content: "{{ heard }} {{ loud }}\\n"
            dest: "{{ root }}/before.txt"
        - name: fail here
          command: sh -c 'exit 4'
        - name: never reached
          copy:
            content: never
            dest: "{{ root }}/never.txt"
      rescue:
        - name: note the failure
          copy:
            content: "{{ ansible_failed_task.name }} {{ ansible_failed_result.rc }}\\n"
            dest: "{{ root }}/rescued.txt"
        - name: mark it
          set_fact:
            rescued_once: true
      always:
        - name: always runs
          file:
            path: "{{ root }}/always"
            state: directory
    - name: included when the shell said hello
      include_tasks: inc.yml
      when: heard == 'hello'
    - name: skipped include
      include_tasks: inc.yml
      when: heard != 'hello'
    - import_tasks: imported.yml
    - name: a block without rescue, skipped by its condition
      when: rescued_once is not defined
      block:
        - name: not run
          copy:
            content: x
            dest: "{{ root }}/skipped.txt"
    - name: a directory named on the host
      set_fact:
        made: "{{ root }}/made-{{ said.stdout }}"
    - name: make it
      file:
        path: "{{ made }}"
        state: directory
    - name: a file in it
      copy:
        content: "a\\n"
        dest: "{{ made }}/c.txt"
    - name: a line in it
      lineinfile:
        path: "{{ made }}/c.txt"
        line: "{{ heard }}"
    - name: look at it
      stat:
        path: "{{ made }}/c.txt"
      register: st
    - name: check what the run set
      assert:
        that:
          - heard == 'hello'
          - loud
          - rescued_once
          - from_include == 'inc hello'
          - heard_lines | int == 1
          - st.stat.exists and st.stat.size == 8
"""

INCLUDED = """
- name: inside the include
  copy:
    content: "included {{ heard }}\\n"
    dest: "{{ root }}/included.txt"
- name: set inside the include
  set_fact:
    from_include: "inc {{ heard }}"
"""

IMPORTED = """
- name: imported task over a registered result
  copy:
    content: "rc={{ said.rc }}\\n"
    dest: "{{ root }}/imported.txt"
  when: said is succeeded
"""


def test_blocks_rescue_always_includes_and_set_fact_lower_and_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """A playbook of blocks (rescue, always), include_tasks (run and skipped), import_tasks,
    set_fact (static, over a registered result, inside a rescue and an include) and conditions
    over them: --format native runs it, with the same files, recap (rescued counted) and task
    results as pyz."""
    from .test_native_runs import journal, local_inventory

    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        book = tmp_path / fmt / "site.yml"
        book.write_text(BLOCKS_PLAYBOOK.replace("ROOT", str(root)))
        (tmp_path / fmt / "inc.yml").write_text(INCLUDED)
        (tmp_path / fmt / "imported.yml").write_text(IMPORTED)
        remote = tmp_path / fmt / "remote"
        inv = local_inventory(tmp_path / fmt / "inv.ini", remote)
        code, doc, err = cli(capsys, str(book), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        host = doc["hosts"][0]
        recap = {k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}
        outcomes[fmt] = (recap, files(root), journal(remote, tmp_path / fmt))
    assert outcomes["native"] == outcomes["pyz"]
    recap, tree, events = outcomes["native"]
    assert recap["rescued"] == 1 and recap["failed"] == 0
    root = tmp_path / "native" / "root"
    assert (root / "before.txt").read_text() == "hello True\n"
    assert (root / "rescued.txt").read_text() == "fail here 4\n"
    assert (root / "included.txt").read_text() == "included hello\n"
    assert (root / "imported.txt").read_text() == "rc=0\n"
    assert (root / "made-hello" / "c.txt").read_text() == "a\nhello\n"
    assert not (root / "never.txt").exists() and not (root / "skipped.txt").exists()
    assert [e[2] for e in events if e[1] == "included when the shell said hello"] == ["ok"]
    assert [e[2] for e in events if e[1] == "skipped include"] == ["skipped"]
    art = next((tmp_path / "native" / "remote" / "artifacts").iterdir())
    assert art.read_bytes().startswith(b'{"format": "rustle-native"')
