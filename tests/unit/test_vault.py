"""Vault: what ansible-vault encrypted (tests/data/playbooks/vault/, made with ansible-vault
2.19) decrypts to what ``ansible-vault view`` shows; the command line's ways of giving the
password; and the refusals (no secret, a wrong one), located and never showing a secret.
(The differential case tests/data/playbooks/vault runs the same files under both tools.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rustle_deploy import vault
from rustle_deploy.cli import main
from rustle_deploy.errors import PlaybookError
from rustle_deploy.inventory import implicit_localhost
from rustle_deploy.model import Undecryptable, tag_unsafe, untag_unsafe
from rustle_deploy.playbook import CompileOptions, compile_playbook

from ..conftest import ENV_BIN, REPO

CASE = REPO / "tests" / "data" / "playbooks" / "vault"
ANSIBLE_VAULT = ENV_BIN / "ansible-vault"
PASSWORDS = [("default", b"correct horse battery staple"), ("prod", b"other-id-password")]
FILES = ["vars/secrets.yml", "group_vars/all.yml", "roles/vaulted/vars/main.yml"]


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    vault.use_secrets([])
    yield
    vault.use_secrets([])


@pytest.mark.skipif(not ANSIBLE_VAULT.exists(), reason="ansible-core is not installed in this environment")
@pytest.mark.parametrize("name", FILES)
def test_encrypted_file_decrypts_as_ansible_vault_views_it(name: str, tmp_path: Path) -> None:
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path), PYTHONWARNINGS="ignore")
    oracle = subprocess.run([str(ANSIBLE_VAULT), "view", "--vault-password-file", "vault-pass.txt",
                             "--vault-id", "prod@other-pass.txt", name], cwd=CASE, env=env,
                            capture_output=True, text=True, check=True, timeout=120).stdout
    vault.use_secrets(PASSWORDS)
    assert vault.decrypt((CASE / name).read_text()) == oracle


def _vaulted_playbook(tmp_path: Path) -> Path:
    """A play with the case's 1.2 ``!vault`` value (password: other-id-password) on line 5."""
    text = (CASE / "site.yml").read_text()
    value = text[text.index("    multiline: !vault |"):text.index("  roles:")]
    (tmp_path / "site.yml").write_text("- hosts: localhost\n  gather_facts: false\n  vars:\n"
                                       "    other: 1\n" + value + "  tasks: [debug: {msg: hi}]\n")
    return tmp_path / "site.yml"


def test_a_value_no_secret_opens_loads_as_undecryptable_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    """ansible-core loads a !vault value it cannot open; only the tasks that read it fail
    (tests/data/playbooks/vault_locked runs them). A damaged envelope is an error where it is."""
    inv = implicit_localhost()
    site = _vaulted_playbook(tmp_path)
    for secrets, reason in (([], "Attempting to decrypt but no vault secrets found."),
                            ([PASSWORDS[0]], "Decryption failed (no vault secrets were found that could decrypt).")):
        vault.use_secrets(secrets)
        compiled = compile_playbook(str(site), inv, CompileOptions())
        value = compiled.plan.plays[0].vars["multiline"]
        assert isinstance(value, Undecryptable) and value.reason == reason
        assert value.startswith("$ANSIBLE_VAULT;1.2;AES256;prod")
        assert tag_unsafe(value) == {"__ansible_vault": str(value), "__rustle_undecryptable": reason}
        assert untag_unsafe(tag_unsafe(value)).reason == reason
    vault.use_secrets(PASSWORDS)
    compiled = compile_playbook(str(site), inv, CompileOptions())
    assert compiled.plan.plays[0].vars["multiline"] == "multi\nline"
    text = site.read_text()
    site.write_text(re.sub(r"(AES256;prod\n\s+)[0-9a-f]", r"\1z", text, count=1))  # not hex
    with pytest.raises(PlaybookError) as err:
        compile_playbook(str(site), inv, CompileOptions())
    assert (err.value.line, err.value.column) == (5, 16)
    assert "cannot decrypt this !vault value: the vault envelope is damaged" in err.value.detail


def test_encrypted_vars_file_without_its_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets.yml").write_text((CASE / "vars" / "secrets.yml").read_text())
    (tmp_path / "site.yml").write_text("- hosts: all\n  vars_files: [secrets.yml]\n  tasks: []\n")
    with pytest.raises(PlaybookError) as err:
        compile_playbook(str(tmp_path / "site.yml"), implicit_localhost(), CompileOptions())
    assert err.value.file.endswith("secrets.yml")
    assert "cannot decrypt this vault-encrypted vars file: no vault secret" in err.value.detail
    assert "file_secret" not in str(err.value)


@pytest.mark.usefixtures("rustle_home")
@pytest.mark.parametrize("how", ["flags", "env", "script"])
def test_passwords_from_the_command_line_env_and_scripts(
        how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "case"
    shutil.copytree(CASE, work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    args = ["--vault-id", "prod@other-pass.txt"]
    if how == "flags":
        args += ["--vault-password-file", "vault-pass.txt"]
    elif how == "env":
        monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(work / "vault-pass.txt"))
    else:
        script = work / "pass.sh"
        script.write_text("#!/bin/sh\necho 'correct horse battery staple'\n")
        script.chmod(0o755)
        args += ["--vault-password-file", str(script)]
    (work / "hosts.ini").write_text("localhost ansible_connection=local\n")
    assert main(["site.yml", "-i", "hosts.ini", "--emit-plan", "-e", "out=/nowhere", *args]) == 0
    plan = json.loads(capsys.readouterr().out)
    play_vars = plan["plays"][0]["vars"]
    # a !vault value keeps ansible-core's VaultedValue tag in the plan; a whole encrypted file's do not
    assert play_vars["inline"] == {"__rustle_vaulted": "an inline secret: s3cr3t"}
    assert play_vars["multiline"] == {"__rustle_vaulted": "multi\nline"}
    assert play_vars["file_secret"] == "from an encrypted vars file"
    assert play_vars["role_secret"] == "from encrypted role vars"


@pytest.mark.usefixtures("rustle_home")
def test_ask_vault_pass_without_a_terminal_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(CASE)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    assert main(["site.yml", "--emit-plan", "--ask-vault-pass"]) == 2
    assert "vault password needs a terminal" in capsys.readouterr().err


LOCKED_KNOWN = (REPO / "tests" / "data" / "playbooks" / "vault_locked" / "site.yml").read_text().split(
    "locked_known: !vault |", 1)[1].split("  tasks:", 1)[0]  # encrypted with 'other-pw'


@pytest.mark.usefixtures("rustle_home")
@pytest.mark.parametrize(("reads", "shipped"), [
    ("{{ read_secret | length }}", {"read_secret"}),
    ("{{ vars['unread' ~ '_secret'] | length }}", {"read_secret", "unread_secret"}),  # a computed name
])
def test_a_vaulted_play_variable_no_template_names_stays_out_of_the_artifact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        reads: str, shipped: set[str]) -> None:
    import zipfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    (tmp_path / "pw.txt").write_text("other-pw\n")
    (tmp_path / "hosts.ini").write_text("localhost ansible_connection=local\n")
    (tmp_path / "site.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  vars:\n"
        f"    read_secret: !vault |{LOCKED_KNOWN}    unread_secret: !vault |{LOCKED_KNOWN}"
        f"  tasks:\n    - debug:\n        msg: \"{reads}\"\n")
    assert main(["site.yml", "-i", "hosts.ini", "--vault-password-file", "pw.txt", "--compile-only",
                 "--format", "pyz", "-o", "out"]) == 0, capsys.readouterr().err
    (artifact,) = (tmp_path / "out").glob("*.pyz")
    with zipfile.ZipFile(artifact) as zf:
        plan_text = zf.read("plan.json").decode()
    play_vars = json.loads(plan_text)["plays"][0]["vars"]
    for name in ("read_secret", "unread_secret"):
        if name in shipped:
            assert play_vars[name] == {"__rustle_vaulted": "opened with its own password"}
        else:
            assert play_vars[name]["__rustle_undecryptable"].startswith("withheld from the artifact")
    if shipped == {"read_secret"}:
        assert plan_text.count("opened with its own password") == 1


@pytest.mark.usefixtures("rustle_home")
def test_a_whole_hostvars_read_carries_no_other_hosts_vault_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """hostvars read as a whole would put every host's variables in the shared artifact: another
    host's decrypted vault value travels only where a template names it (a whole read beside it is
    refused, naming the host and the variable); the host's own stay in its run request."""
    import zipfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    (tmp_path / "pw.txt").write_text("other-pw\n")
    vaulted = f"!vault |{LOCKED_KNOWN}".replace("\n      ", "\n          ")
    (tmp_path / "hosts.yml").write_text(
        f"all:\n  hosts:\n    web:\n      ansible_connection: local\n      own_pw: {vaulted}"
        f"    db:\n      plain: visible\n      db_pw: {vaulted}      db_named: {vaulted}")
    named = (f"    - copy: {{dest: {tmp_path}/named.txt, content: \"{{{{ hostvars['db'].db_named }}}} "
             "{{ hostvars['db'].plain }} {{ own_pw }}\"}\n")
    whole = "    - debug: {msg: \"{{ hostvars[item] | dict2items | length }}\"}\n      loop: [web]\n"
    args = ["site.yml", "-i", "hosts.yml", "--vault-password-file", "pw.txt", "--format", "pyz"]
    # the whole read in a play of both: each would see the other's, refused, nothing built
    (tmp_path / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n" + named + whole)
    assert main([*args, "--compile-only", "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert "reads hostvars as a whole" in err and "host 'web''s decrypted vault-encrypted variable 'own_pw'" in err
    assert "opened with its own password" not in err and not (tmp_path / "out").exists()
    # named reads only: the named value travels, the others do not
    for play_hosts, body in (("web", named), ("web", named + whole)):
        (tmp_path / "site.yml").write_text(f"- hosts: {play_hosts}\n  gather_facts: false\n  tasks:\n" + body)
        code = main([*args, "--compile-only", "-o", "out"])
        if body != named:  # web's artifact with a whole read: db's vault values refused there too
            assert code == 2 and "'db_pw'" in capsys.readouterr().err
            continue
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        (artifact,) = (tmp_path / "out").glob("*.pyz")
        with zipfile.ZipFile(artifact) as zf:
            plan = json.loads(zf.read("plan.json"))
        assert plan["other_hosts"]["db"] == {"plain": "visible",
                                             "db_named": {"__rustle_vaulted": "opened with its own password"}}
        assert "own_pw" not in plan["hosts"]["web"]
    (tmp_path / "site.yml").write_text("- hosts: web\n  gather_facts: false\n  tasks:\n" + named)
    assert main([*args, "--run", "--output", "json"]) == 0, capsys.readouterr().out
    assert (tmp_path / "named.txt").read_text() == " ".join(["opened with its own password", "visible",
                                                              "opened with its own password"])
