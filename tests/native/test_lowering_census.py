"""The lowering census (benchmarks/lowering.py) pinned: the units that lower whole, so that a
change which sends one back to pyz under ``--format auto`` fails here, naming the unit and what
stops it. Compile only (no runner, no cargo): the census of the benchmark workload, the
examples and the shared fixtures, a few seconds. The acceptance corpus is not measured here
(it needs ansible-core's sdist and ~50 s of CPU): run ``benchmarks/lowering.py --acceptance``.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# source -> tasks of it that lower, for every source whose (one) unit lowers whole
LOWER_WHOLE = {
    "benchmark workload": 12,
    "examples/hello plan": 13,
    "examples/hello site.yml": 13,
    "fixtures plan file_operations_plan.json": 5,
    "fixtures plan file_operations_playbook_with_facts_plan.json": 5,
}
# source -> tasks of it that lower, for the sources that do not lower whole (yet)
LOWER_PART = {
    "fixtures plan example_rustle_plan_output.json": 2,
    "fixtures plan package_management_plan.json": 3,
    "fixtures plan service_management_plan.json": 1,
    "fixtures plan test_verbose.json": 2,
    "fixtures playbook package_management.yml": 3,
    "fixtures playbook service_management.yml": 1,
    "fixtures playbook simple.yml": 2,
    "fixtures playbook system_facts_playbook.yml": 1,
}


@pytest.fixture(scope="module")
def census() -> dict[str, dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("lowering_census", REPO / "benchmarks" / "lowering.py")
    assert spec and spec.loader
    lowering = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lowering)
    with tempfile.TemporaryDirectory(prefix="rustle-census-") as tmp:
        work = Path(tmp)
        (work / "root").mkdir()
        sources = lowering.sources(False, work)
        if not lowering.SHARED.is_dir():
            pytest.skip(f"the shared fixtures are not at {lowering.SHARED}")
        return {src[0]: lowering.measure(*src) for src in sources}


def _short(census: dict[str, dict[str, Any]], pins: dict[str, int], whole: bool) -> dict[str, str]:
    """source -> what it lost, for each pinned source that no longer compiles, lowers fewer tasks
    than pinned, or (``whole``) has a unit that no longer lowers whole."""
    out = {}
    for source, tasks in pins.items():
        r = census.get(source)
        if r is None or "error" in r:
            out[source] = f"not compiled: {r and r.get('error')}"
        elif whole and (r["units_lowered"] != r["units"] or r["lowered"] < tasks):
            out[source] = (f"{r['units_lowered']}/{r['units']} units lower whole, {r['lowered']}/{tasks} tasks; "
                           f"what stops it: {r['reasons']}")
        elif not whole and r["lowered"] < tasks:
            out[source] = f"{r['lowered']} tasks lower, {tasks} did; what stops them: {r['reasons']}"
    return out


def test_the_units_that_lowered_whole_still_do(census: dict[str, dict[str, Any]]) -> None:
    lost = _short(census, LOWER_WHOLE, whole=True)
    assert not lost, "units that no longer lower to the native runner (--format auto runs them with pyz):\n" + \
        "\n".join(f"  {k}: {v}" for k, v in lost.items())


def test_no_source_lowers_fewer_tasks(census: dict[str, dict[str, Any]]) -> None:
    fewer = _short(census, LOWER_PART, whole=False)
    assert not fewer, "sources whose tasks lower less than they did:\n" + \
        "\n".join(f"  {k}: {v}" for k, v in fewer.items())


def test_every_measured_source_is_pinned(census: dict[str, dict[str, Any]]) -> None:
    """A new example or fixture is measured, so it gets a pin (or is a known compile error)."""
    known_errors = {"fixtures playbook file_operations_playbook.yml", "fixtures includes/main_playbook.yml"}
    unpinned = sorted(set(census) - set(LOWER_WHOLE) - set(LOWER_PART) - known_errors)
    assert not unpinned, f"add these sources' numbers to LOWER_WHOLE or LOWER_PART: {unpinned}"
