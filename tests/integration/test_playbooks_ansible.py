"""Differential: each playbook of tests/data/playbooks/ applied by ansible-playbook and by
rustle-deploy (local connection) to separate temporary trees.

Both must leave the same files (content, mode, links; the tree's own path is replaced by
``OUT`` in contents), report the same ``changed``, ``failed`` and ``rescued`` counts, and agree
on whether the run failed. One ansible-playbook run per playbook. A case directory holds
``site.yml`` (with its roles, group_vars, ...), optionally ``inventory.ini`` (``{python}`` and
``{remote}`` are filled in) and ``case.yml``: ``args`` (extra command-line arguments for both
tools, e.g. ``[--tags, web]`` or ``[--check]``), ``inventory`` (another inventory path),
``succeeds`` (true: ansible-playbook must succeed, so the case cannot pass by both tools failing),
``recap`` (more recap counts to compare, e.g. ``[ok, skipped]``).

ansible-playbook's side is recorded (tests/oracle.py): its exit code, recap and tree, keyed by
the case's files, command line and environment; rustle-deploy always runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from .. import oracle
from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT, REPO
from .conftest import ansible_env, recaps

pytestmark = [pytest.mark.ansible, pytest.mark.oracle, pytest.mark.usefixtures("rustle_home")]

CASES = REPO / "tests" / "data" / "playbooks"
ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)
DEFAULT_INVENTORY = "localhost ansible_connection=local ansible_python_interpreter={python} rustle_remote_dir={remote}\n"


def cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "site.yml").is_file())


def tree(root: Path, tmp_path: Path) -> dict[str, Any]:
    """The files under ``root``, the same way for both tools: ``root`` written ``OUT`` and the
    test's tmp dir ``{tmp}`` (tests/oracle.py's ``norm``) in links and contents."""
    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ["link", os.readlink(p).replace(str(root), "OUT")]
        elif p.is_dir():
            out[rel] = ["dir", oct(p.stat().st_mode & 0o777)]
        else:
            out[rel] = ["file", oct(p.stat().st_mode & 0o777),
                        oracle.blob(p.read_bytes().replace(str(root).encode(), b"OUT"))]
    return oracle.norm(out, {"{tmp}": tmp_path})


def prepare(case: str, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    work = tmp_path / "work"
    shutil.copytree(CASES / case, work)
    conf = (yaml.safe_load((work / "case.yml").read_text()) if (work / "case.yml").exists() else {}) or {}
    inv = work / conf.get("inventory", "inventory.ini")
    text = inv.read_text() if inv.exists() else DEFAULT_INVENTORY
    inv.write_text(text.format(python=sys.executable, remote=tmp_path / "remote"))
    return work, inv, conf


def run_ansible(case: str, work: Path, inv: Path, out: Path, args: list[str], tmp_path: Path) -> dict[str, Any]:
    """ansible-playbook's exit code, recap, tree and console log (recorded: tests/oracle.py)."""
    env = ansible_env(tmp_path, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_PIPELINING="True")
    argv = [str(ANSIBLE), "-i", str(inv), "site.yml", "-e", f"out={out}", *args]
    places = {"{tmp}": tmp_path}
    inputs = oracle.norm({"case": oracle.files(CASES / case), "inventory": inv.read_text(), "argv": argv,
                          "cwd": str(work), "env": oracle.env(env)}, places)

    def run() -> dict[str, Any]:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, timeout=ORACLE_TIMEOUT)
        return oracle.norm({"code": proc.returncode, "recap": recaps(proc.stdout), "tree": tree(out, tmp_path),
                            "log": proc.stdout + proc.stderr}, places)

    result: dict[str, Any] = oracle.recorded("playbooks", inputs, run, volatile=("log",))
    return result


def run_rustle(work: Path, inv: Path, out: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, int]], str]:
    cwd = os.getcwd()
    os.chdir(work)
    try:
        code = main(["site.yml", "-i", str(inv), "--run", "--output", "json", "-e", f"out={out}", *args])
    finally:
        os.chdir(cwd)
    stdout, stderr = capsys.readouterr()
    recaps: dict[str, dict[str, int]] = {}
    if stdout.strip():
        doc = json.loads(stdout)
        for host in doc.get("hosts", []):
            recaps[host["name"]] = host.get("recap") or {}
    return code, recaps, stdout + stderr


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed in this environment")
@pytest.mark.parametrize("case", cases())
def test_playbook_matches_ansible(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work, inv, conf = prepare(case, tmp_path)
    args = [str(a) for a in conf.get("args", [])]
    a_out, r_out = tmp_path / "a", tmp_path / "r"
    a_out.mkdir()
    r_out.mkdir()
    a = run_ansible(case, work, inv, a_out, args, tmp_path)
    a_code, a_recap, a_log = a["code"], a["recap"], a["log"]
    assert a_recap, f"no recap from ansible-playbook:\n{a_log}"
    if conf.get("succeeds"):  # a case whose point is what a successful run writes
        assert a_code == 0, a_log
    r_code, r_recap, r_log = run_rustle(work, inv, r_out, args, capsys)
    assert (a_code == 0) == (r_code == 0), f"ansible exit {a_code}, rustle exit {r_code}\n{a_log}\n{r_log}"
    for host, counts in a_recap.items():
        ours = r_recap.get(host, {})
        for key in ("changed", "failed", "rescued", *conf.get("recap", [])):
            a_val = counts.get(key, 0)
            assert ours.get(key, 0) == a_val, f"{host} {key}: ansible {a_val}, rustle {ours.get(key, 0)}\n{a_log}\n{r_log}"
    assert tree(r_out, tmp_path) == a["tree"], f"{a_log}\n{r_log}"
