"""deploy/host.py's ``artifact_objects``: the runs of a pyz artifact's bytes that other
artifacts share (docs/remote.md, "Objects artifacts share"), found from the zip's own directory."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from rustle_deploy.deploy.host import OBJECT_MIN, artifact_objects


def _artifact(path: Path, entries: dict[str, bytes], prefix: bytes = b"#!/usr/bin/env python3\n") -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), entries[name],
                        compress_type=zipfile.ZIP_DEFLATED)
    path.write_bytes(prefix + buf.getvalue())
    return path


def test_each_shared_prefix_is_one_run_the_same_in_any_artifact(tmp_path: Path) -> None:
    lib = {f"bridge/lib/ansible/m{i}.py": os.urandom(OBJECT_MIN) for i in range(3)}
    runtime = {f"rustle_runtime/r{i}.py": os.urandom(OBJECT_MIN) for i in range(2)}
    small = {"markupsafe/__init__.py": b"x = 1\n"}  # under OBJECT_MIN: not worth a file
    a = _artifact(tmp_path / "a", {**lib, **runtime, **small, "plan.json": b"{}", "files/1": b"one"})
    b = _artifact(tmp_path / "b", {**lib, **runtime, **small, "plan.json": b'{"changed": 1}', "files/2": b"x" * 999})
    objs_a, objs_b = artifact_objects(a), artifact_objects(b)
    assert len(objs_a) == 2 and [(n, s) for _, n, s in objs_a] == [(n, s) for _, n, s in objs_b]
    for path, objs in ((a, objs_a), (b, objs_b)):
        data = path.read_bytes()
        for offset, size, sha in objs:
            assert hashlib.sha256(data[offset:offset + size]).hexdigest() == sha
    assert objs_a[-1][0] != objs_b[-1][0]  # the runtime, after plan.json: at another place in each


def test_no_objects_in_what_is_not_a_zip_or_has_none(tmp_path: Path) -> None:
    native = tmp_path / "native"
    native.write_bytes(b'{"format": "rustle-native", "runner": "ab"}\n' + os.urandom(100))
    assert artifact_objects(native) == ()
    assert artifact_objects(tmp_path / "missing") == ()
    assert artifact_objects(_artifact(tmp_path / "plain", {"plan.json": b"{}"})) == ()
