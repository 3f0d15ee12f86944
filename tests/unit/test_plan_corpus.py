"""The broken-plan corpus: each file is rejected at its pointer with its message."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from rustle_deploy.errors import PlanError
from rustle_deploy.plan import load_plan
from rustle_deploy.plan.validate import check_hosts

DATA = Path(__file__).resolve().parents[1] / "data" / "plans"
BROKEN = DATA / "broken"
EXPECTED: dict[str, dict[str, str]] = json.loads((BROKEN / "expected.json").read_text())


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_plans", DATA / "make_plans.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_large_and_complete() -> None:
    assert len(EXPECTED) >= 30
    on_disk = {p.name for p in BROKEN.glob("*.json")} - {"expected.json"}
    assert on_disk == set(EXPECTED)


def test_corpus_matches_its_generator() -> None:
    for rel, content in _generator().build().items():
        assert (DATA / rel).read_bytes() == content, (
            f"{rel} is stale: run python tests/data/plans/make_plans.py")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_plan_is_rejected(name: str) -> None:
    expected = EXPECTED[name]
    path = str(BROKEN / name)
    with pytest.raises(PlanError) as err:
        check_hosts(load_plan(path))  # the host check runs once the inventory is known
    error = err.value
    assert error.pointer == expected["pointer"]
    assert expected["message"] in error.message
    rendered = str(error)
    assert rendered.startswith(f"{path}: {expected['pointer']}: ")
    assert "\nhint: " in rendered, "every plan error carries a hint"
    assert error.exit_code == 2


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "good").glob("*.json")))
def test_good_plans_are_accepted(name: str) -> None:
    load_plan(str(DATA / "good" / name))
