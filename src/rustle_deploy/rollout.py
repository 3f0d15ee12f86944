"""The rollout schedule: which hosts run which plays, in which batches, and when to stop.

Plan x hosts (already limited) -> stages -> batches; no I/O. Ansible's semantics
(docs/rollouts.md):

- ``serial`` (a count, a percentage, or a list whose last step repeats) cuts a play's hosts,
  taken in the play's ``order``, into batches; each batch runs the whole play, and starts only
  once the previous batch has finished. A Rolling strategy's ``batch_size`` is a ``serial``.
- A later play starts once the earlier one has finished on all its hosts.
- After each batch: stop (no further host is touched) when more than ``max_fail_percentage``
  of the batch failed, when ``any_errors_fatal`` and any host failed, or when every host of
  the batch failed. A host that failed takes no part in later plays.

A **stage** is the unit the controller schedules: the plays one round trip per host runs.
Consecutive plays without rollout keywords share a stage (each host runs them back to back,
as a whole plan runs today); a play with ``serial``, a Rolling strategy,
``max_fail_percentage`` or ``any_errors_fatal`` is a stage of its own. A plan that is one
stage of one batch is a plain deployment: one round trip per host, all hosts at once.

A play cut into **phases** at cross-host tasks (``phases.py``, docs/phases.md) is a stage per
phase and batch: every phase of a batch runs before the next batch starts, as Ansible runs
each batch through the whole play. A play whose (chosen) hosts are one needs no phases.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .model import Host, Plan, Play, Serial
from .phases import (
    HANDLER,
    HANDLER_LOCAL,
    LOCAL,
    ONCE,
    ONCE_LOCAL,
    REFRESH,
    delegate_of,
    file_read,
    handler_of,
    is_fact,
    plan_phases,
    split,
    state_reads,
)

Resolver = Callable[[Sequence[str]], list[Host]]


@dataclass(frozen=True)
class Stage:
    """Plays run together, one round trip per host, in ``batches`` one after another."""

    plays: tuple[int, ...]  # indices into plan.plays
    names: tuple[str, ...]  # their names, for reports
    batches: tuple[tuple[str, ...], ...]
    serial: Serial | None = None
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    fatal_tasks: frozenset[str] = frozenset()  # compiled task ids carrying any_errors_fatal
    canary: bool = False  # the canaries' run of these plays (with_canary)
    # one phase of a play cut at cross-host tasks (phases.py): its number, how many the play
    # has, whether it is a run_once phase (one host runs it, the others get its results), a
    # phase the controller runs for each host (delegate_to: localhost), the names its tasks
    # read of other hosts through hostvars (sent in), and whether a later phase needs the
    # hosts' state (a local phase, or one that reads hostvars: this one then sends it back)
    phase: int | None = None
    phases: int = 0
    once: bool = False
    local: bool = False
    feeds: bool = False
    throttle: int = 0  # at most this many hosts of the batch run the phase at once (0: no limit)
    reads: tuple[str, ...] = ()
    facts: bool = False  # what it feeds holds the hosts' facts (a later local phase, a read of facts)
    delegate: str | None = None  # a local phase run over this inventory host's connection (delegate_to)
    # a run_once handler's phase: the handler's index among the play's; the first host of the
    # batch that notified it runs it (once is then set too)
    handler: int | None = None
    # force_handlers: the phases of the play whose hosts that failed a task run this phase's
    # handlers (its section's end), and nothing else of it (phases.Phases.forced)
    forced: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"plays": list(self.plays), "names": list(self.names), "batches": [list(b) for b in self.batches],
                "serial": list(self.serial) if self.serial is not None else None,
                "max_fail_percentage": self.max_fail_percentage, "any_errors_fatal": self.any_errors_fatal,
                "fatal_tasks": sorted(self.fatal_tasks), "canary": self.canary,
                "phase": self.phase, "phases": self.phases, "once": self.once, "local": self.local,
                "feeds": self.feeds, "throttle": self.throttle, "reads": list(self.reads), "facts": self.facts,
                "delegate": self.delegate, "handler": self.handler, "forced": list(self.forced)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Stage:
        serial = d.get("serial")
        return cls(plays=tuple(int(i) for i in d["plays"]), names=tuple(str(n) for n in d["names"]),
                   batches=tuple(tuple(str(h) for h in b) for b in d["batches"]),
                   serial=tuple(serial) if serial is not None else None,
                   max_fail_percentage=d.get("max_fail_percentage"), any_errors_fatal=bool(d.get("any_errors_fatal")),
                   fatal_tasks=frozenset(str(t) for t in d.get("fatal_tasks") or ()), canary=bool(d.get("canary")),
                   phase=None if d.get("phase") is None else int(d["phase"]), phases=int(d.get("phases") or 0),
                   once=bool(d.get("once")), local=bool(d.get("local")), feeds=bool(d.get("feeds")),
                   throttle=int(d.get("throttle") or 0), reads=tuple(str(n) for n in d.get("reads") or ()),
                   facts=bool(d.get("facts", d.get("feeds"))),
                   delegate=str(d["delegate"]) if d.get("delegate") else None,
                   handler=None if d.get("handler") is None else int(d["handler"]),
                   forced=tuple(int(p) for p in d.get("forced") or ()))

    @property
    def label(self) -> str:
        shown = ", ".join(repr(n) for n in self.names[:3]) + (", ..." if len(self.names) > 3 else "")
        plays = (f"play {shown}" if len(self.names) == 1 else f"plays {shown}") if self.names else "no play"
        if self.phase is not None:
            where = f"on {self.delegate}" if self.delegate else "on the controller"
            how = ", ".join(w for w, on in (("run_once handler" if self.handler is not None else "run_once", self.once),
                                             (where, self.local),
                                             (f"throttle {self.throttle}", self.throttle)) if on)
            plays += f", phase {self.phase + 1}/{self.phases}" + (f" ({how})" if how else "")
        return f"canaries, {plays}" if self.canary else plays


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]

    @classmethod
    def single(cls, hosts: Iterable[str]) -> Schedule:
        """Every host at once, running the whole plan: a plain deployment."""
        return cls((Stage(plays=(), names=(), batches=(tuple(hosts),)),))

    def to_json(self) -> dict[str, Any]:
        return {"stages": [s.to_json() for s in self.stages]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Schedule:
        return cls(tuple(Stage.from_json(s) for s in d["stages"]))

    @property
    def total(self) -> int:
        """How many batches, over all stages."""
        return sum(len(s.batches) for s in self.stages)

    @property
    def staged(self) -> bool:
        """More than one stage: each round trip runs only its stage's plays."""
        return len(self.stages) > 1

    @property
    def batched(self) -> bool:
        """More than one batch in all: hosts are not all handled at once."""
        return self.total > 1

    def first_hosts(self) -> tuple[str, ...]:
        """The hosts of the first batch (the ones worth connecting to early)."""
        for stage in self.stages:
            for batch in stage.batches:
                if batch:
                    return batch
        return ()


def serial_batches(hosts: Sequence[str], serial: Serial | None, total: int | None = None) -> list[tuple[str, ...]]:
    """Cut ``hosts`` into batches as Ansible's ``serial`` does.

    A percentage is of all the play's hosts (``total``, by default ``len(hosts)``), rounded
    down, at least 1; a step of 0 takes every remaining host; the last step repeats.
    """
    left = list(hosts)
    total = len(hosts) if total is None else total
    if not serial:
        return [tuple(left)] if left else []
    out: list[tuple[str, ...]] = []
    step = 0
    while left:
        size = _step_size(serial[step], total)
        if size <= 0:
            out.append(tuple(left))
            break
        out.append(tuple(left[:size]))
        del left[:size]
        step = min(step + 1, len(serial) - 1)
    return out


def _step_size(step: int | str, total: int) -> int:
    if isinstance(step, str) and step.endswith("%"):
        return int(float(step[:-1]) / 100.0 * total) or 1
    return int(step)


def ordered(hosts: Sequence[str], order: str, rng: random.Random | None = None) -> list[str]:
    """``hosts`` (in inventory order) in the play's ``order``."""
    if order == "reverse_inventory":
        return list(reversed(hosts))
    if order == "sorted":
        return sorted(hosts)
    if order == "reverse_sorted":
        return sorted(hosts, reverse=True)
    if order == "shuffle":
        out = list(hosts)
        (rng or random.Random()).shuffle(out)
        return out
    return list(hosts)


@dataclass(frozen=True)
class PlaySpec:
    """What scheduling needs to know of one play; JSON-able, so that ``--compile-only`` can
    keep it for ``--deploy-only`` and a deployment manifest for ``rustle-exec``."""

    index: int
    name: str
    hosts: tuple[str, ...]  # in inventory order
    serial: Serial | None = None
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    order: str = "inventory"
    fatal_tasks: tuple[str, ...] = ()  # compiled ids of tasks that carry any_errors_fatal
    phases: tuple[str, ...] = ()  # the kinds of its phases (phases.py) when it is cut, else ()
    reads: tuple[tuple[str, ...], ...] = ()  # per phase: the names read of other hosts (hostvars)
    # whether a task's action plugin runs on the controller: cut even for one host
    actions: bool = False
    # whether a task has ignore_unreachable: each of its host phases sends the host's state back,
    # so that a phase whose connection fails runs on the controller from it (fleetops)
    unreachable_ok: bool = False
    # force_handlers: per phase, the handler phases where a host that fails a task of it runs
    # the handlers it notified (its section's end: phases.Phases.forced)
    forced: tuple[tuple[int, ...], ...] = ()

    @property
    def controlled(self) -> bool:
        """Whether the play carries a rollout keyword, is cut into phases or reads other hosts'
        values, and so is a stage (or stages) of its own (a task with ``any_errors_fatal`` too:
        its failure must stop the hosts before the next play)."""
        return (bool(self.serial) or self.max_fail_percentage is not None or self.any_errors_fatal
                or bool(self.fatal_tasks) or bool(self.phases) or any(self.reads))

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "hosts": list(self.hosts),
                "serial": list(self.serial) if self.serial is not None else None,
                "max_fail_percentage": self.max_fail_percentage, "any_errors_fatal": self.any_errors_fatal,
                "order": self.order, "fatal_tasks": list(self.fatal_tasks), "phases": list(self.phases),
                "reads": [list(r) for r in self.reads], "actions": self.actions, "unreachable_ok": self.unreachable_ok,
                "forced": [list(f) for f in self.forced]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PlaySpec:
        serial = d.get("serial")
        return cls(index=int(d["index"]), name=str(d["name"]), hosts=tuple(str(h) for h in d["hosts"]),
                   serial=tuple(serial) if serial is not None else None,
                   max_fail_percentage=d.get("max_fail_percentage"), any_errors_fatal=bool(d.get("any_errors_fatal")),
                   order=str(d.get("order") or "inventory"), fatal_tasks=tuple(d.get("fatal_tasks") or ()),
                   phases=tuple(str(k) for k in d.get("phases") or ()),
                   reads=tuple(tuple(str(n) for n in r) for r in d.get("reads") or ()),
                   actions=bool(d.get("actions")), unreachable_ok=bool(d.get("unreachable_ok")),
                   forced=tuple(tuple(int(p) for p in f) for f in d.get("forced") or ()))


def play_serial(plan: Plan, play: Play) -> Serial | None:
    """The play's ``serial``; else the Rolling strategy's batch size; else the plan's ``serial``."""
    if play.serial is not None:
        return play.serial
    if play.strategy.kind == "Rolling" and play.strategy.batch_size:
        return (play.strategy.batch_size,)
    return plan.options.serial


def play_specs(plan: Plan, resolve: Resolver) -> list[PlaySpec]:
    """Each play of ``plan`` with its hosts resolved (``resolve``: plan host or group names ->
    inventory hosts, in inventory order)."""
    specs = []
    from .bridge.policy import controller_tasks

    actions = controller_tasks(plan)
    for index, (play, cut) in enumerate(zip(plan.plays, plan_phases(plan, actions), strict=True)):
        declared = list(play.hosts) or list(plan.hosts)
        if not declared:  # the planner sometimes leaves play hosts empty: use the tasks'
            declared = sorted({h for b in play.batches for t in b.tasks for h in t.hosts})
        play_id = play.play_id or f"play-{index}"
        fatal = sorted({f"{play_id}/{t.task_id}" for b in play.batches for top in b.tasks for t in top.walk()
                        if t.extras.get("any_errors_fatal") is True}
                       | {f"{play_id}/{t.task_id}" for h in play.handlers for t in h.walk()
                          if t.extras.get("any_errors_fatal") is True})
        hosts = tuple(h.name for h in resolve(declared)) if declared else ()
        specs.append(PlaySpec(
            index=index, name=play.name, hosts=hosts,
            serial=play_serial(plan, play), max_fail_percentage=play.max_fail_percentage,
            any_errors_fatal=play.any_errors_fatal, order=play.order, fatal_tasks=tuple(fatal),
            phases=cut.kinds if cut.cut else (),
            reads=tuple(cut.reads.get(i, ()) for i in range(len(cut.kinds))) if cut.cut else (),
            actions=any(t.pointer in actions for top in plan.play_tasks(play) for t in top.walk()),
            unreachable_ok=any(t.extras.get("ignore_unreachable") not in (None, False)
                               for top in [*plan.play_tasks(play), *play.handlers] for t in top.walk()),
            forced=tuple(cut.forced.get(i, ()) for i in range(len(cut.kinds)))
            if cut.cut and play.force_handlers and cut.forced else (),
        ))
    return specs


def schedule(specs: Sequence[PlaySpec], hosts: Iterable[str], rng: random.Random | None = None) -> Schedule:
    """The stages and batches that run the plays ``specs`` on ``hosts`` (the chosen hosts)."""
    hosts_in_order = list(hosts)
    chosen = set(hosts_in_order)
    stages: list[Stage] = []
    plain: list[tuple[PlaySpec, list[str]]] = []  # plain plays waiting to share a stage

    def close_plain() -> None:
        if not plain:
            return
        members: dict[str, None] = {}
        for _, names in plain:
            members.update(dict.fromkeys(names))
        stages.append(Stage(
            plays=tuple(p.index for p, _ in plain), names=tuple(p.name for p, _ in plain),
            batches=(tuple(members),) if members else (),
            fatal_tasks=frozenset(t for p, _ in plain for t in p.fatal_tasks),
        ))
        plain.clear()

    for spec in specs:
        names = [h for h in spec.hosts if h in chosen]
        # a file read, or the inventory read again after refresh_inventory: between phases
        reads_files = any(file_read(n) is not None or n == REFRESH for r in spec.reads for n in r)
        off_host = any(split(k)[0] in (LOCAL, ONCE_LOCAL, HANDLER_LOCAL) for k in spec.phases)
        if len(names) <= 1 and spec.phases and not spec.actions and not reads_files and not off_host:
            # one host needs no phases: it runs the play whole (still sent what it reads of
            # other hosts, which earlier plays set); a file the play creates on the controller
            # is still read between phases, a task delegated elsewhere still runs there
            union = tuple(sorted({n for r in spec.reads for n in r}))
            spec = replace(spec, phases=(), reads=(union,) if union else ())
        if not spec.controlled:
            plain.append((spec, names))
            continue
        close_plain()
        stage = Stage(
            plays=(spec.index,), names=(spec.name,),
            batches=tuple(serial_batches(ordered(names, spec.order, rng), spec.serial)),
            serial=spec.serial, max_fail_percentage=spec.max_fail_percentage,
            any_errors_fatal=spec.any_errors_fatal, fatal_tasks=frozenset(spec.fatal_tasks),
        )
        if not spec.phases:
            stages.append(replace(stage, reads=spec.reads[0] if spec.reads else ()))
            continue
        # a play cut into phases: each batch runs every phase before the next batch starts
        for batch in stage.batches:
            kinds = [split(k) for k in spec.phases]
            reads = list(spec.reads) + [()] * (len(kinds) - len(spec.reads))
            for number, (kind, width) in enumerate(kinds):
                local = kind in (LOCAL, ONCE_LOCAL, HANDLER_LOCAL)
                later = range(number + 1, len(kinds))
                stages.append(replace(
                    stage, batches=(batch,), phase=number, phases=len(kinds),
                    once=kind in (ONCE, ONCE_LOCAL, HANDLER, HANDLER_LOCAL), local=local, throttle=width, reads=tuple(reads[number]),
                    delegate=delegate_of(spec.phases[number]), handler=handler_of(spec.phases[number]),
                    forced=tuple(p for p, ends in enumerate(spec.forced) if p < number and number in ends),
                    # a later run_once handler: the controller picks the first host that notified it
                    feeds=not local and (spec.unreachable_ok or any(kinds[k][0] in (LOCAL, ONCE_LOCAL, HANDLER, HANDLER_LOCAL)
                                                                    or state_reads(reads[k]) for k in later)),
                    facts=not local and any(kinds[k][0] in (LOCAL, ONCE_LOCAL, HANDLER_LOCAL) or any(map(is_fact, reads[k]))
                                            for k in later)))
    close_plain()
    # a stage that reads other hosts' values gets them from the state each host's earlier
    # stages sent back (values set in earlier plays last for the playbook, as in Ansible)
    for number, stage in enumerate(stages):
        if state_reads(stage.reads):
            facts = any(map(is_fact, stage.reads))
            stages[:number] = [s if s.local else replace(s, feeds=True, facts=s.facts or facts)
                               for s in stages[:number]]
    kept = [s for s in stages if s.batches]
    # Hosts of the plan that no play targets still get the artifact (and run nothing), as in
    # a plain deployment: with the last stage when it is plain, else in a stage of their own.
    covered = {h for s in kept for b in s.batches for h in b}
    leftover = tuple(h for h in dict.fromkeys(hosts_in_order) if h not in covered)
    if leftover:
        last = kept[-1] if kept else None
        if last is not None and last.serial is None and len(last.batches) == 1 and not (
                last.max_fail_percentage is not None or last.any_errors_fatal):
            kept[-1] = replace(last, batches=(last.batches[0] + leftover,))
        else:
            kept.append(Stage(plays=(), names=(), batches=(leftover,)))
    return Schedule(tuple(kept))


def canary_count(value: str, total: int) -> int:
    """``--canary`` (a count, or a percentage of the hosts: at least 1) as a host count."""
    return min(_step_size(value if value.endswith("%") else int(value), total), total)


def with_canary(schedule: Schedule, count: int) -> Schedule:
    """Canaries first: the first ``count`` hosts the rollout would reach run every stage of
    the plan, as batches of their own in which any failure stops the rollout; then the
    schedule goes on without them, each stage's hosts cut again by its ``serial``
    (percentages still of all its hosts)."""
    reach: dict[str, None] = {}
    for stage in schedule.stages:
        for batch in stage.batches:
            reach.update(dict.fromkeys(batch))
    canaries = set(list(reach)[:count])
    first: list[Stage] = []
    rest: list[Stage] = []
    for stage in schedule.stages:
        mine = tuple(h for b in stage.batches for h in b if h in canaries)
        if mine:
            first.append(replace(stage, batches=(mine,), any_errors_fatal=True, canary=True))
        every = [h for b in stage.batches for h in b]
        others = [h for h in every if h not in canaries]
        if others:
            rest.append(replace(stage, batches=tuple(serial_batches(others, stage.serial, len(every)))))
    return Schedule(tuple(first + rest))


def stop_reason(stage: Stage, ran: Sequence[str], failed: Sequence[str], fatal_task: bool = False) -> str | None:
    """Why the rollout must stop after a batch in which ``failed`` of ``ran`` failed; None
    to go on. ``fatal_task``: a failed task carried ``any_errors_fatal``."""
    if not ran or not failed:
        return None
    share = 100.0 * len(failed) / len(ran)
    if stage.any_errors_fatal or fatal_task:
        return f"any_errors_fatal: {len(failed)} of {len(ran)} host(s) failed"
    if stage.max_fail_percentage is not None and share > stage.max_fail_percentage:
        return (f"{len(failed)} of {len(ran)} host(s) failed ({share:.0f}%), above max_fail_percentage "
                f"{stage.max_fail_percentage:g}")
    if len(failed) == len(ran):
        return f"every host of the batch failed ({len(ran)})"
    return None


def describe_serial(serial: Serial | None) -> str:
    if not serial:
        return "all at once"
    return "serial " + (str(serial[0]) if len(serial) == 1 else "[" + ", ".join(str(s) for s in serial) + "]")
