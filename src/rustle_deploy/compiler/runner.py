"""Find or build rustle-runner, the native format's host program, once per source and target.

The crate ships inside the package (``rustle_deploy/native``). A runner comes, in this order,
from the cache directory (``native/index/<key>`` names the binary built from those sources for
that target, ``native/rustle-runner-<sha256>`` holds it; the sha256 is the runner's identity on
hosts), from the runners a wheel carries (``native/prebuilt/``, used only when they were built
from these very sources), or from a build with the controller's cargo (``toolchain``), which
runs offline: the crate has no dependencies.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import CompileError
from .cachefiles import atomic_write, sha256_file
from .toolchain import SOURCE, ToolchainError, controller_target, toolchains
from .toolchain import source_key as _source_key

PREBUILT = SOURCE / "prebuilt"


@dataclass(frozen=True)
class RunnerBinary:
    """A built runner: where it is on the controller, its sha256 and size, and its target."""

    path: Path
    sha256: str
    size: int
    target: str = ""


def find_cargo() -> str | None:
    """The cargo that would build the controller's own runner, if any."""
    chains = toolchains()
    return chains[0].cargo if chains else None


def _index(root: Path, key: str, target: str) -> Path:
    return root / "index" / (key if target == controller_target() else f"{key}.{target}")


class RunnerUnavailable(CompileError):
    """No rustle-runner for a target: none cached, none prebuilt, and none can be built here."""


def runner_for(cache_dir: Path, target: str | None = None) -> RunnerBinary:
    """The rustle-runner for ``target`` (None: this controller's platform), from the cache, the
    package or a build; ``RunnerUnavailable`` says why there is none. The one question
    ``--format auto`` asks before it picks the native format (pipeline.Session.runner)."""
    try:
        return ensure_runner(cache_dir, target)
    except RunnerUnavailable:
        raise
    except CompileError as exc:
        raise RunnerUnavailable(exc.message, exc.hint) from exc


def ensure_runner(cache_dir: Path, target: str | None = None) -> RunnerBinary:
    """The runner for ``target`` (default: this controller's platform), built now if neither
    the cache nor the package has one made from these sources."""
    target = target or controller_target()
    root = cache_dir / "native"
    key = _source_key()
    index = _index(root, key, target)
    if index.is_file():
        sha = index.read_text().strip()
        path = root / f"rustle-runner-{sha}"
        if len(sha) == 64 and sha256_file(path) == sha:
            return RunnerBinary(path, sha, path.stat().st_size, target)
    data = _prebuilt(key, target)
    if data is None:
        data = _build(root, target)
    sha = hashlib.sha256(data).hexdigest()
    path = root / f"rustle-runner-{sha}"
    if sha256_file(path) != sha:
        atomic_write(path, data, 0o700)
    atomic_write(index, sha.encode())
    return RunnerBinary(path, sha, len(data), target)


def _prebuilt(key: str, target: str) -> bytes | None:
    """The runner the wheel carries for ``target``, when it was built from these sources."""
    try:
        manifest = json.loads((PREBUILT / "manifest.json").read_text())
    except (OSError, ValueError):
        return None  # a source checkout: no prebuilt runners
    sha = (manifest.get("runners") or {}).get(target)
    if not sha or manifest.get("source") != key:
        return None
    data = (PREBUILT / f"rustle-runner-{target}").read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise CompileError(
            f"{PREBUILT}/rustle-runner-{target}: does not match the sha256 its manifest records ({sha[:12]})",
            "reinstall rustle-deploy: the installed package was changed",
        )
    return data


def target_dir(root: Path, target: str) -> Path:
    """The cargo target dir where the runner for ``target`` is built from this package's crate,
    under the cache's ``native`` directory ``root``. One per source tree and target: two
    checkouts sharing a cache never overwrite each other's binary (and each keeps its build)."""
    tree = hashlib.sha256(str(SOURCE.resolve()).encode()).hexdigest()[:16]
    return root / "target" / f"{tree}-{target.replace('+', '-')}"


def build_lock(root: Path, target: str) -> Path:
    """The file locked (flock) around a build in ``target_dir`` and the read of its binary: two
    controllers of different versions sharing a cache would otherwise each read the binary the
    other just built (cargo serialises the builds, not build-then-read). One per target dir, so
    that the builds for other targets go on meanwhile."""
    return Path(f"{target_dir(root, target)}.lock")


def _build(root: Path, target: str) -> bytes:
    import fcntl

    from .toolchain import build

    lock_path = build_lock(root, target)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return build(target, target_dir(root, target), lambda cargo: print(
                f"note: building rustle-runner for {target} with {cargo} "
                "(first use of these sources, about a minute)", file=sys.stderr, flush=True))
        except ToolchainError as exc:
            prebuilt = _prebuilt_note(target)
            raise CompileError(exc.message + prebuilt, exc.hint) from exc


def _prebuilt_note(target: str) -> str:
    """Why the package's own runner did not serve, when it carries one."""
    try:
        manifest = json.loads((PREBUILT / "manifest.json").read_text())
    except (OSError, ValueError):
        return ""
    if target in (manifest.get("runners") or {}):
        return (f" (the runner this package carries for {target} was built from other sources than "
                "the installed rustle_deploy/native: they were changed, so it must be rebuilt)")
    return f" (this package carries prebuilt runners for {', '.join(sorted(manifest.get('runners') or {}))} only)"


@functools.lru_cache(maxsize=16)
def glibc_needed(path: Path, sha256: str) -> tuple[int, ...] | None:
    """The newest glibc the runner at ``path`` (``sha256``) needs: the highest ``GLIBC_2.N``
    symbol version it links against (its ELF version needs); None for a runner that needs none
    (a static or musl build)."""
    found = re.findall(rb"\0GLIBC_(\d+(?:\.\d+)+)\0", path.read_bytes())
    return max((tuple(int(n) for n in v.split(b".")) for v in found), default=None)


def glibc_version(libc: str) -> tuple[int, ...] | None:
    """``(2, 36)`` of ``"glibc 2.36"`` (what an agent reports); None for anything else."""
    m = re.fullmatch(r"glibc (\d+(?:\.\d+)+)", libc.strip())
    return tuple(int(n) for n in m.group(1).split(".")) if m else None
