"""Differential harness: the same Ansible-style plays under ansible-playbook and as a plan.

``compare_plays`` writes a project directory twice (``a/`` for Ansible, ``o/`` for us) with
the same files, runs the plays with ``ansible-playbook`` (local connection, a callback that
records every task and handler result in the order they came) and, converted to a rustle-plan
document by ``to_plan``, through the real plan parser, compiler and runtime. Each side's
results come back as ``[(task name, result), ...]`` per play, with the side's directory
written ``{d}`` in every string, so that a test compares them field by field.

``to_plan`` parses each task's action with ansible-core's own ``ModuleArgsParser`` (the way a
playbook front end would), so ``k=v`` strings and free-form commands become the same
arguments on both sides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import oracle
from ..conftest import ORACLE_TIMEOUT
from .conftest import run_artifact
from .test_modules_support import VENV_BIN, needs_ansible

# task keywords the plan carries as extensions (PLAN_FORMAT.md), everything else is the action
_KEYWORDS = ("register", "loop", "loop_control", "changed_when", "failed_when", "ignore_errors",
             "no_log", "become", "become_user", "become_method", "environment", "vars", "retries",
             "delay", "until", "check_mode", "diff", "timeout", "run_once", "delegate_to", "listen")
_DROPPED = ("name", "when", "tags", "notify")

_ORDERED_CALLBACK = """
import json
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "rustle_ordered"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append([])

    def _add(self, result, **extra):
        if result._task.action in ("meta", "ansible.builtin.meta") and result._task.implicit:
            return
        data = dict(result._result)
        data.update(extra)
        self.plays[-1].append([result._task.get_name(), data])

    def v2_runner_on_ok(self, result):
        self._add(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._add(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._add(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._add(result, failed=True, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps({"plays": self.plays}, default=str))
"""


_FINDER: list[Any] = []


def _action(task: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from ansible.parsing.mod_args import ModuleArgsParser

    if not _FINDER:  # ModuleArgsParser resolves action names through the collection loader
        from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

        _FINDER.append(_AnsibleCollectionFinder())
        _FINDER[0]._install()

    body = {k: v for k, v in task.items() if k not in _KEYWORDS + _DROPPED}
    action, args, _ = ModuleArgsParser(body).parse()
    args = {k: v for k, v in args.items() if not (k.startswith("_") and k != "_raw_params")}
    return action, json.loads(json.dumps(args, default=str))


def _plan_task(task: dict[str, Any], task_id: str, order: int, host: str) -> dict[str, Any]:
    module, args = _action(task)
    when = task.get("when")
    when = [] if when is None else (when if isinstance(when, list) else [when])
    notify = task.get("notify") or []
    tags = task.get("tags") or []
    out: dict[str, Any] = {
        "task_id": task_id, "name": task.get("name") or module, "module": module, "args": args,
        "hosts": [host], "dependencies": [], "tags": tags if isinstance(tags, list) else [tags],
        "conditions": [{"When": {"expression": str(w)}} for w in when],
        "notify": notify if isinstance(notify, list) else [notify],
        "execution_order": order, "can_run_parallel": False, "estimated_duration": None,
        "risk_level": "Low",
    }
    for key in _KEYWORDS:
        if key in task:
            out[key] = task[key]
    return out


def to_plan(plays: list[dict[str, Any]], host: str = "h1") -> dict[str, Any]:
    """Ansible-style plays (tasks, handlers, vars) as a rustle-plan document for ``host``."""
    doc_plays = []
    total = 0
    for p, play in enumerate(plays):
        tasks = [_plan_task(t, f"task_{i}", i, host) for i, t in enumerate(play.get("tasks") or [])]
        handlers = []
        for i, h in enumerate(play.get("handlers") or []):
            entry = _plan_task(h, f"handler_{i}", i, host)
            entry["handler_id"] = entry.pop("task_id")
            handlers.append(entry)
        total += len(tasks)
        doc_plays.append({
            "play_id": f"play-{p}", "name": play.get("name", f"play {p}"), "strategy": "Linear",
            "serial": None, "hosts": [host], "handlers": handlers, "estimated_duration": None,
            "vars": play.get("vars") or {},
            "batches": [{"batch_id": "b0", "hosts": [host], "tasks": tasks, "parallel_groups": [],
                         "dependencies": [], "estimated_duration": None}],
        })
    return {
        "metadata": {"created_at": "2026-01-01T00:00:00Z", "rustle_plan_version": "0.1.0",
                     "playbook_hash": "0", "inventory_hash": "0",
                     "planning_options": {"limit": None, "tags": [], "skip_tags": [],
                                          "check_mode": False, "diff_mode": False, "forks": 5,
                                          "serial": None, "strategy": "Linear",
                                          "binary_threshold": 5, "force_binary": False,
                                          "force_ssh": False}},
        "plays": doc_plays, "binary_deployments": [], "total_tasks": total,
        "estimated_duration": None, "estimated_compilation_time": None,
        "parallelism_score": 0.0, "network_efficiency_score": 0.0, "hosts": [host],
    }


def _norm(value: Any, d: Path) -> Any:
    if isinstance(value, str):
        return value.replace(str(d), "{d}")
    if isinstance(value, list):
        return [_norm(v, d) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v, d) for k, v in value.items()}
    return value


def _write_project(d: Path, files: dict[str, bytes | str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)


def _substitute(value: Any, d: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{d}", str(d))
    if isinstance(value, list):
        return [_substitute(v, d) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, d): _substitute(v, d) for k, v in value.items()}
    return value


def run_ansible(d: Path, plays: list[dict[str, Any]], env: dict[str, str] | None = None,
                timeout: float = ORACLE_TIMEOUT) -> list[list[tuple[str, dict[str, Any]]]]:
    """ansible-playbook in project directory ``d``; per play, the results in order."""
    plugins = d.parent / "a_callback_plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "rustle_ordered.py").write_text(_ORDERED_CALLBACK)
    pb = [dict(p, hosts="all", gather_facts=p.get("gather_facts", False)) for p in plays]
    (d / "inventory.ini").write_text(
        f"h1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (d / "pb.yml").write_text(json.dumps(pb))
    full_env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="rustle_ordered", ANSIBLE_NOCOLOR="1",
                    ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_LOCALHOST_WARNING="False",
                    ANSIBLE_HOME=str(d.parent / "ahome"), ANSIBLE_DEPRECATION_WARNINGS="False",
                    ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_PIPELINING="True",
                    ANSIBLE_FORCE_COLOR="0", **(env or {}))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory.ini", "pb.yml"],
                          capture_output=True, text=True, env=full_env, cwd=d, timeout=timeout)
    start = proc.stdout.find('{"plays"')
    assert start >= 0, proc.stdout + proc.stderr
    return [[(name, _norm(r, d)) for name, r in play]
            for play in json.loads(proc.stdout[start:])["plays"]]


def compile_plan(d: Path, doc: dict[str, Any]) -> Path:
    """Parse, validate and compile ``doc`` (written as ``d/plan.json``) for host h1; the
    artifact's path."""
    from rustle_deploy.compiler.build import payload_bytes
    from rustle_deploy.compiler.units import plan_units
    from rustle_deploy.inventory import load_inventory
    from rustle_deploy.pipeline import _group_members
    from rustle_deploy.plan import load_plan

    (d / "plan.json").write_text(json.dumps(doc))
    (d / "inventory.ini").write_text("h1 ansible_connection=local\n")
    plan = load_plan(str(d / "plan.json"))
    inv = load_inventory(d / "inventory.ini")
    units = plan_units(plan, list(inv.hosts.values()), resolve=inv.resolve, select=inv.select,
                       groups=_group_members(inv))
    assert len(units) == 1
    artifact = d.parent / "o_artifact.pyz"
    artifact.write_bytes(b"#!/usr/bin/env python3\n" + payload_bytes(units[0], compression=False))
    return artifact


def run_ours(d: Path, plays: list[dict[str, Any]], run_args: Iterable[str] = (),
             timeout: float = 60) -> list[list[tuple[str, dict[str, Any]]]]:
    """The same plays as a plan through the compiler and a real artifact, run in ``d``."""
    artifact = compile_plan(d, to_plan(plays))
    res = run_artifact(artifact, "run", "--host", "h1", *run_args, cwd=d, timeout=timeout)
    out: list[list[tuple[str, dict[str, Any]]]] = []
    for event in res.events:
        if event["event"] == "play_start":
            out.append([])
        elif event["event"] in ("task_result", "handler_result"):
            if event.get("module") == "meta" and event.get("status") != "skipped":
                continue  # Ansible reports no result for a meta task that ran
            out[-1].append((event["task"], _norm(event, d)))
    assert res.rc in (0, 2), res.stdout + res.stderr
    return out


class Results(list):  # type: ignore[type-arg]
    """ansible-playbook's results per play, as ``run_ansible`` gives them, and ``tree``: the
    project directory as the run left it (``jtree``)."""

    tree: dict[str, Any]


# what a module reports about the moment it ran: not part of an answer a record can reproduce
_MOMENT = ("start", "end", "delta", "atime", "mtime", "ctime", "inode", "dev")
# modules whose results describe this machine (facts): their plays are not recorded
_MACHINE = ("setup", "gather_facts", "ansible.builtin.setup", "ansible.builtin.gather_facts")


def _without_moments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_moments(v) for k, v in value.items() if k not in _MOMENT}
    if isinstance(value, (list, tuple)):
        return [_without_moments(v) for v in value]
    return value


def jtree(root: Path) -> dict[str, Any]:
    """``tree(root)`` as JSON (a file's bytes as text or base64), as a record holds it."""
    return {k: [oracle.blob(x) if isinstance(x, bytes) else x for x in v] for k, v in tree(root).items()}


def compare_plays(tmp: Path, plays: list[dict[str, Any]], files: dict[str, bytes | str] | None = None,
                  record: bool = True) -> tuple[Results, list[list[tuple[str, dict[str, Any]]]]]:
    """Run ``plays`` (``{d}`` in them: the project directory) on both sides; (ansible, ours).
    ansible-playbook's side is recorded (tests/oracle.py), keyed by the plays, the files and the
    environment, without what a result says about the moment it ran (``_MOMENT``: times,
    inodes); plays that gather facts run live, their results describe this machine, and so do
    those of a test that says ``record=False`` (a free port in its tasks: new inputs each run)."""
    needs_ansible()
    a, o = tmp / "a" / "proj", tmp / "o" / "proj"
    for d in (a, o):
        _write_project(d, files or {})

    def run() -> dict[str, Any]:
        plays_run = run_ansible(a, _substitute(plays, a))
        return oracle.norm({"plays": _without_moments(plays_run), "tree": jtree(a)}, {"{tmp}": tmp})

    if not record or any(key in task for play in plays for task in (play.get("tasks") or []) for key in _MACHINE) \
            or any(play.get("gather_facts") for play in plays):
        doc = run()
    else:
        inputs = {"plays": plays, "files": {k: oracle.blob(v.encode() if isinstance(v, str) else v)
                                            for k, v in sorted((files or {}).items())},
                  "env": oracle.norm(oracle.env(dict(os.environ)), {"{tmp}": tmp}), "callback": _ORDERED_CALLBACK}
        doc = oracle.recorded("plays", inputs, run)
    theirs = Results([[(name, result) for name, result in play] for play in doc["plays"]])
    theirs.tree = doc["tree"]
    # our results written as a record writes ansible-core's (the Python, the checkout as placeholders)
    ours = [[(name, result) for name, result in play] for play in oracle.norm(run_ours(o, _substitute(plays, o)), {"{tmp}": tmp})]
    return theirs, ours


def fields(result: dict[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    """The compared fields of one result: booleans as booleans, "" as None (the event
    protocol always carries msg/stdout/stderr)."""
    if result is None:
        return {"absent": True}
    out = {}
    for key in keys:
        value = result.get(key)
        if key in ("changed", "failed", "skipped"):
            value = bool(value)
        elif key in ("msg", "stdout", "stderr") and value == "":
            value = None
        out[key] = value
    return out


def tree(root: Path) -> dict[str, Any]:
    """Files under ``root`` (excluding the harness's own), as test_modules_support.tree."""
    from .test_modules_support import tree as _tree

    return {k: v for k, v in _tree(root).items()
            if k not in ("plan.json", "inventory.ini", "pb.yml") and not k.startswith(("templates", "files"))}
