"""ansible-playbook's everyday options on playbooks: --start-at-task, vars_prompt.

--start-at-task is compared with ansible-playbook (local connection, one run each): the same
tasks run, in the same order, with the same recap. vars_prompt is answered on a real
terminal (a pty whose child has it as its controlling terminal): a private answer is never
echoed, a public one is; without a terminal a prompt without default is a clear error.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT
from .conftest import ansible_env

pytestmark = pytest.mark.usefixtures("rustle_home")

ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)
RUSTLE = Path(sys.executable).parent / "rustle-deploy"


def local_inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable} "
                   f"rustle_remote_dir={tmp_path / 'remote'}\n")
    return inv


# -- --start-at-task -------------------------------------------------------------------------

SITE = """\
- name: first
  hosts: all
  gather_facts: false
  tasks:
    - name: p1 a
      debug: msg=p1a
- name: second
  hosts: all
  gather_facts: false
  pre_tasks:
    - name: p2 pre
      debug: msg=pre
  roles: [web]
  tasks:
    - name: p2 a
      debug: msg=p2a
    - name: a block
      block:
        - name: in block 1
          debug: msg=b1
        - name: in block 2
          debug: msg=b2
      rescue:
        - name: rescuer
          debug: msg=r
      always:
        - name: always 1
          debug: msg=a1
        - name: always 2
          debug: msg=a2
    - name: include them
      include_tasks: inc.yml
    - import_tasks: inc.yml
    - name: p2 last
      debug: msg=last
- name: third
  hosts: all
  gather_facts: false
  tasks:
    - name: p3 a
      debug: msg=p3a
"""


def start_at_project(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "roles" / "web" / "tasks").mkdir(parents=True)
    (work / "roles" / "web" / "tasks" / "main.yml").write_text(
        "- name: web one\n  debug: msg=web1\n- name: web two\n  debug: msg=web2\n")
    (work / "inc.yml").write_text("- name: included task\n  debug: msg=inc\n")
    (work / "site.yml").write_text(SITE)
    return work


@pytest.mark.ansible
@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed in this environment")
@pytest.mark.parametrize("start", ["web two", "web : web two", "in block 2", "always 2", "include them",
                                   "included task", "p2 [al]*", "p3 a"])
def test_start_at_task_runs_what_ansible_runs(start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = start_at_project(tmp_path)
    inv = local_inventory(tmp_path)
    env = ansible_env(tmp_path, ANSIBLE_LOCALHOST_WARNING="False")
    proc = subprocess.run([str(ANSIBLE), "-i", str(inv), "site.yml", "--start-at-task", start], cwd=work, env=env,
                          capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a_msgs = re.findall(r'"msg": "(\w+)"', proc.stdout)
    a_ok = int(re.search(r"localhost\s+: ok=(\d+)", proc.stdout).group(1))  # type: ignore[union-attr]
    code = main([str(work / "site.yml"), "-i", str(inv), "--run", "--output", "json", "--start-at-task", start])
    out, err = capsys.readouterr()
    assert code == 0, err
    (host,) = json.loads(out)["hosts"]
    r_msgs = re.findall(r"^localhost \| ok \| [^|]+ \| (\w+)$", err, re.M)  # the debug tasks' messages, as shown
    assert r_msgs == a_msgs, proc.stdout
    # Ansible gathers facts when the task it starts at is the first of its play, even under
    # gather_facts: false (its iterator restarts that play at the setup step); facts are
    # gathered lazily here and never counted (docs/playbooks.md, known differences)
    gathered = proc.stdout.count("TASK [Gathering Facts]")
    assert host["recap"]["ok"] == a_ok - gathered
    assert gathered == (1 if start == "p3 a" else 0)


def test_start_at_task_that_matches_nothing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ansible-playbook prints an error and exits 0 having run nothing; here it is exit 2."""
    work = start_at_project(tmp_path)
    inv = local_inventory(tmp_path)
    code = main([str(work / "site.yml"), "-i", str(inv), "--run", "--start-at-task", "rescuer"])
    err = capsys.readouterr()[1]
    assert code == 2 and "no task matches --start-at-task 'rescuer'" in err, err
    assert not (tmp_path / "remote").exists()
    plan = tmp_path / "plan.json"
    assert main([str(work / "site.yml"), "-i", str(inv), "--emit-plan"]) == 0
    plan.write_text(capsys.readouterr()[0])
    assert main([str(plan), "-i", str(inv), "--run", "--start-at-task", "p3 a"]) == 2
    assert "--start-at-task applies to playbooks" in capsys.readouterr()[1]


def test_start_at_task_skips_earlier_plays_in_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = start_at_project(tmp_path)
    inv = local_inventory(tmp_path)
    assert main([str(work / "site.yml"), "-i", str(inv), "--emit-plan", "--start-at-task", "in block 2"]) == 0
    doc = json.loads(capsys.readouterr()[0])
    assert [p["name"] for p in doc["plays"]] == ["second", "third"]
    block = doc["plays"][0]["batches"][0]["tasks"][0]
    assert [t["name"] for t in block["block"]] == ["in block 2"]
    assert [t["name"] for t in block["rescue"]] == ["rescuer"]  # a failure there is still rescued


# -- vars_prompt -------------------------------------------------------------------------------

PROMPTS = [
    {"name": "user", "prompt": "Your name", "private": False, "default": "alice"},
    {"name": "secret", "prompt": "Secret", "confirm": True},
    {"name": "region", "prompt": "Region"},
]


def prompt_playbook(tmp_path: Path) -> Path:
    playbook = tmp_path / "site.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "all", "gather_facts": False, "vars_prompt": PROMPTS,
        "tasks": [{"name": "write answers", "copy": {"content": "{{ user }}/{{ secret }}/{{ region }}\n",
                                                     "dest": str(tmp_path / "answers"), "mode": "0600"}}],
    }], sort_keys=False))
    return playbook


class Terminal:
    """A child process with a pty as its controlling terminal; what it shows is kept."""

    def __init__(self, argv: list[str]) -> None:
        import pty

        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execv(argv[0], argv)
        self.shown = b""
        self.seen = 0  # where the next expect() starts looking

    def _more(self, deadline: float) -> bytes:
        import select

        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            os.kill(self.pid, 9)
            raise AssertionError(f"timed out; the terminal shows {self.shown.decode(errors='replace')!r}")
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed its terminal
            chunk = b""
        self.shown += chunk
        return chunk

    def expect(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.shown.find(text.encode(), self.seen) < 0:
            assert self._more(deadline), f"the child ended before {text!r}: {self.shown.decode(errors='replace')!r}"
        self.seen = self.shown.find(text.encode(), self.seen) + len(text)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def finish(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self._more(deadline):
            pass
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def test_vars_prompt_asks_on_the_terminal_with_echo_off_for_private(tmp_path: Path) -> None:
    playbook = prompt_playbook(tmp_path)
    inv = local_inventory(tmp_path)
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inv), "--run", "--output", "text", "-e", "region=eu"])
    term.expect("Your name [alice]: ")
    term.type("bob")
    term.expect("Secret: ")
    term.type("s3cr3t-XYZ")
    term.expect("confirm Secret: ")
    term.type("typo")
    term.expect("***** VALUES ENTERED DO NOT MATCH ****")
    term.expect("Secret: ")
    term.type("s3cr3t-XYZ")
    term.expect("confirm Secret: ")
    term.type("s3cr3t-XYZ")
    code = term.finish()
    shown = term.shown.decode(errors="replace")
    assert code == 0, shown
    assert (tmp_path / "answers").read_text() == "bob/s3cr3t-XYZ/eu\n"
    assert "bob" in shown  # a public answer is echoed
    assert "s3cr3t" not in shown and "typo" not in shown  # a private one never is
    assert "Region" not in shown  # given with -e: not asked


def test_vars_prompt_takes_the_default_on_an_empty_answer(tmp_path: Path) -> None:
    playbook = prompt_playbook(tmp_path)
    inv = local_inventory(tmp_path)
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inv), "--run", "--output", "text",
                     "-e", "secret=x", "-e", "region=r"])
    term.expect("Your name [alice]: ")
    term.type("")
    assert term.finish() == 0, term.shown
    assert (tmp_path / "answers").read_text() == "alice/x/r\n"


def test_vars_prompt_without_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """No terminal: a prompt without default is exit 2 naming the prompt (nothing touched); a
    default is used, -e wins; listings and the syntax check ask nothing."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("bob\n"))
    playbook = prompt_playbook(tmp_path)
    inv = local_inventory(tmp_path)
    code = main([str(playbook), "-i", str(inv), "--run", "-e", "region=eu"])
    err = capsys.readouterr()[1]
    assert code == 2, err
    assert "site.yml:8:5: vars_prompt 'secret' needs a value, and standard input is not a terminal" in err
    assert "hint: pass it with -e secret=VALUE" in err
    assert not (tmp_path / "remote").exists() and not (tmp_path / "answers").exists()
    code = main([str(playbook), "-i", str(inv), "--run", "-e", "region=eu", "-e", "secret=x"])
    assert code == 0, capsys.readouterr()[1]
    assert (tmp_path / "answers").read_text() == "alice/x/eu\n"
    for mode in ("--list-tasks", "--syntax-check", "--list-hosts"):
        assert main([str(playbook), "-i", str(inv), mode]) == 0, capsys.readouterr()[1]
    capsys.readouterr()


@pytest.mark.parametrize(
    ("entry", "needle"),
    [({"name": "p", "encrypt": "sha512_crypt"}, "vars_prompt 'encrypt' is not supported"),
     ({"name": "p", "privat": True}, "'privat' is not a vars_prompt option"),
     ({"prompt": "no name"}, "a vars_prompt entry is a mapping with a variable 'name'"),
     ({"name": "p", "private": "sometimes"}, "'private' takes a boolean")],
)
def test_bad_vars_prompt_is_refused(entry: dict[str, Any], needle: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    playbook = tmp_path / "site.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "vars_prompt": [entry], "tasks": []}]))
    assert main([str(playbook), "-i", str(local_inventory(tmp_path)), "--syntax-check"]) == 2
    err = capsys.readouterr()[1]
    assert needle in err and "site.yml:" in err, err


# -- -K/--ask-become-pass -------------------------------------------------------------------------

SUDO_USER = "rustle-sudopw"


@pytest.fixture
def sudo_user(sshd: Any, tmp_path: Path) -> Any:
    """A user that logs in to the test sshd and may sudo to root only with its password."""
    import pwd
    import secrets
    import shutil

    if os.geteuid() != 0 or not shutil.which("sudo") or not shutil.which("useradd") or \
            not Path("/etc/sudoers.d").is_dir():
        pytest.skip("needs root, sudo, useradd and /etc/sudoers.d to make a user whose sudo asks for a password")
    try:
        pwd.getpwnam(SUDO_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", SUDO_USER], check=True)
    password = "pw-" + secrets.token_hex(8)
    subprocess.run(["chpasswd"], input=f"{SUDO_USER}:{password}\n", text=True, check=True)
    rule = Path(f"/etc/sudoers.d/{SUDO_USER}-{os.getpid()}")
    rule.write_text(f"{SUDO_USER} ALL=(ALL) ALL\n")
    rule.chmod(0o440)
    key = sshd.user_keys / SUDO_USER
    key.write_text((sshd.root / "client_ed25519.pub").read_text())
    key.chmod(0o644)
    work = Path(f"/tmp/{SUDO_USER}-{os.getpid()}")
    work.mkdir(mode=0o755, exist_ok=True)
    info = pwd.getpwnam(SUDO_USER)
    os.chown(work, info.pw_uid, info.pw_gid)
    try:
        yield password, work
    finally:
        rule.unlink()
        key.unlink()
        shutil.rmtree(work, ignore_errors=True)


def become_project(sshd: Any, tmp_path: Path, work: Path) -> tuple[Path, Path]:
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"target ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={SUDO_USER} "
                   f"ansible_ssh_private_key_file={sshd.client_key} ansible_python_interpreter=/usr/bin/python3 "
                   f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd.known_hosts}' rustle_remote_dir={work / 'rustle'}\n")
    playbook = tmp_path / "site.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "who am I", "command": "id -un", "become": True, "register": "who"},
        {"name": "say it", "copy": {"content": "{{ who.stdout }}\n", "dest": str(work / "who")}},
    ]}], sort_keys=False))
    return playbook, inv


@pytest.mark.ssh
def test_ask_become_pass_gives_sudo_the_password_and_never_shows_or_stores_it(
        sudo_user: Any, sshd: Any, tmp_path: Path, rustle_home: Path) -> None:
    password, work = sudo_user
    playbook, inv = become_project(sshd, tmp_path, work)
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inv), "--run", "--output", "text", "-K", "-v"])
    term.expect("BECOME password: ")
    term.type(password)
    code = term.finish()
    shown = term.shown.decode(errors="replace")
    assert code == 0, shown
    assert (work / "who").read_text() == "root\n"  # the task became root through sudo
    assert password not in shown
    for root in (work, rustle_home, tmp_path):  # remote dir, journals, history, state.db, cache
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert password.encode() not in path.read_bytes(), f"the password is in {path}"

    # a wrong password: the task fails with sudo's word for it, nothing hangs
    (work / "who").unlink()
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inv), "--run", "--output", "text", "-K"])
    term.expect("BECOME password: ")
    term.type("not-the-password")
    code = term.finish()
    shown = term.shown.decode(errors="replace")
    assert code == 1 and "sudo refused the become password to run as 'root'" in shown, shown
    assert not (work / "who").exists()


@pytest.mark.ssh
def test_ask_become_pass_with_the_inventorys_ansible_become(sudo_user: Any, sshd: Any, tmp_path: Path,
                                                            rustle_home: Path) -> None:
    """-K with a connection-level become (the inventory's ansible_become=true, sudo): the agent
    starts as the connecting user and each task becomes on the host with the typed password."""
    password, work = sudo_user
    playbook, inv = become_project(sshd, tmp_path, work)
    inv.write_text(inv.read_text().rstrip("\n") + " ansible_become=true\n")
    playbook.write_text(playbook.read_text().replace("    become: true\n", ""))
    assert "become" not in playbook.read_text()  # root only through the inventory's become
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inv), "--run", "--output", "text", "-K"])
    term.expect("BECOME password: ")
    term.type(password)
    code = term.finish()
    shown = term.shown.decode(errors="replace")
    assert code == 0, shown
    assert (work / "who").read_text() == "root\n" and password not in shown
    for root in (work, rustle_home, tmp_path):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert password.encode() not in path.read_bytes(), f"the password is in {path}"


@pytest.mark.ssh
def test_become_without_ask_become_pass_and_without_a_terminal(sudo_user: Any, sshd: Any, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, work = sudo_user
    playbook, inv = become_project(sshd, tmp_path, work)
    code = main([str(playbook), "-i", str(inv), "--run", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "sudo needs a password to run as 'root'" in out + err
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret\n"))
    code = main([str(playbook), "-i", str(inv), "--run", "-K"])
    err = capsys.readouterr()[1]
    assert code == 2 and "-K/--ask-become-pass needs a terminal to ask on" in err, err
    code = main([str(playbook), "-i", str(inv), "-K"])
    assert code == 2 and "-K/--ask-become-pass gives sudo a password when tasks run" in capsys.readouterr()[1]


FORCE = """\
- hosts: localhost
  gather_facts: false
  {keyword}
  tasks:
    - {{command: /bin/true, changed_when: true, notify: h}}
    - {{command: /bin/false}}
  handlers:
    - {{name: h, copy: {{content: "ran\\n", dest: "{out}/handler.txt"}}}}
"""


@pytest.mark.parametrize(("keyword", "how", "runs"), [
    ("", [], False),
    ("", ["--force-handlers"], True),
    ("", ["env"], True),
    ("", ["cfg"], True),
    ("force_handlers: false", ["--force-handlers"], False),  # the play's own value wins, as in Ansible
])
def test_force_handlers_from_the_command_line_environment_and_ansible_cfg(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        keyword: str, how: list[str], runs: bool) -> None:
    """ansible-playbook's --force-handlers, ANSIBLE_FORCE_HANDLERS and [defaults] force_handlers
    (the same cases as ansible-core's handlers target, which tests/acceptance/test_runme.py
    compares with ansible-playbook): a failed host still runs what it notified."""
    out = tmp_path / "out"
    out.mkdir()
    book = tmp_path / "site.yml"
    book.write_text(FORCE.format(keyword=keyword, out=out))
    monkeypatch.delenv("ANSIBLE_FORCE_HANDLERS", raising=False)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "ansible.cfg"))
    args = [a for a in how if a.startswith("-")]
    if "env" in how:
        monkeypatch.setenv("ANSIBLE_FORCE_HANDLERS", "true")
    if "cfg" in how:
        (tmp_path / "ansible.cfg").write_text("[defaults]\nforce_handlers = True\n")
    code = main([str(book), "-i", str(local_inventory(tmp_path)), "--run", *args])
    capsys.readouterr()
    assert code == 1
    assert (out / "handler.txt").exists() is runs


def test_force_handlers_flag_is_for_playbooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = local_inventory(tmp_path)
    book = tmp_path / "site.yml"
    book.write_text(FORCE.format(keyword="", out=tmp_path))
    assert main([str(book), "-i", str(inv), "--emit-plan"]) == 0
    plan = tmp_path / "plan.json"
    plan.write_text(capsys.readouterr()[0])
    assert main([str(plan), "-i", str(inv), "--run", "--force-handlers"]) == 2
    assert "--force-handlers apply to playbooks" in capsys.readouterr()[1]
    assert not (tmp_path / "remote").exists()


def test_tags_and_skip_tags_repeat_as_ansible_playbooks_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ansible-playbook --tags a --tags c selects both (ansible-core's tags target, ansible_run_tags)."""
    out = tmp_path / "out"
    out.mkdir()
    book = tmp_path / "site.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + "".join(
        f"    - {{name: {t}, copy: {{content: x, dest: '{out}/{t}'}}, tags: [{t}]}}\n" for t in "abcd")
        + "    - {name: run tags, copy: {content: '{{ ansible_run_tags | sort }}', dest: '" + str(out) + "/run'}, tags: [always]}\n")
    code = main([str(book), "-i", str(local_inventory(tmp_path)), "--run", "--tags", "a", "--tags", "c,d",
                 "--skip-tags", "d"])
    capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a", "c", "run"]
    assert json.loads((out / "run").read_text()) == ["a", "c", "d"]


MISSING_HANDLER = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: never changes
      debug: msg=x
      notify: nobody
    - name: skipped
      debug: msg=x
      notify: nobody
      when: false
    - block:
        - name: fires
          copy: {{content: x, dest: "{out}/fired"}}
          notify: [known, nobody2]
      rescue:
        - copy: {{content: x, dest: "{out}/rescued"}}
      always:
        - copy: {{content: x, dest: "{out}/always"}}
    - copy: {{content: x, dest: "{out}/after"}}
  handlers:
    - name: known
      copy: {{content: x, dest: "{out}/handler"}}
"""


@pytest.mark.ansible
@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed in this environment")
def test_a_notify_of_no_handler_fails_only_when_it_fires_as_in_ansible(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ansible-core's handlers target (58841.yml, test_notify_included.yml): a notify that names
    no handler is no error until a changed result sends it; then the run stops there, past any
    rescue or always, with Ansible's message."""
    inv = local_inventory(tmp_path)
    env = ansible_env(tmp_path, ANSIBLE_LOCALHOST_WARNING="False")
    message = ("The requested handler 'nobody2' was not found in either the main handlers list nor in the "
               "listening handlers list")
    made = {}
    for tool in ("ansible", "rustle"):
        out = tmp_path / tool
        out.mkdir()
        book = tmp_path / f"{tool}.yml"
        book.write_text(MISSING_HANDLER.format(out=out))
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), "-i", str(inv), str(book)], env=env, capture_output=True,
                                  text=True, timeout=ORACLE_TIMEOUT)
            assert proc.returncode == 1 and message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        else:
            assert main([str(book), "-i", str(inv), "--run", "--output", "json"]) == 1
            doc = json.loads(capsys.readouterr().out)
            # the run errored (ansible-core aborts it): in the JSON, the recap and state.db
            assert doc["errored"] == [{"host": "localhost", "msg": message}]
            assert doc["hosts"][0]["recap"]["errored"] == message
            with closing(sqlite3.connect(Path.home() / ".rustle" / "state.db")) as db:
                assert db.execute("SELECT status FROM deployments").fetchall() == [("errored",)]
            again = tmp_path / "text.yml"  # fresh files, so that the notification fires again
            (tmp_path / "text").mkdir()
            again.write_text(MISSING_HANDLER.format(out=tmp_path / "text"))
            assert main([str(again), "-i", str(inv), "--run", "--output", "text"]) == 1
            assert f"ERROR: localhost: the run errored: {message}" in capsys.readouterr().out
        made[tool] = sorted(p.name for p in out.iterdir())
    assert made["rustle"] == made["ansible"] == ["fired"]


# -- ALLOW_BROKEN_CONDITIONALS -----------------------------------------------------------------

BROKEN_CONDITIONALS = """\
- hosts: all
  gather_facts: false
  vars: {{word: "false", nothing: null, empty: ""}}
  tasks:
    - {{name: a string, copy: {{dest: "{out}/word", content: "ran\\n"}}, when: word}}
    - {{name: none, copy: {{dest: "{out}/none", content: "ran\\n"}}, when: nothing}}
    - {{name: empty, copy: {{dest: "{out}/empty", content: "ran\\n"}}, when: "{{{{ empty }}}}"}}
    - name: changed_when
      command: echo hi
      changed_when: word
      register: r
    - {{name: until, command: echo hi, register: u, until: u.stdout, retries: 2, delay: 0}}
"""


def test_allow_broken_conditionals_takes_the_truth_of_a_result_that_is_not_a_boolean(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """ANSIBLE_ALLOW_BROKEN_CONDITIONALS=true: ansible-core 2.19.14 runs the string "false" (true
    as Python reads it) and an empty conditional, skips None, and counts the changed_when as
    changed (checked with ansible-playbook when this test was written); without it each fails
    (the strict_conditionals playbook case). The native runner's side: tests/native/test_native_runs.py."""
    monkeypatch.setenv("ANSIBLE_ALLOW_BROKEN_CONDITIONALS", "true")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    out = tmp_path / "out"
    out.mkdir()
    book = tmp_path / "site.yml"
    book.write_text(BROKEN_CONDITIONALS.format(out=out))
    code = main([str(book), "-i", str(local_inventory(tmp_path)), "--run", "--output", "json", "--format", "pyz"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stdout + stderr
    recap = json.loads(stdout)["hosts"][0]["recap"]
    assert (recap["changed"], recap["failed"], recap["skipped"]) == (4, 0, 1), stdout
    assert sorted(p.name for p in out.iterdir()) == ["empty", "word"]


ERRORED_SERIAL = """\
- hosts: all
  gather_facts: false
  serial: 1
  tasks:
    - copy: {{content: x, dest: "{out}/{{{{ inventory_hostname }}}}"}}
      notify: nobody
- hosts: all
  gather_facts: false
  tasks:
    - copy: {{content: x, dest: "{out}/second-{{{{ inventory_hostname }}}}"}}
"""

# no serial: both hosts run the task in one batch, only h1's result is changed; ansible-core
# aborts after it, so no host runs the next task (rustle-deploy ends a phase after such a task)
ERRORED_SAME_BATCH = """\
- hosts: all
  gather_facts: false
  tasks:
    - command: "true"
      changed_when: inventory_hostname == 'h1'
      notify: nobody
    - copy: {{content: x, dest: "{out}/{{{{ inventory_hostname }}}}"}}
"""


@pytest.mark.ansible
@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed in this environment")
@pytest.mark.parametrize(("book_text", "expected"), [(ERRORED_SERIAL, ["h1"]), (ERRORED_SAME_BATCH, [])],
                         ids=["serial", "same-batch"])
def test_a_run_that_errored_starts_no_later_batch_as_ansible_aborts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], book_text: str, expected: list[str]) -> None:
    """serial: 1 over two hosts: the first host's notify of no handler fires, and
    ansible-playbook aborts the run (exit 1, no recap): the second batch and the second play
    never start. Without serial, the other host of the batch runs no later task either.
    rustle-deploy stops the rollout there too, and says why."""
    inv = tmp_path / "inventory.ini"
    inv.write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter={sys.executable} "
                           f"rustle_remote_dir={tmp_path / ('remote-' + h)}\n" for h in ("h1", "h2")))
    env = ansible_env(tmp_path)
    made = {}
    for tool in ("ansible", "rustle"):
        out = tmp_path / tool
        out.mkdir()
        book = tmp_path / f"{tool}.yml"
        book.write_text(book_text.format(out=out))
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), "-i", str(inv), "-f", "1", str(book)], env=env,
                                  capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
            assert proc.returncode == 1 and "PLAY RECAP" not in proc.stdout, proc.stdout + proc.stderr
        else:
            assert main([str(book), "-i", str(inv), "--run", "--output", "json"]) == 1
            doc = json.loads(capsys.readouterr().out)
            assert [e["host"] for e in doc["errored"]] == ["h1"]
            assert doc["rollout"]["reason"].startswith("the run errored on h1: The requested handler 'nobody'")
            with closing(sqlite3.connect(Path.home() / ".rustle" / "state.db")) as db:
                assert db.execute("SELECT status FROM deployments").fetchall() == [("errored",)]
        made[tool] = sorted(p.name for p in out.iterdir())
    assert made["rustle"] == made["ansible"] == expected
