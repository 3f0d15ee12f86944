"""The wheel carries prebuilt runners: built from this tree by the package build (setup.py),
installed into a fresh virtual environment, used by a --format native deployment without any
cargo build; changed runner sources are noticed by their hash and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

from rustle_deploy.compiler.runner import build_lock, target_dir
from rustle_deploy.compiler.toolchain import PREBUILT_TARGETS

from ..cachelock import cache_lock
from ..conftest import REPO
from .conftest import RUNNER_CACHE, built
from .test_native_runs import WORKLOAD, seeded
from .test_targets import EM_AARCH64, EM_X86_64, elf

# the line of the runner's main.rs that prints its --version
VERSION_LINE = 'println!("rustle-runner {}", env!("CARGO_PKG_VERSION"));'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The session's runners for the wheel's targets (tests/native/conftest.py's cache): built now
    # if no other test built them yet, each in its cargo target dir (compiler/runner.py's
    # target_dir), where the wheel's build below finds them compiled.
    runners = {target: built(target).sha256 for target in PREBUILT_TARGETS}
    return _build_wheel(tmp_path_factory.mktemp("wheel"), runners)


def _build_wheel(work: Path, runners: dict[str, str]) -> Path:
    # A copy of what git tracks (the build writes build/ and *.egg-info in its tree), with the
    # files' times: cargo keys its build by paths inside the crate and by those times, so the
    # copied crate is the one already built, not a change
    tree = work / "tree"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (REPO / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    # setup.py builds each target in RUSTLE_RUNNER_TARGET_DIR/<target>: there, the target dir of
    # the session's runner, built from the same sources with the same toolchain. The wheel's
    # build runs cargo for each target as a release build does, and cargo finds nothing to do.
    # When the session found a runner in the cache's index instead (built from these sources by
    # another checkout: this tree's target dir is empty, or holds a build of older sources), a
    # second cargo build of each would cost a minute or more of CPU; the build takes the session's
    # runners from that cache then (setup.py's RUSTLE_PREBUILT_CACHE, which checks each by its
    # sources' hash and its sha256), and the wheel must carry exactly those.
    scratch = work / "cargo"
    scratch.mkdir()
    env = dict(os.environ, RUSTLE_RUNNER_TARGET_DIR=str(scratch))
    with contextlib.ExitStack() as locks:
        for target in sorted(PREBUILT_TARGETS):
            shared = target_dir(RUNNER_CACHE / "native", target)
            shared.mkdir(parents=True, exist_ok=True)  # none when the runner was found in the cache's index
            (scratch / target).symlink_to(shared, target_is_directory=True)
            locks.enter_context(cache_lock(build_lock(RUNNER_CACHE / "native", target)))  # no runner build there meanwhile
            binary = shared / target / "release" / "rustle-runner"
            if not binary.is_file() or hashlib.sha256(binary.read_bytes()).hexdigest() != runners[target]:
                env["RUSTLE_PREBUILT_CACHE"] = str(RUNNER_CACHE)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(tree)],
                              env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built_wheel,) = (work / "dist").glob("rustle_deploy-*.whl")
    if "RUSTLE_PREBUILT_CACHE" in env:  # the session's own runners were packaged, none built again
        with zipfile.ZipFile(built_wheel) as z:
            assert json.loads(z.read("rustle_deploy/native/prebuilt/manifest.json"))["runners"] == runners
    return built_wheel


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


# What the rebuild of changed sources builds with: the crate's release profile without LTO, at
# opt-level 0 in parallel codegen units (cargo reads CARGO_PROFILE_RELEASE_* over Cargo.toml's
# [profile.release]): a few seconds of CPU where the shipped profile (lto, codegen-units = 1)
# takes a minute or more; what is checked here is that the change is noticed and a runner built
# from it is used, and the shipped profile is built by every other runner of the session.
QUICK_PROFILE = {"CARGO_PROFILE_RELEASE_LTO": "false", "CARGO_PROFILE_RELEASE_OPT_LEVEL": "0",
                 "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16"}


def deploy(venv: Path, tmp: Path, name: str, path: str, **env: str) -> tuple[dict, Path]:  # type: ignore[type-arg]
    """Deploy the workload with the venv's rustle-deploy --format native, HOME private and
    ``path`` as PATH (``env`` added to that environment): the result, and that HOME's runner cache."""
    home = tmp / name / "home"
    home.mkdir(parents=True)
    root = seeded(tmp / name / "root")
    inv = tmp / name / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"bench-0000": {
        "ansible_connection": "local", "bench_root": str(root), "bench_role": "web",
        "rustle_remote_dir": str(tmp / name / "remote")}}}}))
    env = {"HOME": str(home), "PATH": path, "LANG": "C.UTF-8", **env}
    proc = subprocess.run([str(venv / "bin" / "rustle-deploy"), str(WORKLOAD / "plan.json"), "-i", str(inv), "--run",
                           "--format", "native", "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=1800, check=False)  # a cargo build has taken 20 min at a load of 30
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

    # no rustup cargo: HOME is elsewhere and ~/.cargo/bin is not on PATH
    doc, cache = deploy(venv, tmp_path, "prebuilt", "/usr/local/bin:/usr/bin:/bin")
    (host,) = doc["hosts"]
    assert host["recap"]["failed"] == 0 and host["recap"]["changed"] == 9
    (installed,) = (tmp_path / "prebuilt" / "remote" / "runners").iterdir()
    assert installed.name == manifest["runners"]["x86_64-unknown-linux-gnu"], "the wheel's own runner was sent"
    assert not (cache / "target").exists(), "no cargo build ran"

    # a changed runner source (what --version prints): its hash no longer matches the one recorded
    # with the binaries, and the runner built from it says so
    main_rs = site / "rustle_deploy" / "native" / "src" / "main.rs"
    text = main_rs.read_text()
    assert text.count(VERSION_LINE) == 1
    main_rs.write_text(text.replace(VERSION_LINE, VERSION_LINE.replace("{}", "{} (changed after the release)")))
    # rebuilt with the first cargo on this test's PATH, as a user's would be (rustup's, where there
    # is one: its rustc compiles the crate in a third of Debian's rustc 1.65 CPU time)
    doc, cache = deploy(venv, tmp_path, "changed", os.environ["PATH"], **QUICK_PROFILE)
    (installed,) = (tmp_path / "changed" / "remote" / "runners").iterdir()
    assert installed.name != manifest["runners"]["x86_64-unknown-linux-gnu"]
    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"rustle-runner \S+ \(changed after the release\)", version.strip()), version
    assert (cache / "target").is_dir(), "rebuilt with the cargo found on this machine"
    assert doc["hosts"][0]["recap"]["changed"] == 9
