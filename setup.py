"""Package build hook: the wheel carries rustle-runner prebuilt for every Linux target of
``compiler/toolchain.py``'s PREBUILT_TARGETS, built from this tree's crate, with the sources'
hash beside them (``rustle_deploy/native/prebuilt/manifest.json``; docs/native.md, "Releases").

RUSTLE_PREBUILT_TARGETS (comma-separated, may be empty) overrides the list. An editable
install builds none: a checkout builds its runner on first use, with cargo.
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
        runners = {}
        for target in targets:
            target = target.strip()
            try:
                data = tc.build(target, scratch / target.replace("+", "-"))
            except tc.ToolchainError as exc:
                raise SystemExit(f"error: {exc.message}\nhint: {exc.hint}; or build a wheel without prebuilt "
                                 "runners: RUSTLE_PREBUILT_TARGETS= (its users then need cargo for --format native)") from exc
            (dest / f"rustle-runner-{target}").write_bytes(data)
            (dest / f"rustle-runner-{target}").chmod(0o755)
            runners[target] = hashlib.sha256(data).hexdigest()
            print(f"rustle-runner for {target}: {len(data)} bytes, sha256 {runners[target]}")
        manifest = {"source": tc.source_key(), "runners": runners}
        (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


setup(cmdclass={"build_py": BuildWithRunners})
