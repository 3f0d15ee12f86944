"""Helpers for the module bridge's tests: plans of bridged tasks run on localhost through the CLI.

``BridgeRun.run`` compiles and runs a plan with ``cli.main`` over the local connection (no SSH)
and returns the task results the host journaled, keyed by task name. ``pypi_collections``
fetches the collections the differential test over collections uses (never committed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy import cli

from ..cachelock import cache_lock
from ..conftest import EXAMPLE_PLAN

# The `ansible` package carries the common collections; 12.x is the release for ansible-core 2.19.
ANSIBLE_PACKAGE = "12.3.0"
COLLECTIONS = ("ansible/posix", "community/general")
COLLECTIONS_CACHE = Path(os.environ.get("RUSTLE_ACCEPTANCE_CACHE")
                         or Path.home() / ".cache" / "rustle-deploy" / "acceptance") / f"ansible-{ANSIBLE_PACKAGE}"


def write_plan(directory: Path, tasks: list[dict[str, Any]], *, play_vars: dict[str, Any] | None = None,
               hosts: tuple[str, ...] = ("localhost",), check_mode: bool = False) -> Path:
    """A plan (the bundled example's shape) of ``tasks`` for ``hosts``, written to directory/plan.json."""
    doc = json.loads(EXAMPLE_PLAN.read_text())
    doc["hosts"] = list(hosts)
    doc["metadata"]["planning_options"]["check_mode"] = check_mode
    play = doc["plays"][0]
    play["hosts"] = list(hosts)
    play["vars"] = dict(play_vars or {})
    batch = play["batches"][0]
    batch["hosts"] = list(hosts)
    full = []
    for i, t in enumerate(tasks):
        base = {"task_id": f"task_{i}", "name": t.get("name", f"task {i}"), "hosts": list(hosts),
                "dependencies": [], "conditions": [], "tags": [], "notify": [], "execution_order": i,
                "can_run_parallel": False, "estimated_duration": {"secs": 1, "nanos": 0}, "risk_level": "Low"}
        base.update(t)
        full.append(base)
    batch["tasks"] = full
    play["batches"] = [batch]
    play["handlers"] = []
    doc["total_tasks"] = len(tasks)
    doc["binary_deployments"] = []
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "plan.json"
    path.write_text(json.dumps(doc))
    return path


@dataclass
class BridgeRun:
    tmp: Path
    capsys: pytest.CaptureFixture[str]

    def inventory(self, **host_vars: Any) -> Path:
        v = {"ansible_connection": "local", "rustle_remote_dir": str(self.tmp / "remote"),
             "ansible_python_interpreter": sys.executable, **host_vars}
        path = self.tmp / "inventory.json"
        path.write_text(json.dumps({"all": {"hosts": {"localhost": v}}}))
        return path

    def main(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def run(self, plan: Path, *flags: str, host_vars: dict[str, Any] | None = None,
            expect: int = 0) -> dict[str, dict[str, Any]]:
        """Compile, deploy and run ``plan`` on localhost; the task results by task name."""
        inv = self.inventory(**(host_vars or {}))
        code, out, err = self.main(str(plan), "-i", str(inv), "--run", "--output", "json", *flags)
        assert code == expect, err + out
        journals = sorted((self.tmp / "remote" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        events = [json.loads(line) for line in journals[-1].read_text().splitlines()]
        return {e["task"]: e for e in events if e["event"] in ("task_result", "handler_result")}


@pytest.fixture
def bridge(tmp_path: Path, rustle_home: Path, capsys: pytest.CaptureFixture[str]) -> BridgeRun:
    return BridgeRun(tmp_path, capsys)


@pytest.fixture(scope="session")
def pypi_collections() -> Path:
    """A collection root (``<root>/ansible_collections/ansible/posix``, ``community/general``)
    from the ``ansible`` package's wheel on PyPI, fetched once into the test cache (with the
    acceptance tier's sdist) and extracted there; skips with the reason when PyPI cannot be had."""
    root = COLLECTIONS_CACHE / "collections"
    with cache_lock(COLLECTIONS_CACHE / "fetch.lock"):  # one download among test workers
        if not all((root / "ansible_collections" / c / "MANIFEST.json").is_file() for c in COLLECTIONS):
            _fetch_collections(root)
    return root


def _fetch_collections(root: Path) -> None:
    with tempfile.TemporaryDirectory(dir=COLLECTIONS_CACHE) as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                 "--disable-pip-version-check", f"ansible=={ANSIBLE_PACKAGE}", "-d", tmp],
                capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip(f"pip download ansible=={ANSIBLE_PACKAGE} timed out (offline?)")
        wheels = list(Path(tmp).glob("ansible-*.whl"))
        if proc.returncode != 0 or not wheels:
            pytest.skip(f"cannot fetch ansible=={ANSIBLE_PACKAGE} from PyPI: "
                        + (proc.stderr.strip().splitlines() or ["no output"])[-1])
        out = Path(tmp) / "collections"
        prefixes = tuple(f"ansible_collections/{c}/" for c in COLLECTIONS)
        with zipfile.ZipFile(wheels[0]) as whl:
            whl.extractall(out, [n for n in whl.namelist() if n.startswith(prefixes)])
        try:
            if root.exists():  # a partial tree from an interrupted run
                os.rename(root, Path(tmp) / "old")
            os.rename(out, root)  # atomic: a concurrent run sees the whole tree or none
        except OSError:
            if not root.is_dir():  # else another run put the same tree there first
                raise
