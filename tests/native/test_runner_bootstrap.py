"""The native bootstrap's first contact (transport/options.py ``runner_command``), run by the real
/bin/sh with the real runner's gzip'd bytes on stdin: what it installs, what it answers, and
what it leaves when the upload is cut, the host has no gzip, or the runner does not fit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from rustle_deploy.compiler.runner import RunnerBinary, packed, spec
from rustle_deploy.transport.options import EXIT_WRONG_RUNNER, RunnerRef, runner_command


def bootstrap(ref: RunnerRef, stdin: bytes, path: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PATH": path} if path is not None else None
    return subprocess.run(["/bin/sh", "-c", runner_command(ref)], input=stdin, capture_output=True, env=env,
                          timeout=120, check=False)


def ref_for(runner: RunnerBinary, remote: Path) -> RunnerRef:
    s = spec(runner.path)
    return RunnerRef(s.sha256, s.size, str(remote), s.machines, s.glibc)


def test_the_runner_is_sent_gzipd_unpacked_checked_and_installed(tmp_path: Path, runner: RunnerBinary) -> None:
    """What fits is unpacked to a temporary name, checks its own sha256, renames itself into
    runners/ and carries on as the agent, which answers the request that follows."""
    gz = packed(runner.path).read_bytes()
    assert len(gz) < runner.size * 0.75 and gz[:2] == b"\x1f\x8b" and packed(runner.path) == packed(runner.path)
    ref = ref_for(runner, tmp_path / "remote")
    assert ref.size == len(gz) and ref.machines and ref.glibc is not None  # a dynamic build
    request = {"op": "status", "remote_dir": str(tmp_path / "remote"), "host": "h", "binary_name": None}
    done = bootstrap(ref, b"1\n" + gz + json.dumps(request).encode() + b"\n")
    assert done.returncode == 0, done
    assert json.loads(done.stdout.splitlines()[-1])["agent"] == "done", done
    assert sorted(p.name for p in (tmp_path / "remote" / "runners").iterdir()) == [runner.sha256]
    assert (tmp_path / "remote" / "runners" / runner.sha256).read_bytes() == runner.path.read_bytes()


def test_a_cut_upload_installs_nothing_and_says_so(tmp_path: Path, runner: RunnerBinary) -> None:
    gz = packed(runner.path).read_bytes()
    ref = ref_for(runner, tmp_path / "remote")
    done = bootstrap(ref, b"1\n" + gz[: len(gz) // 2])
    assert done.returncode == 20, done
    line = json.loads(done.stdout.splitlines()[-1])
    assert line["agent"] == "error" and line["kind"] == "runner_install" and "the upload was cut" in line["message"]
    assert list((tmp_path / "remote" / "runners").iterdir()) == []  # no temporary file left


def test_a_host_without_gzip_is_told_so(tmp_path: Path, runner: RunnerBinary) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("head", "uname", "getconf", "tr", "mkdir", "chmod", "rm"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    ref = ref_for(runner, tmp_path / "remote")
    done = bootstrap(ref, b"1\n" + packed(runner.path).read_bytes(), path=str(tools))
    assert done.returncode == 20, done
    assert "this host has no gzip, which unpacks it" in json.loads(done.stdout.splitlines()[-1])["message"]
    assert not (tmp_path / "remote").exists()


def fake_tools(bin_dir: Path, **scripts: str) -> str:
    """A PATH whose first directory holds these shell scripts (``getconf``, ``chmod``, ...)."""
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def not_executable(runner: RunnerBinary) -> str:
    """A chmod that leaves the runner's unpacked temp file as it is: its start then fails (exit
    126) as a runner the host's loader refuses does (exit 127), the way a glibc older than the
    one the runner was linked against fails it."""
    real = shutil.which("chmod")
    return f'case "$2" in */{runner.sha256}.tmp.*) exit 0;; esac\nexec {real} "$@"\n'


def test_a_runner_for_another_machine_is_dropped_and_the_host_says_what_it_is(
    tmp_path: Path, runner: RunnerBinary
) -> None:
    """Another machine: its bytes are read and dropped, nothing is made, and the answer carries
    uname -s, uname -m and the C library."""
    ref = replace(ref_for(runner, tmp_path / "remote"), machines=("riscv64",))
    done = bootstrap(ref, b"1\n" + packed(runner.path).read_bytes() + b'{"op": "status"}\n')
    assert done.returncode == EXIT_WRONG_RUNNER, done
    u = os.uname()
    assert json.loads(done.stdout) == {"agent": "wrong_runner", "system": u.sysname, "machine": u.machine,
                                       "libc": os.confstr("CS_GNU_LIBC_VERSION")}
    assert not (tmp_path / "remote").exists()


@pytest.mark.parametrize("glibc", ["older", "new enough"])
def test_a_runner_that_does_not_start_is_removed_and_the_host_says_why(
    tmp_path: Path, runner: RunnerBinary, glibc: str
) -> None:
    """A runner of the host's machine that cannot be executed there: the bootstrap then asks
    for the C library (getconf, only now). One older than the runner needs (here the runner is
    said to need glibc 2.999) answers wrong_runner with uname -s, uname -m and the C library,
    so the controller sends the static runner; else the start's exit status is the error. The
    unpacked file is removed either way: the new host keeps only its empty runners/."""
    ref = ref_for(runner, tmp_path / "remote")
    if glibc == "older":
        ref = replace(ref, glibc=(2, 999))
    path = fake_tools(tmp_path / "bin", chmod=not_executable(runner))
    done = bootstrap(ref, b"1\n" + packed(runner.path).read_bytes() + b'{"op": "status"}\n', path=path)
    u = os.uname()
    if glibc == "older":
        assert done.returncode == EXIT_WRONG_RUNNER, done
        assert json.loads(done.stdout) == {"agent": "wrong_runner", "system": u.sysname, "machine": u.machine,
                                           "libc": os.confstr("CS_GNU_LIBC_VERSION")}
    else:
        assert done.returncode == 20, done
        line = json.loads(done.stdout.splitlines()[-1])
        assert (line["kind"], line["exit"], line["machine"]) == ("runner_install", 126, u.machine), line
    assert list((tmp_path / "remote" / "runners").iterdir()) == []


def test_a_runner_that_starts_is_installed_without_asking_for_the_c_library(
    tmp_path: Path, runner: RunnerBinary
) -> None:
    """On a host that runs the runner, the bootstrap starts no getconf (nor uname): the C
    library is asked only after a failed start (docs/native.md, "Remote side")."""
    asked = tmp_path / "asked"
    path = fake_tools(tmp_path / "bin", getconf=f'echo getconf >>{asked}\necho glibc 2.1\n',
                      uname=f'echo uname >>{asked}\necho riscv64\n')
    request = {"op": "status", "remote_dir": str(tmp_path / "remote"), "host": "h", "binary_name": None}
    done = bootstrap(ref_for(runner, tmp_path / "remote"), b"1\n" + packed(runner.path).read_bytes()
                     + json.dumps(request).encode() + b"\n", path=path)
    assert done.returncode == 0, done
    assert json.loads(done.stdout.splitlines()[-1])["agent"] == "done", done
    assert not asked.exists()
    assert sorted(p.name for p in (tmp_path / "remote" / "runners").iterdir()) == [runner.sha256]


def test_a_new_host_gets_its_directories_private_and_marked_and_an_existing_one_is_not_marked(
    tmp_path: Path, runner: RunnerBinary
) -> None:
    """A remote dir that did not exist is made 0700 with runners/ (one mkdir) and marked as ours
    (so cleanup may remove it); one that existed gets runners/ 0700 and no marker."""
    from rustle_deploy.model import CREATED_MARKER

    gz = packed(runner.path).read_bytes()
    mine, theirs = tmp_path / "new" / "remote", tmp_path / "existing"
    theirs.mkdir(mode=0o755)
    for remote in (mine, theirs):
        request = {"op": "status", "remote_dir": str(remote), "host": "h", "binary_name": None}
        done = bootstrap(ref_for(runner, remote), b"1\n" + gz + json.dumps(request).encode() + b"\n")
        assert done.returncode == 0, done
        assert (remote / "runners").stat().st_mode & 0o777 == 0o700
    assert mine.stat().st_mode & 0o777 == 0o700 and (mine / CREATED_MARKER).is_file()
    assert theirs.stat().st_mode & 0o777 == 0o755 and not (theirs / CREATED_MARKER).exists()


def test_the_probe_asks_uname_where_proc_does_not_say_what_the_host_is(tmp_path: Path, runner: RunnerBinary) -> None:
    """The probe reads the system and machine from /proc (kernel/ostype, kernel/arch: Linux 6.1+)
    with the shell's own read; a kernel without kernel/arch gets `uname -sm`'s answer, the same."""
    ref = replace(ref_for(runner, tmp_path / "remote"), machines=("riscv64",))
    command = runner_command(ref)
    assert "/proc/sys/kernel/arch" in command
    older_kernel = command.replace("/proc/sys/kernel/arch", str(tmp_path / "no-such-file"))
    u = os.uname()
    for text in (command, older_kernel):
        done = subprocess.run(["/bin/sh", "-c", text], input=b"1\n" + packed(runner.path).read_bytes(),
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == EXIT_WRONG_RUNNER, done
        assert json.loads(done.stdout)["system"] == u.sysname and json.loads(done.stdout)["machine"] == u.machine
        assert done.stderr == b""
    assert not (tmp_path / "remote").exists()
