"""rustle-exec reads the deployment's inventory again: its !vault values open with the same
vault options as rustle-deploy's (--vault-id, --vault-password-file), over a real sshd; without a
password only the task that reads the locked value fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import exec_main, main

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]

# ansible-vault encrypt_string --vault-id dev@FILE 'from the inventory' (FILE holds dev-secret)
INVENTORY_VAULT = """\
all:
  hosts:
    web1:
        greeting: !vault |
                  $ANSIBLE_VAULT;1.2;AES256;dev
                  37376664353263336530396563303138643433326463316539343032386335636263643339363565
                  3930653265313631613336613065366136353664623330650a313532353166336535616533363431
                  33373036336536326437656533666561663266373434653063633033333063336334626363663162
                  3766376331303733650a343062313161613462383839666462643937646538386465356438616531
                  35346633333032623561343437663331663539333438376239323230356634393234
"""
PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - copy:
        content: "ok\\n"
        dest: "{{ root }}/first.txt"
    - copy:
        content: "{{ greeting }}\\n"
        dest: "{{ root }}/greeting.txt"
"""


def test_rustle_exec_opens_the_inventory_vault_with_its_own_options(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any) -> None:
    (tmp_path / "dev-pass.txt").write_text("dev-secret\n")
    (tmp_path / "root").mkdir()
    host = sshd.host("web1", tmp_path / "remote", root=str(tmp_path / "root"))
    inv = yaml.safe_load(INVENTORY_VAULT.replace("!vault", "")) or {}
    text = INVENTORY_VAULT + "".join(f"        {k}: {json.dumps(v)}\n" for k, v in host.vars.items())
    assert inv["all"]["hosts"]["web1"]["greeting"].startswith("$ANSIBLE_VAULT;1.2;AES256;dev")
    (tmp_path / "inv.yml").write_text(text)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    vault = ["--vault-id", f"dev@{tmp_path / 'dev-pass.txt'}"]
    code = main([str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.yml"), "--output", "json", *vault])
    out, err = capsys.readouterr()
    assert code == 0, err
    manifest = str(tmp_path / "manifest.json")
    Path(manifest).write_text(out)

    # no password: the load goes on, the task that reads the value fails with ansible-core's words
    code = exec_main([manifest, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "no vault secrets" in out + err
    assert (tmp_path / "root" / "first.txt").read_text() == "ok\n"
    assert not (tmp_path / "root" / "greeting.txt").exists()

    # a password file that does not exist: a usage error, nothing run
    assert exec_main([manifest, "--vault-password-file", str(tmp_path / "missing")]) == 2
    assert "was not found" in capsys.readouterr().err

    assert exec_main([manifest, *vault]) == 0, capsys.readouterr().err
    assert (tmp_path / "root" / "greeting.txt").read_text() == "from the inventory\n"
