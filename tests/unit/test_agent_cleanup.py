"""The agent's cleanup, run in-process on a temporary directory: which names and kinds it
removes (only what rustle-deploy writes, listed in deploy/agent.py's docstring), what it leaves
and reports, and that a dry run changes nothing. The same over SSH: tests/integration/test_cleanup.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.deploy import agent

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def cleanup(root: Path, dry_run: bool = False) -> dict[str, Any]:
    req = {"op": "cleanup", "remote_dir": str(root), "lock_timeout": 5, "dry_run": dry_run}
    result: dict[str, Any] = agent.op_cleanup(req, agent.Layout(str(root)), None)
    return result


def snapshot(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, os.readlink(p) if p.is_symlink() else None)
    return out


def deployed(root: Path, marker: bool = True) -> None:
    """What two deployments and a run leave, plus leftovers of cut uploads and crashes."""
    root.mkdir()
    if marker:
        (root / agent.CREATED_MARKER).write_text("")
    arts = root / "artifacts"
    arts.mkdir()
    for sha in (SHA_A, SHA_B):
        (arts / sha).write_bytes(b"#!/usr/bin/env python3\n")
    (arts / f".tmp-{SHA_C}-123").write_bytes(b"half")
    rel = root / "releases" / "rustle-runner-web"
    rel.mkdir(parents=True)
    (rel / "current").symlink_to(f"../../artifacts/{SHA_B}")
    (rel / "previous").symlink_to(f"../../artifacts/{SHA_A}")
    (rel / "current.tmp-77").symlink_to(f"../../artifacts/{SHA_B}")
    (root / "releases" / "from-history").mkdir()  # made by a deploy that never activated
    (root / "runs").mkdir()
    (root / "runs" / "r-0123456789ab.jsonl").write_text("")
    (root / "runs" / "custom-id.jsonl").write_text(json.dumps({"event": "run_start", "run_id": "custom-id"}) + "\n")
    (root / "unpacked" / SHA_B / "rustle_runtime").mkdir(parents=True)
    (root / "unpacked" / SHA_B / "__main__.py").write_text("")
    (root / "unpacked" / f"{SHA_A}.tmp-9").mkdir()
    (root / "runners").mkdir()
    (root / "runners" / SHA_C).write_bytes(b"\x7fELF")
    (root / "runners" / f"{SHA_C}.tmp.31").write_bytes(b"\x7fELF")
    (root / "history.jsonl").write_text(
        json.dumps({"op": "deploy", "binary_name": "from-history", "sha256": SHA_A}) + "\n" + "{torn"
    )
    (root / "lock").write_text("")


# Trees the cases below build, shared with tests/native/test_runner_cleanup.py (which runs every
# case through the runner's cleanup too). ``outside`` is a directory beside ``root``.


def plant_foreign(root: Path, path: str, kind: str, outside: Path) -> Path:
    """``deployed(root)`` plus one entry rustle-deploy did not make (``path``, a ``kind`` of
    file, dir or symlink to ``outside``); the entry."""
    deployed(root)
    if path == "history.jsonl/":
        (root / "history.jsonl").unlink()
    target = root / path.rstrip("/")
    if kind == "dir":
        target.mkdir()
    elif kind == "symlink":
        target.symlink_to(outside)
    else:
        target.write_text('{"event": "run_start", "run_id": "someone-else"}\n')
    return target


def links_out(root: Path, outside: Path) -> None:
    """``deployed(root)`` whose directories are links to ``outside`` (holding ``sub/``, SHA_A)."""
    deployed(root)
    for name in ("artifacts", "runs", "unpacked", "runners"):
        os.rename(root / name, root.parent / f"moved-{name}")
        (root / name).symlink_to(outside / "sub" if name != "artifacts" else outside)
    os.unlink(root / "releases" / "rustle-runner-web" / "previous")
    (root / "releases" / "rustle-runner-web" / "previous").symlink_to(outside / SHA_A)  # ours: unlinked
    (root / "releases" / "linked").symlink_to(outside / "sub")
    (root / "history.jsonl").unlink()
    (root / "history.jsonl").symlink_to(outside / SHA_A)


def lock_link(root: Path, outside: Path) -> None:
    """``deployed(root)`` whose lock is a symlink to ``outside``."""
    deployed(root)
    (root / "lock").unlink()
    (root / "lock").symlink_to(outside)


def theirs_among_releases(root: Path) -> None:
    """``deployed(root)`` with a foreign directory among the releases."""
    deployed(root)
    (root / "releases" / "theirs").mkdir()
    (root / "releases" / "theirs" / "data.txt").write_text("x")


def test_everything_rustle_deploy_made_is_removed_with_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "r"
    deployed(root)
    planned = cleanup(root, dry_run=True)
    result = cleanup(root)
    assert not root.exists()
    assert result["left"] == [] and result["failed"] == [] and result["remote_dir_removed"] is True
    assert sorted(result["removed"]) == sorted(planned["removed"])
    assert {"artifacts/" + SHA_A, "releases/rustle-runner-web/current", "releases/from-history/",
            "runs/custom-id.jsonl", f"unpacked/{SHA_B}/", "runners/" + SHA_C, "history.jsonl", "lock"} <= set(result["removed"])


def test_a_directory_rustle_deploy_did_not_create_is_emptied_but_kept(tmp_path: Path) -> None:
    root = tmp_path / "r"
    deployed(root, marker=False)
    result = cleanup(root)
    assert root.is_dir() and os.listdir(root) == []
    assert result["remote_dir_removed"] is False and "did not create" in result["remote_dir_kept"]


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("notes.txt", "file"),
        ("state.db", "file"),
        ("artifacts/notes.txt", "file"),
        (f"artifacts/{SHA_C.upper()}", "file"),
        (f"artifacts/{SHA_C}.pyz", "file"),
        (f"artifacts/{SHA_C}/", "dir"),
        ("releases/notes.txt", "file"),
        ("releases/mine/", "dir"),
        ("releases/.hidden/", "dir"),
        ("releases/rustle-runner-web/notes", "file"),
        ("releases/rustle-runner-web/latest", "symlink"),
        ("runs/notes.txt", "file"),
        ("runs/other.jsonl", "file"),
        ("runs/r-0123456789ab/", "dir"),
        (f"unpacked/{SHA_C}", "file"),
        ("unpacked/mine/", "dir"),
        (f"runners/{SHA_C}x", "file"),
        ("history.jsonl/", "dir"),
    ],
)
def test_each_foreign_entry_is_left_and_reported(tmp_path: Path, path: str, kind: str) -> None:
    root = tmp_path / "r"
    target = plant_foreign(root, path, kind, tmp_path)
    before = snapshot(target) if kind == "dir" else None
    result = cleanup(root)
    assert os.path.lexists(target)
    if before is not None:
        assert snapshot(target) == before
    left = {e["path"]: e for e in result["left"]}
    assert left[path]["kind"] == kind and left[path]["why"], left
    # every directory on the way is kept, and says why; the marker stays with the directory
    assert result["remote_dir_removed"] is False and result["remote_dir_kept"]
    assert (root / agent.CREATED_MARKER).exists()
    parent = path.rstrip("/").rpartition("/")[0]
    while parent:
        assert left[parent + "/"]["kind"] == "dir", left
        parent = parent.rpartition("/")[0]
    assert not (root / "artifacts" / SHA_A).exists() and not (root / "lock").exists()


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / SHA_A).write_text("x")
    (outside / "sub" / SHA_B).write_text("x")
    before = snapshot(outside)
    root = tmp_path / "r"
    links_out(root, outside)
    result = cleanup(root)
    assert snapshot(outside) == before
    left = {e["path"]: e["kind"] for e in result["left"]}
    assert left == {"artifacts": "symlink", "runs": "symlink", "unpacked": "symlink", "runners": "symlink",
                    "releases/linked": "symlink", "releases/from-history/": "dir", "releases/": "dir",
                    "history.jsonl": "symlink"}
    assert "releases/rustle-runner-web/previous" in result["removed"]


def test_a_lock_that_is_a_symlink_is_never_opened(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    root = tmp_path / "r"
    lock_link(root, outside)
    with pytest.raises(agent.AgentError, match="symbolic link"):
        cleanup(root)
    assert not outside.exists()
    assert (root / "artifacts" / SHA_A).exists()


def test_a_dry_run_changes_nothing_and_reports_the_same(tmp_path: Path) -> None:
    root = tmp_path / "r"
    deployed(root)
    (root / "notes.txt").write_text("mine")
    (root / "lock").unlink()
    before = snapshot(root)
    planned = cleanup(root, dry_run=True)
    assert snapshot(root) == before
    assert planned["dry_run"] is True and planned["remote_dir_removed"] is False
    result = cleanup(root)
    assert sorted(result["removed"]) == sorted(planned["removed"])
    assert result["left"] == planned["left"]
    assert sorted(os.listdir(root)) == sorted(["notes.txt", agent.CREATED_MARKER])


def test_nothing_there_is_fine(tmp_path: Path) -> None:
    result = cleanup(tmp_path / "absent")
    assert result["removed"] == [] and result["left"] == [] and result["remote_dir_removed"] is False
    assert not (tmp_path / "absent").exists()


def test_a_foreign_directory_among_the_releases_is_not_claimed(tmp_path: Path) -> None:
    root = tmp_path / "r"
    theirs_among_releases(root)
    result = cleanup(root)
    left = {e["path"]: e for e in result["left"]}
    assert left["releases/theirs/"]["ours"] is False and left["releases/theirs/data.txt"]["ours"] is False
    assert left["releases/"]["ours"] is True
    assert (root / "releases" / "theirs" / "data.txt").read_text() == "x"
    assert not (root / "releases" / "rustle-runner-web").exists()
