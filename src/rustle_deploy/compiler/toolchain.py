"""Which Rust toolchain builds rustle-runner for which target, and the build itself.

A target is a Rust triple (``x86_64-unknown-linux-gnu``, ``aarch64-unknown-linux-gnu``),
optionally followed by ``+static``: the same runner linked statically (``crt-static``), for
hosts whose C library is older than the build machine's (docs/native.md, "Targets").

A toolchain builds a target when its rustc's sysroot holds that target's standard library;
a target of another architecture also needs that architecture's C linker
(``aarch64-linux-gnu-gcc``), this machine's the ``cc`` cargo links with by default. The toolchains tried, in order: the ``cargo`` on PATH,
rustup's under ``~/.cargo/bin``, Debian's ``/usr/bin/cargo`` (whose rustc 1.63 has the
``arm64`` standard library once ``libstd-rust-dev:arm64`` is installed).

Standard library only, and no import of ``rustle_deploy``: the package build (``setup.py``)
loads this file by path to build the runners a wheel carries.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "native"
STATIC = "+static"
# the runners a wheel carries (setup.py): every Linux architecture the seed names
PREBUILT_TARGETS = ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
_DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


class ToolchainError(Exception):
    """A target this machine cannot build, with what is missing and how to get it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def controller_target() -> str:
    """The triple of this machine, the default target of a runner."""
    u = os.uname()
    arch = _ARCHES.get(u.machine, u.machine)
    if u.sysname == "Darwin":
        return f"{arch}-apple-darwin"
    return f"{arch}-unknown-linux-gnu" if u.sysname == "Linux" else f"{arch}-unknown-{u.sysname.lower()}"


def linux_target(machine: str) -> str | None:
    """The triple of a Linux host whose ``uname -m`` is ``machine``; None when no runner exists for it."""
    arch = _ARCHES.get(machine)
    return f"{arch}-unknown-linux-gnu" if arch else None


def split(target: str) -> tuple[str, bool]:
    """(triple, static) of a target name."""
    if target.endswith(STATIC):
        return target[: -len(STATIC)], True
    return target, False


def check_target(target: str) -> None:
    """Refuse a target no runner can exist for, before anything is built."""
    triple, _ = split(target)
    arch = triple.split("-", 1)[0]
    if triple.endswith("-apple-darwin") and controller_target() != triple:
        raise ToolchainError(
            f"--target {target}: rustle-runner for macOS can only be built on a Mac "
            "(it links against Apple's SDK, which no Debian package provides)",
            f"on a Mac with Xcode's command line tools and Rust, run `cargo build --release --target {triple}` "
            "in rustle_deploy/native (docs/native.md, \"macOS\"); or use --format pyz, which runs on "
            "macOS hosts with Python 3.8+",
        )
    if arch not in _DEBIAN_ARCH or not triple.endswith("-unknown-linux-gnu"):
        if triple == controller_target():
            return
        raise ToolchainError(
            f"--target {target}: rustle-runner is built for x86_64-unknown-linux-gnu and "
            "aarch64-unknown-linux-gnu (each optionally +static), and for the controller's own platform",
            "pick one of those, or use --format pyz (any host with Python 3.8+)",
        )


def source_key() -> str:
    """The crate's sources: a runner built from them (by any toolchain) serves them."""
    h = hashlib.sha256()
    candidates = [SOURCE / "Cargo.toml", SOURCE / "Cargo.lock", *(SOURCE / "src").rglob("*.rs")]  # what the package ships
    for path in sorted(p for p in candidates if p.is_file()):  # never walks an in-tree target/
        h.update(str(path.relative_to(SOURCE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Toolchain:
    """A cargo and the rustc it builds with."""

    cargo: str
    rustc: str
    env: dict[str, str] = field(hash=False, compare=False)


def toolchains() -> list[Toolchain]:
    """Every cargo on this machine, in the order they are tried."""
    found = [shutil.which("cargo"), str(Path.home() / ".cargo" / "bin" / "cargo"), "/usr/bin/cargo"]
    out: list[Toolchain] = []
    seen: set[str] = set()
    for cargo in found:
        if not cargo or not os.access(cargo, os.X_OK):
            continue
        real = os.path.realpath(cargo)
        if real in seen:
            continue
        seen.add(real)
        bin_dir = Path(cargo).parent
        rustc = bin_dir / "rustc"
        if not os.access(rustc, os.X_OK):
            continue
        env = dict(os.environ)
        if bin_dir.name == "bin" and bin_dir.parent.name == ".cargo":
            # rustup's proxies find their toolchains through HOME; when HOME is not that home
            # (a service, a test) point them at it
            env.setdefault("CARGO_HOME", str(bin_dir.parent))
            env.setdefault("RUSTUP_HOME", str(bin_dir.parent.parent / ".rustup"))
        # cargo must use its own rustc, not the first one on PATH (Debian's cargo beside rustup's)
        env["RUSTC"] = str(rustc)
        out.append(Toolchain(cargo, str(rustc), env))
    return out


def _has_std(tc: Toolchain, triple: str) -> bool:
    proc = subprocess.run([tc.rustc, "--print", "sysroot"], env=tc.env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return False
    return (Path(proc.stdout.strip()) / "lib" / "rustlib" / triple / "lib").is_dir()


def _linker(triple: str) -> str | None:
    """The C linker for a triple of another architecture than this machine's; "" for this one's
    (cargo's default, ``cc``); None when it is not on PATH: the build would compile the whole
    crate (minutes) and then fail to link."""
    arch = triple.split("-", 1)[0]
    if triple == controller_target():
        return "" if shutil.which("cc") else None
    return shutil.which(f"{arch}-linux-gnu-gcc")


def _missing(target: str, chains: list[Toolchain], has_std: bool, linker: str | None) -> ToolchainError:
    triple, static = split(target)
    arch = triple.split("-", 1)[0]
    deb = _DEBIAN_ARCH.get(arch, arch)
    what, steps = [], []
    if not chains:
        what.append("Rust's cargo (none on PATH, in ~/.cargo/bin or /usr/bin)")
    elif not has_std:
        what.append(f"a Rust standard library for {triple} (none in the sysroot of "
                    + ", ".join(tc.rustc for tc in chains) + ")")
    if not chains or not has_std:
        if triple == controller_target():
            steps.append("apt-get install rustc cargo")
        else:
            steps.append(f"dpkg --add-architecture {deb} && apt-get update && "
                         f"apt-get install rustc cargo libstd-rust-dev:{deb}")
    if linker is None and triple == controller_target():
        what.append("the C linker cc (which cargo links with) on PATH")
        steps.append("apt-get install gcc")
    elif linker is None:
        what.append(f"the C cross linker {arch}-linux-gnu-gcc")
        steps.append(f"apt-get install gcc-{arch}-linux-gnu")
    return ToolchainError(
        f"rustle-runner for {target} cannot be built on this controller: missing " + " and ".join(what),
        "install them (Debian: " + "; ".join(steps) + "), "
        + ("or pick another --target, " if target != controller_target() else "")
        + "or use --format pyz"
        + (" (a static build also needs the C library's static archive, libc6-dev)" if static else ""),
    )


def choose(target: str) -> tuple[Toolchain, dict[str, str]]:
    """The toolchain that builds ``target`` and the environment for its cargo."""
    check_target(target)
    triple, static = split(target)
    chains = toolchains()
    tc = next((c for c in chains if _has_std(c, triple)), None)
    linker = _linker(triple)
    if tc is None or linker is None:
        raise _missing(target, chains, tc is not None, linker)
    env = dict(tc.env)
    var = triple.upper().replace("-", "_")
    if linker:
        env[f"CARGO_TARGET_{var}_LINKER"] = linker
    if static:
        env[f"CARGO_TARGET_{var}_RUSTFLAGS"] = "-C target-feature=+crt-static"
    return tc, env


def build(target: str, target_dir: Path, starting: Callable[[str], None] | None = None) -> bytes:
    """Build rustle-runner for ``target`` (offline: the crate has no dependencies); its bytes.
    ``starting`` is told the cargo that builds it, just before the build starts."""
    tc, env = choose(target)
    if starting is not None:
        starting(tc.cargo)
    triple, _ = split(target)
    env["CARGO_TARGET_DIR"] = str(target_dir)
    proc = subprocess.run(
        [tc.cargo, "build", "--release", "--offline", "--locked", "--quiet", "--target", triple,
         "--manifest-path", str(SOURCE / "Cargo.toml")],
        env=env, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise ToolchainError(
            f"building rustle-runner for {target} with {tc.cargo} failed (exit {proc.returncode}):\n"
            f"{proc.stderr.strip()[-3000:]}",
            "use --format pyz; and please report this with the output above",
        )
    return (target_dir / triple / "release" / "rustle-runner").read_bytes()
