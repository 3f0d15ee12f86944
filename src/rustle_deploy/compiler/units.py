"""Decide which tasks run on which host and group hosts that share a target and task list.

Every host gets one artifact holding the whole plan as it applies to that host. Hosts with
the same target and the same applicable tasks share an artifact; their variables travel
inside it keyed by host name. The compiled ``plan.json`` shape is in docs/artifact.md.

A module the runtime does not implement goes through the module bridge (``bridge/``): it is
resolved once per plan, and each unit records the bridged modules its tasks use
(``BuildUnit.bridged``), which the builder embeds once each.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import CompileError
from ..model import Host, Plan, Play, Task
from ..plan import resolve_source
from ..runtime_index import canonical_module, module_families

if TYPE_CHECKING:
    from ..bridge.lookup import BridgedModule, Resolution

PYZ_TARGET = "py3-none-any"  # a pyz artifact runs on any host with CPython >= 3.8

_TEMPLATED = re.compile(r"{{|{%|{#")

# Connection secrets: the controller uses them to reach the host; the runtime never needs
# them, and an artifact is shared by many hosts, so they must not travel inside it.
SECRET_VARS = frozenset({
    "ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "ansible_become_pass",
    "ansible_become_password", "ansible_sudo_pass", "ansible_sudo_password", "ansible_su_pass",
    "ansible_su_password", "ansible_ssh_private_key_passphrase", "ansible_private_key_passphrase",
})
_EXPRESSION_KEYS = ("changed_when", "failed_when", "until")


@dataclass
class BuildUnit:
    """One artifact to build: its hosts and the exact compiled plan they share."""

    target: str
    binary_name: str
    hosts: list[Host]
    plan_doc: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # sha256 -> local path
    families: set[str] = field(default_factory=set)
    needs_jinja: bool = False
    bridged: dict[str, BridgedModule] = field(default_factory=dict)  # fqcn -> module (bridge/)

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts]


Resolver = Callable[[Sequence[str]], list[Host]]
Selector = Callable[[str], list[Host]]


def plan_units(
    plan: Plan,
    hosts: Sequence[Host],
    *,
    resolve: Resolver,
    select: Selector,
    groups: dict[str, list[str]],
    target: str | None = None,
) -> list[BuildUnit]:
    """Group ``hosts`` (already limited) into build units.

    ``resolve`` turns plan host names (or group names) into inventory hosts; ``select``
    evaluates an Ansible host pattern (``Host`` conditions).
    """
    plays = [_PlayView(plan, i, play, resolve, select) for i, play in enumerate(plan.plays)]
    file_cache: dict[str, tuple[str, str]] = {}  # local path -> (sha256, path)
    resolution = _bridge_resolution(plan, plays)

    groups_by_key: dict[tuple[Any, ...], list[Host]] = {}
    for host in hosts:
        key = (
            _host_target(host, target, plan),
            tuple((p.index, tuple(p.applicable(host.name))) for p in plays),
        )
        groups_by_key.setdefault(key, []).append(host)

    units = []
    for (unit_target, per_play), unit_hosts in groups_by_key.items():
        names = [h.name for h in unit_hosts]
        unit = BuildUnit(
            target=unit_target,
            binary_name=_binary_name(plan, names),
            hosts=unit_hosts,
            plan_doc={},
        )
        doc_plays = []
        for play_view, (_, task_ids) in zip(plays, per_play, strict=True):
            play_hosts = [n for n in names if n in play_view.host_names]
            if not play_hosts:
                continue
            tasks = [play_view.tasks[t] for t in task_ids]
            doc_plays.append(
                {
                    "index": play_view.index,  # what a run's play selector names (docs/rollouts.md)
                    "name": play_view.play.name,
                    "hosts": play_hosts,
                    "vars": play_view.play.vars,
                    "tasks": [_compile_task(plan, play_view, t, unit, file_cache, resolution) for t in tasks],
                    "handlers": [
                        _compile_task(plan, play_view, h, unit, file_cache, resolution)
                        for h in sorted(play_view.play.handlers, key=lambda h: h.execution_order)
                    ],
                }
            )
        unit.plan_doc = {
            "format": 1,
            "binary_name": unit.binary_name,
            "check_mode": plan.options.check_mode,
            "diff_mode": plan.options.diff_mode,
            "hosts": {h.name: _host_vars(h) for h in unit_hosts},
            "groups": groups,
            "plays": doc_plays,
        }
        if unit.bridged:
            assert resolution is not None
            unit.plan_doc["bridge"] = {
                "ansible_version": resolution.ansible_version,
                "internal": dict(resolution.internal),
                "modules": {fqcn: m.spec() for fqcn, m in sorted(unit.bridged.items())},
            }
        if any(_TEMPLATED.search(str(p["vars"])) for p in doc_plays):
            unit.needs_jinja = True
        if any(_TEMPLATED.search(str(v)) for v in unit.plan_doc["hosts"].values()):
            unit.needs_jinja = True
        units.append(unit)
    return units


def _bridge_resolution(plan: Plan, plays: list[_PlayView]) -> Resolution | None:
    """One lookup for every module of the plan that no built-in implements (None: there are none)."""
    tasks = [t for p in plays for t in (*p.tasks.values(), *p.play.handlers) if canonical_module(t.module) is None]
    if not tasks:
        return None
    from ..bridge.policy import unresolved

    return unresolved(plan, tasks)


def _host_vars(host: Host) -> dict[str, Any]:
    out = {k: v for k, v in host.vars.items() if k not in SECRET_VARS}
    out["group_names"] = _group_names(host)
    return out


def _group_names(host: Host) -> list[str]:
    return sorted(g for g in host.groups if g not in ("all", "ungrouped"))


def _host_target(host: Host, override: str | None, plan: Plan) -> str:
    if override:
        return override
    declared = host.vars.get("rustle_target")
    return str(declared) if declared else PYZ_TARGET


def _binary_name(plan: Plan, host_names: list[str]) -> str:
    """The seed's ``rustle-runner-<deployment_id>`` when one deployment covers these hosts."""
    for deployment in plan.binary_deployments:
        if set(host_names) <= set(deployment.target_hosts) and deployment.binary_name:
            return _safe_name(deployment.binary_name)
    first = plan.plays[0].name if plan.plays else "plan"
    return "rustle-runner-" + (_safe_name(first.lower()) or "plan")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80]


class _PlayView:
    """A play with its tasks de-duplicated and each task's hosts resolved."""

    def __init__(self, plan: Plan, index: int, play: Play, resolve: Resolver, select: Selector):
        self.index = index
        self.play = play
        self.play_id = play.play_id or f"play-{index}"
        declared = list(play.hosts) or list(plan.hosts)
        ordered = plan.play_tasks(play)
        if not declared:  # the planner sometimes leaves play hosts empty: use the tasks'
            declared = sorted({h for t in ordered for h in t.hosts})
        self.host_names = {h.name for h in resolve(declared)} if declared else set()
        self.tasks: dict[str, Task] = {t.task_id: t for t in ordered}
        self.order = [t.task_id for t in ordered]
        self._hosts_of: dict[str, set[str]] = {}
        # Rolling plans repeat each task once per host slice, same id, ``hosts`` narrowed to
        # that slice: a task runs on the union of its copies' hosts.
        copy_hosts: dict[str, set[str]] = {}
        for batch in play.batches:
            names = {h.name for h in resolve(batch.hosts)} if batch.hosts else self.host_names
            for task in batch.tasks:
                mine = names & {h.name for h in resolve(task.hosts)} if task.hosts else names
                copy_hosts.setdefault(task.task_id, set()).update(mine)
        for task_id, task in self.tasks.items():
            names = set(copy_hosts.get(task_id, self.host_names))
            for cond in task.conditions:
                if cond.kind == "Host":
                    names &= {h.name for h in select(str(cond.value))}
                elif cond.kind == "Only":
                    names &= {h.name for h in resolve(list(cond.value))}
            self._hosts_of[task_id] = names & self.host_names

    def applicable(self, host: str) -> list[str]:
        if host not in self.host_names:
            return []
        return [t for t in self.order if host in self._hosts_of[t]]


def _compile_task(
    plan: Plan,
    play: _PlayView,
    task: Task,
    unit: BuildUnit,
    file_cache: dict[str, tuple[str, str]],
    resolution: Resolution | None,
) -> dict[str, Any]:
    module = canonical_module(task.module)
    bridged = None
    if module is None:  # not built in: the module bridge runs it (bridge/)
        from ..bridge.policy import bridged as bridged_module

        assert resolution is not None
        bridged = bridged_module(plan, task, resolution)
        unit.bridged[bridged.fqcn] = bridged
        unit.families.add("bridge")
        module = task.module
    else:
        unit.families.add(module_families()[module])
    out: dict[str, Any] = {
        "id": f"{play.play_id}/{task.task_id}",
        "name": task.name or module,
        "module": module,
        "args": task.args,
        "hosts": None,
        "when": [],
        "tags": list(task.tags),
        "notify": list(task.notify),
    }
    skip_when: list[str] = []
    for cond in task.conditions:
        if cond.kind == "When":
            out["when"].append(str(cond.value))
        elif cond.kind == "Skip":
            skip_when.append(str(cond.value))
        elif cond.kind == "CheckMode":
            out["check_mode"] = bool(cond.value)
        elif cond.kind in ("Tag", "SkipTag"):
            out["tags"] = sorted(set(out["tags"]) | set(cond.value))
    if skip_when:
        out["skip_when"] = skip_when
    if bridged is not None:
        out["bridge"] = bridged.fqcn
    for key, value in task.extras.items():
        if key in ("delegate_to", "any_errors_fatal", "throttle"):
            # delegation: the plan parser only lets through delegation to the host itself;
            # the others are the controller's (rollout.py; throttle is 0 or refused)
            continue
        if key == "check_mode" and "check_mode" in out:
            continue  # an explicit CheckMode condition wins
        out[key] = value
    if module in ("copy", "template", "unarchive"):
        _embed_source(plan, task, module, out, unit, file_cache)
    if (
        out["when"]
        or skip_when
        or module in ("template", "assert")
        or any(k in out for k in _EXPRESSION_KEYS)
        or isinstance(out.get("loop"), str)
        or _TEMPLATED.search(str(out))  # args, loop items, vars, environment, become_user ...
        or (module == "debug" and "var" in task.args)
    ):
        unit.needs_jinja = True
    return out


def _embed_source(
    plan: Plan,
    task: Task,
    module: str,
    out: dict[str, Any],
    unit: BuildUnit,
    file_cache: dict[str, tuple[str, str]],
) -> None:
    if module == "unarchive" and task.args.get("remote_src"):
        return
    src = task.args.get("src")
    if not isinstance(src, str):
        return
    path = resolve_source(plan, task)
    if path is None:
        if _TEMPLATED.search(src):
            raise CompileError(
                f"{plan.source}: {task.pointer}/args/src: a templated source path cannot be "
                "embedded yet",
                "write the file's path literally in the playbook",
            )
        return
    if path not in file_cache:
        try:
            with open(path, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except IsADirectoryError:
            raise CompileError(
                f"{plan.source}: {task.pointer}/args/src: '{src}' is a directory; copying "
                "directories is not supported yet",
                "list the files one task each",
            ) from None
        except OSError as exc:
            raise CompileError(f"{plan.source}: {task.pointer}/args/src: cannot read {path}: {exc.strerror}") from exc
        file_cache[path] = (digest, path)
    digest, _ = file_cache[path]
    unit.files[digest] = path
    out["files"] = {src: digest}
