"""``cache_lock(path)``: an exclusive lock on a file beside a cache that several processes fill.

The suite runs on several pytest-xdist workers (and other checkouts on the machine may run it
at the same time); a session-scoped fixture that downloads or builds into a shared directory
takes this lock, then looks again whether another process filled the cache while it waited.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its directory) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
