"""Cut a play into phases at its cross-host tasks; no I/O (docs/phases.md).

A host runs a play on its own, in one round trip. A task that needs the other hosts of the
play cannot run inside that round trip: ``run_once`` runs on one host and hands its result
to all. Such a task is a **cut point**: the play is cut into phases, each phase one round
trip per host, and the controller does the cross-host step between them.

Only top-level tasks of a play are cut points: a block (or include) whose every task is
``run_once`` is one as a whole; a block that mixes them with ordinary tasks cannot be cut
(its rescue and always sections would span round trips) and is refused, as is ``run_once``
on a handler. A play without cut points is one phase: one round trip per host, as always.

Consecutive run_once tasks share one phase (the same host runs them one after another).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .model import Play, Task

HOSTS = "hosts"  # every host of the batch runs the phase's tasks
ONCE = "once"  # the batch's first live host runs them; the others receive what they set


@dataclass(frozen=True)
class Phases:
    """A play's phases: ``kinds[k]`` is HOSTS or ONCE; ``of[task_id]`` the phase of each
    top-level task. One phase of kind HOSTS for a play without cut points."""

    kinds: tuple[str, ...]
    of: dict[str, int]

    @property
    def cut(self) -> bool:
        return len(self.kinds) > 1


@dataclass(frozen=True)
class Refusal:
    """Why a task cannot be a cut point: the task (pointer) and the keyword at fault."""

    task: Task
    key: str
    message: str
    hint: str


def _leaves(task: Task) -> Iterator[Task]:
    return (t for t in task.walk() if not t.is_block)


def _once(task: Task) -> bool:
    return task.extras.get("run_once") is True


def kind_of(task: Task) -> str:
    """HOSTS or ONCE for a top-level task (a block: ONCE when all its tasks are run_once)."""
    if not task.is_block:
        return ONCE if _once(task) else HOSTS
    leaves = list(_leaves(task))
    return ONCE if leaves and all(_once(t) for t in leaves) else HOSTS


def refusals(play: Play, tasks: list[Task]) -> Iterator[Refusal]:
    """The cross-host keywords of ``play`` that cannot be cut at (``tasks``: its top-level
    tasks in execution order)."""
    for task in tasks:
        if not task.is_block or kind_of(task) == ONCE:
            continue
        for leaf in _leaves(task):
            if _once(leaf):
                yield Refusal(leaf, "run_once",
                              f"run_once on task {leaf.name!r} inside block {task.name!r}, whose other "
                              "tasks run on every host: the play cannot be cut there",
                              "put run_once on the whole block, or move the task out of the block")
                break
    for handler in play.handlers:
        for leaf in _leaves(handler):
            if _once(leaf):
                yield Refusal(leaf, "run_once", f"run_once on handler {leaf.name!r} is not supported",
                              "notify a handler without run_once, or move the run_once task into "
                              "the play's tasks")
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
