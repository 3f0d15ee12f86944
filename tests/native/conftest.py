"""Native format fixtures: the rustle-runner binary, built once per test session with cargo."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.compiler.native import lower_unit
from rustle_deploy.compiler.runner import RunnerBinary, ensure_runner, find_cargo
from rustle_deploy.pipeline import Session

from ..integration.conftest import sshd  # noqa: F401 - the real sshd fixture, for this directory too

# Outside pytest's tmp dirs so that later sessions on this machine reuse the build (~1 min).
RUNNER_CACHE = Path(os.environ.get("RUSTLE_TEST_RUNNER_CACHE", f"/tmp/rustle-test-runner-{os.getuid()}"))


@pytest.fixture(scope="session")
def runner() -> RunnerBinary:
    if find_cargo() is None:
        pytest.skip("Rust's cargo is not installed: the native runner cannot be built (CI installs it)")
    return ensure_runner(RUNNER_CACHE)


@pytest.fixture
def native_cache(runner: RunnerBinary, rustle_home: Path) -> Path:
    """The test's ~/.rustle/cache seeded with the session's runner (so no test rebuilds it)."""
    dest = rustle_home / ".rustle" / "cache" / "native"
    shutil.copytree(RUNNER_CACHE / "native", dest, ignore=shutil.ignore_patterns("target"), dirs_exist_ok=True)
    return dest.parent


def lower(plan: Path, inventory: Path | None = None, runner_sha: str = "0" * 64) -> dict[str, Any]:
    """The native artifact documents for ``plan``, merged per binary name: {binary_name: doc}."""
    opts: dict[str, Any] = {"execution_plan": str(plan), "format_": "native", "output": "json"}
    if inventory is not None:
        opts["inventory"] = str(inventory)
    s = Session.from_options(opts)
    p, inv = s.plan(s.inventory())
    every, _ = s.hosts_for(p, inv)
    docs = {}
    for u in s.units(p, inv, every):
        for _, data in lower_unit(u, runner_sha):
            doc = json.loads(data)
            if u.binary_name in docs:  # hosts with programs of their own: one document per name here
                docs[u.binary_name]["hosts"].update(doc["hosts"])
                docs[u.binary_name]["files"].update(doc["files"])
            else:
                docs[u.binary_name] = doc
    return docs


def retarget(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A plan document whose plays, batches and tasks all run on ``names``."""
    doc["hosts"] = names
    for play in doc["plays"]:
        play["hosts"] = names
        for batch in play["batches"]:
            batch["hosts"] = names
            for task in batch["tasks"]:
                task["hosts"] = names
    doc["binary_deployments"] = []
    return doc


def make_plan(tmp_path: Path, tasks: list[dict[str, Any]], play_vars: dict[str, Any] | None = None,
              handlers: list[dict[str, Any]] | None = None) -> Path:
    """A plan for localhost (the bundled example's shape) with these tasks; ``files/`` and
    ``templates/`` of the example sit beside it."""
    from ..conftest import EXAMPLE_PLAN

    doc = json.loads(EXAMPLE_PLAN.read_text())
    play = doc["plays"][0]
    play["vars"] = dict(play_vars or {})

    def full(i: int, t: dict[str, Any], kind: str) -> dict[str, Any]:
        base = {"task_id": f"{kind}_{i}", "name": t.get("name", f"{kind} {i}"), "hosts": ["localhost"],
                "dependencies": [], "conditions": [], "tags": [], "notify": [], "execution_order": i,
                "can_run_parallel": False, "estimated_duration": {"secs": 1, "nanos": 0}, "risk_level": "Low"}
        base.update(t)
        return base

    play["batches"][0]["tasks"] = [full(i, t, "task") for i, t in enumerate(tasks)]
    play["handlers"] = [{"handler_id": f"handler_{i}", "name": h.get("name", f"handler {i}"), "conditions": [],
                         "execution_order": i, **h} for i, h in enumerate(handlers or [])]
    doc["total_tasks"] = len(tasks)
    doc["binary_deployments"] = []
    dest = tmp_path / "plan"
    shutil.copytree(EXAMPLE_PLAN.parent, dest, dirs_exist_ok=True)
    (dest / "plan.json").write_text(json.dumps(doc))
    return dest / "plan.json"
