"""The hybrid format (docs/native.md, "Hybrid artifacts"): the runner runs what lowers and hands
the other tasks to the host's Python in the same run.

One playbook mixes both kinds of task: registered results and set_fact cross the boundary both
ways, handlers are notified from both sides, a failure on each side is rescued on the other,
one Python task is no_log. It is applied over the real sshd by ``--format hybrid`` and
``--format pyz``, and by ansible-playbook (the oracle, on a local connection), first in check
and diff mode on empty trees, then for real: the same recaps, the same files, and (hybrid
against pyz) the same task results in the host's journal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT
from ..integration.conftest import ansible_env, recaps
from .test_native_runs import journal

pytestmark = [pytest.mark.ssh, pytest.mark.ansible]

ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)
COUNTS = ("ok", "changed", "failed", "skipped", "rescued", "ignored")

# regex_replace over a registered result (fail's message too: fail itself lowers) and blockinfile
# with a (?i) regex are not the runner's: those tasks run in the host's Python; the others are
# the runner's own.
PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: native asks the shell
      command: echo hello world
      register: said
      changed_when: false
      check_mode: false
    - name: python rewrites what native registered
      copy:
        content: "{{ said.stdout | regex_replace('world', 'there') }}\\n"
        dest: "{{ root }}/greet.txt"
      register: greeted
      notify: python handler
    - name: python sets a fact
      set_fact:
        shout: "{{ said.stdout | regex_replace('hello', 'HELLO') }}"
    - name: native reads what python registered and set
      copy:
        content: "{{ greeted.changed }} {{ shout }}\\n"
        dest: "{{ root }}/native.txt"
      notify: native handler
    - name: python block in a file
      blockinfile:
        path: "{{ root }}/block.txt"
        create: true
        block: "shout={{ shout }}"
        insertbefore: "(?i)^no such line$"
      register: blocked
    - name: native fails, python rescues
      block:
        - name: native failure
          command: sh -c 'exit 3'
      rescue:
        - name: python rescue
          copy:
            content: "{{ ansible_failed_task.name | regex_replace(' ', '_') }} {{ ansible_failed_result.rc }}\\n"
            dest: "{{ root }}/rescued-by-python.txt"
    - name: python fails, native rescues
      block:
        - name: python failure
          fail:
            msg: "failed in {{ said.stdout | regex_replace('^.*$', 'Python') }}"
      rescue:
        - name: native rescue
          copy:
            content: "{{ ansible_failed_task.name }}: {{ ansible_failed_result.msg }}\\n"
            dest: "{{ root }}/rescued-by-native.txt"
      always:
        - name: python always
          copy:
            content: "{{ blocked.changed | string | regex_replace('T', 't') }}\\n"
            dest: "{{ root }}/always.txt"
    - name: python secret
      copy:
        content: "{{ said.stdout | regex_replace('hello', 'Secret') }}\\n"
        dest: "{{ root }}/secret.txt"
      no_log: true
  handlers:
    - name: python handler
      copy:
        content: "{{ said.stdout | regex_replace('o', '0') }}\\n"
        dest: "{{ root }}/python-handler.txt"
    - name: native handler
      copy:
        content: "native handler\\n"
        dest: "{{ root }}/native-handler.txt"
"""


def _files(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(root.iterdir())}


def test_hybrid_matches_pyz_and_ansible_over_ssh(sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 native_cache: Path) -> None:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in this environment")
    book = tmp_path / "site.yml"
    book.write_text(PLAYBOOK)
    roots = {tool: tmp_path / tool / "root" for tool in ("hybrid", "pyz", "ansible")}
    remotes = {fmt: tmp_path / fmt / "remote" for fmt in ("hybrid", "pyz")}
    for root in roots.values():
        root.mkdir(parents=True)
    inventories = {}
    for fmt in ("hybrid", "pyz"):
        host = sshd.host("h1", remotes[fmt], root=str(roots[fmt]))
        inventories[fmt] = tmp_path / fmt / "inv.yml"
        inventories[fmt].write_text(yaml.safe_dump({"all": {"hosts": {"h1": host.vars}}}))
    local = tmp_path / "ansible" / "inv.yml"
    local.write_text(yaml.safe_dump({"all": {"hosts": {"h1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "root": str(roots["ansible"])}}}}))

    def rustle(fmt: str, *args: str) -> tuple[int, dict[str, int], str]:
        code = main([str(book), "-i", str(inventories[fmt]), "--run", "--output", "json", "--format", fmt,
                     "-v", *args])
        out, err = capsys.readouterr()
        assert out, err
        host = json.loads(out)["hosts"][0]
        return code, {k: int((host["recap"] or {}).get(k, 0)) for k in COUNTS}, err

    def ansible(*args: str) -> tuple[int, dict[str, int]]:
        proc = subprocess.run([str(ANSIBLE), "-i", str(local), str(book), *args],
                              capture_output=True, text=True, env=ansible_env(tmp_path), timeout=ORACLE_TIMEOUT)
        recap = recaps(proc.stdout).get("h1")
        assert recap is not None, proc.stdout + proc.stderr
        return proc.returncode, {k: int(recap.get(k, 0)) for k in COUNTS}

    for args in (("--check", "--diff"), ()):
        h_code, h_recap, h_err = rustle("hybrid", *args)
        p_code, p_recap, p_err = rustle("pyz", *args)
        a_code, a_recap = ansible(*args)
        assert h_code == p_code == a_code == 0, (h_err, p_err)
        assert h_recap == p_recap == a_recap, (args, h_recap, p_recap, a_recap)
        assert _files(roots["hybrid"]) == _files(roots["pyz"]) == _files(roots["ansible"]), args
    assert h_recap["rescued"] == 2
    # -v names the tasks the host's Python runs, and why
    assert "format: hybrid for h1: 8 task(s) run in the host's Python" in h_err, h_err
    assert "'python failure'" in h_err and "'native rescue'" not in h_err
    files = _files(roots["hybrid"])
    assert files["greet.txt"] == "hello there\n"
    assert files["native.txt"] == "True HELLO world\n"
    assert files["block.txt"] == "# BEGIN ANSIBLE MANAGED BLOCK\nshout=HELLO world\n# END ANSIBLE MANAGED BLOCK\n"
    assert files["rescued-by-python.txt"] == "native_failure 3\n"
    assert files["rescued-by-native.txt"] == "python failure: failed in Python\n"
    assert files["always.txt"] == "true\n"
    assert files["python-handler.txt"] == "hell0 w0rld\n" and files["native-handler.txt"] == "native handler\n"
    # the same task results, in the same order, in the host's journal (check run, then real run)
    def shown(fmt: str) -> list[tuple[Any, ...]]:
        return journal(remotes[fmt], roots[fmt])

    assert shown("hybrid") == shown("pyz")
    secret = [line for path in (remotes["hybrid"] / "runs").glob("*.jsonl") for line in path.read_text().splitlines()
              if '"python secret"' in line and "task_result" in line]
    assert len(secret) == 2 and all('"censored"' in line and "Secret" not in line for line in secret)
    # the artifact is the runner's, with the pyz runtime embedded for its Python tasks
    art = next(p for p in (remotes["hybrid"] / "artifacts").iterdir() if p.suffix != ".pyz")
    doc = json.loads(art.read_bytes())
    assert doc["format"] == "rustle-native" and doc["hosts"]["h1"]["python"]["runtime"] in doc["files"]


def test_a_host_without_the_python_a_hybrid_task_needs_fails_that_task_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """The runner starts Python only at the first task that needs it: the tasks before it run,
    that task fails naming the interpreter and what to do, and the host stops there."""
    root = tmp_path / "root"
    root.mkdir()
    book = tmp_path / "site.yml"
    book.write_text(f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: native first
      copy: {{content: "native\\n", dest: "{root}/native.txt"}}
    - name: needs python
      blockinfile: {{path: "{root}/block.txt", create: true, block: "x", insertbefore: "(?i)^no such line$"}}
    - name: never reached
      copy: {{content: "never\\n", dest: "{root}/never.txt"}}
""")
    inv = tmp_path / "inv.ini"
    inv.write_text(f"localhost ansible_connection=local rustle_remote_dir={tmp_path / 'remote'} "
                   f"ansible_python_interpreter={tmp_path / 'no-python' / 'python3'}\n")
    code = main([str(book), "-i", str(inv), "--run", "--output", "json", "--format", "hybrid"])
    out, err = capsys.readouterr()
    host = json.loads(out)["hosts"][0]
    assert code != 0 and host["recap"]["ok"] == 1 and host["recap"]["failed"] == 1, err
    assert sorted(p.name for p in root.iterdir()) == ["native.txt"]
    results = [e for e in journal(tmp_path / "remote") if e[1] == "needs python"]
    assert len(results) == 1 and results[0][2] == "failed"
    msg = results[0][3]
    assert f"'{tmp_path / 'no-python' / 'python3'}' cannot be started: No such file or directory" in msg
    assert "install Python 3.8 or newer on the host" in msg


def _hybrid_docs(tmp_path: Path, playbook: str) -> list[dict[str, Any]]:
    """The hybrid documents of ``playbook`` on localhost (the unit's pyz stands in as b"PYZ")."""
    from rustle_deploy.compiler.native import lower_unit
    from rustle_deploy.pipeline import Session

    book = tmp_path / "site.yml"
    book.write_text(playbook)
    inv = tmp_path / "inv.ini"
    inv.write_text("localhost ansible_connection=local\n")
    s = Session.from_options({"execution_plan": str(book), "inventory": str(inv), "format_": "native",
                              "output": "json"})
    p, found = s.plan(s.inventory())
    every, _ = s.hosts_for(p, found)
    return [json.loads(data) for u in s.units(p, found, every) for _, data, _ in lower_unit(u, "0" * 64, b"PYZ")]


def test_hybrid_lowering_leaves_only_what_does_not_lower_to_python(tmp_path: Path, rustle_home: Path) -> None:
    docs = _hybrid_docs(tmp_path, """
- hosts: all
  gather_facts: false
  tasks:
    - command: echo hi
      register: said
    - name: in python
      blockinfile: {path: /tmp/x, block: "{{ said.stdout }}", insertbefore: "(?i)^no such line$"}
      tags: [b]
    - name: native
      debug: {msg: "{{ said.stdout }}"}
""")
    program = docs[0]["hosts"]["localhost"]
    tasks = program["plays"][0]["tasks"]
    assert [("python" in t, t.get("module")) for t in tasks] == [(False, "command"), (True, "blockinfile"),
                                                                 (False, "debug")]
    assert tasks[1]["python"] == {"play": 0, "id": tasks[1]["id"]} and tasks[1]["tags"] == ["b"]
    assert program["python"]["interpreters"][0] == "/usr/bin/python3"
    assert docs[0]["files"][program["python"]["runtime"]] == "UFla"  # base64 of the embedded pyz
    # a plan that lowers whole is a plain native program: no pyz inside
    plain = _hybrid_docs(tmp_path, "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n")
    assert "python" not in plain[0]["hosts"]["localhost"] and plain[0]["files"] == {}


@pytest.mark.parametrize("task", [
    "include_vars: {file: vars.yml}",
    "add_host: {name: other}",
    "set_fact: {'{{ name }}': 1}",
    "meta: end_play",
])
def test_a_task_that_would_change_what_the_program_was_compiled_with_is_refused(
        tmp_path: Path, rustle_home: Path, task: str) -> None:
    from rustle_deploy.compiler.native import NativeUnsupported

    (tmp_path / "vars.yml").write_text("a: 1\n")
    with pytest.raises(NativeUnsupported) as caught:
        _hybrid_docs(tmp_path, f"- hosts: all\n  gather_facts: false\n  vars: {{name: n}}\n  tasks:\n    - {task}\n")
    assert "cannot run in the host's Python within the runner's run" in caught.value.message


def test_an_unsafe_variable_is_not_a_template_when_the_lowering_evaluates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """ansible-core's yaml_parsing target: a task variable marked !unsafe is data for the
    lowering as for the host's runtime (found running that target as hybrid: native had it
    templated at compile time)."""
    book = tmp_path / "site.yml"
    book.write_text("""
- hosts: all
  gather_facts: false
  tasks:
    - name: check unsafe string
      assert:
        that: ["regstr != resolved", "'{' in regstr", "'FAIL' not in regstr"]
      vars:
        regstr: !unsafe b{{nottemplate}}
  vars:
    nottemplate: FAIL
    resolved: 'b{{nottemplate}}'
""")
    inv = tmp_path / "inv.ini"
    inv.write_text(f"localhost ansible_connection=local rustle_remote_dir={tmp_path / 'remote'}\n")
    code = main([str(book), "-i", str(inv), "--run", "--output", "json", "--format", "native"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["hosts"][0]["recap"]["ok"] == 1, err


def test_lookup_vars_of_the_host_address_lowers_and_of_facts_goes_to_python(tmp_path: Path, rustle_home: Path) -> None:
    """ansible-core's lookup_vars target: ``ansible_host`` is the host's name when the inventory
    sets none, at compile time as in the runtime (it was undefined there, and writing the
    program failed with a traceback); a lookup of the facts is left to the host's Python."""
    docs = _hybrid_docs(tmp_path, """
- hosts: all
  gather_facts: false
  tasks:
    - set_fact:
        var_host: '{{ lookup("vars", "ansible_host") }}'
    - set_fact:
        facts: '{{ lookup("vars", "ansible_facts") }}'
""")
    first, second = docs[0]["hosts"]["localhost"]["plays"][0]["tasks"]
    assert "python" not in first and first["args"] == {"var_host": "localhost"}
    assert "python" in second
