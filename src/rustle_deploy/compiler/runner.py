"""Build rustle-runner, the native format's host program, once per source and toolchain.

The crate ships inside the package (``rustle_deploy/native``). It is built with the
controller's own ``cargo`` into the cache directory: ``native/index/<key>`` names the binary
built from those sources, ``native/rustle-runner-<sha256>`` holds it (the
sha256 is the runner's identity on hosts). The build runs offline: the crate has no
dependencies.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CompileError
from .cachefiles import atomic_write, sha256_file

SOURCE = Path(__file__).resolve().parent.parent / "native"


@dataclass(frozen=True)
class RunnerBinary:
    """A built runner: where it is on the controller, its sha256 and size."""

    path: Path
    sha256: str
    size: int


def find_cargo() -> str | None:
    import shutil  # here and below: a cached runner is looked up before the first ssh starts

    found = shutil.which("cargo")
    if found:
        return found
    home = Path.home() / ".cargo" / "bin" / "cargo"
    return str(home) if home.is_file() else None


def _toolchain_env(cargo: str) -> dict[str, str]:
    """The environment for cargo/rustc. rustup's proxies (``<home>/.cargo/bin``) find their
    toolchains through HOME; when HOME is not that home (a service, a test) point them at it."""
    env = dict(os.environ)
    bin_dir = Path(cargo).parent
    if bin_dir.name == "bin" and bin_dir.parent.name == ".cargo":
        env.setdefault("CARGO_HOME", str(bin_dir.parent))
        env.setdefault("RUSTUP_HOME", str(bin_dir.parent.parent / ".rustup"))
    return env


def _source_key() -> str:
    """The crate's sources: a runner built from them (by any toolchain) serves them."""
    h = hashlib.sha256()
    candidates = [SOURCE / "Cargo.toml", SOURCE / "Cargo.lock", *(SOURCE / "src").rglob("*")]
    for path in sorted(p for p in candidates if p.is_file()):  # never walks an in-tree target/
        h.update(str(path.relative_to(SOURCE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


class RunnerUnavailable(CompileError):
    """No rustle-runner can be had for the target asked for (``--format auto`` then uses pyz)."""


def controller_target() -> str:
    """The target triple of this controller's platform, the one ``ensure_runner`` builds for."""
    u = os.uname()
    return f"{u.machine}-unknown-{u.sysname.lower()}-gnu" if u.sysname == "Linux" else f"{u.machine}-{u.sysname.lower()}"


def runner_for(cache_dir: Path, target: str | None = None) -> RunnerBinary:
    """The rustle-runner for ``target`` (None: this controller's platform): built or taken from
    the cache. Raises ``RunnerUnavailable`` saying why there is none; the one question
    ``--format auto`` asks before it picks the native format."""
    if target is not None and target != controller_target():
        raise RunnerUnavailable(
            f"no rustle-runner for {target}: this controller builds runners for {controller_target()} only",
            "use --format pyz for those hosts (auto does)",
        )
    return ensure_runner(cache_dir)


def ensure_runner(cache_dir: Path) -> RunnerBinary:
    """The runner for this controller's platform, built now if the cache has none."""
    root = cache_dir / "native"
    index = root / "index" / _source_key()
    if index.is_file():
        sha = index.read_text().strip()
        path = root / f"rustle-runner-{sha}"
        if len(sha) == 64 and sha256_file(path) == sha:
            return RunnerBinary(path, sha, path.stat().st_size)
    cargo = find_cargo()
    if cargo is None:
        raise RunnerUnavailable(
            "--format native needs rustle-runner built for this machine, and building it needs "
            "Rust's cargo, which is not installed",
            "install Rust (rustup, or Debian's cargo package), or use --format pyz",
        )
    # One cargo target dir per source tree: two checkouts sharing a cache never overwrite each
    # other's target/release/rustle-runner (and each keeps its incremental build).
    target = root / "target" / hashlib.sha256(str(SOURCE.resolve()).encode()).hexdigest()[:16]
    env = dict(_toolchain_env(cargo), CARGO_TARGET_DIR=str(target))
    import fcntl
    import subprocess

    root.mkdir(parents=True, exist_ok=True)
    # Two controllers of different versions sharing this cache would otherwise each read the
    # binary the other just built (cargo serialises the builds, not build-then-read).
    with open(root / "build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            [cargo, "build", "--release", "--offline", "--locked", "--quiet",
             "--manifest-path", str(SOURCE / "Cargo.toml")],
            env=env, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise CompileError(
                f"building rustle-runner with {cargo} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}",
                "use --format pyz; and please report this with the output above",
            )
        data = (target / "release" / "rustle-runner").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    path = root / f"rustle-runner-{sha}"
    if sha256_file(path) != sha:
        atomic_write(path, data, 0o700)
    atomic_write(index, sha.encode())
    return RunnerBinary(path, sha, len(data))
