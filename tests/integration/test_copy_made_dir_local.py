"""A copy ``src`` directory that earlier tasks make on the controller, against ansible-playbook.

ansible-core's copy target makes ``source_recursive`` beside the playbook with tasks delegated
to localhost, then copies it (with and without a trailing slash) by that relative name: Ansible
looks for it only when the task runs. rustle-deploy cannot embed it at compile time; it reads it
when the task's phase starts (``run_time_files``, a directory as a tree: fleetops) and the
host's copy walks it as a directory ``src``. A ``src`` named by a value the run registered
(``{{ made_dir }}/tree``, ``made_dir`` set from a delegated ``mktemp``) is rendered by the
controller over the host's values when that phase starts, and read then. A directory of the
playbook's that such tasks change before it is copied is read when its task runs too (with
``local_follow: false`` its links stay links; followed, a broken link or one that would loop
stays a link, as ansible-core's copy walks a directory). Both tools run the same playbook over one
``ansible_connection=local`` host, each in its own directory (the working directory: the
delegated tasks' relative paths are made there); compared: the files copied (and their
modes: a copy with mode=preserve keeps its source's) and the tasks' ``changed``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from .. import oracle
from .conftest import ansible_env, local_inventory, run_tool
from .test_playbooks_ansible import ANSIBLE

pytestmark = pytest.mark.oracle

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: a directory each loop item of an include names, before any task on the controller
      include_tasks: copy_item.yml
      loop:
        - {src: looped, dest: early/whole/}
        - {src: looped/, dest: early/contents/}
        - {src: looped/, dest: early/contents_no_slash}

- hosts: all
  gather_facts: false
  tasks:
    - name: a directory beside the playbook
      file: {path: made_here/sub, state: directory}
      delegate_to: localhost
    - name: a file in it
      copy: {content: "x\\n", dest: made_here/sub/f}
      delegate_to: localhost
    - name: the directory itself
      copy: {src: made_here, dest: "{{ out }}/"}
      register: whole
    - name: its contents
      copy: {src: made_here/, dest: "{{ out }}/contents/"}
      register: contents
    - name: the directory again
      copy: {src: made_here, dest: "{{ out }}/"}
      register: again
    - name: a file of the playbook's, its mode kept
      copy: {src: preserved.txt, dest: "{{ out }}/preserved.txt", mode: preserve}
    - name: a private directory on the controller, named by the run
      command: mktemp -d "{{ scratch }}/made.XXXXXX"
      delegate_to: localhost
      register: made
    - set_fact: {made_dir: "{{ made.stdout }}"}
    - name: a tree in it
      file: {path: "{{ made_dir }}/tree/sub", state: directory}
      delegate_to: localhost
    - name: a file in the tree
      copy: {content: "y\\n", dest: "{{ made_dir }}/tree/sub/g"}
      delegate_to: localhost
    - name: a file beside it
      copy: {content: "z\\n", dest: "{{ made_dir }}/single.txt"}
      delegate_to: localhost
    - name: a directory for one file
      file: {path: "{{ made_dir }}/one", state: directory}
      delegate_to: localhost
    - name: a directory holding one file, its mode odd
      copy: {content: "o\\n", dest: "{{ made_dir }}/one/only.txt", mode: "0751"}
      delegate_to: localhost
    - name: a template beside it
      copy: {content: "{% raw %}rc={{ made.rc }}{% endraw %}\\n", dest: "{{ made_dir }}/t.j2"}
      delegate_to: localhost
    - name: the registered directory itself
      copy: {src: "{{ made_dir }}/tree", dest: "{{ out }}/registered/"}
      register: reg_whole
    - name: the registered directory's contents
      copy: {src: "{{ made_dir }}/tree/", dest: "{{ out }}/registered_contents/"}
      register: reg_contents
    - name: the directory holding one file
      copy: {src: "{{ made_dir }}/one", dest: "{{ out }}/one_copy"}
      register: reg_one
    - name: the directory holding one file, modes kept
      copy: {src: "{{ made_dir }}/one", dest: "{{ out }}/one_preserved", mode: preserve}
      register: reg_one_preserved
    - name: a registered file
      copy: {src: "{{ made_dir }}/single.txt", dest: "{{ out }}/registered_single.txt"}
      register: reg_single
    - name: a registered template
      template: {src: "{{ made_dir }}/t.j2", dest: "{{ out }}/registered_t.txt"}
      register: reg_template
    - name: a registered file that is not there
      copy: {src: "{{ made_dir }}/missing.txt", dest: "{{ out }}/never.txt"}
      register: reg_missing
      ignore_errors: true
    - name: a file added on the controller to a directory of the playbook's
      copy: {content: "added\\n", dest: files/existing/added.txt}
      delegate_to: localhost
    - name: and a link to it
      file: {src: added.txt, dest: files/existing/link, state: link}
      delegate_to: localhost
    - name: that directory, its links kept
      copy: {src: existing/, dest: "{{ out }}/existing/", local_follow: false}
      register: existing
    - name: a directory whose links cannot all be followed
      copy: {src: linked, dest: "{{ out }}/"}
      register: linked
    - name: a link added on the controller to a directory an include's items name
      file: {src: ../f.txt, dest: files/looped/sub/added_link, state: link}
      delegate_to: localhost
    - name: that directory, each loop item of an include naming it
      include_tasks: copy_item.yml
      loop:
        - {src: looped, dest: late/whole/}
        - {src: looped/, dest: late/contents/}
        - {src: looped/, dest: late/contents_no_slash}
        - {src: preserved.txt, dest: late/}
    - name: what changed
      copy:
        dest: "{{ out }}/changed.txt"
        content: "{{ [whole.changed, contents.changed, again.changed, reg_whole.changed, reg_contents.changed,
                      reg_single.changed, reg_template.changed, reg_missing.failed, existing.changed, linked.changed, reg_one.changed, reg_one_preserved.changed,
                      reg_one.dest | default('') | replace(out, 'OUT'),
                      reg_missing.msg | replace(made_dir, 'MADE')] }}"
"""

COPY_ITEM = """- copy: {src: "{{ item.src }}", dest: "{{ out }}/{{ item.dest }}"}
  register: looped_copy
- copy:
    dest: "{{ out }}/{{ item.dest | replace('/', '_') }}.changed"
    content: "{{ looped_copy.changed }}"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    tmp = tmp_path_factory.mktemp("copy-made-dir")
    out: dict[str, Any] = {}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        (work / "out").mkdir(parents=True)
        (work / "site.yml").write_text(PLAYBOOK)
        (work / "files").mkdir()
        (work / "files" / "preserved.txt").write_text("kept\n")
        (work / "files" / "preserved.txt").chmod(0o547)
        (work / "copy_item.yml").write_text(COPY_ITEM)
        looped = work / "files" / "looped"
        (looped / "sub").mkdir(parents=True)
        (looped / "f.txt").write_text("looped f\n")
        (looped / "sub" / "g.txt").write_text("looped g\n")
        (work / "files" / "existing").mkdir()
        (work / "files" / "existing" / "there.txt").write_text("there\n")
        linked = work / "files" / "linked"
        (linked / "sub").mkdir(parents=True)
        (linked / "f.txt").write_text("f\n")
        for link, target in (("self", "self"), ("dangling", "nowhere"), ("up", "../linked"), ("sub/back", "../"),
                             ("sub/f_link", "../f.txt")):
            (linked / link).symlink_to(target)
        (work / "scratch").mkdir()
        args = [*local_inventory(work, h=f"ansible_python_interpreter={sys.executable}"), "-e", f"scratch={work / 'scratch'}"]
        out[tool] = _ansible(work, args) if tool == "ansible" else _run(tool, work, args)
    return out


def _run(tool: str, work: Path, args: list[str]) -> dict[str, Any]:
    run = run_tool(tool, work, args, {}, cwd=True)
    root = work / "out"
    return {"code": run["code"], "text": run["text"],
            "tree": {str(p.relative_to(root)): _entry(p) for p in sorted(root.rglob("*"))}}


def _ansible(work: Path, args: list[str]) -> dict[str, Any]:
    """ansible-playbook's side, recorded (tests/oracle.py): keyed by every file of the work
    directory (with its mode: preserve copies it) and the command line; its exit code and the
    tree it wrote (whose names the playbook already writes MADE and OUT). The console's text is
    kept for failure messages."""
    places: dict[str, str | Path] = {"{tmp}": work}
    modes = {str(p.relative_to(work)): oct(p.lstat().st_mode) for p in sorted(work.rglob("*"))}
    inputs = oracle.norm({"files": oracle.files(work), "modes": modes, "args": args,
                          "env": oracle.env(ansible_env(work))}, places)
    result = oracle.denorm(oracle.recorded("copy_made_dir", inputs, lambda: oracle.norm(_run("ansible", work, args), places),
                                           volatile=("text",)), places)
    return {**result, "tree": {rel: tuple(entry) for rel, entry in result["tree"].items()}}


def _entry(path: Path) -> tuple[str, str]:
    if path.is_symlink():
        return "-> " + os.readlink(path), "link"
    return (path.read_text() if path.is_file() else "/"), oct(path.stat().st_mode)


def test_a_directory_made_on_the_controller_is_copied_as_ansible_copies_it(runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    assert ansible["tree"]["made_here/sub/f"][0] == "x\n" and ansible["tree"]["contents/sub/f"][0] == "x\n"
    assert ansible["tree"]["preserved.txt"] == ("kept\n", oct(0o100547))
    assert ansible["tree"]["registered/tree/sub/g"][0] == "y\n"
    assert ansible["tree"]["registered_contents/sub/g"][0] == "y\n"
    assert ansible["tree"]["registered_t.txt"][0] == "rc=0\n"
    assert "Could not find or access 'MADE/missing.txt'" in ansible["tree"]["changed.txt"][0]
    assert ansible["tree"]["existing/added.txt"][0] == "added\n" and ansible["tree"]["existing/link"][0] == "-> added.txt"
    # followed where it can be; a broken link, and one that would loop, copied as links
    assert ansible["tree"]["linked/self"][0] == "-> self" and ansible["tree"]["linked/sub/back"][0] == "-> ../"
    assert ansible["tree"]["linked/sub/f_link"][0] == "f\n"
    assert ansible["tree"]["one_preserved/one/only.txt"] == ("o\n", oct(0o100751))
    # a directory named by an include's loop item, its contents with a trailing slash; after a
    # task on the controller added a link to it, read as it is then
    assert ansible["tree"]["early/whole/looped/sub/g.txt"][0] == "looped g\n"
    assert ansible["tree"]["early/contents/sub/g.txt"][0] == "looped g\n"
    assert ansible["tree"]["early/contents_no_slash/f.txt"][0] == "looped f\n"
    assert "late/whole/looped/sub/added_link" in ansible["tree"] and "early/whole/looped/sub/added_link" not in ansible["tree"]
    assert ansible["tree"]["late/contents/sub/added_link"][0] == "looped f\n"
    assert rustle["tree"] == ansible["tree"], rustle["text"]
