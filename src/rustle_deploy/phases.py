"""Cut a play into phases at its cross-host tasks; no I/O (docs/phases.md).

A host runs a play on its own, in one round trip. A task that needs another place than the
host cannot run inside that round trip: ``run_once`` runs on one host and hands its result
to all; ``delegate_to: localhost`` (and ``local_action``) runs on the controller with the
host's variables; ``throttle: N`` lets only N hosts run the task at once. Such a task is a **cut point**: the play is cut into phases, each phase one
round trip per host (or one local run per host on the controller), and the controller
carries the hosts' state between them.

Only top-level tasks of a play are cut points: a block (or include) whose every task has the
same kind is one as a whole; a block that mixes kinds cannot be cut (its rescue and always
sections would span round trips) and is refused, as are cross-host keywords on handlers. A
play without cut points is one phase: one round trip per host, as always.

Consecutive tasks of the same kind share one phase.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .model import Play, Task

HOSTS = "hosts"  # every host of the batch runs the phase's tasks
ONCE = "once"  # the batch's first live host runs them; the others receive what they set
LOCAL = "local"  # the controller runs them for each host of the batch, with its variables
ONCE_LOCAL = "once-local"  # the controller runs them once, for the batch's first live host
# ``throttle: N`` adds "@N" to HOSTS or LOCAL: at most N hosts of the batch run the phase at once
# what delegate_to may name to run a task on the controller
CONTROLLER = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Phases:
    """A play's phases: ``kinds[k]`` is one of HOSTS, ONCE, LOCAL, ONCE_LOCAL; ``of[task_id]``
    the phase of each top-level task. One phase of kind HOSTS for a play without cut points."""

    kinds: tuple[str, ...]
    of: dict[str, int]

    @property
    def cut(self) -> bool:
        """Whether the controller schedules the play's phases (a throttled phase even alone)."""
        return len(self.kinds) > 1 or any(split(k)[1] for k in self.kinds)


@dataclass(frozen=True)
class Refusal:
    """Why a task cannot be a cut point: the task (pointer) and the keyword at fault."""

    task: Task
    key: str
    message: str
    hint: str


def _leaves(task: Task) -> Iterator[Task]:
    return (t for t in task.walk() if not t.is_block)


def local(task: Task) -> bool:
    """Whether the task is delegated to the controller."""
    target = task.extras.get("delegate_to")
    return isinstance(target, str) and target.strip() in CONTROLLER


def throttle_of(task: Task) -> int | None:
    """The task's ``throttle`` as a host count (0: no limit); None when it is an expression."""
    value = task.extras.get("throttle", 0)
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return int(value.strip()) if value.strip().isdigit() else None
    return value if isinstance(value, int) and value >= 0 else None


def split(kind: str) -> tuple[str, int]:
    """(the base kind, its throttle: 0 for none) of a phase kind such as "hosts@2"."""
    base, _, width = kind.partition("@")
    return base, int(width or 0)


def _leaf_kind(task: Task) -> str:
    once = task.extras.get("run_once") is True
    if local(task):
        base = ONCE_LOCAL if once else LOCAL
    else:
        base = ONCE if once else HOSTS
    width = throttle_of(task) or 0
    return f"{base}@{width}" if width and not once else base


def _kinds(task: Task) -> set[str]:
    return {_leaf_kind(t) for t in _leaves(task)} or {HOSTS}


def kind_of(task: Task) -> str:
    """The kind of a top-level task (a block: its tasks' kind when they all have the same)."""
    kinds = _kinds(task)
    return kinds.pop() if len(kinds) == 1 else HOSTS


def refusals(play: Play, tasks: list[Task]) -> Iterator[Refusal]:
    """The cross-host keywords of ``play`` that cannot be cut at (``tasks``: its top-level
    tasks in execution order)."""
    for task in tasks:
        for leaf in _leaves(task):
            if throttle_of(leaf) is None:
                yield Refusal(leaf, "throttle", f"throttle on task {leaf.name!r} is an expression "
                              f"({leaf.extras.get('throttle')!r})", "where the play is cut into phases "
                              "is decided before anything runs: give throttle a number")
        if not task.is_block or len(_kinds(task)) == 1:
            continue
        for leaf in _leaves(task):
            kind, width = split(_leaf_kind(leaf))
            if kind != HOSTS or width:
                key = "delegate_to" if kind in (LOCAL, ONCE_LOCAL) else ("run_once" if kind == ONCE else "throttle")
                yield Refusal(leaf, key,
                              f"{key} on task {leaf.name!r} inside block {task.name!r}, whose tasks "
                              "do not all run the same way (on every host, once, on the controller): "
                              "the play cannot be cut there",
                              f"put {key} on the whole block, or move the task out of the block")
                break
    for handler in play.handlers:
        for leaf in _leaves(handler):
            kind, width = split(_leaf_kind(leaf))
            if kind != HOSTS or width:
                key = "delegate_to" if kind in (LOCAL, ONCE_LOCAL) else ("run_once" if kind == ONCE else "throttle")
                yield Refusal(leaf, key, f"{key} on handler {leaf.name!r} is not supported",
                              f"notify a handler without {key}, or make it a task of the play")
                break


def play_phases(tasks: list[Task]) -> Phases:
    """The phases of a play whose top-level tasks, in execution order, are ``tasks``."""
    kinds: list[str] = []
    of: dict[str, int] = {}
    for task in tasks:
        kind = kind_of(task)
        if not kinds or kinds[-1] != kind:
            kinds.append(kind)
        of[task.task_id] = len(kinds) - 1
    return Phases(tuple(kinds) or (HOSTS,), of)
