"""The cost of a phase: the 12-task workload on N hosts, as it is and with one run_once task.

    .venv/bin/python benchmarks/phases.py --hosts 50 --repeat 3

Same harness as run.py (hosts.py fleet, measure(), check_run()): for each repeat, with the
order alternated, make every host fresh, run rustle-deploy cold then warm, check every host.
The run_once variant inserts "Pick a leader once" (``command: echo {{ inventory_hostname }}``,
``register: leader``, ``run_once: true``, ``changed_when: false``) after the stat task and adds
``leader.stdout == 'bench-0000'`` to the final assert (so every host must have received the
first host's result): the play is cut into three phases (docs/phases.md), one exchange per
host for each of the two ordinary phases, and one more for the first host. The table gives
the medians and the ratio run_once/plain (with the spread of that ratio within each repeat).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as harness  # noqa: E402
from plan import WORKLOAD, build_plan  # noqa: E402
from serial import side_by_side  # noqa: E402


def with_run_once(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with a run_once task after the stat task, whose result the final assert reads."""
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    at = next(i for i, t in enumerate(tasks) if t["module"].endswith("stat")) + 1
    leader = dict(tasks[at - 1], task_id="task_leader", name="Pick a leader once", module="ansible.builtin.command",
                  args={"_raw_params": "echo {{ inventory_hostname }}"}, register="leader", run_once=True,
                  changed_when=False)
    tasks.insert(at, leader)
    for order, task in enumerate(tasks):
        task["execution_order"] = order
    tasks[-1]["args"] = dict(tasks[-1]["args"], that=[*tasks[-1]["args"]["that"], "leader.stdout == 'bench-0000'"])
    doc["total_tasks"] = len(tasks)
    return doc


def rustle_with(run_once: bool) -> Callable[[harness.Ctx], harness.Run]:
    def tool(ctx: harness.Ctx) -> harness.Run:
        inv = ctx.fleet.write_ansible_inventory(ctx.rundir / "inventory.yml", ctx.hosts)
        doc = build_plan([h.name for h in ctx.hosts], WORKLOAD)
        if run_once:
            doc = with_run_once(doc)
        plan = ctx.rundir / "plan.json"
        plan.write_text(json.dumps(doc, indent=2) + "\n")
        return harness.measure([str(harness.VENV_BIN / "rustle-deploy"), str(plan), "-i", str(inv), "--run",
                                "--output", "json", "--parallel", str(ctx.n)], ctx)

    return tool


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=harness.REPO / "benchmarks" / "out" / "phases")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    harness.become_subreaper()
    harness.compile_installed_sources()
    variants = {"plain": rustle_with(False), "run_once": rustle_with(True)}
    return side_by_side(variants, args.hosts, args.repeat, out)


if __name__ == "__main__":
    sys.exit(main())
