"""Helpers for the module bridge's tests: plans of bridged tasks run on localhost through the CLI.

``BridgeRun.run`` compiles and runs a plan with ``cli.main`` over the local connection (no SSH)
and returns the task results the host journaled, keyed by task name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy import cli

from ..conftest import EXAMPLE_PLAN


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
