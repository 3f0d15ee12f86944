"""rustle-runner's agent cleans up exactly as deploy/agent.py does (issue 16): the same remote
dir, copied, cleaned once by each; the replies and what is left must be the same, for every
case tests/unit/test_agent_cleanup.py checks. Over a host without Python: tests/native/test_auto.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.compiler.runner import RunnerBinary
from rustle_deploy.deploy import agent

from ..unit.test_agent_cleanup import (
    SHA_A,
    SHA_B,
    SHA_C,
    cleanup,
    deployed,
    links_out,
    lock_link,
    plant_foreign,
    theirs_among_releases,
)


def runner_cleanup(runner: RunnerBinary, root: Path, dry_run: bool = False) -> dict[str, Any]:
    """The runner's agent's reply to a cleanup of ``root``, without the keys only it adds."""
    req = {"op": "cleanup", "remote_dir": str(root), "lock_timeout": 5, "dry_run": dry_run}
    proc = subprocess.run([str(runner.path), "agent"], input=json.dumps(req) + "\n", capture_output=True,
                          text=True, timeout=60, check=False)
    reply: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    if reply["agent"] == "error":
        assert proc.returncode == 20, proc
        return {k: reply[k] for k in ("agent", "kind", "message")}
    assert proc.returncode == 0, proc
    for k in ("agent", "op", "protocol", "runner", "system", "machine", "libc", "duration"):
        del reply[k]
    return reply


def python_cleanup(root: Path, dry_run: bool = False) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(cleanup(root, dry_run)))
    except agent.AgentError as exc:
        return {"agent": "error", "kind": exc.kind, "message": str(exc)}


def shape(root: Path) -> dict[str, Any]:
    """Each entry under ``root``: its kind and a file's bytes or a link's target (``root``'s
    parent written BASE)."""
    out: dict[str, Any] = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("symlink", os.readlink(p).replace(str(root.parent), "BASE"))
            elif p.is_dir():
                out[rel] = ("dir", None)
            elif not p.is_file():
                out[rel] = ("other", None)
            else:
                out[rel] = ("file", p.read_bytes())
    return out


def foreign(path: str, kind: str) -> Callable[[Path], None]:
    def plant(root: Path) -> None:
        plant_foreign(root, path, kind, root.parent / "outside")
    return plant


def more_among_releases(root: Path) -> None:
    """A foreign release directory, carry files (and names that are not), no lock."""
    theirs_among_releases(root)
    (root / "runs" / f"d-20260101T120000-abcdef-r-{'1' * 12}-h-{'2' * 12}.vars.json").write_text("{}")
    (root / "runs" / "d-20260101T120000-abcdef.vars.json.tmp-5").write_text("{}")
    (root / "runs" / "d-2026T1-abcdef.vars.json").write_text("{}")  # not a carry id
    (root / "notes.txt").write_text("mine")
    (root / "lock").unlink()


def bridge(root: Path) -> None:
    """The module bridge's directory: a log, and the socket of a kept server that is gone."""
    import socket

    deployed(root)
    (root / "bridge").mkdir(mode=0o700)
    (root / "bridge" / f"{'e' * 16}.log").write_text("log")
    (root / "bridge" / "notes.txt").write_text("mine")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(root / "bridge" / ("e" * 16)))


CASES: dict[str, Callable[[Path], None]] = {
    "bridge": bridge,
    "everything ours": deployed,
    "no marker": lambda root: deployed(root, marker=False),
    "symlinks out": lambda root: links_out(root, root.parent / "outside"),
    "lock is a symlink": lambda root: lock_link(root, root.parent / "outside" / "lock-target"),
    "foreign release dir, carry files, no lock": more_among_releases,
    "absent": lambda root: None,
    "a file": lambda root: root.write_text("x"),
    **{f"foreign {p}": foreign(p, k) for p, k in [
        ("notes.txt", "file"), ("state.db", "file"), (f"artifacts/{SHA_C.upper()}", "file"),
        (f"artifacts/{SHA_C}.pyz", "file"), (f"artifacts/{SHA_C}/", "dir"), ("releases/.hidden/", "dir"),
        ("releases/rustle-runner-web/latest", "symlink"), ("runs/other.jsonl", "file"),
        ("runs/r-0123456789ab/", "dir"), (f"unpacked/{SHA_C}", "file"), (f"runners/{SHA_C}x", "file"),
        ("history.jsonl/", "dir"), (f"unpacked/{SHA_B}x/", "dir")]},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_runners_cleanup_is_agent_pys(tmp_path: Path, runner: RunnerBinary, case: str) -> None:
    results = {}
    for who in ("python", "runner"):
        base = tmp_path / who
        (base / "outside" / "sub").mkdir(parents=True)
        (base / "outside" / SHA_A).write_text("x")
        root = base / "r"
        CASES[case](root)
        outside_before = shape(base / "outside")
        before = shape(root)
        do = python_cleanup if who == "python" else (lambda r, dry_run=False: runner_cleanup(runner, r, dry_run))
        dry = do(root, dry_run=True)
        assert shape(root) == before, "a dry run changes nothing"
        real = do(root)
        assert shape(base / "outside") == outside_before, "nothing outside is touched"
        for reply in (dry, real):
            if "remote_dir" in reply:
                assert reply["remote_dir"] == str(root)
                reply["remote_dir"] = "R"
            if "message" in reply:
                reply["message"] = reply["message"].replace(str(root), "R")
        results[who] = (dry, real, shape(root))
    assert results["runner"] == results["python"]
    shutil.rmtree(tmp_path)
