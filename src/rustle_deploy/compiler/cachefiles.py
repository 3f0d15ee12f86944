"""Files of the compiler's cache and output directories: written atomically (private parents,
fsync, then rename) and recognised by their sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._fs import private_dir
from ..errors import CompileError


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    try:
        _write(path, data, mode)
    except OSError as exc:
        raise CompileError(
            f"{exc.filename or path}: cannot write: {exc.strerror or exc}",
            "check --cache-dir / --output-dir (or RUSTLE_DEPLOY_CACHE_DIR): a writable directory is needed",
        ) from exc


def _write(path: Path, data: bytes, mode: int) -> None:
    import tempfile  # only a write needs it; lookups come before the first ssh starts

    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
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
