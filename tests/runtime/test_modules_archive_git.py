"""Tests of unarchive (real tar/zip archives, differential for tar) and git (real repos)."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from .test_modules_support import (
    Case,
    Differential,
    FakeCtx,
    assert_same,
    needs_ansible,
    runtime_module,
    sha,
)

archive = runtime_module("archive")
git = runtime_module("git")

unarchive = archive.MODULES["unarchive"]


def _tar_bytes(entries: dict[str, bytes | str | None], mode: str = "w:gz") -> bytes:
    """name -> bytes (file), str (symlink target) or None (directory). Gzip's header carries no
    time (the same bytes every run: a recorded oracle is keyed by them)."""
    gz = mode == "w:gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w" if gz else mode) as tar:
        for name, value in entries.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size, info.mode = len(value), 0o640
                tar.addfile(info, io.BytesIO(value))
    return gzip.compress(buf.getvalue(), mtime=0) if gz else buf.getvalue()


APP_TAR = _tar_bytes({"app": None, "app/bin": None, "app/bin/run": b"#!/bin/sh\n",
                      "app/README": b"hello\n", "app/current": "README"})


def _archive_at(rel: str, data: bytes):
    def setup(d: Path) -> None:
        (d / "dest").mkdir()
        (d / rel).write_bytes(data)
    return setup


def _dest_only(d: Path) -> None:
    (d / "dest").mkdir()


@pytest.mark.ansible
def test_unarchive_tar_matches_ansible(tmp_path):
    needs_ansible()
    cases = [
        Case("remote tar", {"src": "{d}/a.tgz", "dest": "{d}/dest", "remote_src": True},
             setup=_archive_at("a.tgz", APP_TAR), check=False),
        Case("remote tar exclude", {"src": "{d}/a.tgz", "dest": "{d}/dest", "remote_src": True,
                                    "exclude": ["app/README", "app/current"]},
             setup=_archive_at("a.tgz", APP_TAR), check=False),
        Case("embedded tar", {"src": "{src}/a.tgz", "dest": "{d}/dest"}, setup=_dest_only,
             files={"a.tgz": APP_TAR}, check=False),
        Case("missing dest", {"src": "{d}/a.tgz", "dest": "{d}/nope", "remote_src": True},
             setup=lambda d: (d / "a.tgz").write_bytes(APP_TAR), check=False),
    ]
    # ansible-core skips unarchive in check mode for tar ("does not support check mode when
    # using gtar"); ours reports what would change, tested in the zip test below.
    outcomes = Differential(tmp_path, "unarchive", archive.MODULES).run(cases)
    for case in cases:
        assert_same(outcomes[case.name])


def test_unarchive_zip_embedded_idempotent_and_check_mode(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/", "")
        z.writestr("pkg/a.txt", "a\n")
        z.writestr("pkg/sub/b.txt", "b\n")
    data = buf.getvalue()
    args = {"src": "p.zip", "dest": str(tmp_path), "_rustle_files": {"p.zip": sha(data)},
            "list_files": True}
    ctx = FakeCtx(files={sha(data): data})
    check = unarchive(FakeCtx(check_mode=True, files=ctx.blobs), dict(args))
    assert check["changed"] and not (tmp_path / "pkg").exists()
    res = unarchive(ctx, dict(args))
    assert res["changed"] and res["handler"] == "ZipArchive"
    assert sorted(res["files"]) == ["pkg/", "pkg/a.txt", "pkg/sub/b.txt"]
    assert (tmp_path / "pkg/sub/b.txt").read_text() == "b\n"
    assert unarchive(ctx, dict(args))["changed"] is False
    (tmp_path / "pkg/a.txt").write_text("edited\n")
    assert unarchive(ctx, dict(args))["changed"] is True
    assert (tmp_path / "pkg/a.txt").read_text() == "a\n"


@pytest.mark.parametrize("entries,needle", [
    ({"../evil": b"x"}, "outside of the destination"),
    ({"/abs/evil": b"x"}, "outside of the destination"),
    ({"ok/../../evil": b"x"}, "outside of the destination"),
    ({"link": "/etc/passwd"}, "points outside"),
    ({"link": "../../x"}, "points outside"),
])
def test_unarchive_refuses_path_escapes(tmp_path, entries, needle):
    dest = tmp_path / "dest"
    dest.mkdir()
    data = _tar_bytes(entries, "w")
    (tmp_path / "a.tar").write_bytes(data)
    res = unarchive(FakeCtx(), {"src": str(tmp_path / "a.tar"), "dest": str(dest),
                                "remote_src": True})
    assert res["failed"] and needle in res["msg"]
    assert os.listdir(dest) == [] and not (tmp_path / "evil").exists()


def test_unarchive_refuses_writing_through_symlinked_dir(tmp_path):
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    os.symlink(outside, dest / "sub")
    (tmp_path / "a.tar").write_bytes(_tar_bytes({"sub/file": b"x"}, "w"))
    res = unarchive(FakeCtx(), {"src": str(tmp_path / "a.tar"), "dest": str(dest),
                                "remote_src": True})
    assert res["failed"] and "symlink" in res["msg"] and os.listdir(outside) == []


# ------------------------------------------------------------------------------------- git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _sh(*argv: str, cwd: Path) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e")
    return subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path):
    src = tmp_path / "upstream"
    src.mkdir()
    _sh("git", "init", "-q", "-b", "main", cwd=src)
    (src / "f").write_text("1\n")
    _sh("git", "add", "f", cwd=src)
    _sh("git", "commit", "-q", "-m", "one", cwd=src)
    _sh("git", "tag", "v1", cwd=src)
    return src


@needs_git
def test_git_clone_update_tag_and_local_changes(tmp_path, upstream):
    g = git.MODULES["git"]
    dest = tmp_path / "checkout"
    repo = str(upstream)
    first_sha = _sh("git", "rev-parse", "HEAD", cwd=upstream)
    check = g(FakeCtx(check_mode=True), {"repo": repo, "dest": str(dest)})
    assert check["changed"] and check["after"] == first_sha and not dest.exists()
    res = g(FakeCtx(), {"repo": repo, "dest": str(dest)})
    assert res["changed"] and res["before"] is None and res["after"] == first_sha
    assert g(FakeCtx(), {"repo": repo, "dest": str(dest)})["changed"] is False
    (upstream / "f").write_text("2\n")
    _sh("git", "commit", "-q", "-am", "two", cwd=upstream)
    second = _sh("git", "rev-parse", "HEAD", cwd=upstream)
    check = g(FakeCtx(check_mode=True), {"repo": repo, "dest": str(dest), "version": "main"})
    assert check["changed"] and check["after"] == second
    assert (dest / "f").read_text() == "1\n"
    res = g(FakeCtx(), {"repo": repo, "dest": str(dest), "version": "main"})
    assert res["changed"] and res["before"] == first_sha and res["after"] == second
    assert (dest / "f").read_text() == "2\n"
    res = g(FakeCtx(), {"repo": repo, "dest": str(dest), "version": "v1"})
    assert res["changed"] and res["after"] == first_sha and (dest / "f").read_text() == "1\n"
    (dest / "f").write_text("local\n")
    blocked = g(FakeCtx(), {"repo": repo, "dest": str(dest), "version": "main"})
    assert blocked["failed"] and "Local modifications" in blocked["msg"]
    forced = g(FakeCtx(), {"repo": repo, "dest": str(dest), "version": "main", "force": True})
    assert forced["changed"] and (dest / "f").read_text() == "2\n"
    assert g(FakeCtx(), {"repo": repo, "dest": str(dest), "update": False})["changed"] is False
    bad = g(FakeCtx(), {"repo": repo, "dest": str(dest), "version": "no-such-branch"})
    assert bad["failed"] and "no-such-branch" in bad["msg"]
