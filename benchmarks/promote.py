"""Staged releases: what ``--promote`` of a staged deployment costs next to a warm run.

    .venv/bin/python benchmarks/promote.py --hosts 50 --repeat 3

Same harness as run.py (hosts.py fleet, measure(), check_run()). Each repeat makes every host
fresh, then: a cold run of release 1; a warm run of it (measured); ``--stage`` of release 2
(the same 12 tasks, another artifact: one play variable differs; measured); ``--promote`` of
it (measured, and checked as a warm run: release 2 changes nothing release 1 did not). The
promote does what a warm run does (activate, run) and no upload: it should cost no more.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as harness  # noqa: E402
from hosts import Fleet  # noqa: E402
from plan import WORKLOAD, build_plan  # noqa: E402


def write_release(ctx: harness.Ctx, release: int) -> Path:
    doc = build_plan([h.name for h in ctx.hosts], WORKLOAD)
    doc["plays"][0]["vars"] = {"release": release}
    plan = ctx.rundir / f"plan-{release}.json"
    plan.write_text(json.dumps(doc, indent=2) + "\n")
    return plan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=harness.REPO / "benchmarks" / "out" / "promote")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    harness.become_subreaper()
    harness.compile_installed_sources()
    exe = str(harness.VENV_BIN / "rustle-deploy")
    walls: dict[str, list[float]] = {}
    failed = False
    with Fleet(out / "fleet", args.hosts, 0) as fleet:
        for r in range(args.repeat):
            rundir = out / "rustle"
            fleet.discard(rundir)
            (rundir / "home").mkdir(parents=True)
            fleet.reset()
            ctx = harness.Ctx(fleet, fleet.hosts, rundir, True)
            inv = str(fleet.write_ansible_inventory(rundir / "inventory.yml", ctx.hosts))
            one, two = write_release(ctx, 1), write_release(ctx, 2)
            common = ["-i", inv, "--output", "json", "--parallel", str(ctx.n)]
            roles = {h.name: str(fleet.host_vars(h)["bench_role"]) for h in ctx.hosts}
            steps = [
                ("cold run", [exe, str(one), "--run", *common], True, True),
                ("warm run", [exe, str(one), "--run", *common], False, True),
                ("stage", [exe, str(two), "--stage", *common], False, False),
                ("promote", [exe, "--promote", *common], False, True),
            ]
            for name, argv_, cold, check in steps:
                ctx.cold = name == "cold run"
                result = harness.measure(argv_, ctx)
                problems = [f"exit {result.rc}: {result.stderr[-300:]}"] if result.rc != 0 else []
                if check and not problems:
                    problems = harness.check_run("rustle", result.stdout, ctx.hosts, roles, cold)
                status = "ok" if not problems else f"FAILED ({'; '.join(problems[:2])})"
                print(f"repeat {r} {name:9} N={args.hosts}: wall {result.wall_s:6.2f}s  ctl {result.cpu_s:5.2f}s  "
                      f"{status}", flush=True)
                if problems:
                    failed = True
                    break
                walls.setdefault(name, []).append(result.wall_s)
        for trash in out.glob("trash"):
            harness.shutil.rmtree(trash, ignore_errors=True)
    rows = ["| step | median wall s | runs |", "|---|---|---|"]
    for name, values in walls.items():
        rows.append(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    if walls.get("warm run") and walls.get("promote"):
        ratios = [p / w for p, w in zip(walls["promote"], walls["warm run"], strict=False)]
        rows.append(f"\npromote / warm run: {statistics.median(walls['promote']) / statistics.median(walls['warm run']):.2f} "
                    f"(per repeat {min(ratios):.2f}-{max(ratios):.2f})")
    table = "\n".join(rows)
    (out / "summary.md").write_text(table + "\n")
    print("\n" + table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
