"""Modules and constructs the runner took on after benchmarks/lowering.py counted what stops
whole artifacts (issue 16): each playbook runs through --format pyz and --format native on
localhost, and both must leave the same files, recaps, journals and registered results (the
registered results written with ``{{ result }}``, so in Python's ``str()`` with its key order).
Random names (tempfile's) are masked."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .test_native_runs import cli, files, journal, local_inventory

# setup_remote_tmp_dir's idiom (ansible-core's integration targets use it): setup only when no
# fact was gathered, the tasks file chosen by first_found over a fact, a tempfile directory
# whose handler removes it
PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
    files:
      - "{{ ansible_os_family | lower }}.yml"
      - "default.yml"
  tasks:
    - name: make sure we have the facts
      setup:
        gather_subset: distribution
      when: ansible_facts == {}
      register: gathered
    - include_tasks: "{{ lookup('first_found', files)}}"
    - name: chosen by a fact in its name
      include_tasks: "by-{{ ansible_system | lower }}.yml"
    - name: a directory that does not exist
      tempfile:
        path: "{{ root }}/missing/dir"
      register: missing
      ignore_errors: true
    - name: a prefix that is a path
      tempfile:
        prefix: a/b
        path: "{{ root }}"
      register: badprefix
      ignore_errors: true
    - name: a file in root
      tempfile:
        path: "{{ root }}"
        prefix: f.
        suffix: .txt
      register: made_file
    - name: a template whose dest is decided on the host
      template:
        src: t.j2
        dest: "{{ made_file.path }}.rendered"
    - name: a link whose target is decided on the host
      file:
        src: "{{ remote_tmp }}/note.txt"
        path: "{{ root }}/link-to-note"
        state: link
    - name: filters and tests over what the host made
      assert:
        that:
          - made_dir.path | basename | split('.') | first == 'ansible'
          - made_dir.path | basename | split('.', 1) | last | length == 13
          - made_dir.path is contains('.test')
          - made_dir.path.startswith(root) and made_dir.path.endswith('.test')
          - not made_file.path.endswith('.test')
    - name: a method over a value that is not text fails as in Python
      assert:
        that:
          - made_file.size.startswith('0')
      register: not_text
      ignore_errors: true
    - name: what was registered
      copy:
        content: "{{ gathered }}\\n{{ made_dir }}\\n{{ missing }}\\n{{ badprefix }}\\n{{ made_file }}\\n{{ remote_tmp }}\\n"
        dest: "{{ root }}/results.txt"
  handlers:
    - name: delete temporary directory
      file:
        path: "{{ remote_tmp }}"
        state: absent
"""

DEFAULT = """
- name: create temporary directory
  tempfile:
    state: directory
    suffix: .test
  environment:
    TMPDIR: "{{ root }}/tmp"
  register: made_dir
  notify:
    - delete temporary directory
- name: record temporary directory
  set_fact:
    remote_tmp: "{{ made_dir.path }}"
- name: a file in it
  copy:
    content: "in the temporary directory\\n"
    dest: "{{ remote_tmp }}/note.txt"
"""

OTHER = """
- name: never chosen here
  copy:
    content: "{{ ansible_os_family }}\\n"
    dest: "{{ root }}/other.txt"
"""

BY_SYSTEM = """
- name: the system's own file
  copy:
    content: "chosen by the system's name\\n"
    dest: "{{ root }}/system.txt"
"""

CHECK_PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
  tasks:
    - name: not in check mode
      tempfile:
        state: directory
        path: "{{ root }}"
      register: checked
    - name: what was registered
      copy:
        content: "{{ checked }}\\n"
        dest: "{{ root }}/checked.txt"
      check_mode: false
"""

_RANDOM = re.compile(r"((?:ansible|f)\.)[a-z0-9_]{8}")


def masked(value: Any, pattern: re.Pattern[str] = _RANDOM, repl: str = r"\1XXXXXXXX") -> Any:
    """``value`` (text, bytes as text, lists, tuples, dicts) with what ``pattern`` matches replaced."""
    if isinstance(value, str):
        return pattern.sub(repl, value)
    if isinstance(value, bytes):
        return masked(value.decode(), pattern, repl)
    if isinstance(value, (list, tuple)):
        return type(value)(masked(v, pattern, repl) for v in value)
    if isinstance(value, dict):
        return {masked(k, pattern, repl): masked(v, pattern, repl) for k, v in value.items()}
    return value


def pyz_and_native(tmp_path: Path, capsys: pytest.CaptureFixture[str], playbook: str, *flags: str,
                   beside: dict[str, str] | None = None, dirs: tuple[str, ...] = (),
                   masks: tuple[tuple[re.Pattern[str], str], ...] = ((_RANDOM, r"\1XXXXXXXX"),),
                   check: Callable[[str, Path], None] | None = None) -> tuple[Any, ...]:
    """``playbook`` (its ROOT: a directory of its own per format, with ``dirs`` made in it) run
    on localhost by --format pyz and by --format native, with the files ``beside`` it (name ->
    text) and ``-v`` and ``flags``; ``check(fmt, root)`` looks at each format's root right
    after its run. Both must leave the same recap, files and journal once each of ``masks``
    (pattern, replacement) and then the format's own directory (written WORK) are masked;
    compared a file, a line of results.txt and an event at a time, for a readable failure.
    Returns the native run's (recap, files, journal)."""
    outcomes = {}
    for fmt in ("pyz", "native"):
        work = tmp_path / fmt
        root = work / "root"
        root.mkdir(parents=True)
        for name in dirs:
            (root / name).mkdir()
        book = work / "site.yml"
        book.write_text(playbook.replace("ROOT", str(root)))
        for name, text in (beside or {}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        remote = work / "remote"
        inv = local_inventory(work / "inv.ini", remote)
        code, doc, err = cli(capsys, str(book), "-i", str(inv), "--run", "--output", "json", "--format", fmt,
                             "-v", *flags)
        assert code == 0, err
        assert ("native: rustle-runner for" in err) == (fmt == "native"), err  # native ran natively
        if check is not None:
            check(fmt, root)
        host = doc["hosts"][0]
        recap = {k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}
        outcome = (recap, files(root), journal(remote, root))
        for pattern, repl in (*masks, (re.compile(re.escape(str(work))), "WORK")):
            outcome = masked(outcome, pattern, repl)
        outcomes[fmt] = outcome
    (recap, tree, events), (pyz_recap, pyz_tree, pyz_events) = outcomes["native"], outcomes["pyz"]
    lines, pyz_lines = (str((t.get("results.txt") or ["", "", ""])[2]).splitlines() for t in (tree, pyz_tree))
    for i, (line, pyz_line) in enumerate(zip(lines, pyz_lines, strict=False)):  # one result at a time
        assert (i, line) == (i, pyz_line)
    for name in sorted(set(tree) | set(pyz_tree)):  # one file at a time
        assert (name, tree.get(name)) == (name, pyz_tree.get(name))
    for event, pyz_event in zip(events, pyz_events, strict=False):
        assert event == pyz_event
    assert (recap, len(events)) == (pyz_recap, len(pyz_events))
    return outcomes["native"]


def test_setup_remote_tmp_dir_idiom_fact_chosen_includes_and_tempfile_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """setup skipped by ``ansible_facts == {}``, an include chosen by first_found over a fact
    and one named by a fact, tempfile (a directory under TMPDIR, a file, its two failures) and
    the handler that removes the directory: the same in both formats."""
    extra = {"t.j2": "{{ root | length > 0 }} rendered\n", "default.yml": DEFAULT, "redhat.yml": OTHER, "by-linux.yml": BY_SYSTEM, "by-darwin.yml": OTHER}
    recap, tree, events = pyz_and_native(tmp_path, capsys, PLAYBOOK, beside=extra, dirs=("tmp",))
    assert recap["failed"] == 0 and recap["ignored"] == 3 and recap["skipped"] == 1
    assert tree["system.txt"][2] == "chosen by the system's name\n"  # bytes come back text from masked
    assert "other.txt" not in tree
    assert [k for k in tree if k.startswith("tmp/")] == []  # the handler removed the directory
    assert tree["f.XXXXXXXX.txt.rendered"][2] == "True rendered\n"
    assert tree["link-to-note"] == ("link", "ROOT/tmp/ansible.XXXXXXXX.test/note.txt")
    results = tree["results.txt"][2].splitlines()
    assert results[0] == ("{'changed': False, 'skipped': True, 'skip_reason': 'Conditional result was False', "
                          "'false_condition': 'ansible_facts == {}'}")
    assert results[1].startswith("{'changed': True, 'path': 'ROOT/tmp/ansible.XXXXXXXX.test', 'uid': ")
    assert "'mode': '0700', 'state': 'directory'" in results[1]
    assert "No such file or directory: 'ROOT/missing/dir/ansible.XXXXXXXX'" in results[2]
    assert "prefix must be a valid file name component, got 'a/b'" in results[3]
    assert results[4].startswith("{'changed': True, 'path': 'ROOT/f.XXXXXXXX.txt'")
    assert results[5] == "ROOT/tmp/ansible.XXXXXXXX.test"
    statuses = [(e[1], e[2]) for e in events]
    assert [e[3] for e in events if e[1] == "a method over a value that is not text fails as in Python"] == [
        "Task failed: Error while evaluating conditional: object of type 'int' has no attribute 'startswith'"]
    assert ("make sure we have the facts", "skipped") in statuses
    assert ("delete temporary directory", "changed") in statuses


def test_tempfile_is_skipped_in_check_mode_in_both_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    recap, tree, _ = pyz_and_native(tmp_path, capsys, CHECK_PLAYBOOK, "--check", dirs=("tmp",))
    assert recap["skipped"] == 1
    assert [k for k in tree if k not in ("tmp", "checked.txt")] == []
    assert tree["checked.txt"][2].startswith('{"skipped": true, "msg": "remote module (tempfile) does not support')


# apt-get stands in for itself here: the task's PATH finds this one first, which records its
# arguments (and answers a simulated autoremove with one removal) and changes nothing
APT_PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: an apt-get that records its arguments
      copy:
        dest: ROOT/bin/apt-get
        mode: "0755"
        content: |
          #!/bin/sh
          printf '%s\\n' "$*" >> ROOT/apt-get.args
          case "$*" in "-s autoremove") echo "Remv fake [1]";; esac
    - name: install
      apt: {name: PKG}
      environment: {PATH: "ROOT/bin:{{ lookup('env', 'PATH') }}"}
      register: installed
    - name: autoremove, purged
      apt: {autoremove: true, purge: true}
      environment: {PATH: "ROOT/bin:{{ lookup('env', 'PATH') }}"}
      register: removed
    - copy: {dest: ROOT/changed.txt, content: "{{ [installed.changed, removed.changed] }}"}
"""


def test_apt_waits_for_a_held_dpkg_lock_as_pyz_and_ansible_core_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """The runner's apt-get calls carry ``-o DPkg::Lock::Timeout=60`` (apt waits up to a minute
    for a dpkg lock another process holds; without it apt fails at once), and autoremove its
    dpkg options and ``--purge``: the same arguments as pyz's apt, which
    runtime/test_apt_options_ansible.py holds to ansible-core's."""
    import shutil
    import subprocess

    if shutil.which("dpkg-query") is None or shutil.which("apt-get") is None:
        pytest.skip("needs apt and dpkg (a Debian-family host)")
    absent = None
    for name in ("cowsay", "sl", "fortune-mod", "hello"):
        policy = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True).stdout
        if "Installed: (none)" in policy and "Candidate: (none)" not in policy:
            absent = name
            break
    if absent is None:
        pytest.skip("no known-but-absent package in the apt cache")
    recorded: dict[str, str] = {}

    def check(fmt: str, root: Path) -> None:
        recorded[fmt] = (root / "apt-get.args").read_text()

    _, tree, _ = pyz_and_native(tmp_path, capsys, APT_PLAYBOOK.replace("PKG", absent), dirs=("bin",), check=check)
    assert tree["changed.txt"][2] == "[true, true]"
    install, simulated, autoremove = recorded["native"].splitlines()
    assert install.endswith(f"-o DPkg::Lock::Timeout=60 install {absent}"), install
    assert simulated == "-s autoremove"
    assert autoremove.startswith("-y -q -o Dpkg::Options::=--force-confdef") and \
        autoremove.endswith("-o DPkg::Lock::Timeout=60 --purge autoremove"), autoremove
    assert recorded["native"] == recorded["pyz"]
