"""Compile-time benchmark (issue 3): a 50-task plan over 1,000 inventory hosts.

    .venv/bin/python benchmarks/compile_bench.py [--hosts 1000] [--tasks 50] [--repeat 5]

Two shapes: all hosts in one group (one artifact), and hosts spread over 20 groups whose
plays differ (20 artifacts). Reports the median wall time of a cold build (empty cache) and a
cached build (same inputs), the controller's peak memory, and the artifact sizes. Cold and
cached both include parsing the plan and the inventory, as a user's command does.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_plan(tasks: int, groups: list[str], per_group_task: bool) -> dict:
    def task(i: int, hosts: list[str]) -> dict:
        kinds = [
            ("file", {"path": f"{{{{ base }}}}/d{i}", "state": "directory", "mode": "0755"}),
            ("copy", {"content": f"value={i} {{{{ inventory_hostname }}}}\n", "dest": f"{{{{ base }}}}/f{i}"}),
            ("lineinfile", {"path": "{{ base }}/conf", "line": f"k{i}=v", "create": True}),
            ("command", {"_raw_params": "true", "creates": f"{{{{ base }}}}/c{i}"}),
            ("debug", {"msg": f"task {i}"}),
        ]
        module, args = kinds[i % len(kinds)]
        return {"task_id": f"task_{i}", "name": f"task {i}", "module": module, "args": args, "hosts": hosts,
                "dependencies": [], "conditions": [], "tags": [], "notify": [], "execution_order": i,
                "can_run_parallel": True, "estimated_duration": None, "risk_level": "Low"}

    plays = []
    if per_group_task:
        for g, group in enumerate(groups):
            ts = [task(i, [group]) for i in range(tasks)]
            ts[0]["args"] = {"msg": f"group {g}"}
            ts[0]["module"] = "debug"
            plays.append({"play_id": f"play-{g}", "name": f"play {group}", "strategy": "BinaryHybrid", "serial": None,
                          "hosts": [group], "vars": {"base": "/tmp/bench"},
                          "batches": [{"batch_id": "b", "hosts": [group], "tasks": ts, "parallel_groups": [],
                                       "dependencies": [], "estimated_duration": None}],
                          "handlers": [], "estimated_duration": None})
    else:
        ts = [task(i, groups) for i in range(tasks)]
        plays.append({"play_id": "play-0", "name": "all", "strategy": "BinaryHybrid", "serial": None,
                      "hosts": groups, "vars": {"base": "/tmp/bench"},
                      "batches": [{"batch_id": "b", "hosts": groups, "tasks": ts, "parallel_groups": [],
                                   "dependencies": [], "estimated_duration": None}],
                      "handlers": [], "estimated_duration": None})
    return {"metadata": {"created_at": "2026-11-27T00:00:00Z", "rustle_plan_version": "0.1.0", "playbook_hash": "x",
                         "inventory_hash": "y", "planning_options": {"forks": 50}},
            "plays": plays, "binary_deployments": [], "total_tasks": tasks * len(plays), "hosts": groups}


def make_inventory(hosts: int, groups: int) -> dict:
    inv: dict = {"all": {"children": {}}}
    for g in range(groups):
        members = {f"h{i:04d}": {"ansible_host": "127.0.0.1", "node_id": i} for i in range(g, hosts, groups)}
        inv["all"]["children"][f"g{g:02d}"] = {"hosts": members}
    return inv


def timed(cmd: list[str]) -> tuple[float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    return elapsed, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def in_process(plan: Path, inv: Path, cache: Path) -> float:
    """Seconds from reading the plan to having every artifact, inside one process."""
    from rustle_deploy.compiler.build import build_unit
    from rustle_deploy.compiler.units import plan_units
    from rustle_deploy.inventory import load_inventory
    from rustle_deploy.pipeline import _group_members
    from rustle_deploy.plan import load_plan

    start = time.perf_counter()
    p = load_plan(str(plan))
    i = load_inventory(inv)
    hosts = list(i.hosts.values())
    units = plan_units(p, hosts, resolve=i.resolve, select=i.select, groups=_group_members(i))
    for u in units:
        build_unit(u, cache_dir=cache)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    exe = str(Path(sys.executable).parent / "rustle-deploy")
    print(f"{args.tasks}-task plan, {args.hosts} hosts, median of {args.repeat}")
    print(f"{'shape':<22}{'artifacts':>10}{'cold s':>9}{'cached s':>10}{'peak MiB':>10}{'size KiB':>10}"
          f"{'in-proc cold':>12}{'in-proc hit':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for shape, groups, per_group in (("1 group", 1, False), ("20 groups", 20, True)):
            d = Path(tmp) / shape.replace(" ", "_")
            d.mkdir()
            group_names = [f"g{g:02d}" for g in range(groups)]
            (d / "plan.json").write_text(json.dumps(make_plan(args.tasks, group_names, per_group)))
            (d / "inv.json").write_text(json.dumps(make_inventory(args.hosts, groups)))
            base = [exe, str(d / "plan.json"), "-i", str(d / "inv.json"), "--compile-only",
                    "-o", str(d / "out"), "--output", "json"]
            cold, cached, peak = [], [], 0
            for r in range(args.repeat):
                cache = d / f"cache{r}"
                t, m = timed(base + ["--cache-dir", str(cache)])
                cold.append(t)
                t2, m2 = timed(base + ["--cache-dir", str(cache)])
                cached.append(t2)
                peak = max(peak, m, m2)
            inproc_cold = statistics.median(in_process(d / "plan.json", d / "inv.json", d / f"ip{r}") for r in range(args.repeat))
            inproc_cached = statistics.median(in_process(d / "plan.json", d / "inv.json", d / "ip0") for _ in range(args.repeat))
            manifest = json.loads((d / "out" / "manifest.json").read_text())
            sizes = [a["size"] for a in manifest["artifacts"]]
            print(f"{shape:<22}{len(sizes):>10}{statistics.median(cold):>9.3f}{statistics.median(cached):>10.3f}"
                  f"{peak / 1024:>10.0f}{max(sizes) / 1024:>10.0f}{inproc_cold:>12.3f}{inproc_cached:>12.3f}")
    print("cold s / cached s: wall time of the whole `rustle-deploy --compile-only` command, Python start-up included")
    print("in-process: plan + inventory + grouping + building (or fetching) every artifact, in one process")


if __name__ == "__main__":
    main()
