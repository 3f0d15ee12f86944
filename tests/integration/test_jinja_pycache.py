"""Jinja2's bytecode kept on the host (docs/remote.md, "Jinja2's bytecode on the host"): a pyz
run that imports Jinja2 from its zip copies Jinja2's sources once to ``pyc/<sha256 of the
Jinja2 object>/`` in the remote directory, and Python keeps their bytecode there; a damaged
copy is made again; activation removes it with its object, and cleanup removes ``pyc/``. Real
deployments to localhost through the CLI, with the controller's own Python (so the artifact
runs from its zip)."""

from __future__ import annotations

import json
import stat
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy import cli
from rustle_deploy.deploy.host import artifact_objects

from ..bridge.conftest import write_plan


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    code = cli.main([*args, "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _said(remote: Path) -> list[str]:
    journal = sorted((remote / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)[-1]
    return [e.get("msg") for e in map(json.loads, journal.read_text().splitlines())
            if e["event"] == "task_result"]


def _jinja_object(artifact: Path) -> str:
    """The sha256 of the artifact's Jinja2 object (the run of its ``jinja2/`` entries)."""
    with zipfile.ZipFile(artifact) as zf:
        first = {i.header_offset: i.filename for i in zf.infolist()}
    (sha,) = [sha for offset, _, sha in artifact_objects(artifact) if first[offset].startswith("jinja2/")]
    return sha


def test_jinja2_bytecode_is_kept_on_the_host_per_object_and_removed_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTLE_FORMAT", "pyz")
    remote = rustle_home / ".rustle"
    inv = tmp_path / "inv.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    rendering = write_plan(tmp_path / "a", [
        {"name": "loop", "module": "debug", "args": {"msg": "{% for i in [1, 2] %}<{{ i }}>{% endfor %}"}}])

    doc = _run(capsys, str(rendering), "-i", str(inv), "--run")
    artifact = remote / "artifacts" / doc["hosts"][0]["sha256"]
    key = _jinja_object(artifact)
    copy = remote / "pyc" / key
    assert _said(remote) == ["<1><2>"]
    assert stat.S_IMODE((remote / "pyc").stat().st_mode) == 0o700
    with zipfile.ZipFile(artifact) as zf:
        sources = {i.filename: zf.read(i) for i in zf.infolist() if i.filename.startswith(("jinja2/", "markupsafe/"))}
    assert {str(p.relative_to(copy)): p.read_bytes() for p in copy.rglob("*.py")} == sources
    tag = sys.implementation.cache_tag
    assert (copy / "jinja2" / "__pycache__" / f"environment.{tag}.pyc").is_file()  # Python kept it
    assert (copy / "markupsafe" / "__pycache__" / f"__init__.{tag}.pyc").is_file()
    assert not (remote / "unpacked").exists()  # it ran from the zip
    kept = (copy / "jinja2" / "__pycache__" / f"environment.{tag}.pyc").stat().st_ino

    # the next run imports the same copy and its bytecode
    _run(capsys, str(rendering), "-i", str(inv), "--run")
    assert _said(remote) == ["<1><2>"]
    assert (copy / "jinja2" / "__pycache__" / f"environment.{tag}.pyc").stat().st_ino == kept

    # a damaged copy is made again from the artifact
    (copy / "jinja2" / "utils.py").write_text("raise SystemExit('damaged copy imported')\n")
    (copy / "markupsafe" / "_native.py").unlink()
    _run(capsys, str(rendering), "-i", str(inv), "--run")
    assert _said(remote) == ["<1><2>"]
    assert (copy / "jinja2" / "utils.py").read_bytes() == sources["jinja2/utils.py"]
    assert (copy / "markupsafe" / "_native.py").read_bytes() == sources["markupsafe/_native.py"]
    assert sorted(p.name for p in (remote / "pyc").iterdir()) == [key]

    # once no current or previous release holds the Jinja2 object, its copy goes with it
    for i, text in enumerate(("plain one", "plain two")):
        plain = write_plan(tmp_path / f"p{i}", [{"name": "loop", "module": "debug", "args": {"msg": text}}])
        doc = _run(capsys, str(plain), "-i", str(inv), "--run")
        assert _said(remote) == [text]
        with zipfile.ZipFile(remote / "artifacts" / doc["hosts"][0]["sha256"]) as zf:
            assert not any(n.startswith("jinja2/") for n in zf.namelist())
    assert key not in {p.name for p in (remote / "objects").iterdir()}
    assert list((remote / "pyc").iterdir()) == []

    # cleanup removes pyc/ (a copy made again first)
    _run(capsys, str(rendering), "-i", str(inv), "--run")
    assert copy.is_dir()
    _run(capsys, "--cleanup", "-i", str(inv))
    assert not (remote / "pyc").exists()
