"""What the lowering learnt from benchmarks/lowering.py's measurement, each run through both
formats: the same files, recaps and task results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..conftest import make_plan
from .test_native_runs import cli, files, journal, local_inventory


def run_book(capsys: pytest.CaptureFixture[str], book: Path, root: Path, fmt: str, *extra: str) -> tuple[tuple[Any, ...], str]:
    """``book`` run with ``--format fmt`` on localhost (remote dir beside it): its recap, the files
    under ``root`` and its task results (what must match between formats), and its stderr."""
    work = book.parent
    remote = work / "remote"
    inv = local_inventory(work / "inv.ini", remote)
    code, doc, err = cli(capsys, str(book), "-i", str(inv), "--run", "--output", "json", "--format", fmt, *extra)
    assert code == 0, err
    host = doc["hosts"][0]
    recap = {k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}
    return (recap, files(root), journal(remote, work)), err


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
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        book = tmp_path / fmt / "site.yml"
        book.write_text(BLOCKS_PLAYBOOK.replace("ROOT", str(root)))
        (tmp_path / fmt / "inc.yml").write_text(INCLUDED)
        (tmp_path / fmt / "imported.yml").write_text(IMPORTED)
        outcomes[fmt], _ = run_book(capsys, book, root, fmt)
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


ROLE_HANDLERS_PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
  handlers:
    - name: play handler
      listen: restart things
      shell: echo play >> {{ root }}/handlers.log
  tasks:
    - name: notify before the include ran
      command: "true"
      notify: restart things
    - name: ask the shell
      command: echo hi
      register: said
      changed_when: false
    - name: an include whose condition fails, ignored
      include_role:
        name: r
      when: said.nothing_here == 'x'
      ignore_errors: true
      register: inc
    - name: what it registered
      copy:
        content: "{{ inc.failed }} {{ inc.msg }}\\n"
        dest: "{{ root }}/inc.txt"
    - name: the include runs
      include_role:
        name: r
    - name: notify after the include ran
      command: "true"
      notify: restart things
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
  handlers:
    - name: second play handler
      listen: restart things
      shell: echo play2 >> {{ root }}/handlers.log
  tasks:
    - name: an include that does not run
      include_role:
        name: r
      when: said.stdout == 'bye'
    - name: notify in the second play
      command: "true"
      notify: restart things
"""


def test_include_role_handlers_and_ignore_errors_on_an_include_lower_and_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """An include_role's handlers answer a notify only once the include ran on the host (plan key
    ``included_by``), an include's ignore_errors ignores the failure of its own condition
    (registered as pyz registers it), and a role's handler that includes a file that cannot be
    loaded here (setup_remote_tmp_dir's windows cleanup) is no obstacle when no notify reaches it:
    all lower now, and --format auto (the default) runs such a playbook natively, with pyz's
    files, recap and task results."""
    outcomes = {}
    for fmt in ("pyz", "auto"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        book = tmp_path / fmt / "site.yml"
        book.write_text(ROLE_HANDLERS_PLAYBOOK.replace("ROOT", str(root)))
        role = tmp_path / fmt / "roles" / "r"
        (role / "tasks").mkdir(parents=True)
        (role / "handlers").mkdir()
        (role / "tasks" / "main.yml").write_text("- name: in the role\n  debug:\n    msg: role ran\n")
        (role / "handlers" / "main.yml").write_text(
            "- name: role handler\n  listen: restart things\n  shell: echo role >> {{ root }}/handlers.log\n"
            "- name: windows cleanup\n  include_tasks: windows.yml\n")  # no notify reaches it
        (role / "tasks" / "windows.yml").write_text("- win_file:\n    path: C:\\x\n    state: absent\n")
        outcomes[fmt], err = run_book(capsys, book, root, fmt, "-v")
        if fmt == "auto":
            assert "format: native for localhost" in err, err
    assert outcomes["auto"] == outcomes["pyz"]
    recap, _, events = outcomes["auto"]
    assert recap["ignored"] == 1 and recap["failed"] == 0
    root = tmp_path / "auto" / "root"
    assert (root / "handlers.log").read_text() == "play\nrole\nplay2\n"
    assert (root / "inc.txt").read_text().startswith("True Task failed: ")
    assert [e[2] for e in events if e[1] == "an include whose condition fails, ignored"] == ["failed"]


@pytest.mark.parametrize(("handler", "why"), [
    # once the include ran, its handler of the same name is the one a notify finds (the last
    # loaded wins): which one runs is decided on the host
    ("- name: restart\n  debug: {}\n", "depends on which include_role tasks ran"),
    # a notified handler that includes a file that cannot be loaded: the runner does not fail there
    ("- name: restart\n  include_tasks: windows.yml\n", "could not be loaded"),
])
def test_include_role_handlers_the_runner_cannot_follow_are_left_to_pyz(tmp_path: Path, handler: str,
                                                                         why: str) -> None:
    """The lowering refuses them, naming why (--format auto then picks pyz)."""
    from rustle_deploy.compiler.native import NativeUnsupported

    from .conftest import lower

    book = tmp_path / "site.yml"
    book.write_text("- hosts: all\n  gather_facts: false\n  handlers:\n    - name: restart\n      debug: {}\n"
                    "  tasks:\n    - include_role:\n        name: r\n"
                    "    - command: 'true'\n      notify: restart\n")
    for sub, text in (("tasks", "- debug: {}\n"), ("handlers", handler)):
        (tmp_path / "roles" / "r" / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / "roles" / "r" / sub / "main.yml").write_text(text)
    (tmp_path / "roles" / "r" / "tasks" / "windows.yml").write_text("- win_file:\n    path: x\n")
    inv = tmp_path / "inv.ini"
    inv.write_text("localhost ansible_connection=local\n")
    with pytest.raises(NativeUnsupported, match=why):
        lower(book, inv)
