"""``become_user`` in the native runner: the same tasks as the pyz runtime, the same outcome.

Every module the runner implements, but ``assert``/``debug``, runs in a child
``rustle-runner become-worker`` started through the real ``sudo``/``su`` as the task's
become_user; the pyz format (its Python child) is the reference. The runner's own file stays
private: the child runs a copy that nobody may read.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import make_plan
from .conftest import lower
from .test_native_runs import cli, journal, recap

USER = "nobody"
PYTHON = "/usr/bin/python3"


@pytest.fixture
def places() -> Iterator[Path]:
    """A directory every user can reach, with ``<format>/ro`` (root's) and ``<format>/rw``
    (nobody's) for each format."""
    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.skip("needs root and sudo to become 'nobody' without a password")
    if subprocess.run(["sudo", "-n", "-u", USER, PYTHON, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip(f"'nobody' cannot start {PYTHON} (the pyz side's child)")
    base = Path(tempfile.mkdtemp(prefix="rustle-become-native-", dir="/tmp"))
    info = pwd.getpwnam(USER)
    for fmt in ("pyz", "native"):
        (base / fmt / "ro").mkdir(parents=True)
        (base / fmt / "rw").mkdir()
        os.chown(base / fmt / "rw", info.pw_uid, info.pw_gid)
    for d in [base, *base.rglob("*")]:
        d.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def tasks(root: str) -> list[dict[str, Any]]:
    nobody = {"become": True, "become_user": USER, "ignore_errors": True}
    out = []
    for side in ("ro", "rw"):
        d = f"{root}/{side}"
        out += [
            {"name": f"touch {side}", "module": "file", "args": {"path": f"{d}/touched", "state": "touch"}, **nobody},
            {"name": f"dir {side}", "module": "file", "args": {"path": f"{d}/dir", "state": "directory"}, **nobody},
            {"name": f"copy {side}", "module": "copy", "args": {"src": "files/motd.txt", "dest": f"{d}/motd"}, **nobody},
            {"name": f"content {side}", "module": "copy", "args": {"content": "x\n", "dest": f"{d}/x"}, **nobody},
            {"name": f"template {side}", "module": "template",
             "args": {"src": "templates/app.conf.j2", "dest": f"{d}/app.conf"}, **nobody},
            {"name": f"lines {side}", "module": "lineinfile",
             "args": {"path": f"{d}/lines", "line": "a = 1", "create": True}, **nobody},
        ]
    out += [
        {"name": "who", "module": "command", "args": {"_raw_params": "id -un"}, "register": "who", **nobody},
        {"name": "as asked", "module": "assert", "args": {"that": ["who.stdout == 'nobody'"]}, **nobody},
        {"name": "su", "module": "file", "args": {"path": f"{root}/rw/via-su", "state": "touch"},
         "become_method": "su", **nobody},
        {"name": "doas", "module": "file", "args": {"path": f"{root}/rw/never", "state": "touch"},
         "become_method": "doas", **nobody},
        {"name": "me", "module": "file", "args": {"path": f"{root}/rw/mine", "state": "touch"},
         "become": True, "become_user": "root"},
    ]
    return out


def owners(root: Path) -> dict[str, tuple[str, str, str]]:
    return {str(p.relative_to(root)): ("dir" if p.is_dir() else "file", pwd.getpwuid(p.lstat().st_uid).pw_name,
                                       oct(p.lstat().st_mode & 0o777)) for p in sorted(root.rglob("*"))}


def test_native_becomes_the_user_as_pyz_does(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             native_cache: Path, places: Path) -> None:
    copies = set(Path(tempfile.gettempdir()).glob("rustle-become-[0-9]*"))
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = places / fmt
        plan = make_plan(tmp_path / fmt, tasks(str(root)),
                         play_vars={"app_name": "hello", "app_port": 8080, "workers": 2})
        inv = tmp_path / fmt / "inv.yml"
        remote = tmp_path / fmt / "remote"
        inv.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "rustle_remote_dir": str(remote),
            "ansible_python_interpreter": PYTHON}}}}))
        runs = []
        for flags in (["--check", "--diff"], []):
            code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt, *flags)
            assert code == 0, err
            runs.append(recap(doc))
        events = [(e, t, s, re.sub(r"\.rustle_tmp_[0-9a-f]+", ".rustle_tmp_X", m or ""), d)
                  for e, t, s, m, _, d in journal(remote, root)]
        outcomes[fmt] = (runs, events, owners(root))
    assert outcomes["native"] == outcomes["pyz"]
    runs, events, tree = outcomes["native"]
    status = {t: (s, m) for _, t, s, m, _ in events[len(events) // 2:]}  # the second (real) run
    for name in ("touch ro", "dir ro", "copy ro", "content ro", "template ro", "lines ro"):
        assert status[name][0] == "failed", (name, status[name])
    assert status["copy ro"][1] == "Destination ROOT/ro not writable"
    assert "Permission denied" in status["touch ro"][1] and "Permission denied" in status["lines ro"][1]
    assert "without a password prompt" in status["doas"][1]
    assert status["as asked"][0] == "ok"
    assert not [k for k in tree if k.startswith("ro/")]
    assert {k: v[1] for k, v in tree.items()} == {
        "ro": "root", "rw": USER, "rw/app.conf": USER, "rw/dir": USER, "rw/lines": USER, "rw/mine": "root",
        "rw/motd": USER, "rw/touched": USER, "rw/via-su": USER, "rw/x": USER}
    remote = tmp_path / "native" / "remote"
    (runner,) = (remote / "runners").iterdir()
    assert oct(runner.stat().st_mode & 0o777) == "0o700"
    left = set(Path(tempfile.gettempdir()).glob("rustle-become-[0-9]*")) - copies
    # a copy of a runner still running is another test worker's (rustle-become-PID-...)
    assert not [p for p in left if not Path("/proc", p.name.split("-")[2]).exists()], "the runner's copy is gone"


def test_become_lowers_to_a_user_and_a_method(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [
        {"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": True, "become_user": "{{ app_user }}"},
        {"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": "{{ elevate }}", "become_method": "su"},
        {"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": False, "become_user": "nobody"},
    ], play_vars={"app_user": "www-data", "elevate": True})
    (doc,) = lower(plan).values()
    (host,) = doc["hosts"].values()
    assert [t["become"] for t in host["plays"][0]["tasks"]] == [
        {"user": "www-data", "method": "sudo"}, {"user": "root", "method": "su"}, None]
    assert json.dumps(doc).count('"become"') == 3
