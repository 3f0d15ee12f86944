"""The wheel carries prebuilt runners: built from this tree by the package build (setup.py),
installed into a fresh virtual environment, used by a --format native deployment without any
cargo build; changed runner sources are noticed by their hash and rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from rustle_deploy.compiler.toolchain import PREBUILT_TARGETS, ToolchainError, choose

from ..cachelock import cache_lock
from ..conftest import REPO
from .conftest import RUNNER_CACHE
from .test_native_runs import WORKLOAD, seeded
from .test_targets import EM_AARCH64, EM_X86_64, elf


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for target in PREBUILT_TARGETS:
        try:
            choose(target)
        except ToolchainError as exc:
            pytest.skip(f"the wheel's runners cannot be built here: {exc.message} ({exc.hint})")
    work = tmp_path_factory.mktemp("wheel")
    with cache_lock(RUNNER_CACHE / "wheel.lock"):  # the tree and cargo target dir below are shared
        return _build_wheel(work)


def _build_wheel(work: Path) -> Path:
    # A copy of what git tracks (the build writes build/ and *.egg-info in its tree), kept at one
    # place with unchanged files untouched, so that cargo's next build there has nothing to do.
    tree = RUNNER_CACHE / "wheel-tree"
    if tree.is_dir():
        shutil.rmtree(tree / "build", ignore_errors=True)
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (REPO / name).is_file():
            data = (REPO / name).read_bytes()
            if not (tree / name).is_file() or (tree / name).read_bytes() != data:
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                (tree / name).write_bytes(data)
    env = dict(os.environ, RUSTLE_RUNNER_TARGET_DIR=str(RUNNER_CACHE / "wheel-target"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(tree)],
                          env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = (work / "dist").glob("rustle_deploy-*.whl")
    return built


def fresh_venv(root: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed; its dependencies come from this
    test's environment (a .pth line), not rustle_deploy itself (the editable install's finder is
    a .pth file that a .pth line does not load)."""
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Path(site)


def deploy(venv: Path, tmp: Path, name: str) -> tuple[dict, Path]:  # type: ignore[type-arg]
    home = tmp / name / "home"
    home.mkdir(parents=True)
    root = seeded(tmp / name / "root")
    inv = tmp / name / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"bench-0000": {
        "ansible_connection": "local", "bench_root": str(root), "bench_role": "web",
        "rustle_remote_dir": str(tmp / name / "remote")}}}}))
    # no rustup cargo: HOME is elsewhere and ~/.cargo/bin is not on PATH
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run([str(venv / "bin" / "rustle-deploy"), str(WORKLOAD / "plan.json"), "-i", str(inv), "--run",
                           "--format", "native", "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), home / ".rustle" / "cache" / "native"


def test_the_wheel_carries_runners_a_fresh_install_deploys_with_and_changed_sources_rebuild(
    tmp_path: Path, wheel: Path
) -> None:
    with zipfile.ZipFile(wheel) as z:
        manifest = json.loads(z.read("rustle_deploy/native/prebuilt/manifest.json"))
        assert sorted(manifest["runners"]) == sorted(PREBUILT_TARGETS)
        for target, machine in (("x86_64-unknown-linux-gnu", EM_X86_64), ("aarch64-unknown-linux-gnu", EM_AARCH64)):
            (tmp_path / target).write_bytes(z.read(f"rustle_deploy/native/prebuilt/rustle-runner-{target}"))
            assert elf(tmp_path / target)[0] == machine
    venv = tmp_path / "venv"
    site = fresh_venv(venv, wheel)

    doc, cache = deploy(venv, tmp_path, "prebuilt")
    (host,) = doc["hosts"]
    assert host["recap"]["failed"] == 0 and host["recap"]["changed"] == 9
    (installed,) = (tmp_path / "prebuilt" / "remote" / "runners").iterdir()
    assert installed.name == manifest["runners"]["x86_64-unknown-linux-gnu"], "the wheel's own runner was sent"
    assert not (cache / "target").exists(), "no cargo build ran"

    # a changed runner source: its hash no longer matches the one recorded with the binaries
    main_rs = site / "rustle_deploy" / "native" / "src" / "main.rs"
    main_rs.write_text(main_rs.read_text() + "\n// changed after the release\n")
    doc, cache = deploy(venv, tmp_path, "changed")
    (installed,) = (tmp_path / "changed" / "remote" / "runners").iterdir()
    assert installed.name != manifest["runners"]["x86_64-unknown-linux-gnu"]
    assert (cache / "target").is_dir(), "rebuilt with the cargo found on this machine"
    assert doc["hosts"][0]["recap"]["changed"] == 9
