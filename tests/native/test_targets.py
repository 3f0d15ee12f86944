"""Runner targets: aarch64 cross-built with Debian's toolchain and run under qemu-user, the
static (portable) build, and targets that are refused (docs/native.md, "Targets").
Under qemu the plan leaves out the tasks that start processes (``without_children``).

The aarch64 runner is compared with the x86-64 one on the same plan: the same events and the
same files left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.compiler.runner import RunnerBinary
from rustle_deploy.compiler.toolchain import ToolchainError, choose

from .conftest import built
from .test_native_runs import cli, files, recap, seeded, workload, workload_for

AARCH64 = "aarch64-unknown-linux-gnu"
STATIC = "x86_64-unknown-linux-gnu+static"
QEMU = shutil.which("qemu-aarch64")
SYSROOT = "/usr/aarch64-linux-gnu"  # gcc-aarch64-linux-gnu's C library, for qemu's -L
EM_X86_64, EM_AARCH64 = 62, 183


@pytest.fixture(scope="session")
def aarch64_runner() -> RunnerBinary:
    if QEMU is None or not Path(SYSROOT).is_dir():
        pytest.skip("qemu-user and gcc-aarch64-linux-gnu are not installed (.ci/run installs them)")
    return built(AARCH64)


def elf(path: Path) -> tuple[int, bool]:
    """(e_machine, has an interpreter) of an ELF executable."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "a 64-bit ELF file"
    machine = int.from_bytes(data[18:20], "little")
    phoff, phentsize, phnum = (int.from_bytes(data[32:40], "little"), int.from_bytes(data[54:56], "little"),
                               int.from_bytes(data[56:58], "little"))
    types = [int.from_bytes(data[phoff + i * phentsize: phoff + i * phentsize + 4], "little") for i in range(phnum)]
    return machine, 3 in types  # PT_INTERP


def without_children(plan: Path, dest: Path) -> Path:
    """The workload without the tasks that start a process (command, shell, and the assert over
    the shell's result): Debian 12's qemu-user (7.2) hangs in the child of a fork() made by an
    emulated program (a posix_spawn works), and the runner forks to call setsid before exec."""
    doc = json.loads(plan.read_text())
    for play in doc["plays"]:
        for batch in play["batches"]:
            batch["tasks"] = [t for t in batch["tasks"] if t["module"].rsplit(".", 1)[-1] not in ("command", "shell", "assert")]
    kept = {t["task_id"] for play in doc["plays"] for batch in play["batches"] for t in batch["tasks"]}
    doc["total_tasks"] = len(kept)
    for deployment in doc["binary_deployments"]:
        deployment["tasks"] = [t for t in deployment["tasks"] if t in kept]
    dest.mkdir(parents=True)
    for sub in ("files", "templates"):
        (dest / sub).symlink_to(plan.parent / sub)
    (dest / "plan.json").write_text(json.dumps(doc))
    return dest / "plan.json"


def compiled(capsys: pytest.CaptureFixture[str], plan: Path, inv: Path, out: Path, *target: str) -> tuple[Path, Path]:
    """(runner, artifact) of ``plan`` compiled --format native for ``target`` into ``out``."""
    code, _, err = cli(capsys, str(plan), "-i", str(inv), "--compile-only", "--format", "native",
                       "-o", str(out), "--output", "json", *target)
    assert code == 0, err
    (art,) = json.loads((out / "manifest.json").read_text())["artifacts"]
    flags = dict(zip(target[::2], target[1::2], strict=True))
    assert art["target"] == flags.get("-t", STATIC if "--config" in flags else "x86_64-unknown-linux-gnu")
    return out / f"rustle-runner-{art['runner']}", out / art["file"]


def run(prefix: list[str], runner: Path, artifact: Path, journal: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([*prefix, str(runner), "run", str(artifact), "--host", "bench-0000", "--journal",
                           str(journal), "--run-id", "r1"], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    for e in events:  # what differs between two runs whatever the runner
        for key in ("duration", "time", "runner"):
            e.pop(key, None)
        for key in ("inode", "atime", "mtime", "ctime"):  # of a file made anew by each run
            (e.get("stat") or {}).pop(key, None)
    return events


def test_aarch64_runner_runs_the_workload_under_qemu_as_the_x86_64_runner_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aarch64_runner: RunnerBinary, native_cache: Path
) -> None:
    assert QEMU is not None
    plan, inv, root = workload(tmp_path, "w")
    plan = without_children(plan, tmp_path / "plan")
    arm, arm_art = compiled(capsys, plan, inv, tmp_path / "arm", "-t", AARCH64)
    x86, x86_art = compiled(capsys, plan, inv, tmp_path / "x86")
    assert arm.read_bytes() == aarch64_runner.path.read_bytes()
    assert elf(arm) == (EM_AARCH64, True) and elf(x86) == (EM_X86_64, True)
    assert json.loads(arm_art.read_bytes())["runner"] == aarch64_runner.sha256
    qemu = [QEMU, "-L", SYSROOT]
    assert subprocess.run([*qemu, str(arm), "selfcheck", aarch64_runner.sha256], check=False).returncode == 0
    assert subprocess.run([*qemu, str(arm), "selfcheck", "0" * 64], check=False).returncode == 1
    # an artifact compiled for one runner is refused by the other
    assert subprocess.run([*qemu, str(arm), "verify", str(x86_art)], capture_output=True, check=False).returncode != 0
    assert subprocess.run([*qemu, str(arm), "verify", str(arm_art)], check=False).returncode == 0
    arm_events = run(qemu, arm, arm_art, tmp_path / "arm.jsonl")
    arm_files = files(root)
    shutil.rmtree(root)
    seeded(root)
    x86_events = run([], x86, x86_art, tmp_path / "x86.jsonl")
    assert [e["event"] for e in arm_events].count("task_result") == 9
    assert arm_events == x86_events
    assert arm_files == files(root)
    assert arm_events[-1]["event"] == "recap" and arm_events[-1]["changed"] == 8, arm_events[-1]
    assert (root / "app" / "motd").is_file() and not (root / "stale.txt").exists()


def test_static_runner_has_no_loader_and_deploys_the_workload_like_the_dynamic_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], static_runner: RunnerBinary, native_cache: Path
) -> None:
    assert elf(static_runner.path) == (EM_X86_64, False), "statically linked: no ELF interpreter"
    results = {}
    for fmt, target in (("dynamic", []), ("static", ["-t", STATIC])):
        plan, inv, root = workload(tmp_path, fmt)
        code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--format", "native", "--output", "json",
                             *target)
        assert code == 0, err
        (installed,) = (tmp_path / fmt / "remote" / "runners").iterdir()
        results[fmt] = (recap(doc), files(root), installed.name)
    assert results["static"][:2] == results["dynamic"][:2]
    assert results["static"][2] == static_runner.sha256 != results["dynamic"][2]


FACTS_BOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - debug:
        msg: "{{ ansible_fqdn }}|{{ ansible_domain }}|{{ ansible_userspace_bits }}|{{ ansible_date_time.tz }}"
"""


def test_the_static_and_aarch64_runners_gather_fqdn_and_date_time_as_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], static_runner: RunnerBinary,
    aarch64_runner: RunnerBinary, native_cache: Path
) -> None:
    """The static build finds the fqdn through getent (it never loads the host's NSS modules),
    the dynamic aarch64 build through getaddrinfo/gethostbyaddr under qemu: both as Python's
    socket.getfqdn() on this machine."""
    import socket
    import time

    book = tmp_path / "facts.yml"
    book.write_text(FACTS_BOOK)
    inv = tmp_path / "inv.ini"
    inv.write_text("bench-0000 ansible_connection=local\n")
    fqdn = socket.getfqdn()
    want = f"{fqdn}|{'.'.join(fqdn.split('.')[1:])}|64|{time.strftime('%Z')}"
    for name, prefix, target in (("static", [], STATIC), ("arm", [QEMU or "qemu-aarch64", "-L", SYSROOT], AARCH64)):
        runner, art = compiled(capsys, book, inv, tmp_path / name, "-t", target)
        events = run(prefix, runner, art, tmp_path / f"{name}.jsonl")
        (result,) = [e for e in events if e["event"] == "task_result"]
        assert result["msg"] == want, (name, result)


@pytest.mark.parametrize("target", ["x86_64-apple-darwin", "aarch64-apple-darwin"])
def test_a_macos_target_is_refused_before_anything_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, target: str
) -> None:
    plan, inv, root = workload(tmp_path, "mac")
    out = tmp_path / "out"
    code, _, err = cli(capsys, str(plan), "-i", str(inv), "--compile-only", "--format", "native", "-o", str(out),
                       "-t", target)
    assert code == 2
    assert f"--target {target}: rustle-runner for macOS can only be built on a Mac" in err
    assert "--format pyz" in err
    assert not out.exists() and not (rustle_home / ".rustle" / "cache").exists()


def test_an_unknown_inventory_target_is_refused_naming_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    plan, inv, root = workload(tmp_path, "riscv")
    inv.write_text(inv.read_text().replace("bench_role: web", "bench_role: web\n      rustle_target: riscv64gc-unknown-linux-gnu"))
    code, _, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--format", "native")
    assert code == 2
    assert "bench-0000: rustle_target=riscv64gc-unknown-linux-gnu: --target riscv64gc-unknown-linux-gnu: " in err
    assert not (tmp_path / "riscv" / "remote").exists()


def test_a_cross_target_without_its_linker_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cross linker on PATH (nor, then, rustup's cargo: HOME is elsewhere): the error names
    the linker and the Debian packages, whatever else is installed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CARGO_HOME", raising=False)
    monkeypatch.delenv("RUSTUP_HOME", raising=False)
    with pytest.raises(ToolchainError) as caught:
        choose(AARCH64)
    assert caught.value.message.startswith(f"rustle-runner for {AARCH64} cannot be built on this controller: missing ")
    assert "the C cross linker aarch64-linux-gnu-gcc" in caught.value.message
    assert "apt-get install gcc-aarch64-linux-gnu" in caught.value.hint
    if not os.access("/usr/bin/cargo", os.X_OK):  # no toolchain at all: that is named too, with the arm64 std
        assert "Rust's cargo" in caught.value.message
        assert "dpkg --add-architecture arm64" in caught.value.hint and "libstd-rust-dev:arm64" in caught.value.hint


def test_a_runner_this_host_cannot_execute_is_refused_with_the_target_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aarch64_runner: RunnerBinary, native_cache: Path
) -> None:
    """The aarch64 runner sent to this x86-64 host: the bootstrap's first-contact probe (uname
    -sm) finds it cannot run here and answers so before installing anything (not even the remote
    directory is made); the hint names the target that fits."""
    plan, inv, root = workload(tmp_path, "wrong")
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--format", "native", "--output", "json",
                         "-t", AARCH64)
    assert code == 1
    (host,) = doc["hosts"]
    machine = os.uname().machine
    sha = aarch64_runner.sha256[:12]
    assert (f"cannot run rustle-runner {sha}: it is Linux {machine}, rustle-runner {sha} is built for Linux aarch64 "
            "(nothing was installed)") in host["error"]
    assert (f"hint: this host is {machine}: give it the runner built for it, "
            f"rustle_target={machine}-unknown-linux-gnu in the inventory") in host["error"]
    assert not (tmp_path / "wrong" / "remote").exists()
    assert sorted(p.name for p in root.iterdir()) == ["legacy.cfg", "stale.txt"]


def test_a_runner_that_cannot_be_loaded_points_at_the_static_build() -> None:
    from rustle_deploy.deploy.host import _runner_install_hint

    hint = _runner_install_hint({"exit": 127, "machine": "aarch64"})
    assert "rustle_target=aarch64-unknown-linux-gnu+static" in hint and "C library is older" in hint
    assert "no rustle-runner exists" in _runner_install_hint({"exit": 126, "machine": "riscv64"})


def test_config_static_linking_gives_native_hosts_the_static_runner_unless_t_says_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], static_runner: RunnerBinary, native_cache: Path
) -> None:
    plan, inv, root = workload(tmp_path, "cfg")
    config = tmp_path / "config.toml"
    config.write_text("[compilation]\nstatic_linking = true\n")
    runner, _ = compiled(capsys, plan, inv, tmp_path / "static", "--config", str(config))
    assert runner.name == f"rustle-runner-{static_runner.sha256}"
    code, _, err = cli(capsys, str(plan), "-i", str(inv), "--compile-only", "--format", "native", "-o",
                       str(tmp_path / "flag"), "--output", "json", "--config", str(config), "-t", "x86_64-unknown-linux-gnu")
    assert code == 0, err
    (art,) = json.loads((tmp_path / "flag" / "manifest.json").read_text())["artifacts"]
    assert art["target"] == "x86_64-unknown-linux-gnu" and art["runner"] != static_runner.sha256
    assert "static_linking" not in err, "no 'has no effect' note: it has one"


@pytest.mark.ssh
@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_each_host_over_ssh_gets_the_runner_of_its_own_target(
    client: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, aarch64_runner: RunnerBinary,
    native_cache: Path
) -> None:
    """One deployment, two hosts behind a real sshd: one declared aarch64 (this machine cannot
    run that runner: refused with the target that fits), the other the controller's own."""
    hosts, roots = {}, {}
    for name, extra in (("arm", {"rustle_target": AARCH64}), ("x86", {})):
        roots[name] = seeded(tmp_path / f"root-{name}")
        h = sshd.host(name, tmp_path / f"remote-{name}", bench_root=str(roots[name]), bench_role="web", **extra)
        hosts[name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = workload_for(tmp_path, sorted(hosts))
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native",
                         "--ssh-client", client)
    assert code == 1, err
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["x86"]["ok"] and by_name["x86"]["recap"]["changed"] == 9
    assert "rustle_target=x86_64-unknown-linux-gnu in the inventory" in by_name["arm"]["error"]
    assert not (tmp_path / "remote-arm" / "runners").exists()
    assert [p.name for p in (tmp_path / "remote-x86" / "runners").iterdir()] != [aarch64_runner.sha256]
