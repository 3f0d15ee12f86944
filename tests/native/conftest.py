"""Native format helpers. The rustle-runner binary is built once per test session with cargo:
the ``runner`` and ``native_cache`` fixtures (tests/conftest.py, for every directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.compiler.native import lower_unit
from rustle_deploy.compiler.runner import RunnerBinary, ensure_runner
from rustle_deploy.compiler.toolchain import STATIC, ToolchainError, choose, controller_target
from rustle_deploy.pipeline import Session

# Outside pytest's tmp dirs so that later sessions on this machine reuse the build (~1 min).
RUNNER_CACHE = Path(os.environ.get("RUSTLE_TEST_RUNNER_CACHE", f"/tmp/rustle-test-runner-{os.getuid()}"))


def built(target: str) -> RunnerBinary:
    """The runner for ``target`` in the session's cache; the test is skipped when this machine
    cannot build it (what is missing is said)."""
    try:
        choose(target)
    except ToolchainError as exc:
        pytest.skip(f"{exc.message} ({exc.hint})")
    return ensure_runner(RUNNER_CACHE, target)


@pytest.fixture(scope="session")
def static_runner() -> RunnerBinary:
    """The controller's platform's static (+static) runner, in the session's cache (so a
    ``native_cache`` made after it holds it too)."""
    return built(controller_target() + STATIC)


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
        for _, data, _ in lower_unit(u, runner_sha):
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
