"""The facts the native runner gathers since issue 16 (fqdn, domain, userspace_bits and
userspace_architecture, date_time) against ansible-core's setup on this machine: one
ansible-playbook run (local connection, gather_facts) and one ``--format native`` run of the
same playbook, which writes the facts into a file. Equal, but for the parts of date_time that
move between two runs (compared by shape and within ten minutes)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT
from ..integration.conftest import ansible_env
from .test_native_runs import cli, local_inventory

pytestmark = pytest.mark.ansible

BOOK = """
- hosts: all
  gather_facts: true
  tasks:
    - name: facts
      copy:
        dest: "ROOT/facts.txt"
        content: "{{ ansible_fqdn }}\\n{{ ansible_domain }}\\n{{ ansible_userspace_bits }}\\n\\
          {{ ansible_userspace_architecture }}\\n{{ ansible_date_time }}\\n{{ ansible_facts['date_time'].tz }}\\n\\
          {{ ansible_facts.fqdn }}\\n"
"""
# the values of date_time that move with the clock: compared as numbers, within this many seconds
MOVING = ("epoch", "epoch_int", "iso8601", "iso8601_micro", "iso8601_basic", "iso8601_basic_short", "date",
          "time", "year", "month", "day", "hour", "minute", "second", "weekday", "weekday_number",
          "weeknumber")
SLACK = 600


def _facts(text: str) -> dict[str, Any]:
    fqdn, domain, bits, arch, date_time, tz, fqdn_again = text.splitlines()
    return {"fqdn": fqdn, "domain": domain, "bits": bits, "arch": arch, "date_time": ast.literal_eval(date_time),
            "tz": tz, "fqdn_again": fqdn_again}


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: str) -> dict[str, Any]:
    root = tmp_path / tool / "root"
    root.mkdir(parents=True)
    book = tmp_path / tool / "site.yml"
    book.write_text(BOOK.replace("ROOT", str(root)))
    if tool == "ansible":
        inv = tmp_path / tool / "inv.ini"
        inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inv), str(book)], capture_output=True, text=True,
                              env=ansible_env(tmp_path), timeout=ORACLE_TIMEOUT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        inv = local_inventory(tmp_path / tool / "inv.ini", tmp_path / tool / "remote")
        code, _, err = cli(capsys, str(book), "-i", str(inv), "--run", "--output", "json", "--format", "native", "-v")
        assert code == 0, err
        assert "native: rustle-runner for" in err, err
    return _facts((root / "facts.txt").read_text())


def test_fqdn_domain_userspace_and_date_time_as_ansible_core_gathers_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path) -> None:
    theirs = _run(tmp_path, capsys, "ansible")
    ours = _run(tmp_path, capsys, "native")
    theirs_dt, ours_dt = theirs.pop("date_time"), ours.pop("date_time")
    assert ours == theirs
    assert ours["fqdn"] == ours["fqdn_again"] and ours["bits"] in ("32", "64")
    assert list(ours_dt) == list(theirs_dt)
    assert {k: v for k, v in ours_dt.items() if k not in MOVING} == \
        {k: v for k, v in theirs_dt.items() if k not in MOVING}  # tz, tz_dst, tz_offset
    assert abs(int(ours_dt["epoch"]) - int(theirs_dt["epoch"])) < SLACK
    for dt in (ours_dt, theirs_dt):  # each consistent in itself
        assert dt["epoch"] == dt["epoch_int"]
        assert dt["iso8601_basic"].startswith(dt["iso8601_basic_short"]) and len(dt["iso8601_basic"]) == 21
        assert dt["date"] == f"{dt['year']}-{dt['month']}-{dt['day']}"
        assert dt["time"] == f"{dt['hour']}:{dt['minute']}:{dt['second']}"
        assert dt["iso8601_micro"][:19] == dt["iso8601"][:19] and dt["iso8601_micro"].endswith("Z")
