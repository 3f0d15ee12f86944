"""A new host's native install, A/B: this checkout's bootstrap (transport/options.py
``runner_command``) against another installation's, or this checkout's runner against another
runner binary, through one real sshd.

    .venv/bin/python benchmarks/bootstrap.py --base /tmp/base/.venv/bin --rounds 12 --batch 20
    .venv/bin/python benchmarks/bootstrap.py --base-runner /tmp/old/rustle-runner --rounds 12

Each round runs each version's bootstrap on BATCH fresh remote directories at once (as a cold
deployment reaches its new hosts), with its runner gzip'd on stdin (as ``compiler.runner.packed``
sends it) and a ``status`` request behind it; the versions alternate and swap places every
round. With ``--base`` both versions send the same runner (this checkout's, built once into
run.py's runner cache, or ``--runner``); with ``--base-runner`` both use this checkout's
bootstrap, one with this checkout's runner (or ``--runner``) and one with the other binary. It
prints each version's host CPU per new host (sshd and everything it started, read from the
listener as run.py does) and ssh client CPU per connection (medians), the paired median
difference, and the load. A 50-host run.py under a load of 20-40 cannot see a change of a few ms
per new host; this can (docs/decisions.md, "A new host's install, step by step").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hosts import Fleet  # noqa: E402

VENV_BIN = Path(sys.executable).parent
RUNNER_CACHE = Path(os.environ.get("RUSTLE_BENCH_RUNNER_CACHE", f"/tmp/rustle-bench-runner-{os.getuid()}"))
PLACEHOLDER = "/rustle-bootstrap-bench-remote-dir"  # replaced by each host's own remote dir

# Asked of each installation's own Python: its bootstrap for the runner at argv[1].
COMMAND = """
import sys
from pathlib import Path
from rustle_deploy.compiler.runner import spec
from rustle_deploy.transport.options import RunnerRef, runner_command
s = spec(Path(sys.argv[1]))
print(runner_command(RunnerRef(s.sha256, s.size, sys.argv[2], s.machines, s.glibc)), end="")
"""


def bootstrap_template(bin_dir: Path, runner: Path) -> str:
    """The bootstrap ``bin_dir``'s rustle-deploy sends a new host for ``runner``, its remote
    directory left as PLACEHOLDER."""
    out = subprocess.run([str(bin_dir / "python"), "-c", COMMAND, str(runner), PLACEHOLDER],
                         capture_output=True, text=True, check=True)
    return out.stdout


def ensure_runner() -> Path:
    """This checkout's runner, built once per source into run.py's runner cache."""
    out = subprocess.run([str(VENV_BIN / "python"), "-c", "import sys; from pathlib import Path; "
                          "from rustle_deploy.compiler.runner import ensure_runner; "
                          "print(ensure_runner(Path(sys.argv[1])).path)", str(RUNNER_CACHE)],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def copy_runner(path: Path, work: Path) -> Path:
    """A copy of the runner at ``path`` in ``work``, named as the runner cache names it
    (``spec`` reads the sha256 from the name), so that ``packed`` writes its gzip'd form there,
    never beside a binary the benchmark did not make."""
    data = path.read_bytes()
    copy = work / "runners" / f"rustle-runner-{hashlib.sha256(data).hexdigest()}"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(data)
    return copy


def connect(argv: list[str], stdin: bytes, failures: list[str]) -> None:
    """Run one bootstrap through ``ssh``; a failure (no ``done`` line) is appended to ``failures``."""
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if done.returncode != 0 or b'"done"' not in done.stdout:
        failures.append(f"exit {done.returncode}: {done.stdout[-300:]!r} {done.stderr[-300:]!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    base = ap.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", type=Path, help="another installation's venv bin directory (its bootstrap)")
    base.add_argument("--base-runner", type=Path, help="another rustle-runner binary, sent by this bootstrap")
    ap.add_argument("--runner", type=Path, help="the runner of 'this' (default: this checkout's, built once)")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--batch", type=int, default=20, help="new hosts at once per version and round")
    args = ap.parse_args()
    from rustle_deploy.compiler.runner import packed

    work = Path(f"/tmp/rustle-bootstrap-bench-{os.getpid()}")
    runner = args.runner or ensure_runner()
    runners = {"this": copy_runner(runner, work), "base": copy_runner(args.base_runner or runner, work)}
    versions = {"this": bootstrap_template(VENV_BIN, runners["this"]),
                "base": bootstrap_template(args.base or VENV_BIN, runners["base"])}
    gz = {name: packed(path).read_bytes() for name, path in runners.items()}
    for name, path in runners.items():
        print(f"{name}: runner {path.name[:26]}... ({path.stat().st_size:,} bytes, {len(gz[name]):,} gzip'd)")
    host_ms: dict[str, list[float]] = {v: [] for v in versions}
    client_ms: dict[str, list[float]] = {v: [] for v in versions}
    loads: list[float] = []
    with Fleet(work / "fleet", 1, 0, 1) as fleet:
        host = fleet.hosts[0]
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={fleet.known_hosts}",
               "-o", "StrictHostKeyChecking=yes", "-i", str(fleet.client_key), "-p", str(host.port),
               "-T", "-x", "-a", "root@127.0.0.1"]
        n = 0
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for name in (list(versions) if r % 2 == 0 else list(versions)[::-1]):
                jobs = []
                for _ in range(args.batch):
                    n += 1
                    remote = str(host.root.parent / "bootstrap" / f"{name}-{n}" / "remote")
                    request = {"op": "status", "remote_dir": remote, "host": host.name, "binary_name": None}
                    jobs.append((versions[name].replace(PLACEHOLDER, remote),
                                 b"1\n" + gz[name] + json.dumps(request).encode() + b"\n"))
                cpu0, before = fleet.host_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
                failures: list[str] = []
                threads = [threading.Thread(target=connect, args=([*ssh, command], stdin, failures))
                           for command, stdin in jobs]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if failures:
                    print(f"{name}: {len(failures)} of {args.batch} bootstraps failed: {failures[0]}", file=sys.stderr)
                    return 1
                host_ms[name].append((fleet.host_cpu() - cpu0) * 1000 / args.batch)
                client_ms[name].append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                                       * 1000 / args.batch)
    shutil.rmtree(work, ignore_errors=True)  # after the last measurement (hosts.py, Fleet.discard)
    for name in versions:
        print(f"{name}: host {statistics.median(host_ms[name]):.2f} ms per new host "
              f"(mean {statistics.mean(host_ms[name]):.2f}), ssh client {statistics.median(client_ms[name]):.2f} ms")
    diff = [a - b for a, b in zip(host_ms["this"], host_ms["base"], strict=True)]
    print(f"this - base, paired by round: median {statistics.median(diff):+.2f} ms, mean {statistics.mean(diff):+.2f} ms "
          f"({args.rounds} rounds of {args.batch} hosts; load {min(loads):.1f}-{max(loads):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
