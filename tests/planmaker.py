"""Build rustle-plan-shaped plans in tests: plays in one binary batch, or Rolling plays in the
shape rustle-plan emits (each ``rolling-batch-<i>`` repeats the play's tasks, same task ids,
``hosts`` rewritten to that batch's slice)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

TaskFn = Callable[[list[str]], list[dict[str, Any]]]  # hosts of a batch -> its tasks


def task(task_id: str, name: str, module: str, args: dict[str, Any], hosts: Sequence[str], order: int = 0,
         **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "task_id": task_id, "name": name, "module": module, "args": args, "hosts": list(hosts),
        "dependencies": [], "conditions": [], "tags": [], "notify": [], "execution_order": order,
        "can_run_parallel": False, "estimated_duration": None, "risk_level": "Low",
    }
    t.update(extra)
    return t


def play(play_id: str, name: str, hosts: Sequence[str], tasks: TaskFn, **extra: Any) -> dict[str, Any]:
    """A play with one ``binary-batch`` holding ``tasks(hosts)``; ``extra`` adds play keys."""
    p: dict[str, Any] = {
        "play_id": play_id, "name": name, "strategy": "BinaryHybrid", "serial": None, "hosts": list(hosts),
        "batches": [{"batch_id": "binary-batch", "hosts": list(hosts), "tasks": tasks(list(hosts)),
                     "parallel_groups": [], "dependencies": [], "estimated_duration": None}],
        "handlers": [], "estimated_duration": None,
    }
    p.update(extra)
    return p


def rolling_play(play_id: str, name: str, hosts: Sequence[str], tasks: TaskFn, batch_size: int,
                 **extra: Any) -> dict[str, Any]:
    """A Rolling play as rustle-plan writes it: one batch per host slice, each a copy of the tasks."""
    batches = []
    for i in range(0, len(hosts), batch_size):
        chunk = list(hosts[i:i + batch_size])
        n = i // batch_size
        batches.append({"batch_id": f"rolling-batch-{n}", "hosts": chunk, "tasks": tasks(chunk),
                        "parallel_groups": [], "dependencies": [f"rolling-batch-{n - 1}"] if n else [],
                        "estimated_duration": None})
    p = play(play_id, name, hosts, tasks, strategy={"Rolling": {"batch_size": batch_size}}, **extra)
    p["batches"] = batches
    return p


def plan(plays: list[dict[str, Any]], hosts: Sequence[str], strategy: Any = "BinaryHybrid") -> dict[str, Any]:
    total = sum(len({t["task_id"] for b in p["batches"] for t in b["tasks"]}) for p in plays)
    return {
        "metadata": {
            "created_at": "2026-11-27T08:00:00.000000Z", "rustle_plan_version": "0.1.0",
            "playbook_hash": "test", "inventory_hash": "test",
            "planning_options": {
                "limit": None, "tags": [], "skip_tags": [], "check_mode": False, "diff_mode": False,
                "forks": 50, "serial": None, "strategy": strategy, "binary_threshold": 5,
                "force_binary": False, "force_ssh": False,
            },
        },
        "plays": plays,
        "binary_deployments": [],
        "total_tasks": total,
        "estimated_duration": None,
        "estimated_compilation_time": None,
        "parallelism_score": 0.5,
        "network_efficiency_score": 0.5,
        "hosts": list(hosts),
    }


def stamp_tasks(play_id: str, sleep: float = 0.2) -> TaskFn:
    """Tasks that write ``<rustle_test_root>/<play_id>.start`` and ``.end`` (epoch seconds,
    ``sleep`` apart), then fail on hosts whose ``rustle_fail`` variable names this play."""

    def tasks(hosts: list[str]) -> list[dict[str, Any]]:
        root = "{{ rustle_test_root }}"
        return [
            task("task_0", "stamp start", "shell",
                 {"_raw_params": f"mkdir -p {root} && date +%s.%N > {root}/{play_id}.start"}, hosts, 0),
            task("task_1", "work", "shell",
                 {"_raw_params": f"sleep {sleep} && date +%s.%N > {root}/{play_id}.end"}, hosts, 1),
            task("task_2", "fail where asked", "fail", {"msg": "asked to fail"}, hosts, 2,
                 conditions=[{"When": {"expression": f"rustle_fail == '{play_id}'"}}]),
        ]

    return tasks
