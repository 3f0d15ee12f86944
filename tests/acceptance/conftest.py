"""What the acceptance tests share: ansible-core's integration targets, fetched once."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Unavailable, targets_root


@pytest.fixture(scope="module")
def root() -> Path:
    """The sdist's ``test/integration/targets``; the tests skip with the reason when it cannot be fetched."""
    try:
        return targets_root()
    except Unavailable as exc:
        pytest.skip(str(exc))
