"""Differential: ``become_exe`` and ``become_flags`` as ansible-playbook 2.19 applies them.

Each tool becomes ``nobody`` through its own wrapper scripts (``sudo-rec``, ``su-rec``) that
record the arguments they are given and then run the real sudo or su, so the two are compared
on the exact command line each builds, up to the command it runs (Ansible's is
``/bin/sh -c 'echo BECOME-SUCCESS...'``, rustle-deploy's its runtime's child interpreter). The
values come from every place Ansible reads them: ansible.cfg ``[privilege_escalation]``,
``ANSIBLE_BECOME_FLAGS`` (over the file), the play, a role, a block and a task keyword,
``ansible_become_flags``/``ansible_sudo_flags`` (over the keyword; the method's own name last),
``become_method: su``, and a module of the module bridge. A ``become_exe`` that does not exist fails its task. One run of each
tool, shared by the tests of this file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from ..conftest import ORACLE_TIMEOUT
from .conftest import ANSIBLE, ansible_env, recaps

USER = "nobody"

WRAPPER = """#!{python}
import json, os, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
os.execvp({real!r}, [{real!r}] + sys.argv[1:])
"""

CFG = """[privilege_escalation]
become_exe = {wrap}/sudo-rec
become_flags = -S
"""

INVENTORY = "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3 wrap={wrap}\n"

ROLE_TASKS = """- name: role keyword
  command: id -un
  register: role_who
"""

PLAYBOOK = """- name: ansible.cfg, ANSIBLE_BECOME_FLAGS and a role
  hosts: all
  gather_facts: false
  become: true
  become_user: nobody
  tasks:
    - name: config and environment
      command: id -un
      register: r0
  roles:
    - role: flagged
      become_flags: "-n -E"

- name: keywords and variables
  hosts: all
  gather_facts: false
  become: true
  become_user: nobody
  become_exe: "{{ wrap }}/sudo-rec"
  become_flags: "-H -S -n -E"
  tasks:
    - name: play keyword
      command: id -un
      register: r1
    - name: task keyword
      command: id -un
      become_flags: "-H -n"
      register: r2
    - block:
        - name: block keyword
          command: id -un
          register: r3
      become_flags: "-n -P"
    - name: variables over the keyword, ansible_sudo_flags over ansible_become_flags
      command: id -un
      register: r4
      vars:
        ansible_become_flags: "-n"
        ansible_sudo_flags: "-n -H -P"
      become_flags: "-S -n"
    - name: su with its own program and flags
      command: id -un
      register: r5
      become_method: su
      become_exe: "{{ wrap }}/su-rec"
      become_flags: "-s /bin/sh"
    - name: a module of the bridge
      find:
        paths: /tmp
        patterns: "no-such-file-zz*"
      register: r7
      become_flags: "-n -E -H"
    - name: a become_exe that does not exist
      command: id -un
      become_exe: /nonexistent/sudo
      ignore_errors: true
      register: r6
    - name: results
      become: false
      copy:
        dest: "{{ out }}/who"
        content: "{{ [hostvars[inventory_hostname].r0.stdout, r1.stdout, r2.stdout, r3.stdout, r4.stdout,
                     r5.stdout, r7.matched, r6.failed] | to_json }}"
"""


def prefix(argv: list[str]) -> list[str]:
    """The become program, its flags and the user: the part both tools build alike."""
    if argv[0].startswith("sudo"):
        return argv[:argv.index("-u") + 2]
    return argv[:argv.index("-c")]


def prepare(base: Path, name: str) -> dict[str, Path]:
    work, wrap, out = base / name, base / name / "wrap", base / name / "out"
    (work / "roles" / "flagged" / "tasks").mkdir(parents=True)
    wrap.mkdir()
    out.mkdir()
    for d in (base, work, wrap, out):
        d.chmod(0o755)
    log = work / "argv.jsonl"
    for method in ("sudo", "su"):
        script = wrap / f"{method}-rec"
        script.write_text(WRAPPER.format(python=sys.executable, log=str(log), real=shutil.which(method)))
        script.chmod(0o755)
    (work / "site.yml").write_text(PLAYBOOK)
    (work / "roles" / "flagged" / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (work / "ansible.cfg").write_text(CFG.format(wrap=wrap))
    (work / "inventory").write_text(INVENTORY.format(wrap=wrap))
    return {"work": work, "out": out, "log": log}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, dict[str, Any]]]:
    if os.geteuid() != 0 or not shutil.which("sudo") or not shutil.which("su"):
        pytest.skip("needs root, sudo and su to become 'nobody' without a password")
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in this environment")
    if subprocess.run(["sudo", "-n", "-u", USER, "/usr/bin/python3", "-c", "pass"],
                      capture_output=True).returncode != 0:
        pytest.skip("'nobody' cannot start /usr/bin/python3")
    base = Path(tempfile.mkdtemp(prefix="rustle-become-exe-", dir="/tmp"))
    try:
        a, r = prepare(base, "ansible"), prepare(base, "rustle")
        env = ansible_env(base, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_PIPELINING="True",
                          ANSIBLE_CONFIG=str(a["work"] / "ansible.cfg"), ANSIBLE_BECOME_FLAGS="-H -n")
        proc = subprocess.run([str(ANSIBLE), "-i", "inventory", "site.yml", "-e", f"out={a['out']}"],
                              capture_output=True, text=True, env=env, cwd=a["work"], timeout=ORACLE_TIMEOUT)
        a.update(code=proc.returncode, text=proc.stdout + proc.stderr, recap=recaps(proc.stdout))
        home = base / "home"
        home.mkdir()
        cwd = os.getcwd()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HOME", str(home))
            mp.setenv("ANSIBLE_CONFIG", str(r["work"] / "ansible.cfg"))
            mp.setenv("ANSIBLE_BECOME_FLAGS", "-H -n")
            for var in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_STATE_DB"):
                mp.delenv(var, raising=False)
            out_path, err_path = base / "rustle.out", base / "rustle.err"
            os.chdir(r["work"])
            try:
                with open(out_path, "w") as out, open(err_path, "w") as err:
                    with pytest.MonkeyPatch.context() as streams:
                        streams.setattr(sys, "stdout", out)
                        streams.setattr(sys, "stderr", err)
                        code = main(["site.yml", "-i", "inventory", "--run", "--output", "json",
                                     "-e", f"out={r['out']}"])
            finally:
                os.chdir(cwd)
        doc = json.loads(out_path.read_text())
        r.update(code=code, text=out_path.read_text() + err_path.read_text(),
                 recap={h["name"]: h.get("recap") or {} for h in doc.get("hosts", [])})
        yield {"ansible": a, "rustle": r}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def argvs(run: dict[str, Any]) -> list[list[str]]:
    """The distinct become command lines, in the order first used (rustle-deploy starts one
    child per identity, Ansible one command per task)."""
    seen: list[list[str]] = []
    for line in run["log"].read_text().splitlines():
        p = prefix(json.loads(line))
        if p not in seen:
            seen.append(p)
    return seen


def test_become_command_lines_match_ansible(runs: dict[str, dict[str, Any]]) -> None:
    a, r = argvs(runs["ansible"]), argvs(runs["rustle"])
    assert a == [
        ["sudo-rec", "-n", "-E", "-u", USER],  # the role's keyword (roles run before tasks)
        ["sudo-rec", "-H", "-n", "-u", USER],  # ansible.cfg's exe, ANSIBLE_BECOME_FLAGS over its flags
        ["sudo-rec", "-H", "-S", "-n", "-E", "-u", USER],  # the play's
        ["sudo-rec", "-n", "-P", "-u", USER],  # the block's
        ["sudo-rec", "-n", "-H", "-P", "-u", USER],  # ansible_sudo_flags
        ["su-rec", "-s", "/bin/sh", USER],
        ["sudo-rec", "-n", "-E", "-H", "-u", USER],  # the bridged module's
    ], runs["ansible"]["text"]
    # the task keyword's "-H -n" is the same command line as the config's, first used above
    assert r == a, runs["rustle"]["text"]


def test_results_match_ansible(runs: dict[str, dict[str, Any]]) -> None:
    a, r = runs["ansible"], runs["rustle"]
    assert a["code"] == 0 and r["code"] == 0, f"{a['text']}\n{r['text']}"
    assert json.loads((a["out"] / "who").read_text()) == [USER] * 6 + [0, True]
    assert (r["out"] / "who").read_text() == (a["out"] / "who").read_text(), r["text"]
    for key in ("ok", "changed", "failed", "ignored"):
        assert r["recap"]["localhost"].get(key) == a["recap"]["localhost"].get(key), (key, a["text"], r["text"])


def test_missing_become_exe_fails_its_task_clearly(runs: dict[str, dict[str, Any]]) -> None:
    assert "/nonexistent/sudo: not found" in runs["ansible"]["text"]
    assert ("become: '/nonexistent/sudo' is not installed on this host (or not executable); "
            "hint: check become_exe (or ansible_become_exe) for this host") in runs["rustle"]["text"]
