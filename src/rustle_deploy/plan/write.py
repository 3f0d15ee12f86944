"""Plan -> rustle-plan JSON (with this product's extensions): what ``--emit-plan`` prints.

The inverse of ``schema.read_document``: ``parse_plan(dump_plan(plan))`` gives back the same
plays, tasks, handlers and variables. Values that JSON has no type for (YAML dates) are written
as strings.
"""

from __future__ import annotations

import json
from typing import Any

from rustle_deploy.model import (
    Condition,
    Plan,
    PlanningOptions,
    Play,
    Strategy,
    Task,
    tag_unsafe,
)

__all__ = ["dump_plan", "plan_document"]

_CONDITION_FIELDS = {"When": "expression", "Tag": "tags", "SkipTag": "tags",
                     "CheckMode": "enabled", "Host": "pattern", "Skip": "condition",
                     "Only": "hosts"}


def dump_plan(plan: Plan) -> str:
    """The plan as JSON text (indented, keys in a stable order)."""
    return json.dumps(tag_unsafe(plan_document(plan)), indent=2, ensure_ascii=False, default=str) + "\n"


def plan_document(plan: Plan) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "metadata": {
            "created_at": plan.created_at,
            "rustle_plan_version": plan.rustle_plan_version,
            "playbook_hash": None,
            "inventory_hash": None,
            "planning_options": _options(plan.options),
        },
        "plays": [_play(p) for p in plan.plays],
        "binary_deployments": [],
        "total_tasks": plan.total_tasks,
        "hosts": list(plan.hosts),
    }
    if plan.extra_vars:
        doc["extra_vars"] = plan.extra_vars
    if plan.playbook_dir:
        doc["playbook_dir"] = plan.playbook_dir
    if plan.playbook_dirs:
        doc["playbook_dirs"] = list(plan.playbook_dirs)
    return doc


def _strategy(s: Strategy) -> Any:
    return {"Rolling": {"batch_size": s.batch_size}} if s.kind == "Rolling" else s.kind


def _options(o: PlanningOptions) -> dict[str, Any]:
    out = {"limit": o.limit, "tags": list(o.tags), "skip_tags": list(o.skip_tags),
            "check_mode": o.check_mode, "diff_mode": o.diff_mode, "forks": o.forks,
            "serial": o.serial, "strategy": _strategy(o.strategy),
            "binary_threshold": o.binary_threshold, "force_binary": o.force_binary,
            "force_ssh": o.force_ssh}
    if o.allow_broken_conditionals:
        out["allow_broken_conditionals"] = True
    if not o.deprecation_warnings:
        out["deprecation_warnings"] = False
    if o.become_config:
        out["become_config"] = o.become_config
    return out


def _play(play: Play) -> dict[str, Any]:
    out: dict[str, Any] = {
        "play_id": play.play_id, "name": play.name, "strategy": _strategy(play.strategy),
        "serial": play.serial, "hosts": list(play.hosts),
        "batches": [{"batch_id": b.batch_id, "hosts": list(b.hosts),
                     "tasks": [_task(t) for t in b.tasks], "parallel_groups": [],
                     "dependencies": list(b.dependencies)} for b in play.batches],
        "handlers": [_task(h, handler=True) for h in play.handlers],
    }
    if play.max_fail_percentage is not None:
        out["max_fail_percentage"] = play.max_fail_percentage
    if play.any_errors_fatal:
        out["any_errors_fatal"] = True
    if play.order != "inventory":
        out["order"] = play.order
    if play.force_handlers:
        out["force_handlers"] = True
    if play.pattern is not None:
        out["hosts_pattern"] = play.pattern
    if play.fact_path:
        out["fact_path"] = play.fact_path
    if play.gather_subset is not None:
        out["gather_subset"] = list(play.gather_subset)
    if play.gather_timeout is not None:
        out["gather_timeout"] = play.gather_timeout
    if play.vars:
        out["vars"] = play.vars
    if play.defaults:
        out["defaults"] = play.defaults
    if play.roles:
        out["roles"] = play.roles
    return out


def _condition(c: Condition) -> dict[str, Any]:
    value = list(c.value) if isinstance(c.value, tuple) else c.value
    return {c.kind: {_CONDITION_FIELDS[c.kind]: value}}


def _task(task: Task, handler: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"handler_id" if handler else "task_id": task.task_id, "name": task.name}
    if task.block is None:
        out["module"] = task.module
        out["args"] = task.args
    out.update({
        "hosts": list(task.hosts), "conditions": [_condition(c) for c in task.conditions],
        "tags": list(task.tags), "notify": list(task.notify),
        "execution_order": task.execution_order,
    })
    if not handler:
        out["dependencies"] = list(task.dependencies)
    out.update(task.extras)
    if task.block is not None:
        out["block"] = [_task(t) for t in task.block]
        if task.rescue:
            out["rescue"] = [_task(t) for t in task.rescue]
        if task.always:
            out["always"] = [_task(t) for t in task.always]
    return out
