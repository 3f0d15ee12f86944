"""Facts over a real sshd (issue 14): what a host gathers is what ansible-core's setup gathers.

The sshd runs on this machine, so ``ansible localhost -m setup`` (local connection, the same
Python) is the oracle for the facts a run over SSH gathers: ``ansible_facts`` read before any
setup (every collector, gathered lazily) and a ``setup`` task's, each written to a file as JSON
and compared as tests/runtime/test_facts_ansible.py compares them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT, make_plan
from ..runtime.test_facts_ansible import NOT_GATHERED, differences
from ..runtime.test_modules_support import VENV_BIN, needs_ansible
from .test_cli import run_cli

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]


def ansible_setup(tmp_path: Path) -> dict[str, Any]:
    """``ansible localhost -m setup`` under this interpreter: its ansible_facts."""
    needs_ansible()
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ahome"), ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOAD_CALLBACK_PLUGINS="0")
    proc = subprocess.run([str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-m", "setup",
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=ORACLE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout[proc.stdout.index("{"):])["ansible_facts"]


def test_facts_gathered_over_ssh_are_ansibles(tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any) -> None:
    lazily, gathered = tmp_path / "lazily.json", tmp_path / "setup.json"
    tasks = [
        {"name": "lazily", "module": "copy", "args": {"content": "{{ ansible_facts | to_json }}", "dest": str(lazily)}},
        {"name": "setup", "module": "setup", "args": {}, "register": "r"},
        {"name": "gathered", "module": "copy", "args": {"content": "{{ r.ansible_facts | to_json }}",
                                                        "dest": str(gathered)}},
    ]
    plan = make_plan(tmp_path, tasks, hosts=("box",))
    h = sshd.host("box", tmp_path / "remote", ansible_python_interpreter=sys.executable)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {h.name: dict(h.vars)}}}))
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, out + err
    theirs = ansible_setup(tmp_path)
    ours = json.loads(gathered.read_text())
    assert sorted(ours) == sorted(set(theirs) - NOT_GATHERED)
    assert not differences(theirs, ours)
    # ansible_facts holds the same facts without their prefix (gather_subset and module_setup
    # are setup's result, not facts)
    plain = {"ansible_" + k if not k.startswith("ansible_") else k: v for k, v in json.loads(lazily.read_text()).items()}
    expected = {k: v for k, v in theirs.items() if k not in ("gather_subset", "module_setup")}
    assert sorted(plain) == sorted(set(expected) - NOT_GATHERED)
    assert not differences(expected, plain)
