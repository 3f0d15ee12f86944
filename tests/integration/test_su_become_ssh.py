"""su with a password, over a real sshd and the real su: a non-root login becomes another user
whose password it is given (the inventory's ``ansible_become_password``, a ``!vault`` value, or
``-K``), with ansible-playbook as the oracle; the password is then searched for in every file
rustle-deploy wrote (test_vault_secrets_ssh's way) and on the console. A password of several lines
in the inventory fails only a task that becomes with it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import ANSIBLE, ansible_env, recaps
from .test_cli import run_cli
from .test_vault_secrets_ssh import PASSWORD, _encrypt, _inline, _views

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]


@pytest.fixture
def su_users(sshd: Any) -> Iterator[tuple[str, str, str, Path]]:
    """A user that logs in to the test sshd (no sudo), and a user it may become only through
    ``su`` with that user's password: (login, target, password, a work dir the login owns)."""
    import pwd
    import secrets as pwgen
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("su") or not shutil.which("useradd"):
        pytest.skip("needs root, su and useradd to make the users")
    login, target = f"rsu{os.getpid()}", f"rsut{os.getpid()}"
    for name in (login, target):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", name], check=True)
    password = "su-" + pwgen.token_hex(8)
    # the login's own password only unlocks its account (sshd refuses a locked one a key login)
    subprocess.run(["chpasswd"], input=f"{target}:{password}\n{login}:x-{pwgen.token_hex(8)}\n", text=True,
                   check=True)
    key = sshd.user_keys / login
    key.write_text((sshd.root / "client_ed25519.pub").read_text())
    key.chmod(0o644)
    work = Path(tempfile.mkdtemp(prefix="rustle-su-", dir="/tmp"))
    work.chmod(0o755)
    info = pwd.getpwnam(login)
    os.chown(work, info.pw_uid, info.pw_gid)
    try:
        yield login, target, password, work
    finally:
        key.unlink()
        shutil.rmtree(work, ignore_errors=True)
        for name in (login, target):
            subprocess.run(["userdel", name], check=False, capture_output=True)


SU_PLAYBOOK = """\
- hosts: box
  gather_facts: false
  tasks:
    - name: who runs the module
      command: id -un
      register: who
    - name: a file the become user owns
      file: {path: "{{ out }}/made-by-become", state: touch, mode: "0644"}
    - name: save
      copy: {dest: "{{ out }}/who.txt", content: "{{ who.stdout }}\\n", mode: "0644"}
"""


def test_su_with_a_become_password_over_sshd(su_users: tuple[str, str, str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], sshd: Any) -> None:
    """Connection-level ``ansible_become_method: su`` with ``ansible_become_password`` (a ``!vault``
    value): each task runs as the become user through the real su, as under ansible-playbook;
    the password reaches su on its stdin only: not argv, the console, the history or a file."""
    import pwd

    login, target, password, work = su_users
    envelope = _encrypt({"p": password})["p"]
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n")
    playbook = tmp_path / "site.yml"
    playbook.write_text(SU_PLAYBOOK)
    results = {}
    for tool in ("ansible", "rustle"):
        out = work / tool
        out.mkdir(mode=0o777)
        out.chmod(0o777)  # both users write here
        inventory = tmp_path / f"{tool}.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"box": {
            "ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": login,
            "ansible_ssh_private_key_file": str(sshd.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd.known_hosts}",
            "ansible_python_interpreter": "/usr/bin/python3", "rustle_remote_dir": str(work / "rustle"),
            "ansible_become": True, "ansible_become_method": "su", "ansible_become_user": target,
            "ansible_remote_tmp": str(work / "ansible-tmp"), "out": str(out)}}}})
            + "      ansible_become_password: " + _inline(envelope, 8))
        args = ["-i", str(inventory), str(playbook), "--vault-password-file", str(tmp_path / "pw.txt")]
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), *args], capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                                  cwd=tmp_path, env=ansible_env(tmp_path, ANSIBLE_SHELL_ALLOW_WORLD_READABLE_TEMP="1",
                                                    ANSIBLE_SSH_ARGS="-o ControlMaster=no"))
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        else:
            code, stdout, err = run_cli(capsys, *args, "--run", "--output", "json", "-vvv")
            assert code == 0, stdout[-3000:] + err[-3000:]
            assert password not in stdout + err
        results[tool] = ((out / "who.txt").read_text(), pwd.getpwuid((out / "made-by-become").stat().st_uid).pw_name)
    assert results["rustle"] == results["ansible"] == (f"{target}\n", target)
    for top in (Path(os.environ["HOME"]), work, tmp_path):  # ~/.rustle and its history, the remote dir
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                assert not [w for w, blob in _views(path) if password.encode() in blob], path

    # a wrong password: the tasks that become fail with su's word for it, nothing hangs
    inventory = tmp_path / "rustle.yml"
    inventory.write_text(inventory.read_text().split("      ansible_become_password:")[0]
                         + "      ansible_become_password: not-the-password\n")
    code, stdout, err = run_cli(capsys, "-i", str(inventory), str(playbook), "--run", "--output", "json")
    assert code == 1 and f"become: su refused the become password to run as '{target}'" in stdout, stdout[-3000:]


@pytest.mark.parametrize("level", ["task", "connection"])
def test_ask_become_pass_with_su(su_users: tuple[str, str, str, Path], tmp_path: Path, sshd: Any,
                                 level: str) -> None:
    """``-K`` with ``become_method: su`` on a task, or the inventory's ``ansible_become_method: su``:
    the password typed on the terminal reaches su on the host, and is shown and written nowhere."""
    import pwd

    from .test_playbook_options import RUSTLE, Terminal

    login, target, password, work = su_users
    out = work / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"box": {
        "ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": login,
        "ansible_ssh_private_key_file": str(sshd.client_key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd.known_hosts}",
        "ansible_python_interpreter": "/usr/bin/python3", "rustle_remote_dir": str(work / "rustle"),
        "out": str(out), **({"ansible_become": True, "ansible_become_method": "su", "ansible_become_user": target}
                            if level == "connection" else {})}}}}))
    playbook = tmp_path / "site.yml"
    playbook.write_text(SU_PLAYBOOK if level == "connection" else
                        SU_PLAYBOOK.replace("  tasks:\n", f"  become_method: su\n  become_user: {target}\n  tasks:\n")
                        .replace("      register: who\n", "      register: who\n      become: true\n"))
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inventory), "--run", "--output", "text", "-K", "-vv"])
    term.expect("BECOME password: ")
    term.type(password)
    code = term.finish()
    shown = term.shown.decode(errors="replace")
    assert code == 0, shown
    assert (out / "who.txt").read_text() == f"{target}\n"  # the command became the target through su
    # the file task becomes only at the connection level
    assert pwd.getpwuid((out / "made-by-become").stat().st_uid).pw_name == (target if level == "connection" else login)
    assert password not in shown
    for top in (Path(os.environ["HOME"]), work, tmp_path):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                assert not [w for w, blob in _views(path) if password.encode() in blob], path


MULTILINE_PLAYBOOK = """\
- hosts: box
  gather_facts: false
  tasks:
    - name: no become
      command: id -un
      register: who
    - copy: {dest: "{{ out }}/who.txt", content: "{{ who.stdout }}\\n", mode: "0644"}
- hosts: box
  gather_facts: false
  tasks:
    - name: su with the inventory's password, its first line
      shell: id -un > {{ out }}/su.txt
      become: true
      become_method: su
      become_user: "{{ target }}"
    - copy: {dest: "{{ out }}/after.txt", content: "after\\n", mode: "0644"}
"""


def test_a_multi_line_su_or_sudo_password_is_read_up_to_its_first_line_as_in_ansible(
        su_users: tuple[str, str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any) -> None:
    """The inventory's ``ansible_su_pass``/``ansible_sudo_pass`` of several lines: ansible-core does not
    check the text (it sends it and a newline; su reads the first line), rustle-deploy failed the host
    before it connected, even for tasks that do not become. Now a host whose tasks do not become runs
    them, and a task that becomes with su gives su the first line, under both tools."""
    login, target, password, work = su_users
    playbook = tmp_path / "site.yml"
    playbook.write_text(MULTILINE_PLAYBOOK)
    results = {}
    for tool in ("ansible", "rustle"):
        out = work / f"multi-out-{tool}"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        inventory = tmp_path / f"multi-{tool}.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"box": {
            "ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": login,
            "ansible_ssh_private_key_file": str(sshd.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd.known_hosts}",
            "ansible_python_interpreter": "/usr/bin/python3", "rustle_remote_dir": str(work / "multi-rustle"),
            "ansible_remote_tmp": str(work / "multi-ansible-tmp"), "out": str(out), "target": target,
            "ansible_su_pass": f"{password}\nsecond line\n", "ansible_sudo_pass": "one\ntwo\n"}}}}))
        args = ["-i", str(inventory), str(playbook)]
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), *args], capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                                  cwd=tmp_path, env=ansible_env(tmp_path, ANSIBLE_SHELL_ALLOW_WORLD_READABLE_TEMP="1",
                                                    ANSIBLE_SSH_ARGS="-o ControlMaster=no"))
            code, log = proc.returncode, proc.stdout + proc.stderr
            recap = recaps(proc.stdout)["box"]
        else:
            code, log, err = run_cli(capsys, *args, "--run", "--output", "json")
            recap = {h["name"]: h["recap"] for h in json.loads(log)["hosts"]}["box"]
            assert password not in log + err
        results[tool] = (code, {p.name: p.read_text() for p in sorted(out.iterdir())},
                         {k: recap.get(k, 0) for k in ("ok", "changed", "failed")})
    assert results["rustle"] == results["ansible"] == (
        0, {"after.txt": "after\n", "su.txt": f"{target}\n", "who.txt": f"{login}\n"},
        {"ok": 4, "changed": 4, "failed": 0}), results
