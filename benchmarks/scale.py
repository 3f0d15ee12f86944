"""The controller at scale: the workload on 1,000 and 10,000 inventory hosts sharing a few sshd
servers, with no format flag (auto), cold then warm. Not part of the test suite.

    .venv/bin/python benchmarks/scale.py [--hosts 1000,10000] [--servers 4] [--out DIR]

Per run: wall time and time per host, controller CPU and peak RSS (wait4 over the tool and its
descendants), and, sampled every 0.2 s from /proc while it runs, the tool's open file
descriptors and its live descendant processes (peak and last sample). Issue 16's targets: per-host
time at 10,000 at most 1.5x that at 1,000, controller memory under 2 GiB, and no growth of file
descriptors or processes with the host count (both bounded by the fan-out width, not N).
Every host's tree and the JSON report are checked as in run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check import check_run  # noqa: E402
from hosts import Fleet, children  # noqa: E402
from plan import WORKLOAD, write_plan  # noqa: E402
from run import VENV_BIN, Ctx, compile_installed_sources, seed_runner  # noqa: E402


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        try:
            kids = children(todo.pop())
        except OSError:  # it ended while we looked
            continue
        out += kids
        todo += kids
    return out


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def run_sampled(ctx: Ctx) -> dict[str, object]:
    """rustle-deploy on every host of ``ctx`` (auto), sampled while it runs."""
    inv = ctx.fleet.write_ansible_inventory(ctx.rundir / "inventory.yml", ctx.hosts)
    plan = write_plan(ctx.rundir / "plan.json", [h.name for h in ctx.hosts], WORKLOAD)
    env = {**os.environ, "HOME": str(ctx.rundir / "home"), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    env.pop("RUSTLE_FORMAT", None)
    stem = ctx.rundir / ("cold" if ctx.cold else "warm")
    samples: list[tuple[int, int]] = []
    with open(stem.with_suffix(".out"), "wb") as out, open(stem.with_suffix(".err"), "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(VENV_BIN / "rustle-deploy"), str(plan), "-i", str(inv), "--run",
                                 "--output", "json", "-v"], cwd=ctx.rundir, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # wait4: the tool's and its reaped children's usage
            if pid:
                break
            samples.append((fds(proc.pid), len(descendants(proc.pid))))
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    report = stem.with_suffix(".out").read_text(errors="replace")
    roles = {h.name: str(ctx.fleet.host_vars(h)["bench_role"]) for h in ctx.hosts}
    problems = check_run("rustle", report, ctx.hosts, roles, ctx.cold) if proc.returncode == 0 else [
        f"exit {proc.returncode}: " + stem.with_suffix(".err").read_text(errors="replace")[-500:]]
    res = usage
    return {
        "hosts": ctx.n, "phase": "cold" if ctx.cold else "warm", "ok": not problems, "problems": problems[:3],
        "wall_s": round(wall, 2), "ms_per_host": round(1000 * wall / ctx.n, 2),
        "controller_cpu_s": round(res.ru_utime + res.ru_stime, 2),
        "controller_peak_mb": round(res.ru_maxrss / 1024, 1),
        "fds_peak": max((f for f, _ in samples), default=0), "fds_last": samples[-1][0] if samples else 0,
        "procs_peak": max((p for _, p in samples), default=0), "procs_last": samples[-1][1] if samples else 0,
        "samples": len(samples),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="1000,10000")
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out-scale")
    args = ap.parse_args(argv)
    compile_installed_sources()
    results = []
    for n in (int(x) for x in args.hosts.split(",")):
        work = args.out / "work" / f"n{n}"
        with Fleet(work / "fleet", n, 0, args.servers) as fleet:
            rundir = work / "rustle"
            fleet.discard(rundir)
            (rundir / "home").mkdir(parents=True)
            fleet.reset()
            for cold in (True, False):
                ctx = Ctx(fleet, fleet.hosts, rundir, cold)
                failed = seed_runner(ctx)
                if failed is not None:
                    print(f"no runner: {failed.stderr[-300:]}")
                    return 1
                r = run_sampled(ctx)
                results.append(r)
                print(json.dumps(r), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    by = {(r["hosts"], r["phase"]): r for r in results}
    ns = sorted({r["hosts"] for r in results})
    if len(ns) > 1:
        small, big = ns[0], ns[-1]
        for phase in ("cold", "warm"):
            a, b = by.get((small, phase)), by.get((big, phase))
            if a and b:
                print(f"{phase}: per host {b['ms_per_host']} ms at {big} vs {a['ms_per_host']} ms at {small} "
                      f"({float(b['ms_per_host']) / float(a['ms_per_host']):.2f}x); peak RSS {b['controller_peak_mb']} MB; "
                      f"fds peak {a['fds_peak']} -> {b['fds_peak']}; processes peak {a['procs_peak']} -> {b['procs_peak']}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
