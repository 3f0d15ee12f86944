"""A play's remote_user and port (docs/playbooks.md), over the real sshd: they set the
connection of the play's hosts whose inventory sets none, above -u/--user and below the
inventory's ansible_user/ansible_port, as in Ansible; plays that disagree for a host are
refused before anything is touched."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]


def _inventory(sshd: Any, tmp_path: Path) -> Path:
    hosts = {}
    for name in ("bare", "pinned"):
        v = {k: val for k, val in sshd.host(name, tmp_path / f"remote-{name}").vars.items()
             if k not in ("ansible_user", "ansible_port")}
        hosts[name] = dict(v, out=str(tmp_path / f"out-{name}"))
    # the inventory's own user wins over the play's (which does not exist)
    hosts["pinned"].update(ansible_user=sshd.user, ansible_port=sshd.port)
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


def test_a_plays_remote_user_and_port_connect_its_hosts(sshd: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    inv = _inventory(sshd, tmp_path)
    play = tmp_path / "site.yml"
    play.write_text(textwrap.dedent(f"""\
        - hosts: bare
          gather_facts: false
          remote_user: "{{{{ login }}}}"
          port: {sshd.port}
          tasks:
            - copy: {{content: "ran\\n", dest: "{{{{ out }}}}"}}
        - hosts: pinned
          gather_facts: false
          remote_user: nosuchuser-rustle
          port: 1
          tasks:
            - copy: {{content: "ran\\n", dest: "{{{{ out }}}}"}}
        """))
    # -u names a user that does not exist: the play's remote_user comes before it
    code = main([str(play), "-i", str(inv), "--run", "-u", "nosuchuser-cli", "-e", f"login={sshd.user}",
                 "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert {h["name"]: h["ok"] for h in json.loads(out)["hosts"]} == {"bare": True, "pinned": True}
    assert (tmp_path / "out-bare").read_text() == (tmp_path / "out-pinned").read_text() == "ran\n"


def test_plays_that_give_one_host_two_users_are_refused(sshd: Any, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    inv = _inventory(sshd, tmp_path)
    play = tmp_path / "site.yml"
    play.write_text(textwrap.dedent("""\
        - hosts: bare
          remote_user: alice
          tasks: [{debug: {msg: one}}]
        - hosts: all
          remote_user: bob
          tasks: [{debug: {msg: two}}]
        """))
    code = main([str(play), "-i", str(inv), "--run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "site.yml:5:16: remote_user 'bob' for host 'bare' differs from an earlier play's ('alice')" in err
    assert not (tmp_path / "remote-bare").exists() and not (tmp_path / "remote-pinned").exists()


@pytest.fixture
def second_user(sshd: Any) -> Any:
    """A local user (unique to this process) the sshd lets the test's client key in as."""
    import os
    import pwd
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("userdel"):
        pytest.skip("needs root and useradd to make a second user")
    user = f"rstl-ru{os.getpid()}"
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", user], check=True)
    subprocess.run(["usermod", "-p", "*", user], check=True)  # no password, but not locked for sshd
    key = sshd.user_keys / user
    key.write_text((sshd.root / "client_ed25519.pub").read_text())
    key.chmod(0o644)
    try:
        yield pwd.getpwnam(user).pw_name
    finally:
        key.unlink()
        subprocess.run(["userdel", user], check=True)


def test_remote_user_and_port_of_blocks_tasks_and_roles_connect_those_tasks(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], second_user: str) -> None:
    """A block's, a task's or a role's remote_user runs those tasks over a connection as that
    user (the others as -u), except on a host whose inventory sets ansible_user (which wins,
    as in Ansible); a task's port likewise (port 1: nothing listens, the host is unreachable
    at that task)."""
    inv = _inventory(sshd, tmp_path)
    role = tmp_path / "roles" / "whoami" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("- {command: id -un, register: in_role, changed_when: false}\n")
    play = tmp_path / "site.yml"
    play.write_text(textwrap.dedent(f"""\
        - hosts: all
          gather_facts: false
          port: {sshd.port}
          roles:
            - {{role: whoami, remote_user: "{{{{ other }}}}"}}
          tasks:
            - {{command: id -un, register: plain, changed_when: false}}
            - remote_user: "{{{{ other }}}}"
              block:
                - {{command: id -un, register: in_block, changed_when: false}}
            - {{command: id -un, register: in_task, changed_when: false, remote_user: "{{{{ other }}}}"}}
            - copy:
                content: "{{{{ [plain, in_block, in_task, in_role] | map(attribute='stdout') | join(' ') }}}}\\n"
                dest: "{{{{ out }}}}"
        """))
    code = main([str(play), "-i", str(inv), "--run", "-u", sshd.user, "-e", f"other={second_user}",
                 "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    me = sshd.user
    assert (tmp_path / "out-bare").read_text() == f"{me} {second_user} {second_user} {second_user}\n"
    assert (tmp_path / "out-pinned").read_text() == f"{me} {me} {me} {me}\n"
    # phases: [role, as the other user] [plain] [block, task: as the other user] [copy]: two
    # exchanges over each host's own connection, two over the other user's (for pinned, whose
    # inventory user wins, over its own again)
    assert {h["name"]: h["round_trips"] for h in json.loads(out)["hosts"]} == {"bare": 4, "pinned": 4}

    play.write_text(textwrap.dedent(f"""\
        - hosts: all
          gather_facts: false
          port: {sshd.port}
          tasks:
            - {{command: "true", port: 1}}
            - {{copy: {{content: "after\\n", dest: "{{{{ out }}}}.after"}}}}
        """))
    code = main([str(play), "-i", str(inv), "--run", "-u", sshd.user, "--output", "json"])
    out, err = capsys.readouterr()
    hosts = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert code == 1
    assert (hosts["bare"]["recap"].get("unreachable"), hosts["pinned"]["recap"].get("unreachable")) == (1, None)
    assert not (tmp_path / "out-bare.after").exists() and (tmp_path / "out-pinned.after").read_text() == "after\n"
