"""Files of the compiler's cache and output directories: written atomically (private parents,
then rename; fsync first for the output directory) and recognised by their sha256.

A cache entry is not synced (``cache_write``): every reader checks it against the sha256 that
names it (or that its index names) and builds it again when it does not match, so a crash can
cost a rebuild, never a wrong artifact. Syncing each file of a cold 50-host compile (51 files)
cost ~0.3 s of the command's wall time under load (docs/decisions.md)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._fs import private_dir
from ..errors import CompileError


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Write ``path`` under a temporary name, then rename it; ``durable``: fsync before."""
    try:
        _write(path, data, mode, durable)
    except OSError as exc:
        raise CompileError(
            f"{exc.filename or path}: cannot write: {exc.strerror or exc}",
            "check --cache-dir / --output-dir (or RUSTLE_DEPLOY_CACHE_DIR): a writable directory is needed",
        ) from exc


def cache_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """``atomic_write`` of a cache entry, which its readers check by sha256: no fsync."""
    atomic_write(path, data, mode, durable=False)


def _write(path: Path, data: bytes, mode: int, durable: bool) -> None:
    import tempfile  # only a write needs it; lookups come before the first ssh starts

    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:  # missing, or not readable: either way not a usable entry
        return None
