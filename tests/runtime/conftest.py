"""Fixtures for runtime tests: a small, isolated artifact builder and a runner.

``build_test_artifact`` mirrors docs/artifact.md (launcher line + deterministic zip with the
runtime, plan.json, files/<sha256>, manifest.json). The real compiler (rustle_deploy.compiler)
replaces it for end-to-end tests; keep this one small.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"
MAIN = (
    "import os, sys\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
    "from rustle_runtime.cli import main\n"
    "main()\n"
)


def _runtime_entries(with_jinja: bool) -> dict[str, bytes]:
    entries = {}
    for path in sorted((RUNTIME / "rustle_runtime").rglob("*.py")):
        entries[path.relative_to(RUNTIME).as_posix()] = path.read_bytes()
    if with_jinja:
        for package in ("jinja2", "markupsafe"):
            for path in sorted((RUNTIME / "_vendor" / package).glob("*.py")):
                entries[f"{package}/{path.name}"] = path.read_bytes()
    return entries


def build_test_artifact(
    tmp_path: Path, plan: dict[str, Any], files: dict[str, bytes] | None = None, *, with_jinja: bool = True
) -> Path:
    """Write an artifact for ``plan`` (and embedded ``files`` by sha256) and return its path."""
    entries = {"__main__.py": MAIN.encode(), "plan.json": json.dumps(plan).encode()}
    entries.update(_runtime_entries(with_jinja))
    for sha, data in (files or {}).items():
        assert hashlib.sha256(data).hexdigest() == sha
        entries[f"files/{sha}"] = data
    manifest = {
        "format": 1,
        "protocol": 1,
        "rustle_deploy_version": "test",
        "target": "py3-none-any",
        "binary_name": plan.get("binary_name", "test"),
        "plan_sha256": hashlib.sha256(entries["plan.json"]).hexdigest(),
        "entries": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(entries.items())},
    }
    entries["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name], compress_type=zipfile.ZIP_DEFLATED)
    path = tmp_path / f"artifact-{hashlib.sha256(buf.getvalue()).hexdigest()[:12]}.pyz"
    path.write_bytes(b"#!/usr/bin/env python3\n" + buf.getvalue())
    return path


def task(module: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """A compiled TASK (docs/artifact.md) with a generated id."""
    task.counter += 1  # type: ignore[attr-defined]
    out: dict[str, Any] = {
        "id": f"play-0/task_{task.counter}",  # type: ignore[attr-defined]
        "name": kw.pop("name", f"{module} {task.counter}"),  # type: ignore[attr-defined]
        "module": module,
        "args": args or {},
        "hosts": None,
        "when": [],
        "tags": [],
        "notify": [],
    }
    out.update(kw)
    return out


task.counter = 0  # type: ignore[attr-defined]


def make_plan(tasks, handlers=None, *, hosts=None, play_vars=None, plays=None) -> dict[str, Any]:
    hosts = hosts or {"h1": {"group_names": ["web"]}}
    if plays is None:
        plays = [{"name": "play", "hosts": list(hosts), "vars": play_vars or {}, "tasks": tasks,
                  "handlers": handlers or []}]
    return {
        "format": 1,
        "binary_name": "rustle-runner-test",
        "check_mode": False,
        "diff_mode": False,
        "hosts": hosts,
        "groups": {"all": list(hosts), "web": list(hosts), "ungrouped": []},
        "plays": plays,
    }


@dataclass
class RunResult:
    rc: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    def result(self, name: str) -> dict[str, Any]:
        found = [e for e in self.events if e["event"] in ("task_result", "handler_result") and e["task"] == name]
        assert len(found) == 1, (name, found, self.stderr)
        return found[0]

    @property
    def recap(self) -> dict[str, Any]:
        return self.of("recap")[0]


def run_artifact(artifact: Path, *args: str, python: str = sys.executable, cwd: Path | None = None,
                 timeout: float = 60, flags: tuple[str, ...] = ()) -> RunResult:
    proc = subprocess.run([python, *flags, str(artifact), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    events = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return RunResult(proc.returncode, proc.stdout, proc.stderr, events)


@pytest.fixture
def apply(tmp_path):
    """Build an artifact from tasks and run it for host h1; returns a RunResult."""

    def _apply(tasks, handlers=None, *run_args: str, files=None, with_jinja=True, **plan_kw):
        plan = make_plan(tasks, handlers, **plan_kw)
        artifact = build_test_artifact(tmp_path, plan, files, with_jinja=with_jinja)
        return run_artifact(artifact, "run", "--host", "h1", *run_args, cwd=tmp_path)

    return _apply
