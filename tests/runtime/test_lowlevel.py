"""rustle_runtime.lowlevel: spawn, mkstemp and hashes, under this Python and every older one.

spawn replaces subprocess on the host's hot path, so it must behave like
``subprocess.run(..., start_new_session=True)`` wherever the runtime runs (3.8+).
"""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"

CHECKS = r"""
import hashlib, os, signal, stat, sys, time
sys.path.insert(0, RUNTIME)
from rustle_runtime.lowlevel import Timeout, hexdigest, mkstemp, new_hash, spawn, which

env = dict(os.environ)
# stdout, stderr and the exit status, apart
assert spawn(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], env) == (3, b"out\n", b"err\n")
# stdin: bytes fed and closed; None is /dev/null
big = os.urandom(300000)
rc, out, _ = spawn(["cat"], env, data=big)
assert rc == 0 and out == big
assert spawn(["cat"], env) == (0, b"", b"")
# output larger than a pipe buffer on both streams does not deadlock
rc, out, err = spawn(["/bin/sh", "-c", "head -c 200000 /dev/zero; head -c 200000 /dev/zero >&2"], env)
assert (rc, len(out), len(err)) == (0, 200000, 200000)
# SIGPIPE is back to its default in the child: the pipeline ends instead of looping
rc, out, _ = spawn(["/bin/sh", "-c", "yes | head -n 2"], env, timeout=20)
assert (rc, out) == (0, b"y\ny\n")
# a new session: the child leads its own process group
rc, out, _ = spawn(["/bin/sh", "-c", "ps -o sid= -p $$; echo $$"], env)
sid, pid = out.split()
assert sid == pid, out
# killed by a signal: negative status, as subprocess reports it
assert spawn(["/bin/sh", "-c", "kill -9 $$"], env)[0] == -9
# PATH comes from the env given, as subprocess does
tool = os.path.join(TMP, "only-here")
with open(tool, "w") as fh:
    fh.write("#!/bin/sh\necho found\n")
os.chmod(tool, 0o755)
assert spawn(["only-here"], dict(env, PATH=TMP)) == (0, b"found\n", b"")
assert which("only-here", {"PATH": TMP}) == tool and which("only-here", {"PATH": "/nonexistent"}) is None
try:
    spawn(["no-such-command-anywhere"], env)
except FileNotFoundError as exc:
    assert exc.errno == 2 and exc.filename == "no-such-command-anywhere"
else:
    raise AssertionError("a missing command must raise FileNotFoundError")
os.chmod(tool, 0o644)
try:
    spawn([tool], env)
except PermissionError:
    pass
else:
    raise AssertionError("a file that is not executable must raise PermissionError")
# a timeout kills the whole session (the sleep started by the shell too) and says so
start = time.monotonic()
try:
    spawn(["/bin/sh", "-c", "echo partial; sleep 30 & wait"], env, timeout=0.5)
except Timeout as exc:
    assert exc.stdout == b"partial\n", exc.stdout
else:
    raise AssertionError("expected a Timeout")
assert time.monotonic() - start < 10
# cwd goes through subprocess and works the same
assert spawn(["pwd"], env, cwd=TMP) == (0, (os.path.realpath(TMP) + "\n").encode(), b"")
# no descriptor leaks
before = len(os.listdir("/proc/self/fd"))
for _ in range(20):
    spawn(["true"], env, data=b"x")
assert len(os.listdir("/proc/self/fd")) == before
# mkstemp: private, exclusive, in the directory asked for
fd, path = mkstemp(TMP, ".rustle_tmp_")
os.close(fd)
assert os.path.dirname(path) == TMP and os.path.basename(path).startswith(".rustle_tmp_")
assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
# hashes agree with hashlib, small (built-in) and large (hashlib) alike
for algo in ("sha1", "sha256", "md5", "sha512"):
    for data in (b"", b"abc", os.urandom(5 << 20)):
        assert hexdigest(algo, data) == hashlib.new(algo, data).hexdigest(), algo
print("OK")
"""


def _interpreters() -> list[str]:
    found = [sys.executable]
    for v in ("3.8", "3.9", "3.10", "3.12", "3.13"):
        paths = sorted(glob.glob(f"/root/.pyenv/versions/{v}.*/bin/python3"))
        if paths:
            found.append(paths[-1])
    return found


@pytest.mark.parametrize("python", _interpreters())
def test_lowlevel_behaves_like_the_stdlib(python, tmp_path):
    script = f"RUNTIME = {str(RUNTIME)!r}\nTMP = {str(tmp_path)!r}\n" + CHECKS
    proc = subprocess.run([python, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr



def test_spawn_falls_back_to_subprocess_without_posix_spawn_setsid(monkeypatch):
    """Some libcs lack POSIX_SPAWN_SETSID (Python raises NotImplementedError): same results."""
    import os

    sys.path.insert(0, str(RUNTIME))
    try:
        from rustle_runtime import lowlevel
    finally:
        sys.path.remove(str(RUNTIME))

    def refuse(*args, **kwargs):
        raise NotImplementedError("setsid")

    monkeypatch.setattr(lowlevel.os, "posix_spawn", refuse)
    before = len(os.listdir("/proc/self/fd"))
    env = dict(os.environ)
    assert lowlevel.spawn(["/bin/sh", "-c", "cat; echo err >&2; exit 4"], env, data=b"in") == (4, b"in", b"err\n")
    assert len(os.listdir("/proc/self/fd")) == before
