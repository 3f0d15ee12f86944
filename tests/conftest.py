"""Shared test helpers: where the read-only fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
FIXTURES = SHARED / "fixtures"
PLAN_FIXTURES = FIXTURES / "rustle-plan"
EXAMPLE_PLAN = REPO / "examples" / "hello" / "plan.json"


@pytest.fixture
def rustle_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME so cache, state and remote dirs never touch the real ~/.rustle."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_BINARY_SIZE_LIMIT", "RUSTLE_DEPLOYMENT_TIMEOUT",
                "RUSTLE_PARALLEL_JOBS", "RUSTLE_VERIFY_DEPLOYMENTS", "RUSTLE_STATE_DB"):
        monkeypatch.delenv(var, raising=False)
    return home
