"""Package build hook: the wheel carries rustle-runner prebuilt for every Linux target of
``compiler/toolchain.py``'s PREBUILT_TARGETS, built from this tree's crate, with the sources'
hash beside them (``rustle_deploy/native/prebuilt/manifest.json``; docs/native.md, "Releases").

RUSTLE_PREBUILT_TARGETS (comma-separated, may be empty) overrides the list.
RUSTLE_PREBUILT_CACHE=DIR takes a target's runner from a rustle-deploy runner cache (DIR holds
``native/index``: ~/.rustle/cache, or the test suite's) when that cache holds one built from
these very sources (its index entry for their hash, the binary's sha256 checked), instead of
building it again. An editable install builds none: a checkout builds its runner on first use,
with cargo.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _toolchain():  # type: ignore[no-untyped-def]
    """compiler/toolchain.py, loaded by path (the package's dependencies are not installed here)."""
    spec = importlib.util.spec_from_file_location(
        "_rustle_toolchain", HERE / "src" / "rustle_deploy" / "compiler" / "toolchain.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _cached(tc, cache: Path, target: str) -> bytes | None:  # type: ignore[no-untyped-def]
    """The runner for ``target`` that the runner cache ``cache`` holds for these sources, or None
    (the index layout of compiler/runner.py's ``_index``)."""
    key = tc.source_key()
    root = cache / "native"
    index = root / "index" / (key if target == tc.controller_target() else f"{key}.{target}")
    try:
        sha = index.read_text().strip()
        data = (root / f"rustle-runner-{sha}").read_bytes() if len(sha) == 64 else b""
    except OSError:
        return None
    return data if data and hashlib.sha256(data).hexdigest() == sha else None


class BuildWithRunners(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        tc = _toolchain()
        wanted = os.environ.get("RUSTLE_PREBUILT_TARGETS")
        targets = [t for t in wanted.split(",") if t.strip()] if wanted is not None else list(tc.PREBUILT_TARGETS)
        dest = Path(self.build_lib) / "rustle_deploy" / "native" / "prebuilt"
        dest.mkdir(parents=True, exist_ok=True)
        scratch = Path(os.environ.get("RUSTLE_RUNNER_TARGET_DIR") or Path(self.build_temp) / "rustle-runner")
        cache = os.environ.get("RUSTLE_PREBUILT_CACHE")
        runners = {}
        for target in targets:
            target = target.strip()
            data = _cached(tc, Path(cache), target) if cache else None
            origin = f"from {cache}" if data else "built"
            try:
                data = data or tc.build(target, scratch / target.replace("+", "-"))
            except tc.ToolchainError as exc:
                raise SystemExit(f"error: {exc.message}\nhint: {exc.hint}; or build a wheel without prebuilt "
                                 "runners: RUSTLE_PREBUILT_TARGETS= (its users then need cargo for --format native)") from exc
            (dest / f"rustle-runner-{target}").write_bytes(data)
            (dest / f"rustle-runner-{target}").chmod(0o755)
            runners[target] = hashlib.sha256(data).hexdigest()
            print(f"rustle-runner for {target} ({origin}): {len(data)} bytes, sha256 {runners[target]}")
        manifest = {"source": tc.source_key(), "runners": runners}
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


setup(cmdclass={"build_py": BuildWithRunners})
