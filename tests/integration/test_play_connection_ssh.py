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
