"""Where decrypted vault values travel, over a real sshd, with ansible-playbook as the oracle.

One project whose secrets come from every place a vault value can: a ``!vault`` play variable,
block and task ``vars``, a vars file encrypted as a whole (``vars_files``), two ``include_vars``
of encrypted files (one under ``name:``), a role's encrypted ``vars/``, an encrypted ``-e @file``
and a ``!vault`` inventory variable, and a ``!vault`` become password in play vars of a play where
no task becomes. Some of them a template names, the others none. Both tools
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
           "extra_unused", "role_unused", "become_unused")


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
                                            "block_used", "block_unused", "inv_secret", "become_unused")},
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
        # a become password no task uses: no task becomes, and no ansible_become says one may
        f"    ansible_become_password: {_inline(files['become_unused'], 6)}"
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

