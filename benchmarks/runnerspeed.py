"""The runner's own CPU on the benchmark workload, A/B: two rustle-runner binaries (built from
the same sources with other settings, say) each apply the workload's native artifact to one
local host, alternating run by run.

    .venv/bin/python benchmarks/runnerspeed.py /tmp/a/rustle-runner /tmp/b/rustle-runner --runs 30

Each binary gets its own artifact (compiled by this checkout with ``--compile-only --format
native``, the binary placed in a cache of its own as the cache for these sources, since an
artifact names its runner's sha256), then ``rustle-runner run ARTIFACT --host bench-1`` is
timed (user+system CPU of that process and its children, from ``wait4``): warm, on a host whose
files are already in place (what every later deployment runs), and cold, on a fresh host tree
each time. It prints the medians and the paired median differences (first minus second).
bootstrap.py measures the install that comes before a cold run; this measures the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hosts import LEGACY, REMOTE_PYTHON, STALE  # noqa: E402
from plan import WORKLOAD, write_plan  # noqa: E402

VENV_BIN = Path(sys.executable).parent
HOST = "bench-1"
# as on the benchmark's hosts (sshd's default PATH): no ~/.pyenv shims for the runner's commands
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


def source_key() -> str:
    out = subprocess.run([str(VENV_BIN / "python"), "-c", "from rustle_deploy.compiler.toolchain import "
                          "source_key; print(source_key())"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def compile_for(runner: Path, work: Path, key: str) -> tuple[Path, Path]:
    """The workload's native artifact for ``runner`` and the runner's copy beside it."""
    data = runner.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    native = work / "cache" / "native"
    (native / "index").mkdir(parents=True)
    (native / f"rustle-runner-{sha}").write_bytes(data)
    (native / f"rustle-runner-{sha}").chmod(0o700)
    (native / "index" / key).write_text(sha)
    inv = {"all": {"hosts": {HOST: {"ansible_connection": "local", "bench_root": str(work / "root"),
                                    "bench_role": "web", "ansible_python_interpreter": REMOTE_PYTHON}}}}
    (work / "inventory.yml").write_text(json.dumps(inv))
    write_plan(work / "plan.json", [HOST], WORKLOAD)
    subprocess.run([str(VENV_BIN / "rustle-deploy"), str(work / "plan.json"), "-i", str(work / "inventory.yml"),
                    "--compile-only", "--format", "native", "--cache-dir", str(work / "cache"),
                    "-o", str(work / "out")], capture_output=True, text=True, check=True)
    artifact = next((work / "out").glob("*.native"))
    return work / "out" / f"rustle-runner-{sha}", artifact


def fresh_root(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "stale.txt").write_text(STALE)
    (root / "legacy.cfg").write_text(LEGACY)


def run_once(runner: Path, artifact: Path) -> float:
    """CPU milliseconds (user + system) of one ``run`` of ``artifact``: the runner and what it
    starts. Their sum is exact; the kernel splits it between user and system by sampling."""
    proc = subprocess.Popen([str(runner), "run", str(artifact), "--host", HOST],
                            env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode != 0:
        raise SystemExit(f"{runner} run failed (exit {proc.returncode}): {err[-500:]!r}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    work = Path(f"/tmp/rustle-runnerspeed-{os.getpid()}")
    key = source_key()
    setups = {}
    for name, runner in (("first", args.first), ("second", args.second)):
        runner_copy, artifact = compile_for(runner, work / name, key)
        setups[name] = (runner_copy, artifact, work / name / "root")
        print(f"{name}: {runner} ({runner.stat().st_size:,} bytes)")
    ms: dict[tuple[str, str], list[float]] = {(n, k): [] for n in setups for k in ("warm", "cold")}
    loads = []
    for i in range(args.runs):
        loads.append(os.getloadavg()[0])
        for name in (list(setups) if i % 2 == 0 else list(setups)[::-1]):
            runner, artifact, root = setups[name]
            fresh_root(root)
            ms[(name, "cold")].append(run_once(runner, artifact))
            ms[(name, "warm")].append(run_once(runner, artifact))
    shutil.rmtree(work, ignore_errors=True)
    for kind in ("warm", "cold"):
        a, b = ms[("first", kind)], ms[("second", kind)]
        diff = [x - y for x, y in zip(a, b, strict=True)]
        print(f"{kind}: first {statistics.median(a):.2f} ms, second {statistics.median(b):.2f} ms (medians); "
              f"first - second paired: median {statistics.median(diff):+.2f}, mean {statistics.mean(diff):+.2f} ms")
    print(f"{args.runs} runs each, alternating; load {min(loads):.1f}-{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
