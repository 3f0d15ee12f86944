"""blockinfile and replace as runner modules (issue 16): each playbook runs through
--format pyz and --format native on localhost, with --diff, for real and in check mode; both
must leave the same files (backups included, their time-stamped names masked), recaps,
journals (msg and diff) and registered results (written with ``{{ result }}``, so in Python's
``str()`` with its key order)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .test_native_runs import cli, files, journal, local_inventory
from .test_runner_modules import masked

SEED = "# config\\nPort 22\\nListen 0.0.0.0\\n\\nUsePAM yes\\nend"

PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
  tasks:
    - name: seed
      copy:
        content: "SEED"
        dest: "{{ root }}/{{ item }}"
      loop: [a.conf, b.conf, r.conf, s.conf]
      check_mode: false
    - name: a block at the end, with a backup
      blockinfile:
        path: "{{ root }}/a.conf"
        block: |
          one
          two
        backup: true
      register: b1
    - name: the same block again
      blockinfile:
        path: "{{ root }}/a.conf"
        block: |
          one
          two
      register: b2
    - name: the block changed, kept in place, mode set
      blockinfile:
        path: "{{ root }}/a.conf"
        block: "three\\r\\nfour"
        mode: "0600"
      register: b3
    - name: a second block after a pattern, own markers, blank lines around it
      blockinfile:
        path: "{{ root }}/a.conf"
        marker: "## {mark} second"
        marker_begin: start
        marker_end: stop
        insertafter: "^Port"
        prepend_newline: true
        append_newline: true
        content: x=1
      register: b4
    - name: before the first line
      blockinfile:
        path: "{{ root }}/b.conf"
        insertbefore: BOF
        block: first
      register: b5
    - name: before a pattern that does not match goes to the end
      blockinfile:
        path: "{{ root }}/b.conf"
        marker: "# {mark} third"
        insertbefore: "^nothing"
        block: last
      register: b6
    - name: removed
      blockinfile:
        path: "{{ root }}/a.conf"
        state: absent
      register: b7
    - name: a new file in a new directory
      blockinfile:
        path: "{{ root }}/new/c.conf"
        create: true
        block: made
      register: b8
    - name: absent from a missing file
      blockinfile:
        path: "{{ root }}/none.conf"
        state: absent
        create: true
      register: b9
    - name: a missing file without create
      blockinfile:
        path: "{{ root }}/none.conf"
        block: x
      register: b10
      ignore_errors: true
    - name: replace on every line, a group reference, a backup
      replace:
        path: "{{ root }}/r.conf"
        regexp: '^(\\w+) (.*)$'
        replace: '\\2 <- \\g<1>'
        backup: true
      register: r1
    - name: nothing to replace
      replace:
        path: "{{ root }}/r.conf"
        regexp: '^nothing$'
        replace: x
      register: r2
    - name: empty matches between the characters of a section
      replace:
        path: "{{ root }}/s.conf"
        after: 'Port'
        before: 'UsePAM'
        regexp: 'x*'
        replace: '-'
      register: r3
    - name: after only, over lines (dot takes newlines)
      replace:
        path: "{{ root }}/s.conf"
        after: 'UsePAM'
        regexp: '(?:yes|end)'
        replace: 'no'
      register: r4
    - name: a section that is not there
      replace:
        path: "{{ root }}/s.conf"
        before: 'nowhere'
        regexp: 'a'
      register: r5
    - name: a bad group reference
      replace:
        path: "{{ root }}/s.conf"
        regexp: 'P'
        replace: '\\3'
      register: r6
      ignore_errors: true
    - name: a missing file
      replace:
        path: "{{ root }}/none.conf"
        regexp: 'a'
      register: r7
      ignore_errors: true
    - name: regex tests over what the host made
      assert:
        that:
          - r1.msg is search('^\\d+ replacements')
          - r1.msg is match('3 rep')
          - r1.msg is not match('rep')
          - r1.msg is regex('rep')
          - r1.msg is not regex('rep', match_type='match')
          - r1.msg is regex('\\d replacements made', match_type='fullmatch')
          - r3.diff.after is search('^-UsePAM', multiline=true)
          - r3.diff.after is not search('^-UsePAM')
          - 'r2 is search("''rc'': 0")'  # quoted: ": " would make the item a mapping
          - b9.changed is search('^False$')
          - r1.msg.split()[-1] == 'made' and r1.msg.split(' ', 1)[-1] == 'replacements made'
          - r1.diff.after.split('\\n')[-1] == 'end'
          - r1.diff.after.strip().split('\\n')[0] == '# config'
          - b1.msg.strip('Bd') == 'lock inserte'
          - b1.msg is search('\\x42lock')
    - name: what was registered
      copy:
        content: "{{ b1 }}\\n{{ b2 }}\\n{{ b3 }}\\n{{ b4 }}\\n{{ b5 }}\\n{{ b6 }}\\n{{ b7 }}\\n{{ b8 }}\\n{{ b9 }}\\n{{ b10 }}\\n{{ r1 }}\\n{{ r2 }}\\n{{ r3 }}\\n{{ r4 }}\\n{{ r5 }}\\n{{ r6 }}\\n{{ r7 }}\\n"
        dest: "{{ root }}/results.txt"
      check_mode: false
""".replace("SEED", SEED)

# a backup's name: path.<pid>.<YYYY-MM-DD@HH:MM:SS>~
_BACKUP = re.compile(r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~")


def _run_both(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[Any, ...]:
    outcomes = {}
    for fmt in ("pyz", "native"):
        work = tmp_path / fmt
        root = work / "root"
        root.mkdir(parents=True)
        book = work / "site.yml"
        book.write_text(PLAYBOOK.replace("ROOT", str(root)))
        remote = work / "remote"
        inv = local_inventory(work / "inv.ini", remote)
        code, doc, err = cli(capsys, str(book), "-i", str(inv), "--run", "--output", "json", "--format", fmt,
                             "-v", "--diff", *flags)
        assert code == 0, err
        assert ("native: rustle-runner for" in err) == (fmt == "native"), err  # native ran natively
        host = doc["hosts"][0]
        recap = {k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}
        outcomes[fmt] = masked((recap, files(root), journal(remote, root)), _BACKUP, ".BACKUP~")
    (recap, tree, events), (pyz_recap, pyz_tree, pyz_events) = outcomes["native"], outcomes["pyz"]
    for name in sorted(set(tree) | set(pyz_tree)):  # one file at a time, for a readable failure
        assert (name, tree.get(name)) == (name, pyz_tree.get(name))
    for event, pyz_event in zip(events, pyz_events, strict=False):
        assert event == pyz_event
    assert (recap, len(events)) == (pyz_recap, len(pyz_events))
    return outcomes["native"]


def test_blockinfile_and_replace_match_pyz(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           native_cache: Path) -> None:
    recap, tree, events = _run_both(tmp_path, capsys)
    assert recap["ignored"] == 3 and recap["failed"] == 0
    assert tree["a.conf"][2] == "# config\nPort 22\n\n## start second\nx=1\n## stop second\n\nListen 0.0.0.0\n\nUsePAM yes\nend\n"
    assert tree["a.conf.BACKUP~"][2] == SEED.replace("\\n", "\n")
    assert tree["b.conf"][2].startswith("# BEGIN ANSIBLE MANAGED BLOCK\nfirst\n# END ANSIBLE MANAGED BLOCK\n# config")
    assert tree["b.conf"][2].endswith("end\n# BEGIN third\nlast\n# END third\n")
    assert tree["new/c.conf"][2] == "# BEGIN ANSIBLE MANAGED BLOCK\nmade\n# END ANSIBLE MANAGED BLOCK\n"
    assert tree["r.conf"][2] == "# config\n22 <- Port\n0.0.0.0 <- Listen\n\nyes <- UsePAM\nend"
    assert tree["s.conf"][2] == "# config\nPort- -2-2-\n-L-i-s-t-e-n- -0-.-0-.-0-.-0-\n-\n-UsePAM no\nno"
    results = tree["results.txt"][2].splitlines()
    assert results[0].startswith("{'backup_file': 'ROOT/a.conf.BACKUP~', 'changed': True, 'msg': 'Block inserted', 'diff': [")
    assert results[1].startswith("{'changed': False, 'msg': '', 'diff': [")
    assert results[2].startswith("{'changed': True, 'msg': 'Block inserted and ownership, perms or SE linux context changed'")
    assert results[6].startswith("{'changed': True, 'msg': 'Block removed'")
    assert results[7].startswith("{'changed': True, 'msg': 'File created', 'diff': [{'before': '', ")
    assert results[8] == "{'changed': False, 'msg': 'File ROOT/none.conf not present', 'failed': False}"
    assert results[9].startswith("{'rc': 257, 'failed': True, 'msg': 'Path ROOT/none.conf does not exist !', 'changed': False")
    assert results[10].startswith("{'rc': 0, 'diff': {'before_header': 'ROOT/r.conf', 'before': '# config")
    assert "'backup_file': 'ROOT/r.conf.BACKUP~', 'msg': '3 replacements made', 'changed': True" in results[10]
    assert results[11] == "{'rc': 0, 'msg': '', 'changed': False, 'failed': False}"
    assert results[14] == ("{'rc': 0, 'msg': 'Pattern for before/after params did not match the given file: "
                           "(?P<subsection>.*)nowhere', 'changed': False, 'failed': False}")
    assert results[15].startswith("{'failed': True, 'msg': 'Unable to process replace due to error: "
                                  "invalid group reference 3 at position 1', 'changed': False")
    diffs = {e[1]: e[5] for e in events}
    assert diffs["replace on every line, a group reference, a backup"]["after"].startswith("# config\n22 <- Port\n")
    assert diffs["removed"][0]["after"].startswith("# config\nPort 22\n\n## start second")


def test_blockinfile_and_replace_in_check_mode_match_pyz(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         native_cache: Path) -> None:
    recap, tree, events = _run_both(tmp_path, capsys, "--check")
    assert recap["ignored"] == 3
    assert tree["a.conf"][2] == SEED.replace("\\n", "\n")  # nothing written, no backup
    assert [k for k in tree if "BACKUP" in k or k.startswith("new")] == []
    statuses = {e[1]: e[2] for e in events}
    assert statuses["a new file in a new directory"] == "changed"
