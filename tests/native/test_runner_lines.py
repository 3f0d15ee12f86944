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

from .test_runner_modules import pyz_and_native

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


def _run_both(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str, playbook: str = PLAYBOOK,
              beside: dict[str, str] | None = None) -> tuple[Any, ...]:
    """``playbook`` run by both formats with --diff, with the files ``beside`` it (name -> text)."""
    return pyz_and_native(tmp_path, capsys, playbook, "--diff", *flags, beside=beside,
                          masks=((_BACKUP, ".BACKUP~"),))


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


VALIDATE = """
- hosts: all
  gather_facts: false
  vars:
    root: ROOT
  tasks:
    - name: seed
      copy:
        content: "SEED"
        dest: "{{ root }}/{{ item }}"
      loop: [l.conf, b.conf, r.conf, m.conf, n.conf, x.conf]
    - name: lineinfile checked by a command that passes, with the task's environment
      lineinfile:
        path: "{{ root }}/l.conf"
        line: "Port 2222"
        regexp: "^Port"
        validate: 'test "$WANT" = yes && grep -q "^Port 2222$" %s'
      environment:
        WANT: "yes"
      register: v1
    - name: lineinfile refused by its command (the file is left as it was)
      lineinfile:
        path: "{{ root }}/l.conf"
        line: "Broken"
        validate: >-
          sh -c 'echo "lines: $(wc -l < "$0")"; echo no >&2; exit 3' %s
      register: v2
      ignore_errors: true
    - name: blockinfile checked, with a literal %% in the command
      blockinfile:
        path: "{{ root }}/b.conf"
        block: "x=1"
        validate: >-
          test "$(printf '%%s' 5)" = 5 -a -s %s
      register: v3
    - name: replace refused
      replace:
        path: "{{ root }}/r.conf"
        regexp: "yes"
        replace: "no"
        validate: "false %s"
      register: v4
      ignore_errors: true
    - name: a validate without %s
      replace:
        path: "{{ root }}/r.conf"
        regexp: "yes"
        replace: "no"
        validate: "true"
      register: v5
      ignore_errors: true
    - name: copy checked on a temp copy that has the task's mode
      copy:
        content: "hello\\n"
        dest: "{{ root }}/c.txt"
        mode: "0640"
        validate: >-
          test "$(stat -c %%a %s)" = 640
      register: v6
    - name: copy refused
      copy:
        content: "bye\\n"
        dest: "{{ root }}/c.txt"
        validate: >-
          sh -c 'cat "$0"; exit 4' %s
      register: v7
      ignore_errors: true
    - name: template checked
      template:
        src: t.j2
        dest: "{{ root }}/t.txt"
        validate: grep -q "root is" %s
      register: v8
    - name: template refused
      template:
        src: t.j2
        dest: "{{ root }}/u.txt"
        validate: grep -q nothing %s
      register: v9
      ignore_errors: true
    - name: (?m) makes blockinfile search the whole file, after the line the match ends in
      blockinfile:
        path: "{{ root }}/m.conf"
        insertafter: '(?m)^Listen.*\\n\\n'
        block: after the blank line
      register: f1
    - name: (?m) before the line the match starts in
      blockinfile:
        path: "{{ root }}/n.conf"
        marker: "# {mark} before"
        insertbefore: '(?m)^UsePAM'
        block: before UsePAM
      register: f2
    - name: (?m) that does not match goes to the end
      blockinfile:
        path: "{{ root }}/n.conf"
        insertafter: '(?m)^nothing$'
        block: at the end
      register: f3
    - name: (?x) in lineinfile
      lineinfile:
        path: "{{ root }}/x.conf"
        regexp: '(?x) ^ Port \\s+ \\d+ $'
        line: Port 2200
      register: f4
    - name: (?s) in replace takes newlines with the dot
      replace:
        path: "{{ root }}/x.conf"
        regexp: '(?s)Listen.*PAM'
        replace: 'X'
      register: f5
    - name: chained comparisons, + and ~ over what the host made
      assert:
        that:
          - 0 < v4.exit_status < 2 <= v2.exit_status
          - not (0 < v4.exit_status < 1 < v4.nothing)
          - v2.exit_status + 1 == 4 == v7.exit_status
          - v1.msg + '!' == 'line replaced!'
          - "v1.msg ~ '/' ~ v1.changed ~ '/' ~ v4.exit_status == 'line replaced/True/1'"
          - v2.msg.split()[-1] + ' ' ~ v2.exit_status == 'error:no 3'
    - name: what was registered
      copy:
        content: "{{ v1 }}\\n{{ v2 }}\\n{{ v3 }}\\n{{ v4 }}\\n{{ v5 }}\\n{{ v6 }}\\n{{ v7 }}\\n{{ v8 }}\\n{{ v9 }}\\n{{ f1 }}\\n{{ f2 }}\\n{{ f3 }}\\n{{ f4 }}\\n{{ f5 }}\\n{{ v2.exit_status + 1 }} {{ v1.msg ~ v4.exit_status }}\\n"
        dest: "{{ root }}/results.txt"
""".replace("SEED", SEED)


def test_validate_and_inline_regex_flags_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """``validate`` runs on the temp file before it replaces the destination (lineinfile,
    blockinfile and replace: their message with rc and stderr; copy and template: a temp copy
    with the task's mode, the short message); the global inline flags (?m), (?s) and (?x) act
    as in Python's re (blockinfile with (?m) searches the whole file); in both formats alike."""
    recap, tree, _ = _run_both(tmp_path, capsys, playbook=VALIDATE, beside={"t.j2": "root is {{ root | basename }}\n"})
    assert recap["ignored"] == 5 and recap["failed"] == 0
    seed = SEED.replace("\\n", "\n")
    assert tree["l.conf"][2] == seed.replace("Port 22", "Port 2222")  # the refused line is not there
    assert "x=1" in tree["b.conf"][2]
    assert tree["r.conf"][2] == seed  # refused twice
    assert tree["c.txt"][1:] == ("0o640", "hello\n")
    assert tree["t.txt"][2] == "root is root\n" and "u.txt" not in tree
    results = tree["results.txt"][2].splitlines()
    assert results[1].startswith("{'exit_status': 3, 'stdout': 'lines: 7\\n', 'stderr': 'no\\n', 'failed': True, "
                                 "'msg': 'failed to validate: rc:3 error:no\\n'"), results[1]
    assert "'msg': 'failed to validate: rc:1 error:'" in results[3], results[3]
    assert "'msg': 'validate must contain %s: true'" in results[4], results[4]
    assert results[6].startswith("{'exit_status': 4, 'stdout': 'bye\\n', 'stderr': '', 'failed': True, "
                                 "'msg': 'failed to validate'"), results[6]
    assert "'msg': 'failed to validate'" in results[8], results[8]
    # Python counts the newlines up to the match's end, then adds one: the line after the blank one
    assert tree["m.conf"][2] == seed.replace("yes\n", "yes\n# BEGIN ANSIBLE MANAGED BLOCK\n"
                                             "after the blank line\n# END ANSIBLE MANAGED BLOCK\n")
    assert tree["n.conf"][2].startswith("# config\nPort 22\nListen 0.0.0.0\n\n# BEGIN before\nbefore UsePAM\n")
    assert tree["n.conf"][2].endswith("end\n# BEGIN ANSIBLE MANAGED BLOCK\nat the end\n# END ANSIBLE MANAGED BLOCK\n")
    assert tree["x.conf"][2] == "# config\nPort 2200\nX yes\nend"
    assert results[14] == "4 line replaced1"
