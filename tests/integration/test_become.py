"""``become_user`` end to end over a real sshd: every task of the example plan becomes ``nobody``.

The controller deploys and runs through the real OpenSSH sshd as root; on the host the
runtime runs each module as ``nobody`` (tests/runtime/test_become.py has the module cases).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import EXAMPLE_PLAN

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]
USER = "nobody"


@pytest.fixture
def places() -> Iterator[tuple[Path, Path]]:
    """Directories every user can reach: one ``nobody`` owns, one it may not write."""
    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.skip("needs root and sudo to become 'nobody' without a password")
    if subprocess.run(["sudo", "-n", "-u", USER, "/usr/bin/python3", "-c", "pass"],
                      capture_output=True).returncode != 0:
        pytest.skip("'nobody' cannot start /usr/bin/python3")
    base = Path(tempfile.mkdtemp(prefix="rustle-become-ssh-", dir="/tmp"))
    base.chmod(0o755)
    owned, denied = base / "owned", base / "denied"
    owned.mkdir(mode=0o755)
    denied.mkdir(mode=0o755)
    info = pwd.getpwnam(USER)
    os.chown(owned, info.pw_uid, info.pw_gid)
    yield owned, denied
    shutil.rmtree(base, ignore_errors=True)


def plan_becoming(tmp_path: Path, user: str, hosts: list[str]) -> Path:
    """The example plan for ``hosts`` with every task becoming ``user``, under ``workdir``."""
    plan = json.loads(EXAMPLE_PLAN.read_text())
    plan["plays"][0]["vars"]["workdir"] = "{{ rustle_test_root }}"
    plan["hosts"] = plan["plays"][0]["hosts"] = plan["plays"][0]["batches"][0]["hosts"] = hosts
    for task in plan["plays"][0]["batches"][0]["tasks"]:
        task.update(hosts=hosts, become=True, become_user=user)
    dest = tmp_path / "plan"
    shutil.copytree(EXAMPLE_PLAN.parent, dest)
    (dest / "plan.json").write_text(json.dumps(plan))
    return dest / "plan.json"


def test_every_task_runs_as_the_become_user_over_ssh(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     sshd: Any, places: tuple[Path, Path]) -> None:
    owned, denied = places
    hosts = {}
    for name, root in (("owned", owned / "app"), ("denied", denied / "app")):
        h = sshd.host(name, tmp_path / f"remote-{name}", rustle_test_root=str(root),
                      ansible_python_interpreter="/usr/bin/python3")
        hosts[h.name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = plan_becoming(tmp_path, USER, sorted(hosts))
    code = main([str(plan), "-i", str(inv), "--run", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    by_name = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert by_name["owned"]["recap"]["failed"] == 0, by_name["owned"]
    assert by_name["denied"]["recap"]["failed"] == 1, by_name["denied"]
    assert f"There was an issue creating {denied}/app as requested: [Errno 13] Permission denied" in err
    assert not list(denied.iterdir())
    made = sorted(owned.rglob("*"))
    assert len(made) >= 8
    assert {pwd.getpwuid(p.lstat().st_uid).pw_name for p in made} == {USER}, [
        (str(p), p.lstat().st_uid) for p in made]
    assert "host = owned" in (owned / "app" / "etc" / "app.conf").read_text()
    remote = tmp_path / "remote-owned"
    assert oct(remote.stat().st_mode & 0o777) == "0o700", "the artifact stayed private"
