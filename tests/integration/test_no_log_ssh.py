"""The values of no_log parameters never leave the module, over a real sshd.

One playbook run by ansible-playbook (the oracle) and by rustle-deploy against the same sshd:
get_url with its ``url_password`` in a URL that fails and in a ``dest`` its message echoes, uri
(ansible-core's module, run through the bridge) with it in a URL that fails, user with a ``password`` (check mode), and a task-level ``no_log: true`` command that prints
the secret. The masked results match ansible-core's; then every file under the private
``~/.rustle`` and the host's remote dir (SQLite rows, journals, zip members of artifacts) is
searched for the secret: it is only in the artifact's ``plan.json`` (the task arguments the plan
must carry), in files of mode 0700 or less.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import sqlite3
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import ANSIBLE, playbook_file
from .test_cli import run_cli

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]  # a private ~/.rustle

PLAYBOOK = """\
- hosts: box
  gather_facts: false
  tasks:
    - name: get_url with the password in a failing URL
      get_url:
        url: "http://alice:{{ secret }}@127.0.0.1:{{ http_port }}/f?token={{ secret }}"
        dest: "{{ root }}/out"
        url_password: "{{ secret }}"
      ignore_errors: true
      register: g
    - name: get_url whose result echoes the password
      get_url:
        url: "http://127.0.0.1:{{ http_port }}/f"
        dest: "{{ root }}/missing-{{ secret }}/f"
        url_username: alice
        url_password: "{{ secret }}"
      ignore_errors: true
      register: d
    - name: uri (ansible-core's module, through the bridge) with the password in a failing URL
      uri:
        url: "http://alice:{{ secret }}@127.0.0.1:{{ http_port }}/f?token={{ secret }}"
        url_password: "{{ secret }}"
      ignore_errors: true
      register: w
    - name: user password
      user:
        name: "{{ user }}"
        password: "{{ secret }}"
        comment: "pw {{ secret }}"
      check_mode: true
      ignore_errors: true
      register: u
    - name: task no_log
      command: "echo {{ secret }}"
      no_log: true
    - name: save
      copy:
        content: "{{ {'g': g, 'd': d, 'w': w, 'u': u} | to_nice_json }}"
        dest: "{{ root }}/results.json"
"""


def _hits(path: Path, secret: bytes) -> list[str]:
    """Where ``secret`` is in the file: its raw bytes, a zip member, its gzip/zlib text, an
    SQLite value (decompressed when it is a compressed blob)."""
    data = path.read_bytes()
    found = ["raw"] if secret in data else []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            found += [f"zip:{n}" for n in z.namelist() if secret in z.read(n)]
    for unpack in (gzip.decompress, zlib.decompress):
        with contextlib.suppress(Exception):
            if secret in unpack(data):
                found.append(unpack.__module__)
    if data.startswith(b"SQLite format 3"):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    for value in row:
                        blobs = [value.encode() if isinstance(value, str) else value]
                        if isinstance(value, bytes):
                            for unpack in (gzip.decompress, zlib.decompress):
                                with contextlib.suppress(Exception):
                                    blobs.append(unpack(value))
                        if any(isinstance(b, bytes) and secret in b for b in blobs):
                            found.append(f"sqlite:{table}")
    return found


def test_no_log_parameters_never_leave_the_module(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   sshd: Any) -> None:
    secret = f"Zq7-{os.getpid()}-pw"
    playbook = playbook_file(tmp_path, PLAYBOOK)
    results: dict[str, dict[str, Any]] = {}
    with socket.socket() as held:  # bound, never listening: a server that refuses while it is held
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        for tool in ("ansible", "rustle"):
            root = tmp_path / tool
            root.mkdir()
            h = sshd.host("box", tmp_path / f"remote-{tool}", ansible_python_interpreter=sys.executable)
            inventory = tmp_path / f"{tool}.yml"
            inventory.write_text(yaml.safe_dump({"all": {"hosts": {"box": dict(h.vars)}}}))
            extra = ["-e", json.dumps({"secret": secret, "http_port": port, "root": str(root),
                                       "user": f"rustle-nolog-{os.getpid()}"})]
            if tool == "ansible":
                proc = subprocess.run([str(ANSIBLE), "-i", str(inventory), str(playbook), *extra],
                                      capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                                      env=dict(os.environ, PYTHONWARNINGS="ignore", ANSIBLE_NOCOLOR="1",
                                               ANSIBLE_HOME=str(tmp_path / "ansible-home"),
                                               ANSIBLE_SSH_ARGS="-o ControlMaster=no"))  # no socket path
                assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
                assert secret not in proc.stdout + proc.stderr
            else:
                code, out, err = run_cli(capsys, str(playbook), "-i", str(inventory), "--run", "--output", "json",
                                         *extra)
                assert code == 0, err
                assert secret not in out and secret not in err  # --output json and the console
                doc = json.loads(out)
                assert doc["hosts"][0]["recap"]["failed"] == 0
            results[tool] = json.loads((root / "results.json").read_text())
    r, a = results["rustle"], results["ansible"]
    assert secret not in json.dumps(r), r
    for key in ("g", "d"):  # the masked URL, dest and message of ansible-core's get_url
        for field in ("url", "dest", "msg", "failed"):
            theirs = a[key][field].replace(str(tmp_path / "ansible"), str(tmp_path / "rustle")) \
                if isinstance(a[key][field], str) else a[key][field]
            assert r[key][field] == theirs, (key, field, r[key], a[key])
    assert r["g"]["url"] == f"http://****:****@127.0.0.1:{port}/f?token=********"
    assert r["w"]["failed"] and r["w"]["url"] == r["g"]["url"]  # uri: ansible-core's module masks its own
    assert r["d"]["dest"] == f"{tmp_path / 'rustle'}/missing-********/f"
    # every file rustle-deploy wrote, on the controller and on the host
    home = Path(os.environ["HOME"]) / ".rustle"
    carriers: dict[str, list[str]] = {}
    for top in (home, tmp_path / "remote-rustle"):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                hits = _hits(path, secret.encode())
                if hits:
                    carriers[str(path)] = hits
                    assert path.stat().st_mode & 0o077 == 0, f"{path} carries the plan but is {oct(path.stat().st_mode)}"
    assert carriers, "the artifact's plan must carry the task arguments"
    assert {h for hits in carriers.values() for h in hits} == {"zip:plan.json"}, carriers
