"""The cost of batching: the 12-task workload on N hosts, unbatched and with ``serial: K``.

    .venv/bin/python benchmarks/serial.py --hosts 50 --serial 10 --repeat 3 [--input playbook]

Same harness as run.py (hosts.py fleet, measure(), check_run()): for each repeat, with the
order alternated, make every host fresh, run rustle-deploy cold then warm, check every host.
``serial: K`` runs N/K batches one after another, each a full deploy+run round trip for its
hosts, so its floor is N/K times the time of one batch; the table gives the medians and the
ratio serial/unbatched (with the spread of that ratio within each repeat). ``--input
playbook`` runs benchmarks/workload/site.yml (with ``serial:`` written into its play) instead
of the plan: the same rollout reached from a playbook, compiling it included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as harness  # noqa: E402
from hosts import Fleet  # noqa: E402
from plan import WORKLOAD, build_plan  # noqa: E402


def rustle_with(serial: int | None, playbook: bool = False) -> Callable[[harness.Ctx], harness.Run]:
    def tool(ctx: harness.Ctx) -> harness.Run:
        inv = ctx.fleet.write_ansible_inventory(ctx.rundir / "inventory.yml", ctx.hosts)
        if playbook:  # site.yml beside links to the workload's files/ and templates/
            plays = yaml.safe_load((WORKLOAD / "site.yml").read_text())
            if serial is not None:
                plays[0]["serial"] = serial
            source = ctx.rundir / "site.yml"
            source.write_text(yaml.safe_dump(plays, sort_keys=False))
            for sub in ("files", "templates"):
                if not (ctx.rundir / sub).exists():
                    (ctx.rundir / sub).symlink_to(WORKLOAD / sub)
        else:
            doc = build_plan([h.name for h in ctx.hosts], WORKLOAD)
            doc["plays"][0]["serial"] = serial
            source = ctx.rundir / "plan.json"
            source.write_text(json.dumps(doc, indent=2) + "\n")
        return harness.measure([str(harness.VENV_BIN / "rustle-deploy"), str(source), "-i", str(inv), "--run",
                                "--output", "json", "--parallel", str(ctx.n)], ctx)

    return tool


def side_by_side(variants: dict[str, Callable[[harness.Ctx], harness.Run]], hosts: int, repeat: int,
                 out: Path) -> int:
    """Run two rustle-deploy variants over one fleet of ``hosts``, cold then warm, ``repeat``
    times in alternating order, check every host, and write the medians and the ratio
    second/first (with its spread within each repeat) to ``out``/summary.md."""
    walls: dict[tuple[str, str], dict[int, float]] = {}
    failed = False
    with Fleet(out / "fleet", hosts, 0) as fleet:
        for r in range(repeat):
            names = list(variants)
            for name in names[r % 2:] + names[:r % 2]:
                rundir = out / name.replace(" ", "-")
                fleet.discard(rundir)
                (rundir / "home").mkdir(parents=True)
                fleet.reset()
                for cold in (True, False):
                    ctx = harness.Ctx(fleet, fleet.hosts, rundir, cold)
                    result = variants[name](ctx)
                    roles = {h.name: str(fleet.host_vars(h)["bench_role"]) for h in ctx.hosts}
                    problems = ([f"exit {result.rc}: {result.stderr[-300:]}"] if result.rc != 0 else
                                harness.check_run("rustle", result.stdout, ctx.hosts, roles, cold))
                    phase = "cold" if cold else "warm"
                    status = "ok" if not problems else f"FAILED ({'; '.join(problems[:2])})"
                    print(f"{name:12} N={hosts} {phase}: wall {result.wall_s:6.2f}s  "
                          f"ctl {result.cpu_s:5.2f}s  {status}", flush=True)
                    if problems:
                        failed = True
                        break
                    walls.setdefault((name, phase), {})[r] = result.wall_s
        for trash in out.glob("trash"):
            harness.shutil.rmtree(trash, ignore_errors=True)
    base, batched = list(variants)
    rows = [f"| run | {base} wall s | " + batched + " wall s | ratio (spread) |", "|---|---|---|---|"]
    for phase in ("cold", "warm"):
        a, b = walls.get((base, phase), {}), walls.get((batched, phase), {})
        if not a or not b:
            continue
        ratios = [b[r] / a[r] for r in a if r in b]
        ma, mb = statistics.median(a.values()), statistics.median(b.values())
        rows.append(f"| {phase} | {ma:.2f} | {mb:.2f} | {mb / ma:.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")
    table = "\n".join(rows)
    (out / "summary.md").write_text(table + "\n")
    print("\n" + table)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--serial", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--input", choices=("plan", "playbook"), default="plan")
    ap.add_argument("--out", type=Path, default=harness.REPO / "benchmarks" / "out" / "serial")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    harness.become_subreaper()
    harness.compile_installed_sources()
    book = args.input == "playbook"
    variants = {"unbatched": rustle_with(None, book), f"serial {args.serial}": rustle_with(args.serial, book)}
    return side_by_side(variants, args.hosts, args.repeat, out)


if __name__ == "__main__":
    sys.exit(main())
