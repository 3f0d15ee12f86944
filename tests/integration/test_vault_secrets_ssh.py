"""Where decrypted vault values travel, over a real sshd, with ansible-playbook as the oracle.

One project whose secrets come from every place a vault value can: a ``!vault`` play variable,
block and task ``vars``, a vars file encrypted as a whole (``vars_files``), two ``include_vars``
of encrypted files (one under ``name:``), a role's encrypted ``vars/``, an encrypted ``-e @file``
and a ``!vault`` inventory variable. Some of them a template names, the others none. Both tools
run it against the same sshd and must write the same files; then every file rustle-deploy wrote
(under the private ``~/.rustle``, the history included, and the host's remote dir: zip members,
compressed text, SQLite rows) is searched: a secret no template names is in none of them, nor on
the console; a named one is only in the artifact's ``plan.json`` (0700), and the inventory's
only in the run request (never written).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ENV_BIN, ORACLE_TIMEOUT
from .conftest import ANSIBLE
from .test_cli import run_cli

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]

PASSWORD = "vault-pw-for-tests"
NAMED = ("play_used", "file_used", "inc_used", "task_used", "extra_used", "role_used", "block_used")
UNNAMED = ("play_unused", "file_unused", "inc_unused", "named_key", "task_unused", "block_unused",
           "extra_unused", "role_unused")


def _views(path: Path) -> Iterator[tuple[str, bytes]]:
    """The bytes of ``path`` as test_no_log_ssh's ``_hits`` searches them, each read once: raw, zip
    members, gzip/zlib text, SQLite values (decompressed when compressed)."""
    data = path.read_bytes()
    yield "raw", data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                yield f"zip:{n}", z.read(n)
    for unpack in (gzip.decompress, zlib.decompress):
        with contextlib.suppress(Exception):
            yield unpack.__module__, unpack(data)
    if data.startswith(b"SQLite format 3"):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    for value in row:
                        blob = value.encode() if isinstance(value, str) else value
                        if isinstance(blob, bytes):
                            yield f"sqlite:{table}", blob
                            for unpack in (gzip.decompress, zlib.decompress):
                                with contextlib.suppress(Exception):
                                    yield f"sqlite:{table}", unpack(blob)


def _encrypt(texts: dict[str, str]) -> dict[str, str]:
    """Each text encrypted by ansible-core's own VaultLib with PASSWORD (one interpreter)."""
    code = ("import json,sys\nfrom ansible.parsing.vault import VaultLib,VaultSecret\n"
            f"v=VaultLib([('default',VaultSecret({PASSWORD.encode()!r}))])\n"
            "print(json.dumps({k:v.encrypt(t).decode() for k,t in json.load(sys.stdin).items()}))")
    proc = subprocess.run([str(ENV_BIN / "python"), "-c", code], input=json.dumps(texts), capture_output=True,
                          text=True, check=True, timeout=120, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    return dict(json.loads(proc.stdout))


def _inline(envelope: str, indent: int) -> str:
    pad = " " * indent
    return "!vault |\n" + "".join(pad + line + "\n" for line in envelope.splitlines())


def _project(tmp_path: Path, secrets: dict[str, str]) -> Path:
    def yaml_of(**names: str) -> str:
        return "".join(f"{k}: {json.dumps(secrets[v])}\n" for k, v in names.items())

    files = _encrypt({
        "vars.yml": yaml_of(file_used="file_used", file_unused="file_unused"),
        "inc.yml": yaml_of(inc_used="inc_used", inc_unused="inc_unused"),
        "named.yml": yaml_of(key="named_key"),
        "extra.yml": yaml_of(extra_used="extra_used", extra_unused="extra_unused"),
        "role.yml": yaml_of(role_used="role_used", role_unused="role_unused"),
        **{name: secrets[name] for name in ("play_used", "play_unused", "task_used", "task_unused",
                                            "block_used", "block_unused", "inv_secret")},
    })
    proj = tmp_path / "proj"
    (proj / "roles" / "sec" / "vars").mkdir(parents=True)
    (proj / "roles" / "sec" / "tasks").mkdir()
    for name, dest in (("vars.yml", "vars.yml"), ("inc.yml", "inc.yml"), ("named.yml", "named.yml"),
                       ("extra.yml", "extra.yml"), ("role.yml", "roles/sec/vars/main.yml")):
        (proj / dest).write_text(files[name])
    (proj / "roles" / "sec" / "tasks" / "main.yml").write_text(
        '- copy: {dest: "{{ root }}/role.txt", content: "{{ role_used }}\\n"}\n')
    (proj / "site.yml").write_text(
        "- hosts: box\n  gather_facts: false\n  vars_files: [vars.yml]\n  vars:\n"
        f"    play_used: {_inline(files['play_used'], 6)}"
        f"    play_unused: {_inline(files['play_unused'], 6)}"
        "  roles: [sec]\n  tasks:\n"
        "    - include_vars: inc.yml\n"
        "    - include_vars: {file: named.yml, name: never_read}\n"
        "    - vars:\n"
        f"        block_used: {_inline(files['block_used'], 10)}"
        f"        block_unused: {_inline(files['block_unused'], 10)}"
        "      block:\n"
        "        - copy:\n"
        '            dest: "{{ root }}/out.txt"\n'
        '            content: "{{ play_used }} {{ file_used }} {{ inc_used }} {{ task_used }} {{ block_used }}'
        ' {{ extra_used }} {{ inv_secret }}\\n"\n'
        "          vars:\n"
        f"            task_used: {_inline(files['task_used'], 14)}"
        f"            task_unused: {_inline(files['task_unused'], 14)}")
    (proj / "pw.txt").write_text(PASSWORD + "\n")
    return proj


def test_vault_values_no_template_names_are_written_nowhere(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            sshd: Any) -> None:
    secrets = {name: f"{name}-{os.getpid()}-S3cr" for name in (*NAMED, *UNNAMED, "inv_secret")}
    proj = _project(tmp_path, secrets)
    inv_envelope = _encrypt({"i": secrets["inv_secret"]})["i"]
    outputs = {}
    for tool in ("ansible", "rustle"):
        root = tmp_path / tool
        root.mkdir()
        h = sshd.host("box", tmp_path / f"remote-{tool}", ansible_python_interpreter=sys.executable,
                      root=str(root))
        inventory = tmp_path / f"{tool}.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"box": dict(h.vars)}}})
                             + "      inv_secret: " + _inline(inv_envelope, 8))
        args = ["-i", str(inventory), str(proj / "site.yml"), "-e", f"@{proj / 'extra.yml'}",
                "--vault-password-file", str(proj / "pw.txt")]
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), *args], capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                                  cwd=proj, env=dict(os.environ, PYTHONWARNINGS="ignore", ANSIBLE_NOCOLOR="1",
                                                     ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                                                     ANSIBLE_CONFIG=str(tmp_path / "none.cfg"),
                                                     ANSIBLE_SSH_ARGS="-o ControlMaster=no"))
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        else:
            code, out, err = run_cli(capsys, *args, "--run", "--output", "json", "--format", "pyz")
            assert code == 0, err
            for name in secrets:
                assert secrets[name] not in out + err, name  # --output json and the console
        outputs[tool] = {p.name: p.read_text() for p in sorted(root.iterdir())}
    assert outputs["rustle"] == outputs["ansible"]
    assert outputs["rustle"]["out.txt"].split() == [secrets[n] for n in (
        "play_used", "file_used", "inc_used", "task_used", "block_used", "extra_used", "inv_secret")]
    # every file rustle-deploy wrote, on the controller and on the host
    home = Path(os.environ["HOME"]) / ".rustle"
    found: dict[str, dict[str, list[str]]] = {name: {} for name in secrets}
    for top in (home, tmp_path / "remote-rustle"):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                for where, blob in _views(path):
                    for name, secret in secrets.items():
                        if secret.encode() in blob:
                            found[name].setdefault(str(path), []).append(where)
                            assert path.stat().st_mode & 0o077 == 0, f"{path} carries {name} but is {oct(path.stat().st_mode)}"
    assert {n for n in UNNAMED if found[n]} == set(), {n: found[n] for n in UNNAMED if found[n]}
    assert found["inv_secret"] == {}  # the host's own variables: its run request only
    for name in NAMED:  # what a template reads travels in the artifact's plan, and only there
        assert found[name] and {h for hits in found[name].values() for h in hits} == {"zip:plan.json"}, \
            (name, found[name])


# -- su with a password, over the real sshd ------------------------------------------------------

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
                                  cwd=tmp_path, env=dict(os.environ, PYTHONWARNINGS="ignore", ANSIBLE_NOCOLOR="1",
                                                         ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                                                         ANSIBLE_CONFIG=str(tmp_path / "none.cfg"),
                                                         ANSIBLE_SHELL_ALLOW_WORLD_READABLE_TEMP="1",
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


def test_ask_become_pass_with_su_on_a_task(su_users: tuple[str, str, str, Path], tmp_path: Path, sshd: Any) -> None:
    """``-K`` with a task's ``become_method: su``: the password typed on the terminal reaches su on
    the host, and is shown and written nowhere."""
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
        "out": str(out)}}}}))
    playbook = tmp_path / "site.yml"
    playbook.write_text(SU_PLAYBOOK.replace("  tasks:\n", f"  become_method: su\n  become_user: {target}\n  tasks:\n")
                        .replace("      register: who\n", "      register: who\n      become: true\n"))
    term = Terminal([str(RUSTLE), str(playbook), "-i", str(inventory), "--run", "--output", "text", "-K", "-vv"])
    term.expect("BECOME password: ")
    term.type(password)
    code = term.finish()
    shown = term.shown.decode(errors="replace")
    assert code == 0, shown
    assert (out / "who.txt").read_text() == f"{target}\n"  # the command became the target through su
    assert pwd.getpwuid((out / "made-by-become").stat().st_uid).pw_name == login  # that task did not become
    assert password not in shown
    for top in (Path(os.environ["HOME"]), work, tmp_path):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                assert not [w for w, blob in _views(path) if password.encode() in blob], path
