"""Modes that touch hosts: deploy (+run), deploy-only, stage, promote, resume, rollback,
cleanup, and rustle-exec.

Each checks every host's remote dir, builds one HostJob per host, fans out through
``deploy.deploy_fleet``, records every host's outcome in the SQLite history as soon as it is
known, and ends with a recap. ``--cleanup --dry-run`` asks the hosts and records nothing. A
deployment that runs a plan with batches (``rollout.py``; docs/rollouts.md) fans out once per
batch through ``_Rollout``, which merges each host's stages, runs the health gate, rolls back
what failed it, and stops where the plan's thresholds say.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .deploy import HealthCheck, HostJob, HostOutcome, RunOptions, deploy_fleet
from .deploy.host import artifact_objects, runner_identity
from .errors import (
    ConnectError,
    InventoryError,
    PhaseError,
    RunnerNotExecutable,
    StateError,
    UsageError,
)
from .inventory import absolute_sources, check_remote_dirs, inventory_sources
from .model import Host, Plan
from .notify import Notifier, end_doc, host_doc, start_doc
from .phases import INVENTORY, PLAY_HOSTS, REFRESH, SELF, file_read
from .reconcile import apply, settle, settle_orphans, through_runner
from .report import HostSummary, ShownNames, dump_json
from .rollout import (
    PlaySpec,
    Schedule,
    Stage,
    canary_count,
    describe_serial,
    stop_reason,
    with_canary,
)
from .rollout import schedule as make_schedule
from .settings import Settings
from .state import History, HostRecord, login_name
from .transport import make_connect
from .transport.options import check_connections, explicit_port

if TYPE_CHECKING:
    from .compiler.build import Artifact
    from .pipeline import Session
    from .tracing import Trace
    from .transport.early import EarlyStarts

MANIFEST_KIND = "rustle-deploy-manifest"


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


def _run_options(opts: dict[str, Any], run_id: str) -> RunOptions:
    return RunOptions(
        check=bool(opts.get("check")),
        diff=bool(opts.get("diff")),
        tags=_csv(opts.get("tags")),
        skip_tags=_csv(opts.get("skip_tags")),
        run_id=run_id,
        verbosity=int(opts.get("verbose") or 0),
        become_password=opts.get("become_password"),
    )


def _parallel(settings: Settings, plan: Plan | None) -> int:
    return settings.hosts_at_once(plan.options.forks if plan is not None else 0)


def _fan_out(
    jobs: Sequence[HostJob],
    settings: Settings,
    plan: Plan | None,
    session_reporter: Any,
    on_outcome: Callable[[HostOutcome], None],
    what: str,
    early: EarlyStarts | None = None,
    timeout: float | None = None,
    progress: _Progress | None = None,
    throttle: int = 0,
    trace: Trace | None = None,
) -> list[HostOutcome]:
    reporter = session_reporter
    if trace is not None:  # the agent announces each stage: the host's span is cut by them
        jobs = [replace(j, trace=True) for j in jobs]
    parallel = min(_parallel(settings, plan), throttle or sys.maxsize)
    connect = make_connect(settings.ssh_client, min(parallel, len(jobs)), early)
    reporter.start(what, len(jobs))

    def on_event(host: str, event: dict[str, Any]) -> None:
        if "event" in event:
            reporter.event(host, event)
            if progress is not None:
                progress.event(host, event)

    def done(outcome: HostOutcome) -> None:
        on_outcome(outcome)
        if trace is not None:
            trace.host(outcome, what, _outcome_status(outcome), {})
        reporter.host_done(outcome.host, _host_line(outcome), failed=outcome.error is not None)

    try:
        return asyncio.run(
            deploy_fleet(
                jobs,
                parallel=parallel,
                timeout=timeout or settings.timeout,
                on_event=on_event,
                on_outcome=done,
                connect=connect,
            )
        )
    finally:
        if early is not None:
            early.close()
        if progress is not None:
            progress.flush()  # what the last second brought, and no timer left behind
        reporter.stop()


class _Progress:
    """Each running host's current task and the task results it has reported, written to the
    history (``host_progress``, ``task_results``) at most once a second, in one transaction:
    what the web UI's live view shows of hosts that have not finished. When a host finishes,
    its outcome's transaction records every result again under the same numbers. Advisory: a
    write the database refuses is dropped, never a host's failure."""

    INTERVAL = 1.0

    def __init__(self, history: History, deployment_id: str, run_id: str | None = None) -> None:
        self.history = history
        self.deployment_id = deployment_id
        self.run_id = run_id  # None: no task results are recorded as they come
        self.state: dict[str, tuple[str | None, int]] = {}
        self.results: dict[str, list[dict[str, Any]]] = {}  # per host, not written yet
        self.first: dict[str, int] = {}  # per host: the number of its next result
        self.changed: set[str] = set()
        self.last = 0.0
        self.scheduled = False

    def event(self, host: str, event: dict[str, Any]) -> None:
        kind = event.get("event")
        task, done = self.state.get(host, (None, 0))
        if kind in ("task_start", "handler_start"):
            task = str(event.get("task") or event.get("id") or "")
        elif kind in ("task_result", "handler_result"):
            done += 1
            if self.run_id is not None:
                self.results.setdefault(host, []).append(event)
        else:
            return
        self.state[host] = (task, done)
        self.changed.add(host)
        wait = self.INTERVAL - (time.monotonic() - self.last)
        if wait <= 0:
            self.flush()
        elif not self.scheduled:  # the rest of this second's events go together
            self.scheduled = True
            asyncio.get_running_loop().call_later(wait, self.flush)

    def host_done(self, host: str) -> None:
        """``host``'s outcome is recorded with all its results: a later stage numbers after them."""
        self.results.pop(host, None)
        self.first.pop(host, None)

    def flush(self) -> None:
        self.scheduled = False
        self.last = time.monotonic()
        if not self.changed:
            return
        changed = {h: self.state[h] for h in self.changed}
        self.changed.clear()
        try:
            with self.history.together():
                self.history.record_progress(self.deployment_id, changed)
                for host, results in list(self.results.items()):
                    if not results or self.run_id is None:
                        continue
                    if host not in self.first:  # after what earlier stages of this run recorded
                        self.first[host] = self.history.count_tasks(self.run_id, host)
                    self.history.record_tasks(self.deployment_id, host, self.run_id, results, self.first[host])
                    self.first[host] += len(results)
                    self.results[host] = []
            self.history.commit()  # inside History.grouped too: the live view is never held back
        except StateError:
            pass  # the database is busy: the next second's write says more


class _Commits:
    """The history's records of finished hosts, committed together (``History.grouped``) at most
    ``INTERVAL`` seconds after the first of them, and when the fan-out ends: one synced commit
    for the hosts that finish close together instead of one per host (~8 ms each here, on the
    event loop that serves every host). Durable as before: a commit is synced, and a host whose
    record a dead controller never committed is still ``pending`` in the history (recorded before
    the fan-out), which the next command settles by asking the host (reconcile.py), as for a
    host that was still running. A commit that fails is raised with the next host's outcome."""

    INTERVAL = 0.5

    def __init__(self, history: History) -> None:
        self.history = history
        self.scheduled = False
        self.failed: StateError | None = None

    def soon(self) -> None:
        """A record was made: commit it within ``INTERVAL``."""
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_later(self.INTERVAL, self.commit)

    def commit(self) -> None:
        self.scheduled = False
        try:
            self.history.commit()
        except StateError as exc:
            self.failed = exc


def _host_line(o: HostOutcome) -> str:
    """One line about a finished host, for progress on long runs."""
    if o.error is not None:
        return f"FAILED: {str(o.error).splitlines()[0]}"
    agent = o.agent or {}
    if agent.get("op") == "cleanup":
        verb = ("would remove", "would leave") if agent.get("dry_run") else ("removed", "left")
        return (f"{verb[0]} {len(agent.get('removed') or [])}, {verb[1]} {len(agent.get('left') or [])} "
                f"in {o.duration:.2f}s")
    parts = []
    if o.sha256:
        parts.append(("uploaded " if o.uploaded else "already had ") + o.sha256[:12])
    repaired = _repaired(o)
    if repaired:
        parts.append(repaired)
    if o.activated:
        parts.append("activated")
    if o.rolled_back:
        parts.append("rolled back")
    if o.recap:
        parts.append(f"ok={o.recap.get('ok', 0)} changed={o.recap.get('changed', 0)} failed={o.recap.get('failed', 0)}")
    return f"{', '.join(parts) or 'done'} in {o.duration:.2f}s"


def _repaired(o: HostOutcome) -> str | None:
    """What the host had that was not what rustle-deploy put there, and was replaced."""
    agent = o.agent or {}
    notes = []
    damaged = agent.get("damaged")
    if isinstance(damaged, dict):
        what = f"hashed to {str(damaged['sha256'])[:12]}" if damaged.get("sha256") else f"was {damaged.get('size')} bytes"
        notes.append(f"replaced the host's copy, which had changed since its upload ({what})")
    if agent.get("unpacked_rebuilt"):
        notes.append(f"unpacked the artifact again: the cached copy was not what it held ({agent['unpacked_rebuilt']})")
    return "; ".join(notes) or None


def task_docs(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The host's task and handler results as the JSON output carries them, in run order: the
    name the run showed, the action, the status (``ok``, ``changed``, ``failed``, ``skipped``,
    ``unreachable``, or ``ignored`` for a failure ``ignore_errors`` let pass), ``msg``; a
    handler's says so, a rescued failure too; a ``no_log`` result keeps its status only."""
    out = []
    for ev in events:
        if ev.get("event") not in ("task_result", "handler_result"):
            continue
        doc: dict[str, Any] = {"name": ev.get("task") or ev.get("id"), "action": ev.get("module"),
                               "status": "ignored" if ev.get("ignored") else ev.get("status")}
        if ev.get("event") == "handler_result":
            doc["handler"] = True
        if ev.get("rescued"):
            doc["rescued"] = True
        if "censored" in ev:
            doc["censored"] = True
        elif ev.get("msg") not in (None, ""):
            doc["msg"] = ev["msg"]
        out.append(doc)
    return out


def _shown_names(schedule: Schedule, plan: Plan | None) -> ShownNames:
    """Who names each task (report.ShownNames): the hosts in the order the schedule runs them,
    and each task of an included file (named again in each batch) with the batch of each host."""
    order = [host for stage in schedule.stages for batch in stage.batches for host in batch]
    included: dict[str, dict[str, int]] = {}
    for index, play in enumerate(plan.plays if plan is not None else ()):
        batch_of = {host: number for stage in schedule.stages if index in stage.plays
                    for number, batch in enumerate(stage.batches) for host in batch}
        for task in (t for b in play.batches for top in b.tasks for t in top.walk()):
            if "include" in task.extras:
                included.update((f"{play.play_id}/{t.task_id}", batch_of) for t in task.walk() if t is not task)
    return ShownNames(order, included)


def _exit_code(failed: bool, outcomes: Iterable[HostOutcome]) -> int:
    """A run's exit code: 1 when a host failed (or the run errored), 0 otherwise; 4 when it
    errored on ansible-core's parser error (an include's file it could not parse), as
    ansible-playbook exits then."""
    if any((o.recap or {}).get("errored") and (o.recap or {}).get("errored_exit") == 4 for o in outcomes):
        return 4
    return 1 if failed else 0


def _errored(outcomes: Iterable[HostOutcome]) -> list[dict[str, str]]:
    """The hosts whose run errored (a notify of no handler fired, where ansible-core aborts the
    whole run), with why: ``[{"host", "msg"}]``, empty when none did."""
    return [{"host": o.host, "msg": str(o.recap["errored"])} for o in outcomes if o.recap and o.recap.get("errored")]


def _summary(outcome: HostOutcome) -> HostSummary:
    s = HostSummary(name=outcome.host)
    recap = outcome.recap or {}
    s.ok = int(recap.get("ok", 0))
    s.changed = int(recap.get("changed", 0))
    s.failed = int(recap.get("failed", 0))
    s.skipped = int(recap.get("skipped", 0))
    s.rescued = int(recap.get("rescued", 0))
    s.ignored = int(recap.get("ignored", 0))
    for event in outcome.events:
        if (event.get("event") in ("task_result", "handler_result") and event.get("status") == "failed"
                and not event.get("ignored") and not event.get("rescued")):
            s.failed_tasks.append(str(event.get("task") or event.get("id")))
    s.unreachable = bool(recap.get("unreachable"))  # a delegated task's connection failed
    s.errored = str(recap["errored"]) if recap.get("errored") else None
    if outcome.error is not None:
        s.unreachable = isinstance(outcome.error, ConnectError)
        s.error = str(outcome.error).replace("\n", " — ")
    elif outcome.run_exit not in (None, 0) and not s.failed:
        s.error = f"the artifact exited with status {outcome.run_exit}"
    # a run that went on to its end after meta clear_host_errors: its failures stay counted
    s.cleared = outcome.run_exit == 0 and s.failed > 0 and not s.unreachable
    return s


def _outcome_status(outcome: HostOutcome) -> str:
    if outcome.error is None and (outcome.agent or {}).get("staged"):
        return "staged"
    if outcome.activated:
        return "activated"  # even when the run after it failed: the host is on the new release
    if outcome.error is not None:
        return "rolled_back" if outcome.rolled_back else "failed"
    return "unchanged"


def _runner_path(session: Session, sha: str | None) -> Path | None:
    """The runner binary a native artifact needs: beside --compile-only's output, or in the cache."""
    if sha is None:
        return None
    for folder in (session.settings.output_dir, session.settings.cache_dir / "native"):
        path = folder / f"rustle-runner-{sha}"
        if path.is_file():
            return path
    raise UsageError(
        f"rustle-runner {sha[:12]} (needed by a native artifact) is neither in {session.settings.output_dir} "
        f"nor in {session.settings.cache_dir / 'native'}",
        "compile again with --format native",
    )


def _record(history: History, did: str, job: HostJob, outcome: HostOutcome) -> None:
    runner = runner_identity(job)
    if runner is not None and outcome.agent is not None and job.host.remote_dir:
        history.record_runner(job.host.name, job.host.remote_dir, runner.sha256)
    if outcome.agent is not None and outcome.agent.get("objects") and job.host.remote_dir:
        history.record_objects(job.host.name, job.host.remote_dir, [str(s) for s in outcome.agent["objects"]])
    history.record_host(
        did,
        outcome.host,
        _outcome_status(outcome),
        binary_name=job.binary_name,
        sha256=outcome.sha256 or job.sha256,
        previous_sha256=outcome.previous_sha256,
        remote_dir=job.host.remote_dir,
        error=str(outcome.error) if outcome.error else None,
        duration=outcome.duration,
        uploaded_bytes=outcome.uploaded_bytes if outcome.uploaded else 0,
    )


def _notifier(session: Session) -> Notifier | None:
    """The deployment's ``--notify`` webhooks (notify.py), None when there are none."""
    urls = session.settings.notify
    return Notifier(urls, session.settings.notify_timeout) if urls else None


def _notify_end(session: Session, notifier: Notifier | None, doc: dict[str, Any]) -> None:
    """Send the last document, wait for the queues at most one timeout, say what was missed."""
    if notifier is None:
        return
    notifier.send(doc)
    for note in notifier.close():
        session.reporter.line(f"note: {note}")


@dataclass(frozen=True)
class _Resumed:
    """What an earlier run of a rollout left (``--resume``), from the history."""

    deployment_id: str
    stages_done: dict[str, int]
    states: dict[str, str]
    batch_of: dict[str, int]
    activated: frozenset[str]  # hosts the deployment activated: their release is in place
    previous: dict[str, str | None]  # their release before the deployment


Gate = Callable[[list[str]], dict[str, HostOutcome]]  # hosts -> their health check's outcome
Revert = Callable[[list[str]], dict[str, str | None]]  # hosts -> None when rolled back, else why not


class _Rollout:
    """A schedule run batch by batch (rollout.py decides when to stop).

    Keeps, per host, the merged outcome of the stages it ran (the first is its deploy, later
    ones are runs) and the number of the batch that first reached it. With a ``gate``, each
    batch's hosts are health-checked after their run; a batch that fails its gate, or a
    canary batch that fails at all, is handed to ``revert`` before the rollout stops.
    A ``resumed`` rollout skips, for each host, the stages it already ran.
    """

    def __init__(self, schedule: Schedule, gate: Gate | None = None, revert: Revert | None = None,
                 resumed: _Resumed | None = None) -> None:
        self.schedule = schedule
        self.prior = dict(resumed.states) if resumed is not None else {}
        self.stages_done = dict(resumed.stages_done) if resumed is not None else {}
        self._skip = dict(self.stages_done)  # stage appearances already run, per host
        self.gate = gate
        self.revert = revert
        self.health: dict[str, dict[str, Any]] = {}  # host -> its gate's verdict
        self.rolled_back: dict[str, None] = {}
        self.not_rolled_back: dict[str, str] = {}
        self.total = schedule.total
        self.outcomes: dict[str, HostOutcome] = {}
        self.batch_of: dict[str, int] = dict(resumed.batch_of) if resumed is not None else {}
        self.failed: dict[str, None] = {}
        self.left: dict[str, int] = {}  # host -> stages it has still to run
        for stage in schedule.stages:
            for batch in stage.batches:
                for name in batch:
                    self.left[name] = self.left.get(name, 0) + 1
        for name, done in self.stages_done.items():
            self.left[name] = max(0, self.left.get(name, 0) - done)
        self.batches: list[dict[str, Any]] = []
        self.stopped_after: int | None = None
        self.reason: str | None = None
        self._next = 0  # the next stage to run
        self.number = 0  # batches run so far

    def extend(self, schedule: Schedule) -> None:
        """Run ``schedule``'s stages after this one's (plays compiled while the run goes on)."""
        self.schedule = Schedule(self.schedule.stages + schedule.stages)
        self.total = self.schedule.total
        for stage in schedule.stages:
            for batch in stage.batches:
                for name in batch:
                    self.left[name] = self.left.get(name, 0) + 1

    def run(self, fan_out: Callable[[Stage, int, list[str]], list[HostOutcome]],
            batch_done: Callable[[int], None] | None = None,
            joins: Callable[[str, Stage], bool] | None = None,
            stopped: Callable[[str, Stage], None] | None = None) -> None:
        """Run each batch through ``fan_out(stage, number, hosts)`` until done or told to stop;
        ``batch_done(number)`` after each batch, even one with no host left to run. ``joins(host,
        stage)``: whether a host that failed still runs the stage (force_handlers: the handlers
        of its section's end), outside the stop rules' counts; a stop decided in such a play
        (every host failed, any_errors_fatal, max_fail_percentage) waits for them, as
        ansible-core's force_handlers still flushes the failed hosts' handlers; any_errors_fatal's
        also for the hosts it stops (``stopped(host, stage)``: it joins them as a failed one)."""
        closing: int | None = None  # the play whose failed hosts run their handlers before the stop
        while self._next < len(self.schedule.stages):
            stage = self.schedule.stages[self._next]
            self._next += 1
            if closing is not None and not (stage.phase is not None and stage.plays == (closing,)):
                return
            for batch in stage.batches:
                self.number += 1
                number = self.number
                # failed hosts leave the rollout; a resumed one skips what hosts already ran (and
                # counts them in the batch, as the run it resumes did: its stop rules see the batch)
                done = [n for n in batch if n not in self.failed and self._done_before(n)]
                joined = [n for n in batch if (n in self.failed or closing is not None) and stage.forced
                          and joins is not None and joins(n, stage)]
                names = [n for n in batch if (n not in self.failed or n in joined) and n not in done
                         and (closing is None or n in joined)]
                if not names:
                    if batch_done is not None:
                        batch_done(number)
                    continue
                started = time.time()
                outcomes = fan_out(stage, number, names)
                failed = [o.host for o in outcomes if not o.ok and o.host not in joined]
                unhealthy = self._check(o.host for o in outcomes if o.ok and o.host not in joined)
                self.batches.append({
                    "number": number, "plays": list(stage.names), "label": stage.label,
                    "serial": describe_serial(stage.serial), "canary": stage.canary,
                    "hosts": list(batch), "ran": names, "failed": failed, "unhealthy": unhealthy,
                    "started": round(started, 3), "ended": round(time.time(), 3),
                })
                fatal = any(_fatal_failure(o, stage) for o in outcomes)
                own = [n for n in names if n not in joined]
                reason = stop_reason(stage, done + own, failed + unhealthy, fatal) if number < self.total else None
                if unhealthy:
                    reason = f"health check failed on {len(unhealthy)} of {len(names)} host(s): {', '.join(unhealthy)}"
                errored = _errored(outcomes)
                if errored and number < self.total:  # ansible-core aborts the whole run there
                    reason = f"the run errored on {errored[0]['host']}: {errored[0]['msg']}"
                if reason is not None:
                    self.stopped_after, self.reason = number, reason
                    if self.revert is not None and (stage.canary or unhealthy):
                        for name, why in self.revert(names).items():
                            if why is None:
                                self.rolled_back[name] = None
                                self.stages_done[name] = 0  # back on the old release: all to do again
                            else:
                                self.not_rolled_back[name] = why
                if batch_done is not None:
                    batch_done(number)
                if reason is not None and closing is None and joins is not None and stage.plays \
                        and not self.rolled_back and self._forced_later(stage):
                    closing = stage.plays[0]
                    if stopped is not None and (stage.any_errors_fatal or fatal):
                        for o in outcomes:
                            if o.ok and o.host not in joined:
                                stopped(o.host, stage)
                elif reason is not None:
                    return

    def _forced_later(self, stage: Stage) -> bool:
        """Whether a later stage of ``stage``'s play runs the handlers of hosts that failed a task."""
        return any(s.forced and s.plays == stage.plays for s in self.schedule.stages[self._next:])

    def _done_before(self, name: str) -> bool:
        if self._skip.get(name, 0) > 0:
            self._skip[name] -= 1
            return True
        return False

    def _check(self, names: Iterable[str]) -> list[str]:
        """Run the gate on ``names``; the unhealthy ones, who now count as failed."""
        names = list(names)
        if self.gate is None or not names:
            return []
        outcomes = self.gate(names)
        unhealthy = []
        for name in names:
            o = outcomes.get(name)
            verdict = (o.agent or {}) if o is not None and o.error is None else {}
            healthy = bool(verdict.get("healthy"))
            self.health[name] = {
                "healthy": healthy, "attempts": verdict.get("attempts"), "rc": verdict.get("rc"),
                "output": verdict.get("output") if o is not None and o.error is None else str(o.error if o else "not checked"),
            }
            if "status" in verdict:  # --health-url: the last HTTP status (None: no answer)
                self.health[name]["status"] = verdict["status"]
            if not healthy:
                unhealthy.append(name)
                self.failed[name] = None
        return unhealthy

    def absorb(self, outcome: HostOutcome, number: int) -> HostOutcome:
        """Fold one host's result of batch ``number`` into what it did before; return the sum."""
        name = outcome.host
        self.left[name] = max(0, self.left.get(name, 1) - 1)
        self.batch_of.setdefault(name, number)
        before = self.outcomes.get(name)
        merged = outcome if before is None else _merged(before, outcome)
        self.outcomes[name] = merged
        if outcome.ok:
            self.stages_done[name] = self.stages_done.get(name, 0) + 1
        else:
            self.failed[name] = None
        return merged

    def state_of(self, name: str) -> str:
        """updated, failed, rolled_back, partial (later stages never ran) or not_reached."""
        if name in self.rolled_back:
            return "rolled_back"
        if name in self.failed:
            return "failed"
        done = self.stages_done.get(name, 0)
        if name not in self.outcomes:
            if self.prior.get(name) in ("rolled_back", "failed", "interrupted"):
                return self.prior[name]  # a resumed rollout has not reached it again
            if not done:
                return "not_reached"
        return "partial" if self.left.get(name) else "updated"

    def doc(self, names: Sequence[str], state: str) -> dict[str, Any]:
        by_state: dict[str, list[str]] = {"updated": [], "failed": [], "rolled_back": [], "partial": [],
                                          "not_reached": []}
        for name in names:
            by_state[self.state_of(name)].append(name)
        return {"state": state, "total_batches": self.total, "stopped_after_batch": self.stopped_after,
                "reason": self.reason, "batches": self.batches, **by_state,
                "not_rolled_back": self.not_rolled_back, "health": self.health}


def health_checks(opts: dict[str, Any], hosts: Sequence[Host]) -> dict[str, HealthCheck] | None:
    """``--health-check`` and ``--health-url`` rendered for each host with its variables
    (Jinja2, as a task's arguments are), with their retries, interval and deadline; None
    without either flag."""
    given = {flag: str(opts[key]) for key, flag in (("health_check", "--health-check"), ("health_url", "--health-url"))
             if opts.get(key)}
    if not given:
        return None
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    hint = ("the command and the URL may use the host's inventory variables, e.g. "
            "http://{{ ansible_host }}:8080/health")
    templates = {}
    for flag, text in given.items():
        try:
            templates[flag] = env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise UsageError(f"{flag}: {exc.message}", hint) from exc
    defaults = HealthCheck(command="")
    out = {}
    for h in hosts:
        scope = {**h.vars, "inventory_hostname": h.name, "inventory_hostname_short": h.name.split(".")[0],
                 "group_names": sorted(g for g in h.groups if g not in ("all", "ungrouped"))}
        rendered = {}
        for flag, template in templates.items():
            try:
                rendered[flag] = template.render(scope)
            except jinja2.TemplateError as exc:
                raise UsageError(f"{flag} for {h.name}: {exc.message or exc}", hint) from exc
        url = rendered.get("--health-url", "").strip()
        if "--health-url" in rendered and not url.lower().startswith(("http://", "https://")):
            raise UsageError(f"--health-url for {h.name}: {url!r} is not an http:// or https:// URL",
                             "e.g. --health-url 'http://{{ ansible_host }}:8080/health'")
        out[h.name] = HealthCheck(
            command=rendered.get("--health-check", ""), url=url,
            retries=opts["health_retries"] if opts.get("health_retries") is not None else defaults.retries,
            interval=opts.get("health_interval") or defaults.interval,
            timeout=opts.get("health_timeout") or defaults.timeout,
        )
    return out


def _failures(outcome: HostOutcome) -> dict[str, Any]:
    """The tasks that failed in ``outcome`` (not ignored): compiled id -> [task, result], as a
    run is told another host's failure (inject "failed")."""
    out: dict[str, Any] = {}
    for e in outcome.events:
        if e.get("event") == "task_result" and e.get("status") == "failed" and not e.get("ignored") and e.get("id"):
            result = {k: v for k, v in e.items() if k not in _EVENT_KEYS}
            out[str(e["id"])] = [{"id": e["id"], "name": e.get("task"), "module": e.get("module")},
                                 dict(result, failed=True)]
    return out


_EVENT_KEYS = ("event", "host", "id", "task", "module", "status", "ignored", "duration", "rescued", "errored")


def _fatal_failure(outcome: HostOutcome, stage: Stage) -> bool:
    """A task carrying ``any_errors_fatal`` failed on this host."""
    return bool(stage.fatal_tasks) and any(
        e.get("event") in ("task_result", "handler_result") and e.get("status") == "failed"
        and not e.get("ignored") and e.get("id") in stage.fatal_tasks
        for e in outcome.events
    )


def _run_local(names: Sequence[str], where: Callable[[str], tuple[Path, Host]], options: RunOptions,
               phased: _Phased, settings: Settings, plan: Plan | None, reporter: Any,
               on_outcome: Callable[[HostOutcome], None], what: str, throttle: int = 0) -> list[HostOutcome]:
    """Run a phase here for each of ``names`` (``where``: its artifact and host), at most
    --parallel at once, each from the state its host sent back (deploy/local.py)."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from .deploy.local import run_here

    reporter.start(what, len(names))
    outcomes: dict[str, HostOutcome] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="rustle-local-") as tmp, \
                ThreadPoolExecutor(max_workers=max(1, min(_parallel(settings, plan), len(names),
                                                          throttle or len(names)))) as pool:
            futures = {n: pool.submit(run_here, *where(n), replace(options, inject=None), phased.start_here(n),
                                      Path(tmp), settings.timeout) for n in names}
            for name, future in futures.items():
                outcome = future.result()
                for event in outcome.events:
                    if event.get("event") != "shared":
                        reporter.event(name, event)
                on_outcome(outcome)
                reporter.host_done(name, _host_line(outcome), failed=outcome.error is not None)
                outcomes[name] = outcome
    finally:
        reporter.stop()
    return [outcomes[n] for n in names]


def _run_delegated(names: Sequence[str], delegate: Callable[[str], Host], where: Callable[[str], tuple[Path, Host]],
                   options: RunOptions, phased: _Phased, settings: Settings, plan: Plan | None, reporter: Any,
                   on_outcome: Callable[[HostOutcome], None], what: str, throttle: int = 0,
                   held: Callable[[str], str | None] = lambda name: None) -> list[HostOutcome]:
    """Run a phase for each of ``names`` on ``delegate(name)``, over its connection (one
    exchange each), at most --parallel at once, each from the state its host sent back."""
    import tempfile

    from .deploy.local import run_here, run_there

    width = max(1, min(_parallel(settings, plan), len(names), throttle or len(names)))
    connect = make_connect(settings.ssh_client, width)
    options = replace(options, inject=None)

    async def every(tmp: Path) -> list[HostOutcome]:
        gate = asyncio.Semaphore(width)

        async def one(name: str) -> HostOutcome:
            async with gate:
                outcome = await run_there(connect, delegate(name), *where(name), options, phased.start_here(name),
                                          settings.timeout, held(name))
                if isinstance(outcome.error, ConnectError) and not outcome.events:
                    # unreachable: the phase runs here with every task that needs the connection
                    # unreachable, as Ansible reports them (ignore_unreachable goes on)
                    outcome = await asyncio.to_thread(
                        run_here, *where(name), replace(options, unreachable=outcome.error.message),
                        phased.start_here(name), tmp, settings.timeout)
            for event in outcome.events:
                if event.get("event") != "shared":
                    reporter.event(name, event)
            on_outcome(outcome)
            reporter.host_done(name, _host_line(outcome), failed=outcome.error is not None)
            return outcome

        return list(await asyncio.gather(*(one(n) for n in names)))

    reporter.start(what, len(names))
    try:
        with tempfile.TemporaryDirectory(prefix="rustle-delegated-") as tmp:
            return asyncio.run(every(Path(tmp)))
    finally:
        reporter.stop()


def _merged(first: HostOutcome, later: HostOutcome) -> HostOutcome:
    """A host's outcome over two stages: the deploy's facts, the runs' events and counts summed.
    The deploy is the first outcome, or the later one when the first deployed nothing (a
    phase that ran elsewhere for the host: run_once on another, or on the controller)."""
    recap = dict(first.recap or {})
    for key, value in (later.recap or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(recap.get(key, 0), (int, float)):
            recap[key] = recap.get(key, 0) + value
        else:
            recap.setdefault(key, value)
    later_exit = later.run_exit if later.run_exit not in (None, 0) else None
    base = later if first.agent is None and first.sha256 is None and later.agent is not None else first
    if base is first and later.activated and later.sha256 and first.sha256:
        # a second artifact activated in the same deployment (plays after add_host/group_by):
        # the host now runs it; what it had before the deployment stays the first's previous
        base = replace(first, sha256=later.sha256)
    return replace(
        base, ok=first.ok and later.ok, error=later.error or first.error,
        run_exit=later_exit if later_exit is not None else (later.run_exit if first.run_exit is None else first.run_exit),
        recap=recap if (first.recap or later.recap) else None, events=first.events + later.events,
        round_trips=first.round_trips + later.round_trips, duration=first.duration + later.duration,
        uploaded_bytes=first.uploaded_bytes + later.uploaded_bytes,
    )


def _carry_id(base: str, host: str) -> str:
    """The name of ``host``'s carry file (``runs/<id>.vars.json``): per host, since inventory
    hosts may share a remote dir (several local hosts, aliases of one machine)."""
    import hashlib

    return f"{base}-h-{hashlib.sha256(host.encode()).hexdigest()[:12]}"


def _run_time_files(reads: Sequence[tuple[str, str, list[str], dict[str, Any]]]) -> dict[str, Any]:
    """What a phase's tasks read from the controller's disk now (``run_time_files``: created
    while the play ran): ``files`` (name -> its base64 bytes and, for a template's
    ``template_*`` variables and mode=preserve, its controller details), ``trees`` (name -> a copy
    ``src`` directory: its entries and their bytes), ``vars_files`` (name -> variables of
    a vars file, read as include_vars reads it), ``vars_dirs`` (directory -> include_vars' dir
    listing, walked as ansible-core walks it, playbook/varsdir.py), ``locked`` (name -> ansible-core's
    message for a vault-encrypted file, or a directory holding one, that no secret opens, as the
    reading task words it: the task fails with it; a copy or template src, an include_vars file,
    a lookup's file). A file still missing is left out: the task then fails on the host as
    Ansible's "Could not find or access" does."""
    import base64

    from .compiler.sources import VaultLocked, source_info
    from .errors import PlaybookError
    from .playbook.varsdir import load_vars_file, read_vars_dir
    from .playbook.yamlsrc import read_yaml

    out: dict[str, dict[str, Any]] = {"files": {}, "vars_files": {}, "vars_dirs": {}, "trees": {}, "locked": {}}
    for name, kind, paths, options in reads:
        if kind == "vars_dir":
            out["vars_dirs"][name] = read_vars_dir(name, options, load_vars_file)
            continue
        path = next((p for p in paths if os.path.isfile(p)), None)
        if path is None and kind == "file":
            folder = next((p for p in paths if os.path.isdir(p)), None)
            try:
                tree = _run_time_tree(name, folder, options.get("follow", True), options.get("decrypt", True),
                                      options.get("module", "")) if folder is not None else None
            except VaultLocked as exc:  # the task fails on the host with ansible-core's words
                out["locked"][name] = str(exc)
                continue
            if tree is not None:  # a copy src directory a task of the play made
                out["trees"][name] = tree
            continue
        if path is None:
            continue
        if kind == "vars":
            try:
                _controller_bytes(path, True, "include_vars")
            except VaultLocked as exc:  # include_vars fails with ansible-core's words
                out["locked"][name] = str(exc)
                continue
            try:
                data = read_yaml(path, what="vars file").data
            except PlaybookError:
                continue  # not YAML: the host says it could not read it
            if isinstance(data, dict):
                out["vars_files"][name] = {str(k): v for k, v in data.items()}
        else:
            try:
                data = _controller_bytes(path, options.get("decrypt", True), options.get("module", ""))
            except VaultLocked as exc:
                out["locked"][name] = str(exc)
                continue
            out["files"][name] = {"data": base64.b64encode(data).decode(), "info": source_info(path)}
    return {k: v for k, v in out.items() if v}


def _controller_bytes(path: str, decrypt: bool = True, module: str = "") -> bytes:
    """A controller file's bytes as ansible-core's actions read them: a vault-encrypted one
    decrypted with the run's secrets (unless the task's ``decrypt`` is false);
    :class:`~.compiler.sources.VaultLocked` when no secret opens it (worded as ``module``, the
    reading task's, words it)."""
    from . import vault
    from .compiler.sources import VaultLocked, locked_message

    data = Path(path).read_bytes()
    if not decrypt or not data.startswith(vault.HEADER.encode()):
        return data
    try:
        return vault.decrypt_bytes(data.decode("ascii", "replace"))
    except vault.VaultFailed as exc:
        raise VaultLocked(locked_message(path, exc, module)) from None


def _run_time_tree(name: str, folder: str, follow: bool, decrypt: bool = True,
                   module: str = "") -> dict[str, Any] | None:
    """A copy ``src`` directory as the compiler embeds one (compiler/sources.walk_tree; ``follow``:
    the task's ``local_follow``), with its files' bytes (``blobs``: sha256 -> base64); None when
    it holds too many entries; :class:`~.compiler.sources.VaultLocked` when it holds a
    vault-encrypted file no secret opens."""
    import base64
    import hashlib

    from .compiler.sources import TreeTooLarge, walk_tree

    blobs: dict[str, str] = {}

    def digest(full: str) -> str:
        data = _controller_bytes(full, decrypt, module)
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = base64.b64encode(data).decode()
        return sha

    try:
        tree = walk_tree(name, folder, follow, digest)
    except TreeTooLarge:
        return None
    return dict(tree, blobs=blobs)


def _refreshed_view(plan: Plan, inv: Any, pattern: str | None = None, limit: str | None = None) -> dict[str, Any]:
    """What a play's tasks after its ``meta: refresh_inventory`` see of the inventory read again:
    ``groups`` (as the compiler gives them), each host's variables that the plan reads through
    ``hostvars`` (every one for a whole-``hostvars`` read), vault values left out, and the hosts
    the play's ``pattern`` (under ``limit``) selects now (``play_hosts``: ansible_play_hosts_all)."""
    from .compiler.units import EVERY_NAME, plan_hostvars_read
    from .model import Undecryptable, Vaulted, own_vars
    from .pipeline import _group_members

    read = plan_hostvars_read(plan)
    every = EVERY_NAME in read
    hosts = {name: {k: v for k, v in own_vars(h).items()
                    if (every or k in read) and not isinstance(v, (Vaulted, Undecryptable))}
             for name, h in inv.hosts.items()}
    view: dict[str, Any] = {"groups": _group_members(inv), "hosts": hosts}
    if pattern is not None:
        try:
            chosen = [h.name for h in inv.select(pattern)]
            allowed = {h.name for h in inv.select(limit)} if limit else set(chosen)
        except InventoryError:  # a pattern the inventory read again cannot select: as before
            return view
        view["play_hosts"] = [n for n in chosen if n in allowed]
    return view


class _Phased:
    """What the controller carries between the phases of plays cut at run_once (docs/phases.md).

    A run_once phase runs on the batch's first host still in the play; ``take_shared`` takes
    from its outcome what it set (its ``shared`` event: registered results and set_fact,
    controller data, never shown), ``left_out`` gives the batch's other hosts that, to be
    sent in with their next phase (``carried``), and their outcome of the phase: nothing
    done, or failed when the phase failed (Ansible fails every host of the batch then).
    """

    def __init__(self, keep: bool = False) -> None:
        # keep: every run sends the host's state back (later plays are compiled from the
        # inventory changes it holds: Session.next_part)
        self.keep = keep
        self.shared: dict[str, dict[str, Any]] = {}  # host -> what its last run_once phase set
        self.inventory: dict[str, dict[str, Any]] = {}  # host -> what add_host changed in its view
        self.carried: dict[str, dict[str, Any]] = {}  # host -> {"vars", "notified"} for its next phase
        self.state: dict[str, dict[str, Any]] = {}  # host -> its state after its last phase on it
        # hosts whose last run of a run_once phase did not reach its tasks (they had left the
        # block section holding them, for its rescue): the next host of the batch runs it
        self.passed: set[str] = set()
        # play -> its hosts that failed (or were unreachable): they leave the later plays too
        self.down: dict[int, set[str]] = {}
        self.gone: dict[int, set[str]] = {}  # play -> its hosts meta: refresh_inventory dropped
        # play -> the inventory meta: refresh_inventory read in it: {"groups", "hosts"}, sent to
        # each of its later phases (the later plays are compiled over it)
        self.refreshed: dict[int, dict[str, Any]] = {}
        # force_handlers: host -> (play, phase) where it failed a task, while it has handlers to run
        # at its section's end (its runs say so: their ``shared`` event's ``forced``)
        self.forced: dict[str, tuple[int, int]] = {}

    def stopped(self, host: str, stage: Stage) -> None:
        """``host`` did not fail ``stage``, but any_errors_fatal stops the play there: under
        force_handlers it runs its handlers of the section's end, as a host that failed does."""
        if stage.plays and stage.phase is not None:
            self.forced[host] = (stage.plays[0], stage.phase)

    def joins(self, host: str, stage: Stage) -> bool:
        """Whether ``host``, which failed, runs ``stage``: the handlers of the section where it
        failed a task, under force_handlers (it runs no task there)."""
        at = self.forced.get(host)
        return at is not None and bool(stage.plays) and at[0] == stage.plays[0] and at[1] in stage.forced

    def share(self, stage: Stage) -> str | None:
        """What a host's run of ``stage`` sends back: its state when a later phase runs on the
        controller or reads other hosts' values (with its facts, gathered if no task had, when
        that phase needs them), or when ``keep`` asks for it; what it set when it runs once
        for all, else nothing."""
        if stage.feeds:
            return "state" if stage.facts else "known"
        if self.keep:
            return "known"
        return "vars" if stage.once else None

    def inject(self, host: str, stage: Stage) -> dict[str, Any] | None:
        """What ``host``'s run of ``stage`` gets: what waits for it, and the other hosts'
        values of the names the phase reads through hostvars."""
        out = self.carried.pop(host, None)
        if out and host in self.state:  # the host holds these from now on
            self.state[host] = dict(self.state[host], vars={**(self.state[host].get("vars") or {}), **out["vars"]},
                                    notified={**(self.state[host].get("notified") or {}), **out.get("notified", {})})
        names = [n for n in stage.reads if file_read(n) is None and n not in (PLAY_HOSTS, REFRESH)]
        if names:
            out = dict(out or {}, hostvars=self.hostvars(host, names))
        files = [self.rendered(host, f) for f in map(file_read, stage.reads) if f is not None]
        if files:
            out = dict(out or {}, **_run_time_files(files))
        if PLAY_HOSTS in stage.reads:  # ansible_play_hosts leaves out the hosts that failed so far
            out = dict(out or {}, failed_hosts=sorted(set().union(*self.down.values())))
        if stage.serial and stage.plays:  # ansible_play_batch: the hosts of the host's batch
            out = dict(out or {}, batch=list(next((b for b in stage.batches if host in b), ())))
        if stage.plays and stage.plays[0] in self.refreshed:  # the inventory read again in the play
            view = self.refreshed[stage.plays[0]]
            out = dict(out or {}, refreshed={**view,
                                             "hosts": {n: v if n != host else {} for n, v in view["hosts"].items()}})
        if host in self.forced:  # force_handlers: it failed a task of the play (perhaps in a run here)
            out = dict(out or {}, forced={str(self.forced[host][0]): self.forced[host][1]})
        if INVENTORY in stage.reads:  # after group_by: the groups every host joined
            out = dict(out or {}, inventory=self.merged_inventory([h for b in stage.batches for h in b]))
        return out

    def rendered(self, host: str, read: tuple[str, str, list[str], dict[str, Any]]
                 ) -> tuple[str, str, list[str], dict[str, Any]]:
        """A FILE read as ``host`` names it: a name over the host's data (``render``: a copy or
        template ``src`` such as ``{{ made.stdout }}/dir``) rendered over the host's values
        after its last phase and the ones every host shares, as the host will render it; the
        file it names, if absolute. One that does not render (a value the controller lacks)
        reads nothing: the host then fails as Ansible's "Could not find or access" does."""
        name, kind, paths, options = read
        if not isinstance(options.get("render"), dict):
            return read
        rest = {k: v for k, v in options.items() if k != "render"}
        from .runtime_index import import_runtime

        mod = import_runtime()
        values = options["render"]
        own = dict((self.state.get(host) or {}).get("vars") or {}, inventory_hostname=host)
        templar = mod.Templar()
        # the values are data (rendered already, or the host's); extra vars are the user's own
        layers = [mod.unsafe(mod.untag(values.get("vars") or {})), mod.unsafe(mod.untag(own)),
                  mod.untag(values.get("extra") or {})]
        try:
            text = templar.template(name, mod.VarScope(layers, templar))
        except (mod.TemplateError, KeyError):
            return name, kind, [], rest
        path = os.path.expanduser(str(text))
        return str(text), kind, ([path] if isinstance(text, str) and os.path.isabs(path) else []), rest

    def merged_inventory(self, first: Sequence[str], shared: bool = False) -> dict[str, Any]:
        """What add_host and group_by changed, over every host's last state: the batch's hosts
        (``first``) in order, as Ansible's linear strategy adds them, then the others;
        ``shared``: also what runs on the controller sent back (a local phase's add_host)."""
        out: dict[str, Any] = {"hosts": {}, "groups": {}}
        views = [(self.state.get(name) or {}).get("inventory") or {}
                 for name in [*first, *(h for h in self.state if h not in first)]]
        if shared:
            views += [self.inventory[name] for name in first if name in self.inventory]
            views += [c["inventory"] for c in self.carried.values() if c.get("inventory")]
        for changed in views:
            for host, values in (changed.get("hosts") or {}).items():
                out["hosts"][host] = {**out["hosts"].get(host, {}), **values}
            for key in ("groups", "children"):  # group -> hosts; parent group -> child groups
                for group, members in (changed.get(key) or {}).items():
                    listed = out.setdefault(key, {}).setdefault(group, [])
                    listed.extend(m for m in members if m not in listed)
        return out

    def hostvars(self, host: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The other hosts' values of ``names``, from the state their last phase sent back
        (with what waits to be sent to them): registered results and set_fact, then facts."""
        out: dict[str, dict[str, Any]] = {}
        for other, state in self.state.items():
            if other == host:
                continue
            values = {**(state.get("vars") or {}), **(self.carried.get(other) or {}).get("vars", {})}
            facts = state.get("facts") or {}
            picked = {}
            for name in names:
                if name in values:
                    picked[name] = values[name]
                elif name == "ansible_facts":
                    picked[name] = {k[8:] if k.startswith("ansible_") else k: v for k, v in facts.items()}
                elif name in facts:
                    picked[name] = facts[name]
            out[other] = picked
        return out

    def carry_in(self, host: str, values: dict[str, Any], notified: dict[str, Any] | None = None) -> None:
        """Send ``values`` in with the host's next phase; ``notified`` (play -> handler indexes,
        what a run on the controller left pending: it started from the host's state) replaces
        the host's pending handlers of those plays."""
        entry = self.carried.setdefault(host, {"vars": {}})
        entry["vars"].update(values)
        for key, indexes in (notified or {}).items():
            entry.setdefault("notified", {})[key] = sorted(set(indexes))

    def notified(self, host: str, key: str) -> list[int]:
        """The handlers of play ``key`` pending on ``host``: what waits to be sent in, else what
        its last phase sent back."""
        pending = (self.carried.get(host) or {}).get("notified") or {}
        if key in pending:
            return list(pending[key])
        return list(((self.state.get(host) or {}).get("notified") or {}).get(key, ()))

    def handled(self, stage: Stage, names: Sequence[str]) -> None:
        """A run_once handler's phase ran on another host: ``names``' notifications of it are
        spent, as Ansible runs it once for all (their next phase forgets them)."""
        key = str(stage.plays[0])
        for name in names:
            if name not in self.state and key not in ((self.carried.get(name) or {}).get("notified") or {}):
                continue  # nothing known of what it notified: its own state stays as it is
            left = [i for i in self.notified(name, key) if i != stage.handler]
            self.carried.setdefault(name, {"vars": {}}).setdefault("notified", {})[key] = left

    def start_here(self, host: str) -> dict[str, Any] | None:
        """The state a run on the controller starts from: the host's, with what waits for it."""
        state = self.state.get(host)
        pending = self.carried.get(host)
        if pending is None:
            return state
        state = dict(state or {"__rustle_carry__": 2, "facts": {}})
        state["vars"] = {**(state.get("vars") or {}), **pending.get("vars", {})}
        if pending.get("notified"):
            state["notified"] = {**(state.get("notified") or {}), **pending["notified"]}
        return state

    def take_shared(self, outcome: HostOutcome, local: bool = False) -> HostOutcome:
        """``outcome`` without its ``shared`` event, whose content is kept: the state, what a
        run_once phase set (for the other hosts), what a run on the controller set (for the
        host itself: vars and handlers it notified)."""
        kept = []
        for event in outcome.events:
            if event.get("event") == "shared" and isinstance(event.get("vars"), dict):
                forced = event.get("forced")
                if isinstance(forced, list) and len(forced) == 2:
                    self.forced[outcome.host] = (int(forced[0]), int(forced[1]))
                else:
                    self.forced.pop(outcome.host, None)
                if event.get("reached") is False:
                    self.passed.add(outcome.host)
                else:
                    self.passed.discard(outcome.host)
                if local and isinstance(event.get("phase_failures"), dict):  # a block's task failed there
                    self.carry_failed(outcome.host, event["phase_failures"])
                if isinstance(event.get("state"), dict):
                    self.state[outcome.host] = event["state"]
                if local:  # "own": what only the host itself registers (a pause's result)
                    self.carry_in(outcome.host, {**event["vars"], **(event.get("own") or {})}, event.get("notified"))
                self.shared[outcome.host] = event["vars"]
                if isinstance(event.get("inventory"), dict):
                    self.inventory[outcome.host] = event["inventory"]
            else:
                kept.append(event)
        return replace(outcome, events=kept) if len(kept) != len(outcome.events) else outcome

    def take_delegated(self, outcome: HostOutcome, delegate: str) -> None:
        """What tasks with ``delegate_facts`` gathered or set (in ``outcome``'s ``shared``
        event): ``delegate``'s, as other hosts see it through hostvars; set_fact values also
        reach ``delegate``'s own next run."""
        for event in outcome.events:
            given = event.get("delegated") if event.get("event") == "shared" else None
            if not isinstance(given, dict):
                continue
            state = dict(self.state.get(delegate) or {"__rustle_carry__": 2, "facts": {}, "vars": {}})
            state["facts"] = {**(state.get("facts") or {}), **(given.get("facts") or {})}
            state["vars"] = {**(state.get("vars") or {}), **(given.get("vars") or {})}
            self.state[delegate] = state
            if given.get("vars"):
                self.carry_in(delegate, given["vars"])

    def runs_first(self, stage: Stage, names: Sequence[str]) -> list[str] | None:
        """``names`` with the host that runs a run_once ``stage`` first: for a run_once handler's
        phase, the first host that notified the handler (None: none did, and none runs it)."""
        if stage.handler is None:
            return list(names)
        key = str(stage.plays[0])
        for name in names:
            if stage.handler in self.notified(name, key):
                return [name, *(n for n in names if n != name)]
        return None

    def carry_failed(self, host: str, failures: dict[str, Any]) -> None:
        """Tasks of a block cut into phases that ``host`` is to count as failed with its next
        phase (compiled id -> [task, result]): it goes on to the block's rescue and always."""
        entry = self.carried.setdefault(host, {"vars": {}})
        entry["failed"] = {**(entry.get("failed") or {}), **failures}

    def run_once(self, stage: Stage, names: Sequence[str],
                 run: Callable[[list[str]], list[HostOutcome]]) -> tuple[list[HostOutcome], list[HostOutcome]]:
        """Run a run_once ``stage`` (``run``: on the hosts named): on the first host of the batch
        that reaches its tasks (a host that failed before them in their block is in the block's
        rescue: the next host runs them, as Ansible's lock-step gives the task to the hosts at
        it). (the hosts that ran it, the outcomes of the others)."""
        order = self.runs_first(stage, names)
        if order is None:  # a run_once handler no host notified: nothing runs
            return [], [HostOutcome(host=n, ok=True) for n in names]
        ran: list[HostOutcome] = []
        for name in order:
            ran += run([name])
            if not (ran[-1].ok and ran[-1].host in self.passed):
                break
        others = self.left_out(ran[-1], order[len(ran):], [o.host for o in ran[:-1]])
        if stage.handler is not None:  # a run_once handler ran: spent for the batch's other hosts
            self.handled(stage, [n for n in order if n != ran[-1].host])
        if stage.plays:
            self.down.setdefault(stage.plays[0], set()).update(o.host for o in [*ran, *others] if not o.ok)
        return ran, others

    def after(self, stage: Stage, outcomes: Sequence[HostOutcome]) -> None:
        """After a phase: the hosts that failed leave the play's ``ansible_play_hosts``; where a
        task with ``any_errors_fatal`` failed on a host whose block rescues it, every other host
        of the batch counts that task as failed with its next phase, and goes to its own rescue
        (or stops), as Ansible marks them failed after that task."""
        if stage.plays:
            self.down.setdefault(stage.plays[0], set()).update(o.host for o in outcomes if not o.ok)
        fatal = {}
        for outcome in outcomes:
            fatal.update({key: value for key, value in _failures(outcome).items()
                          if key in stage.fatal_tasks or (stage.any_errors_fatal and not stage.canary)})
        if not fatal:
            return
        for outcome in outcomes:
            mine = _failures(outcome)
            if outcome.ok:
                self.carry_failed(outcome.host, {k: v for k, v in fatal.items() if k not in mine})

    def left_out(self, ran: HostOutcome, names: Sequence[str], passed: Sequence[str] = ()) -> list[HostOutcome]:
        """The outcomes of the hosts of the batch that did not run a run_once phase (``passed``:
        those whose run did not reach its tasks, which ran): what it set is carried to them all
        (a failed task of a block cut into phases too: each goes to its rescue)."""
        if not ran.ok:
            return [HostOutcome(host=n, ok=False, error=PhaseError(
                n, f"the run_once phase failed on {ran.host}, and with it every host of the batch",
                "as in Ansible, a run_once task that fails stops the play on all its hosts; "
                "ignore_errors on the task keeps them going")) for n in names]
        values = self.shared.pop(ran.host, {})
        inventory = self.inventory.pop(ran.host, None)
        failed = _failures(ran)
        for n in [*names, *passed]:
            self.carry_in(n, values)
            if failed:  # Ansible fails every host of the batch when a run_once task fails, twice
                self.carry_failed(n, {key: [*value, True] for key, value in failed.items()})
            if inventory:  # add_host ran once for the batch: every host sees the new hosts
                self.carried[n]["inventory"] = inventory
        return [HostOutcome(host=n, ok=True) for n in names]


def release_names(hosts: Iterable[Host], binary_of: dict[str, str]) -> dict[str, str]:
    """Each host's release name (``releases/<name>/``): its artifact's binary name, with the host's
    own name added where it shares its remote directory on one account with another of ``hosts``
    (inventory aliases of one machine, several hosts on a local connection). One ``current`` link
    cannot hold two hosts' releases: a later phase would find the other host's release there."""
    where = {h.name: _location(h) for h in hosts if h.name in binary_of}
    count = Counter(where.values())
    return {name: f"{binary}.{_safe_host(name)}" if name in where and count[where[name]] > 1 else binary
            for name, binary in binary_of.items()}


def releases_apart(hosts: Iterable[Host], by_host: dict[str, Artifact]) -> dict[str, Artifact]:
    """``by_host`` with each artifact under the host's release name (release_names)."""
    names = release_names(hosts, {n: a.binary_name for n, a in by_host.items()})
    return {n: a if names[n] == a.binary_name else replace(a, binary_name=names[n]) for n, a in by_host.items()}


def _location(host: Host) -> tuple[Any, ...]:
    """Where ``host``'s remote directory is: one account on one machine, as the inventory says it."""
    if host.is_local:
        return ("local", host.remote_dir)
    return (host.address, explicit_port(host) or 22, host.user, host.remote_dir)


def _safe_host(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".") or "host"


def _deploy_jobs(
    session: Session,
    plan: Plan | None,
    hosts: Sequence[Host],
    by_host: dict[str, Artifact],
    source: str | None,
    plan_sha: str | None,
    early: EarlyStarts | None = None,
    schedule: Schedule | None = None,
    resumed: _Resumed | None = None,
    compiled: bool = False,
) -> int:
    """Deploy (and run) ``by_host``'s artifacts; ``compiled``: this command built them (or
    found them in the compilation cache), so the history counts its cache hits."""
    opts, settings = session.opts, session.settings
    run = bool(opts.get("run_"))
    staging = bool(opts.get("stage"))  # upload, verify, prepare; --promote activates and runs later
    run_id = f"r-{secrets.token_hex(6)}"
    host_of = {h.name: h for h in hosts}
    later = run and not staging and session.later is not None  # plays compiled once this has run
    planned = schedule or Schedule.single(host_of)
    # Batches pace runs; without --run, activation alone changes nothing on a host, so every
    # host gets the artifact at once and the manifest hands the schedule to rustle-exec.
    schedule = planned if run else Schedule.single(host_of)
    checks = health_checks(opts, hosts)  # before anything is touched: a bad template is exit 2
    rolling = schedule.batched or checks is not None or resumed is not None or staging
    settle_orphans(session, hosts)  # deployments to these hosts left running by a controller now gone
    with History(settings.state_db) as history:
        if resumed is not None:  # the same deployment goes on: --rollback ID covers all of it
            did = resumed.deployment_id
            history.resume_rollout(did)
            history.own(did, _context(session))
        else:
            context = _context(session)
            if compiled and run and rolling and not staging:  # a rollout --resume can go on with
                context["resume"] = resume_spec(opts)
            did = history.begin("deploy", plan_source=source, plan_sha256=plan_sha, context=context,
                                user=session.opts.get("actor"))
        if session.trace is not None:
            session.trace.deployment(did, "deploy", source)
        if compiled:
            distinct = {by_host[h.name].sha256: by_host[h.name].cached for h in hosts}
            history.record_artifacts(did, len(distinct), sum(distinct.values()))
        started = time.monotonic()
        notifier = _notifier(session)
        if notifier is not None:
            notifier.send(start_doc(did, "deploy", source, session.opts.get("actor") or login_name(), list(host_of)))
        deployed_before = resumed.activated if resumed is not None else frozenset()
        # Send the artifact with the request, without waiting for the agent to ask, to hosts
        # this history has not seen holding it: saves a round trip on first deployments.
        held = history.holders({by_host[h.name].sha256 for h in hosts})
        runners = {a.runner: _runner_path(session, a.runner) for a in by_host.values() if a.runner}
        has_runner = {sha: history.runner_holders(sha) for sha in runners}
        # what each pyz artifact shares with others (runtime, bridge code): left out of a push to a
        # host this history saw holding it
        objects = {a.sha256: artifact_objects(a.path) for a in by_host.values() if a.runner is None}
        has_object = history.object_holders({o[2] for objs in objects.values() for o in objs})

        def job_for(name: str, stage: Stage) -> HostJob:
            h, art = host_of[name], by_host[name]
            options = _run_options(opts, run_id) if run else None
            if options is not None and (schedule.staged or carrying):
                options = replace(options, plays=stage.plays, carry=_carry_id(did, name))
            if options is not None and stage.phase is not None:
                options = replace(options, phase=stage.phase)
            if options is not None:  # what a phase (or an earlier play) left for it, what it sends back
                options = replace(options, inject=phased.inject(name, stage), share=phased.share(stage))
            if name in job_of or name in deployed_before:  # deployed already: run this stage's plays
                return HostJob(host=h, op="run", sha256=art.sha256, binary_name=art.binary_name,
                               deployment_id=did, run=options, runner=runners.get(art.runner or ""))
            return HostJob(
                host=h,
                op="deploy",
                artifact=art.path,
                sha256=art.sha256,
                size=art.size,
                binary_name=art.binary_name,
                deployment_id=did,
                verify=settings.verify,
                run=options,
                bytecode_tag=art.bytecode_tag,
                activate=not staging,
                push=(h.name, h.remote_dir, art.sha256) not in held,
                objects=objects.get(art.sha256, ()),
                without=frozenset(o[2] for o in objects.get(art.sha256, ())
                                  if (h.name, h.remote_dir) in has_object.get(o[2], set())),
                runner=runners.get(art.runner or ""),
                push_runner=(h.name, h.remote_dir) not in has_runner.get(art.runner or "", set()),
            )

        job_of: dict[str, HostJob] = {}  # each host's deploy job
        carrying = later  # each run keeps the host's state for the runs of the later plays
        phased = _Phased(keep=later)
        in_flight: list[HostJob] = []
        progress = _Progress(history, did, run_id if run else None)
        recorded: set[str] = set()

        def gate(names: list[str]) -> dict[str, HostOutcome]:
            assert checks is not None
            jobs = [HostJob(host=host_of[n], op="health", deployment_id=did, health=checks[n]) for n in names]
            deadline = max(settings.timeout, max(checks[n].timeout for n in names) + 30.0)
            what = f"health check, batch {len(roll.batches) + 1}/{roll.total}"
            with session.phase(what, **{"rustle.hosts": len(names)}):
                outcomes = _fan_out(jobs, settings, plan, session.reporter, lambda o: None, what, timeout=deadline,
                                    trace=session.trace)
            return {o.host: o for o in outcomes}

        def revert(names: list[str]) -> dict[str, str | None]:
            """Roll ``names`` back to the release current before this deployment, and re-apply it."""
            why: dict[str, str | None] = {}
            jobs = []
            for n in names:
                o = roll.outcomes.get(n)
                activated = o is not None and (o.activated or n in deployed_before)
                previous = (o.previous_sha256 if o.activated else resumed.previous.get(n)) if (
                    o is not None and resumed is not None) else (o.previous_sha256 if o is not None else None)
                if not activated:
                    why[n] = "this deployment did not activate a release there"
                elif not previous:
                    why[n] = "nothing was current there before; --cleanup removes it"
                else:
                    jobs.append(HostJob(host=host_of[n], op="rollback", binary_name=job_of[n].binary_name,
                                        sha256=by_host[n].sha256, rollback_to=previous, deployment_id=did,
                                        run=_run_options(opts, run_id) if run else None))
            if not jobs:
                return why
            session.reporter.line(f"rolling back {len(jobs)} host(s) to the release before deployment {did}")
            with session.phase("rollback", **{"rustle.hosts": len(jobs)}):
                reverted = _fan_out(jobs, settings, plan, session.reporter, lambda o: None, "rollback",
                                    trace=session.trace)
            for o in reverted:
                if o.error is None and o.rolled_back and o.run_exit in (None, 0):
                    why[o.host] = None
                    deployed = roll.outcomes.get(o.host)  # what the deployment did there before
                    history.record_host(did, o.host, "rolled_back", binary_name=job_of[o.host].binary_name,
                                        sha256=o.sha256, previous_sha256=o.previous_sha256,
                                        remote_dir=host_of[o.host].remote_dir,
                                        error=f"rolled back: {roll.reason}",
                                        duration=(deployed.duration if deployed else 0.0) + o.duration,
                                        uploaded_bytes=deployed.uploaded_bytes if deployed and deployed.uploaded else 0)
                elif o.error is None and o.rolled_back:
                    why[o.host] = f"rolled back, but re-applying the previous release failed (exit {o.run_exit})"
                else:
                    why[o.host] = str(o.error) if o.error else "the host did not roll back"
            return why

        roll = _Rollout(schedule, gate if checks is not None else None, revert if run else None, resumed)
        session.reporter.names = _shown_names(schedule, plan)

        def fan_out(stage: Stage, number: int, names: list[str]) -> list[HostOutcome]:
            if REFRESH in stage.reads and stage.plays:  # after meta: refresh_inventory: its sources now
                kept = session.refresh_inventory()
                phased.gone.setdefault(stage.plays[0], set()).update(n for n in names if n not in kept.hosts)
                # the play's later tasks see it too: each host's own variables (its run requests),
                # the groups and the other hosts' variables (sent in with each later phase)
                view = kept.with_playbook_dir(plan.playbook_dir) if plan is not None and plan.playbook_dir else kept
                if plan is not None:
                    phased.refreshed[stage.plays[0]] = _refreshed_view(
                        plan, view, plan.plays[stage.plays[0]].pattern, session.opts.get("limit"))
                for n, new in view.hosts.items():
                    if n in host_of:
                        host_of[n] = replace(host_of[n], vars=new.vars, groups=new.groups, origins=new.origins,
                                             inventory_file=new.inventory_file, inventory_dir=new.inventory_dir)
            # the hosts refresh_inventory dropped leave the play, as in ansible-core (nothing failed)
            gone = [n for n in names if stage.plays and n in phased.gone.get(stage.plays[0], ())]
            for n in gone:  # done: no later play is theirs (not "partly updated")
                roll.left[n] = 0
            names = [n for n in names if n not in gone]
            left = [HostOutcome(host=n, ok=True) for n in gone]
            if not names:
                return left
            if not rolling:
                return fan_out_batch(stage, number, names) + left
            with session.phase(f"batch {number}/{roll.total}", **{"rustle.stage": stage.label,
                                                                 "rustle.hosts": len(names)}):
                return fan_out_batch(stage, number, names) + left

        def fan_out_batch(stage: Stage, number: int, names: list[str]) -> list[HostOutcome]:
            if not stage.once:
                outcomes = (run_here if stage.local else fan_out_hosts)(stage, number, names)
                phased.after(stage, outcomes)
                return outcomes
            first, others = phased.run_once(
                stage, names, lambda some: (run_here if stage.local else fan_out_hosts)(stage, number, some))
            for o in others:
                if not o.ok and o.host not in job_of:
                    continue  # failed before anything reached it: never touched, not reached
                roll.absorb(o, number)
                if rolling and not staging:
                    history.record_rollout_host(did, o.host, roll.batch_of.get(o.host), roll.state_of(o.host),
                                                roll.stages_done.get(o.host, 0))
            return first + others

        def run_here(stage: Stage, number: int, names: list[str], unreachable: str | None = None) -> list[HostOutcome]:
            """A phase delegated to the controller: the artifact runs here, once per host (with
            ``unreachable``: a host phase whose connection failed so, each task that needs it
            reported unreachable)."""
            options = replace(_run_options(opts, run_id), plays=stage.plays, phase=stage.phase, unreachable=unreachable)
            what = f"run on the controller, batch {number}/{roll.total} ({stage.label})"
            if unreachable is not None:
                what = f"run on the controller, unreachable, batch {number}/{roll.total} ({stage.label})"

            def on_outcome(outcome: HostOutcome) -> None:
                merged = roll.absorb(phased.take_shared(outcome, local=True), number)
                with history.together():
                    history.record_run(did, outcome.host, run_id, merged.run_exit, merged.recap)
                    # every result so far, as a host phase records them: the live recorder's
                    # last write may never come when this phase is the run's last
                    history.record_tasks(did, outcome.host, run_id, merged.events)
                    if rolling and not staging:
                        history.record_rollout_host(did, outcome.host, roll.batch_of.get(outcome.host),
                                                    roll.state_of(outcome.host), roll.stages_done.get(outcome.host, 0))
                if session.trace is not None:
                    ran = outcome.error is None and outcome.run_exit in (0, None)
                    where: dict[str, Any] = {"rustle.on_controller": stage.delegate is None}
                    if stage.delegate is not None:  # run over another connection (delegate_to a host, ...)
                        where["rustle.delegate"] = stage.delegate.split("{", 1)[0]
                    session.trace.host(outcome, what, "ran" if ran else "failed", where)

            if stage.delegate is not None and stage.delegate.startswith(SELF):  # remote_user/port of tasks
                changed = json.loads(stage.delegate[len(SELF):])
                what = f"run over other connections, batch {number}/{roll.total} ({stage.label})"
                return _run_delegated(names, lambda n: replace(host_of[n], vars={**host_of[n].vars, **changed.get(n, {})}),
                                      lambda n: (by_host[n].path, host_of[n]), options, phased,
                                      settings, plan, session.reporter, on_outcome, what, stage.throttle)
            if stage.delegate is not None:
                delegate = session.delegates.get(stage.delegate) or host_of.get(stage.delegate)
                if delegate is None:
                    raise UsageError(f"the tasks of {stage.label} are delegated to {stage.delegate!r}, which this "
                                     "command has no connection for", "run the playbook itself, with its inventory")
                what = f"run on {stage.delegate}, batch {number}/{roll.total} ({stage.label})"
                holds = history.holders({by_host[n].sha256 for n in names})

                def held(name: str) -> str | None:
                    """Where the delegate holds ``name``'s artifact (deployed there now or before)."""
                    sha = by_host[name].sha256
                    done = roll.outcomes.get(delegate.name)
                    here = delegate.name in job_of and by_host[delegate.name].sha256 == sha and done is not None \
                        and (done.activated or done.agent is not None) and done.error is None
                    if here or (delegate.name, delegate.remote_dir, sha) in holds:
                        return f"{delegate.remote_dir.rstrip('/')}/artifacts/{sha}"
                    return None

                ran = _run_delegated(names, lambda n: delegate, lambda n: (by_host[n].path, host_of[n]), options,
                                     phased, settings, plan, session.reporter, on_outcome, what, stage.throttle,
                                     held)
                for outcome in ran:  # delegate_facts: in the batch's order, the last host's value wins
                    phased.take_delegated(outcome, stage.delegate)
                return ran
            return _run_local(names, lambda n: (by_host[n].path, host_of[n]), options, phased, settings, plan,
                              session.reporter, on_outcome, what, stage.throttle)

        def fan_out_hosts(stage: Stage, number: int, names: list[str]) -> list[HostOutcome]:
            jobs = [job_for(n, stage) for n in names]
            for j in jobs:
                job_of.setdefault(j.host.name, j)
            in_flight[:] = jobs
            recorded.clear()
            history.pending(did, [(j.host.name, j.binary_name, j.sha256, j.host.remote_dir)
                                  for j in jobs if j.op == "deploy"])

            def on_outcome(outcome: HostOutcome) -> None:
                if isinstance(outcome.error, RunnerNotExecutable) and job_of[outcome.host].runner is not None \
                        and session.falls_back(outcome.host):
                    fallen.append(outcome)  # deployed again as pyz below: not this host's result
                    return
                earlier = roll.outcomes.get(outcome.host)  # reached in an earlier stage of this run
                if run and isinstance(outcome.error, ConnectError) and not outcome.events and earlier is not None \
                        and earlier.error is None and phased.start_here(outcome.host) is not None:
                    unreached.append(outcome)  # run below on the controller: not this host's result
                    return
                merged = roll.absorb(phased.take_shared(outcome), number)
                if outcome.agent is not None and session.opts.get("format_") == "auto":  # -v: which, and where
                    session.say_format(f"{outcome.host}: {'native' if job_of[outcome.host].runner else 'pyz'} on "
                                       f"{outcome.agent.get('system')} {outcome.agent.get('machine')}")
                with history.together():  # whole or absent, committed with its neighbours (_Commits)
                    if job_of[outcome.host].op == "deploy":  # else its deploy is recorded already
                        _record(history, did, job_of[outcome.host], merged)
                    said = outcome.agent or {}
                    if said.get("machine") and job_of[outcome.host].host.remote_dir:  # --format auto's next target
                        ident = runner_identity(job_of[outcome.host])
                        static = ident is not None and ident.glibc is None  # it reports its own glibc
                        history.record_platform(outcome.host, job_of[outcome.host].host.remote_dir or "",
                                                str(said.get("system") or ""), str(said["machine"]), did,
                                                None if static else str(said.get("libc") or ""))
                    if run and merged.run_exit is not None:
                        history.record_run(did, outcome.host, run_id, merged.run_exit, merged.recap)
                        history.record_tasks(did, outcome.host, run_id, merged.events)
                    if rolling and not staging:
                        history.record_rollout_host(did, outcome.host, roll.batch_of.get(outcome.host),
                                                    roll.state_of(outcome.host), roll.stages_done.get(outcome.host, 0))
                commits.soon()
                recorded.add(outcome.host)
                progress.host_done(outcome.host)
                if notifier is not None:
                    notifier.send(host_doc(did, "deploy", outcome.host, _outcome_status(merged),
                                           not _summary(merged).is_failure, str(merged.error) if merged.error else None,
                                           merged.recap, merged.duration))

            what = "deploy+run" if run else "deploy"
            if rolling:
                what += f" batch {number}/{roll.total} ({stage.label}, {describe_serial(stage.serial)})"
            fallen: list[HostOutcome] = []
            unreached: list[HostOutcome] = []
            commits = _Commits(history)
            with history.grouped():
                outcomes = _fan_out(jobs, settings, plan, session.reporter, on_outcome, what,
                                   early if number == 1 else None, progress=progress,
                                   throttle=stage.throttle, trace=session.trace)
            if commits.failed is not None:
                raise commits.failed
            if fallen:
                outcomes = _fall_back(fallen, outcomes, stage, number)
            if unreached:
                # A host reached before whose own connection failed at the start of this phase:
                # the controller runs the phase from the state the host sent back, each task that
                # needs the connection unreachable (ignore_unreachable goes on, as Ansible tries
                # each task; without it the host stops there), the others run (set_fact, debug...)
                again: dict[str, HostOutcome] = {}
                for message in dict.fromkeys(o.error.message for o in unreached if isinstance(o.error, ConnectError)):
                    names_ = [o.host for o in unreached if isinstance(o.error, ConnectError) and o.error.message == message]
                    again.update((o.host, o) for o in run_here(stage, number, names_, message))
                outcomes = [again.get(o.host, o) for o in outcomes]
            uncertain = {
                o.host: str(o.error) for o, j in zip(outcomes, jobs, strict=True)
                if j.op == "deploy" and j is job_of.get(o.host) and o.error is not None and not o.activated
                and o.agent is None
                and not isinstance(o.error, ConnectError) and (o.uploaded or o.events)  # got far enough to activate
            }
            found = settle(session, history, did, [job_of[h] for h in uncertain], uncertain)
            for o in outcomes:
                if o.host in found:
                    apply(o, found[o.host])
            return outcomes

        def _fall_back(fallen: list[HostOutcome], outcomes: list[HostOutcome], stage: Stage,
                       number: int) -> list[HostOutcome]:
            """--format auto: hosts that could not execute the runner (or whose bootstrap found
            they would not) get, in this deployment, the runner that fits the platform they
            reported (the static build, their architecture's), else the pyz artifact; the
            history remembers them so the next deployment sends that at once."""
            from .state import Platform, RunnerFailure

            for o in fallen:
                job = job_of.pop(o.host)
                ident = runner_identity(job)
                reason = o.error.message.split(": ", 1)[-1] if o.error else ""
                err = o.error if isinstance(o.error, RunnerNotExecutable) else None
                machine = err.machine if err else ""
                history.record_runner_failure(o.host, job.host.remote_dir or "", ident.sha256 if ident else "", reason,
                                              did, machine)
                platform = None
                if err is not None and err.system and machine and job.host.remote_dir:  # the bootstrap's probe
                    platform = Platform(err.system, machine, did, err.libc)
                    history.record_platform(o.host, job.host.remote_dir, err.system, machine, did, err.libc)
                art = session.fallback(o.host, RunnerFailure(reason, did, ident.sha256 if ident else "", machine),
                                       platform)
                by_host[o.host] = art
                if art.runner:
                    runners[art.runner] = _runner_path(session, art.runner)
                    what = f"the native artifact {art.sha256[:12]} for rustle-runner {art.runner[:12]} ({art.target})"
                else:
                    what = f"the pyz artifact {art.sha256[:12]}"
                session.reporter.line(f"{o.host}: {reason}; deploying {what} there instead (the history remembers "
                                      "it for the next deployments)")
            redone = {r.host: r for r in fan_out_hosts(stage, number, [o.host for o in fallen])}
            return [redone.get(o.host, o) for o in outcomes]

        if rolling and resumed is None:
            record = planned if staging else schedule  # a staged release keeps the batches --promote runs
            doc = record.to_json()
            if staging:
                doc["artifacts"] = {a.sha256: {"size": a.size, "binary_name": a.binary_name, "target": a.target,
                                               "bytecode_tag": a.bytecode_tag} for a in by_host.values()}
            history.begin_rollout(did, doc, record.total, list(host_of))
        status = "interrupted"
        try:
            batch_done = (lambda number: history.record_batch_done(did, number)) if rolling else None
            roll.run(fan_out, batch_done, phased.joins, phased.stopped)
            while later and roll.stopped_after is None:  # plays after add_host/group_by
                with session.phase("compile the plays after add_host/group_by"):
                    part = session.next_part(phased.merged_inventory(list(host_of), shared=True))
                later = session.later is not None
                phased.keep = later
                if part is None:
                    break
                plan = part.plan
                fresh = {name: a for a in part.artifacts for name in a.hosts}
                for name, art in fresh.items():
                    if name in by_host and by_host[name].sha256 != art.sha256:
                        job_of.pop(name, None)  # a new artifact, with the later plays: deployed again
                by_host.update(fresh)
                host_of.update((h.name, h) for h in part.hosts)
                held = history.holders({a.sha256 for a in fresh.values()})
                roll.extend(part.schedule)
                roll.run(fan_out, batch_done, phased.joins, phased.stopped)
            for name in session.reporter.names.settle():  # each result named by the task's first host
                if run and name in roll.outcomes and roll.outcomes[name].run_exit is not None:
                    history.record_tasks(did, name, run_id, roll.outcomes[name].events)
            status = "stopped" if roll.stopped_after is not None else ("staged" if staging else "done")
        except KeyboardInterrupt:
            settle(session, history, did, [j for j in in_flight if j.host.name not in recorded and j.op == "deploy"])
            raise
        finally:
            if early is not None:
                early.close()
            if rolling:
                cut = {j.host.name for j in in_flight} - recorded if status == "interrupted" else set()
                with history.together():
                    for name in host_of:
                        state = "interrupted" if name in cut else roll.state_of(name)
                        if staging:
                            state = "failed" if state == "failed" else "staged"
                        history.record_rollout_host(did, name, None if staging else roll.batch_of.get(name), state,
                                                    0 if staging else roll.stages_done.get(name, 0))
                    history.finish_rollout(did, {"done": "completed"}.get(status, status), roll.stopped_after, roll.reason)
            if status in ("done", "stopped") and _errored(roll.outcomes.values()):
                status = "errored"  # ansible-core would have aborted the run (docs/playbooks.md)
            history.finish(did, status)
            _notify_end(session, notifier, end_doc(
                did, "deploy", status, {n: not _summary(o).is_failure for n, o in roll.outcomes.items()},
                time.monotonic() - started))
    outcomes = [roll.outcomes[n] for n in host_of if n in roll.outcomes]
    summaries = [_summary(o) for o in outcomes]
    for o, s in zip(outcomes, summaries, strict=True):
        if not run and o.error is None:
            s.deploy = "uploaded" if o.uploaded else "already present"
            if (o.agent or {}).get("damaged"):
                s.deploy = "re-uploaded (the host's copy had changed)"
    failed = any(s.is_failure for s in summaries) or roll.stopped_after is not None
    if run:
        session.reporter.recap(summaries, "PLAY RECAP")
    else:
        session.reporter.recap(summaries, f"{'STAGE' if staging else 'DEPLOY'} RECAP {did}")
    rollout_doc = None
    if rolling and not staging:
        rollout_doc = roll.doc(list(host_of), "completed" if status == "done" else status)
    if rollout_doc is not None:
        session.reporter.rollout(rollout_doc)
    if session.json_out:
        doc = _manifest(did, session, source, outcomes, job_of, roll if rolling else None)
        errored = _errored(outcomes)
        if errored:
            doc["errored"] = errored
        if rollout_doc is not None:
            doc["rollout"] = rollout_doc
        if not run and planned.batched:
            doc["schedule"] = planned.to_json()  # rustle-exec runs it batch by batch
            if any(st.local for st in planned.stages) and plan is not None:  # which rustle-exec refuses
                from .bridge.policy import controller_tasks
                from .phases import off_host_tasks

                doc["off_host_tasks"] = off_host_tasks(plan, controller_tasks(plan))
        dump_json(doc)
    else:
        if staging:
            session.reporter.line(f"staged: rustle-deploy --promote {did} activates and runs it")
        left = [n for n in host_of if n not in roll.outcomes]
        # a resumed rollout does not run again the hosts that had finished before it
        before = sum(1 for n in left if rolling and roll.state_of(n) == "updated")
        session.reporter.line(f"deployment {did}: {len(outcomes)} host(s), {sum(s.is_failure for s in summaries)} failed"
                              + (f", {len(left) - before} not reached" if len(left) > before else "")
                              + (f", {before} finished before the resume" if before else ""))
    return _exit_code(failed, outcomes)


def recorded_sources(given: Any) -> str | list[str] | None:
    """The inventory sources as the history and the manifest keep them, absolute (a later
    command may run in another directory): one source as a string, as records made before
    several sources were read hold it; several as a list (``inventory_sources`` reads both)."""
    sources = absolute_sources(inventory_sources(given))
    if not sources:
        return None
    return sources[0] if len(sources) == 1 else sources


def _context(session: Session) -> dict[str, Any]:
    """How this command reaches its hosts, for a later command that must ask them
    (reconcile.py): the inventory's path and the -u / --private-key given."""
    key = session.opts.get("private_key")
    return {"inventory": recorded_sources(session.opts.get("inventory")), "user": session.opts.get("user"),
            # absolute: the later command (the web UI's rollback) may run in another directory
            "private_key": os.path.abspath(os.path.expanduser(key)) if key else None}


# What a later ``--resume`` needs of this command's flags (resume_spec): paths made absolute,
# values kept as given. Anything that may hold a secret is never kept (see _WITHHELD).
_RESUME_PATHS = {"private_key": "--private-key", "config": "--config", "cache_dir": "--cache-dir"}
_RESUME_VALUES = {"user": "-u", "tags": "--tags", "skip_tags": "--skip-tags", "become_user": "--become-user",
                  "become_method": "--become-method", "ssh_client": "--ssh-client", "timeout": "--timeout",
                  "parallel": "--parallel", "health_check": "--health-check", "health_url": "--health-url",
                  "health_retries": "--health-retries", "health_interval": "--health-interval",
                  "health_timeout": "--health-timeout", "start_at_task": "--start-at-task"}
_RESUME_SWITCHES = {"check": "--check", "diff": "--diff", "become": "--become", "verify": "--verify"}


def resume_spec(opts: dict[str, Any]) -> dict[str, Any]:
    """How to resume this deployment's rollout without its terminal (the web UI's resume):
    the working directory and the arguments of ``rustle-deploy ARGS --resume ID``, and what
    was given but is not kept because it may be a secret (``withheld``: the UI then shows the
    command to type instead). Extra variables are kept only as ``-e @FILE`` paths, never values."""
    argv: list[str] = []
    withheld: list[str] = []
    plan = opts.get("execution_plan")
    if not plan or plan == "-":
        withheld.append("the plan or playbook, read from standard input")
    else:
        argv.append(os.path.abspath(os.path.expanduser(plan)))
    for source in absolute_sources(inventory_sources(opts.get("inventory"))):
        argv += ["-i", source]
    for key, flag in _RESUME_PATHS.items():
        if opts.get(key):
            argv += [flag, os.path.abspath(os.path.expanduser(str(opts[key])))]
    for folder in opts.get("files_dir") or ():
        argv += ["--files-dir", os.path.abspath(os.path.expanduser(folder))]
    for key, flag in _RESUME_VALUES.items():
        if opts.get(key) not in (None, ""):
            argv += [flag, str(opts[key])]
    if opts.get("format_") not in (None, "auto"):
        argv += ["--format", "hybrid" if opts.get("hybrid") else str(opts["format_"])]
    for key, flag in _RESUME_SWITCHES.items():
        if opts.get(key):
            argv.append(flag)
    for given in opts.get("extra_vars") or ():
        if str(given).startswith("@"):
            argv += ["-e", "@" + os.path.abspath(os.path.expanduser(str(given)[1:]))]
        else:
            withheld.append("-e with values on the command line (the history never keeps them: they may be secrets)")
    if opts.get("notify"):
        withheld.append("--notify URLs (a webhook URL may be a secret; config.toml's [notify] is read again)")
    if opts.get("ask_become_pass"):
        withheld.append("-K (the become password is asked on a terminal)")
    return {"cwd": os.getcwd(), "argv": [*argv, "--run"], "withheld": sorted(set(withheld))}


def _manifest(
    did: str, session: Session, source: str | None, outcomes: list[HostOutcome], job_of: dict[str, HostJob],
    roll: _Rollout | None = None,
) -> dict[str, Any]:
    never = [n for n in roll.left if roll.state_of(n) == "not_reached"] if roll is not None else []
    def job(name: str) -> HostJob | None:
        return job_of.get(name)  # None: a host whose only phases ran elsewhere (run_once, delegated)

    return {
        "kind": MANIFEST_KIND,
        "version": 1,
        "deployment_id": did,
        "plan": source,
        "inventory": recorded_sources(session.opts.get("inventory")),
        # -u / --private-key of the deploying command, so rustle-exec reaches hosts the same way
        "connection": {"user": session.opts.get("user"), "private_key": session.opts.get("private_key")},
        "state_db": str(session.settings.state_db),
        "hosts": [
            {
                "name": o.host,
                "ok": o.error is None,
                "status": _outcome_status(o),
                "binary_name": getattr(job(o.host), "binary_name", None),
                "sha256": o.sha256 or getattr(job(o.host), "sha256", None),
                "previous_sha256": o.previous_sha256,
                "uploaded": o.uploaded,
                "uploaded_bytes": o.uploaded_bytes if o.uploaded else 0,
                "repaired": _repaired(o),
                "remote_dir": getattr(getattr(job(o.host), "host", None), "remote_dir", None),
                "error": str(o.error) if o.error else None,
                "recap": o.recap,
                "run_exit": o.run_exit,
                "round_trips": o.round_trips,
                "tasks": task_docs(o.events),
                "platform": {k: (o.agent or {}).get(k) for k in ("system", "machine", "python", "python_path")},
                **({"batch": roll.batch_of.get(o.host), "rollout": roll.state_of(o.host)} if roll is not None else {}),
            }
            for o in outcomes
        ] + [
            {"name": n, "ok": False, "status": "not_reached", "batch": None, "rollout": "not_reached",
             "error": f"not reached: the rollout stopped after batch {roll.stopped_after}/{roll.total}"
                      if roll is not None and roll.stopped_after is not None else "not reached"}
            for n in never
        ],
    }


def deploy(
    session: Session, plan: Plan, hosts: list[Host], artifacts: list[Artifact], early: EarlyStarts | None = None,
    schedule: Schedule | None = None,
) -> int:
    by_host = releases_apart(hosts, {name: a for a in artifacts for name in a.hosts})
    return _deploy_jobs(session, plan, hosts, by_host, plan.source, plan.sha256, early, schedule, compiled=True)


def resume(session: Session, plan: Plan, hosts: list[Host], artifacts: list[Artifact], deployment_id: str) -> int:
    """Go on with a stopped or interrupted rollout: the hosts it has not finished, the stages
    each has not run, in the order its recorded schedule says (docs/rollouts.md)."""
    with History(session.settings.state_db) as history:
        dep = history.get(deployment_id, op="deploy")
    if dep is None:
        raise UsageError(f"no deployment {deployment_id!r} in {session.settings.state_db}", "see --list-deployments")
    if dep.rollout is None:
        raise UsageError(f"deployment {dep.id} did not run in batches: there is nothing to resume",
                         "deploy again; hosts that already run it change nothing")
    if dep.rollout.state == "completed":
        raise UsageError(f"deployment {dep.id} completed its rollout: there is nothing to resume", "see --list-deployments")
    if dep.rollout.state == "staged":
        raise UsageError(f"deployment {dep.id} is staged, not started", f"rustle-deploy --promote {dep.id} runs it")
    if dep.rollout.controller_alive():
        raise UsageError(f"deployment {dep.id} is still running (process {dep.rollout.controller})",
                         "wait for it, or interrupt it (Ctrl-C), then resume")
    if dep.plan_sha256 != plan.sha256:
        raise UsageError(f"{plan.source} is not the plan deployment {dep.id} ran (sha256 {(dep.plan_sha256 or '?')[:12]}, "
                         f"this one {plan.sha256[:12]})", "resume with the same plan, or start a new deployment")
    records = {r.host: r for r in dep.hosts}
    names = set(dep.rollout.hosts)
    chosen = [h for h in hosts if h.name in names]
    by_host = releases_apart(chosen, {name: a for a in artifacts for name in a.hosts})
    missing = sorted(names - {h.name for h in chosen})
    if missing:
        raise UsageError(f"hosts of deployment {dep.id} that this plan and inventory do not give: {', '.join(missing[:20])}",
                         "pass the inventory the deployment used with -i")
    schedule = Schedule.from_json(dep.rollout.schedule)
    # Hosts whose release is uncertain are asked first, as after an interrupt: those a Ctrl-C
    # cut, and, when the controller was lost, those of the batch it was running.
    in_flight: set[str] = set()
    if dep.rollout.state == "running":
        number = 0
        for stage in schedule.stages:
            for batch in stage.batches:
                number += 1
                if number == dep.rollout.done_batches + 1:
                    in_flight.update(batch)
    settled = ("activated", "failed", "rolled_back", "unchanged")
    unsure = [n for n, (_, st) in dep.rollout.hosts.items()
              if (st == "interrupted" or (st == "pending" and n in in_flight))
              and (n not in records or records[n].status not in settled)]
    if unsure:
        host_of = {h.name: h for h in chosen}
        with History(session.settings.state_db) as history:
            settle(session, history, dep.id, [
                HostJob(host=host_of[n], op="deploy", sha256=by_host[n].sha256, binary_name=by_host[n].binary_name,
                        deployment_id=dep.id) for n in unsure])
            again = history.get(dep.id, op="deploy")
        assert again is not None
        records = {r.host: r for r in again.hosts}
    activated = frozenset(n for n, r in records.items() if r.status == "activated")
    changed = sorted(n for n in activated if records[n].sha256 != by_host[n].sha256)
    if changed:
        raise UsageError(f"the artifacts built now differ from those deployment {dep.id} activated on "
                         f"{', '.join(changed[:10])} (another rustle-deploy version?)",
                         "start a new deployment with this plan")
    resumed = _Resumed(
        deployment_id=dep.id, stages_done=dict(dep.rollout.stages_done),
        states={n: st for n, (_, st) in dep.rollout.hosts.items()},
        batch_of={n: b for n, (b, _) in dep.rollout.hosts.items() if b is not None},
        activated=activated, previous={n: records[n].previous_sha256 for n in activated},
    )
    return _deploy_jobs(session, plan, chosen, by_host, plan.source, plan.sha256, None, schedule, resumed,
                        compiled=True)


def promote(session: Session, deployment_id: str | None) -> int:
    """Activate and run a staged deployment (``--stage``) in its batches, as the same deployment."""
    from .compiler.build import Artifact as Art
    from .inventory import implicit_localhost

    with History(session.settings.state_db) as history:
        dep = history.get(deployment_id, op="deploy") if deployment_id else history.latest(status="staged")
    if dep is None:
        raise UsageError(f"no deployment {deployment_id!r} in {session.settings.state_db}" if deployment_id
                         else f"no staged deployment in {session.settings.state_db}",
                         "stage one first: rustle-deploy PLAN -i INVENTORY --stage")
    if dep.status != "staged" or dep.rollout is None:
        raise UsageError(f"deployment {dep.id} is {dep.status}, not staged: there is nothing to promote",
                         "see --list-deployments")
    staged = [r for r in dep.hosts if r.status == "staged"]
    if not staged:
        raise UsageError(f"deployment {dep.id} staged its release on no host", "stage again")
    infos = dep.rollout.schedule.get("artifacts") or {}
    cache = session.settings.cache_dir / "artifacts"
    arts: dict[str, Art] = {}
    for r in staged:
        info = infos.get(r.sha256 or "")
        if info is None or not r.sha256:
            raise UsageError(f"deployment {dep.id}: no record of what was staged on {r.host}", "stage again")
        if r.sha256 not in arts:
            arts[r.sha256] = Art(
                sha256=r.sha256, path=cache / f"{r.sha256}.pyz", size=int(info["size"]),
                binary_name=str(info["binary_name"]), target=str(info.get("target") or ""),
                hosts=tuple(x.host for x in staged if x.sha256 == r.sha256), files=(), families=(),
                with_jinja=False, cached=True, bytecode_tag=info.get("bytecode_tag"), runner=None,
            )
    inv = session.inventory() if session.opts.get("inventory") else implicit_localhost()
    hosts = _hosts_by_name(session, inv, [r.host for r in staged])
    by_host = releases_apart(hosts, {r.host: arts[r.sha256 or ""] for r in staged})
    planned = Schedule.from_json(dep.rollout.schedule)
    keep = set(by_host)
    schedule = Schedule(tuple(
        s for s in (replace(st, batches=tuple(b for b in (tuple(n for n in b if n in keep) for b in st.batches) if b))
                    for st in planned.stages) if s.batches))
    if session.opts.get("canary"):
        schedule = with_canary(schedule, canary_count(session.opts["canary"].strip(), len(hosts)))
    session.opts = {**session.opts, "run_": True}  # promoting is activating and running
    resumed = _Resumed(deployment_id=dep.id, stages_done={}, states={}, batch_of={}, activated=frozenset(),
                       previous={})
    return _deploy_jobs(session, None, hosts, by_host, dep.plan_source, dep.plan_sha256, None, schedule, resumed)


def deploy_only(session: Session) -> int:
    from .compiler.build import Artifact as Art

    out = session.settings.output_dir
    path = out / "manifest.json"
    by_host: dict[str, Any] = {}
    try:
        doc = json.loads(path.read_text())
        for entry in doc["artifacts"]:
            file = out / str(entry["file"])
            if not file.is_file() or file.parent != out:
                raise UsageError(f"{file}: listed in {path} but missing", "compile again with --compile-only")
            art = Art(
                sha256=str(entry["sha256"]), path=file, size=file.stat().st_size, binary_name=str(entry["binary_name"]),
                target=str(entry["target"]), hosts=tuple(str(h) for h in entry["hosts"]), files=(), families=(),
                with_jinja=False, cached=True, bytecode_tag=entry.get("bytecode_tag"),
                runner=entry.get("runner"),
            )
            for name in art.hosts:
                by_host[name] = art
    except FileNotFoundError:
        raise UsageError(f"{path}: no compiled artifacts here", "run with --compile-only first, or pass -o DIR") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a manifest written by --compile-only ({exc!r})", "compile again with --compile-only") from exc
    inv = session.inventory()
    hosts = inv.resolve(list(by_host))
    if session.opts.get("limit"):
        allowed = {h.name for h in inv.select(session.opts["limit"])}
        hosts = [h for h in hosts if h.name in allowed]
        if not hosts:
            raise UsageError(
                f"--limit {session.opts['limit']!r} matches none of the hosts in {path}",
                "hosts there: " + ", ".join(sorted(by_host)[:20]),
            )
    hosts = [session.with_cli_connection(h) for h in hosts]
    check_remote_dirs(hosts, inv.source)
    check_connections(hosts, inv.source)
    try:
        specs = [PlaySpec.from_json(p) for p in doc.get("plays") or []]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: its plays are not as --compile-only writes them ({exc!r})",
                         "compile again with --compile-only") from exc
    plan_schedule = make_schedule(specs, [h.name for h in hosts]) if specs else None
    if session.opts.get("canary") and session.opts.get("run_"):
        plan_schedule = with_canary(plan_schedule or Schedule.single(h.name for h in hosts),
                                    canary_count(session.opts["canary"].strip(), len(hosts)))
    if plan_schedule is not None and plan_schedule.staged and session.opts.get("run_") and any(
            a.runner for a in by_host.values()):
        raise UsageError(
            f"{path}: native artifacts cannot run this plan: its plays run in separate stages",
            "compile with --format pyz or auto (the default)",
        )
    by_host = releases_apart(hosts, by_host)
    return _deploy_jobs(session, None, hosts, by_host, str(path), doc.get("plan_sha256"), schedule=plan_schedule)


def _simple_op(
    session: Session, op: str, jobs_for: Callable[[str], list[HostJob]], target_id: str | None, title: str,
    not_attempted: Sequence[HostSummary] = (),
    detail: Callable[[HostOutcome, HostJob], dict[str, Any]] | None = None,
) -> int:
    """Fan ``op`` out, record each host in the history, print the recap (and JSON).

    ``detail`` adds keys to each host's JSON entry; its ``notes`` are printed in text too.
    """
    with History(session.settings.state_db) as history:
        did = history.begin(op, target_id=target_id, context=_context(session), user=session.opts.get("actor"))
        if session.trace is not None:
            session.trace.deployment(did, op, None)
        jobs = through_runner(jobs_for(did), history, session.settings.cache_dir)
        job_of = {j.host.name: j for j in jobs}
        history.pending(did, [(j.host.name, j.binary_name or None, j.sha256, j.host.remote_dir) for j in jobs])
        started = time.monotonic()
        notifier = _notifier(session)
        if notifier is not None:
            notifier.send(start_doc(did, op, None, session.opts.get("actor") or login_name(), list(job_of)))
        ok: dict[str, bool] = {}

        def on_outcome(outcome: HostOutcome) -> None:
            job = job_of[outcome.host]
            history.record_host(
                did, outcome.host, "failed" if outcome.error else op,
                binary_name=job.binary_name or None, sha256=outcome.sha256,
                previous_sha256=outcome.previous_sha256,
                remote_dir=job.host.remote_dir, error=str(outcome.error) if outcome.error else None,
                duration=outcome.duration,
            )
            ok[outcome.host] = outcome.error is None
            if notifier is not None:
                notifier.send(host_doc(did, op, outcome.host, "failed" if outcome.error else op, outcome.error is None,
                                       str(outcome.error) if outcome.error else None, None, outcome.duration))

        status = "interrupted"
        try:
            outcomes = _fan_out(jobs, session.settings, None, session.reporter, on_outcome, op, trace=session.trace)
            status = "done"
        finally:
            history.finish(did, status)
            _notify_end(session, notifier, end_doc(did, op, status, ok, time.monotonic() - started))
    details = {o.host: detail(o, job_of[o.host]) if detail else {} for o in outcomes}
    summaries = [_summary(o) for o in outcomes] + list(not_attempted)
    session.reporter.stop()
    for o in outcomes:
        for note in details[o.host].get("notes", ()):
            session.reporter.line(f"note: {o.host}: {note}")
    session.reporter.recap(summaries, f"{title} {did}")
    if session.json_out:
        dump_json({
            "kind": f"rustle-deploy-{op}", "id": did, "of": target_id,
            **({"dry_run": False} if op == "cleanup" else {}),
            "hosts": [{"name": o.host, "ok": o.error is None, "sha256": o.sha256, "previous_sha256": o.previous_sha256,
                       "error": str(o.error) if o.error else None, **details[o.host]} for o in outcomes]
            + [{"name": s.name, "ok": False, "error": s.error} for s in not_attempted],
        })
    return 1 if any(s.is_failure for s in summaries) else 0


def rollback(session: Session, deployment_id: str | None, only: Sequence[str] | None = None) -> int:
    """Restore, on each host of deployment ``deployment_id`` (or of ``only`` of them), the
    release that was current before it."""
    inv = session.inventory() if session.opts.get("inventory") else None
    with History(session.settings.state_db) as history:
        dep = history.get(deployment_id, op="deploy")
    if dep is not None and any(r.status == "pending" for r in dep.hosts):
        # left running by a controller that is gone: what did its hosts record?
        known = inv.hosts if inv is not None else {}
        given = [session.with_cli_connection(known[r.host]) for r in dep.hosts if r.host in known]
        settle_orphans(session, given, deployment_id=dep.id)
    with History(session.settings.state_db) as history:
        dep = history.get(deployment_id, op="deploy")
        cleaned = {} if dep is None else {
            r.host: history.cleaned_since(r.host, r.remote_dir, dep.created_at) for r in dep.hosts
        }
    if dep is not None and not dep.hosts:
        raise UsageError(f"deployment {dep.id} reached no host: nothing to roll back", "see --list-deployments")
    if dep is None:
        raise UsageError(
            f"no deployment {deployment_id!r} in {session.settings.state_db}" if deployment_id else f"no deployment recorded in {session.settings.state_db}",
            "see --list-deployments",
        )
    records = {r.host: r for r in dep.hosts if only is None or r.host in only}
    unknown = sorted(set(only or ()) - set(records))
    if unknown:
        raise UsageError(f"deployment {dep.id} did not reach {', '.join(unknown)}", "see --list-deployments")
    hosts = _hosts_by_name(session, inv, list(records))

    def reason(name: str) -> str | None:
        return rollback_refusal(dep.id, records[name], cleaned.get(name))

    def jobs_for(did: str) -> list[HostJob]:
        return [
            HostJob(
                host=h, op="rollback", artifact=None, sha256=records[h.name].sha256, size=0,
                binary_name=records[h.name].binary_name or "", deployment_id=did, verify=False, run=None,
                rollback_to=records[h.name].previous_sha256,
            )
            for h in hosts
            if reason(h.name) is None
        ]

    refused = [
        HostSummary(name=name, error=f"cannot be rolled back: {why}")
        for name in records
        if (why := reason(name)) is not None
    ]
    return _simple_op(session, "rollback", jobs_for, dep.id, "ROLLBACK RECAP", refused)


def rollback_refusal(deployment_id: str, record: HostRecord, cleaned_by: str | None) -> str | None:
    """Why ``--rollback`` cannot restore the release before ``deployment_id`` on this host,
    None when it can; ``cleaned_by``: the cleanup recorded there since, if any."""
    if cleaned_by:
        return f"cleanup {cleaned_by} removed what deployment {deployment_id} put there since"
    if record.status not in ("activated", "unchanged"):
        return f"deployment {deployment_id} never activated a release there ({record.error or record.status})"
    if not record.previous_sha256:
        return f"nothing was current there before deployment {deployment_id}; use --cleanup to remove it"
    return None


def cleanup(session: Session) -> int:
    """Remove what rustle-deploy made on the inventory's hosts, leave and report the rest;
    with ``--dry-run`` only show, per host, what would be removed and left."""
    if not session.opts.get("inventory"):
        raise UsageError("--cleanup needs an inventory", "rustle-deploy --cleanup -i inventory.yml")
    inv = session.inventory()
    hosts = inv.select(session.opts.get("limit") or "all")
    hosts = [session.with_cli_connection(h) for h in hosts]
    check_remote_dirs(hosts, inv.source)
    check_connections(hosts, inv.source)
    if session.opts.get("dry_run"):
        return _cleanup_dry_run(session, hosts)
    settle_orphans(session, hosts)

    def jobs_for(did: str) -> list[HostJob]:
        return [HostJob(host=h, op="cleanup", deployment_id=did) for h in hosts]

    return _simple_op(session, "cleanup", jobs_for, None, "CLEANUP RECAP", detail=_cleanup_detail)


def _cleanup_notes(agent: dict[str, Any]) -> list[str]:
    """What a host's cleanup left (or would leave), for the user to decide about."""
    dry = bool(agent.get("dry_run"))
    root = agent.get("remote_dir")
    left = [e for e in agent.get("left") or [] if isinstance(e, dict)]
    foreign = [e for e in left if not e.get("ours")]
    kept = [str(e.get("path")) for e in left if e.get("ours")]
    notes = []
    if foreign:
        notes.append(
            f"{'would leave' if dry else 'left'} {len(foreign)} {'entry' if len(foreign) == 1 else 'entries'} "
            "rustle-deploy did not make "
            f"under {root}: " + ", ".join(f"{e.get('path')} ({e.get('kind')})" for e in foreign)
        )
    if agent.get("remote_dir_kept") and not agent.get("remote_dir_removed"):
        also = f" and {', '.join(kept)}" if kept else ""
        notes.append(f"{'would keep' if dry else 'kept'} {root}{also}: {agent['remote_dir_kept']}")
    return notes


def _cleanup_detail(outcome: HostOutcome, job: HostJob) -> dict[str, Any]:
    agent = outcome.agent or {}
    return {
        "remote_dir": agent.get("remote_dir") or job.host.remote_dir,
        "removed": list(agent.get("removed") or []),
        "left": list(agent.get("left") or []),
        "remote_dir_removed": bool(agent.get("remote_dir_removed")),
        "notes": _cleanup_notes(agent) if outcome.agent is not None else [],
    }


def _cleanup_dry_run(session: Session, hosts: list[Host]) -> int:
    """Ask each host what a cleanup would remove and leave; change nothing, record nothing."""
    jobs = [HostJob(host=h, op="cleanup", dry_run=True) for h in hosts]
    if session.settings.state_db.exists():  # through the runner where a host has one; no history made
        with History(session.settings.state_db) as history:
            jobs = through_runner(jobs, history, session.settings.cache_dir)
    job_of = {j.host.name: j for j in jobs}
    outcomes = _fan_out(jobs, session.settings, None, session.reporter, lambda o: None, "cleanup --dry-run")
    entries = []
    for o in outcomes:
        d = _cleanup_detail(o, job_of[o.host])
        entries.append({
            "name": o.host, "ok": o.error is None, "error": str(o.error) if o.error else None,
            "remote_dir": d["remote_dir"], "would_remove": d["removed"], "would_leave": d["left"],
            "would_remove_remote_dir": d["remote_dir_removed"],
            "would_keep_remote_dir": (o.agent or {}).get("remote_dir_kept"), "notes": d["notes"],
        })
    if session.json_out:
        dump_json({"kind": "rustle-deploy-cleanup", "dry_run": True, "id": None, "hosts": entries})
    else:
        r = session.reporter
        r.line("DRY RUN: nothing was removed; --cleanup would do this")
        for e in entries:
            r.line(f"{e['name']}: {e['remote_dir']}")
            if e["error"]:
                r.line(f"  FAILED: {e['error']}".replace("\n", " — "))
                continue
            for path in e["would_remove"]:
                r.line(f"  would remove {path}")
            for item in e["would_leave"]:
                r.line(f"  would leave {item['path']} ({item['kind']}): {item['why']}")
            if e["would_remove_remote_dir"]:
                r.line(f"  would remove the directory {e['remote_dir']} itself")
            elif e["would_keep_remote_dir"]:
                r.line(f"  would keep the directory {e['remote_dir']}: {e['would_keep_remote_dir']}")
            elif not e["would_remove"] and not e["would_leave"]:
                r.line("  nothing there")
    return 1 if any(not e["ok"] for e in entries) else 0


def _hosts_by_name(session: Session, inv: Any, names: list[str]) -> list[Host]:
    from .inventory import implicit_localhost

    inventory = inv or implicit_localhost()
    try:
        hosts = inventory.resolve(names)
    except Exception as exc:  # noqa: BLE001 - re-raised as a usage error with the hint
        raise UsageError(str(exc), "pass the inventory the deployment used with -i") from exc
    check_remote_dirs(hosts, inventory.source)
    hosts = [session.with_cli_connection(h) for h in hosts]
    check_connections(hosts, inventory.source)
    return hosts


def exec_manifest(manifest: Any, name: str, settings: Settings, opts: dict[str, Any]) -> int:
    from .ansible_cfg import load_ansible_config
    from .inventory import implicit_localhost, load_inventory
    from .pipeline import with_connection
    from .report import Reporter

    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        raise UsageError(f"{name}: not a rustle-deploy deployment manifest", "rustle-exec reads what 'rustle-deploy ... --output json' prints")
    json_out = opts.get("output") == "json"
    reporter = Reporter(stream=sys.stderr if json_out else sys.stdout, verbosity=int(opts.get("verbose") or 0),
                        diff=bool(opts.get("diff")),
                        deprecations=load_ansible_config().get("deprecation_warnings") is not False)
    sources = inventory_sources(manifest.get("inventory"))
    inv = load_inventory(sources) if sources else implicit_localhost()
    entries = [h for h in manifest.get("hosts", []) if isinstance(h, dict)]
    not_deployed = [h for h in entries if not h.get("ok")]
    for h in not_deployed:
        reporter.line(f"{h.get('name')}: skipped: not deployed ({h.get('error')})".replace("\n", " — "))
    run_id = f"r-{secrets.token_hex(6)}"
    entry_of = {str(h["name"]): h for h in entries if h.get("ok")}
    hosts = inv.resolve(list(entry_of)) if entry_of else []
    connection = manifest.get("connection") or {}
    configured = load_ansible_config().become_config()  # the connection-level become's (AgentLaunch)
    hosts = [replace(with_connection(h, connection.get("user"), connection.get("private_key")),
                     become_config=configured) for h in hosts]
    check_remote_dirs(hosts, inv.source)
    check_connections(hosts, inv.source)
    host_of = {h.name: h for h in hosts}
    did = str(manifest.get("deployment_id"))
    try:
        # A deployment of a plan that runs in batches hands its schedule over (docs/rollouts.md).
        planned = Schedule.from_json(manifest["schedule"]) if manifest.get("schedule") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{name}: its schedule is not as rustle-deploy writes it ({exc!r})",
                         "deploy again, then pipe the new manifest") from exc
    if planned is not None:
        schedule = Schedule(tuple(
            replace(st, batches=tuple(b for b in (tuple(n for n in b if n in host_of) for b in st.batches) if b))
            for st in planned.stages))
    else:
        schedule = Schedule.single(host_of)
    if any(st.local for st in schedule.stages):
        tasks = [str(t) for t in manifest.get("off_host_tasks") or ()]
        named = (f"task {tasks[0]}" + (f" and {len(tasks) - 1} more" if len(tasks) > 1 else "")) if tasks else (
            "the tasks of " + next(st.label for st in schedule.stages if st.local))
        raise UsageError(f"{name}: rustle-exec cannot run {named}: it runs on the controller or "
                         "on another host (delegate_to, connection: local, a task's remote_user/port, an "
                         "action plugin run by ansible-core), which needs the compiled artifacts and the "
                         "inventory here, and rustle-exec only runs what each host holds",
                         "run it with rustle-deploy PLAN -i INVENTORY --run")
    roll = _Rollout(schedule)
    rolling = schedule.batched
    reporter.names = _shown_names(schedule, None)
    state_db = Path(manifest.get("state_db") or settings.state_db)
    with History(state_db) as history:

        phased = _Phased()

        def fan_out(stage: Stage, number: int, names: list[str]) -> list[HostOutcome]:
            if not stage.once:
                outcomes = run_hosts(stage, number, names)
                phased.after(stage, outcomes)
                return outcomes
            first, others = phased.run_once(stage, names, lambda some: run_hosts(stage, number, some))
            for o in others:
                roll.absorb(o, number)
            return first + others

        def run_hosts(stage: Stage, number: int, names: list[str]) -> list[HostOutcome]:
            options = _run_options(opts, run_id)
            if schedule.staged:
                options = replace(options, plays=stage.plays)
            jobs = [
                HostJob(host=host_of[n], op="run", artifact=None, sha256=str(entry_of[n]["sha256"]), size=0,
                        binary_name=str(entry_of[n]["binary_name"]), deployment_id=did, verify=False,
                        run=replace(options, carry=_carry_id(f"{did}-{run_id}", n) if schedule.staged else None,
                                    inject=phased.inject(n, stage), share=phased.share(stage))
                        if stage.phase is None else replace(
                            options, phase=stage.phase, inject=phased.inject(n, stage),
                            share=phased.share(stage), carry=_carry_id(f"{did}-{run_id}", n)))
                for n in names
            ]
            if not schedule.staged and stage.phase is None:  # what the runner's agent runs (docs/native.md)
                jobs = through_runner(jobs, history, settings.cache_dir)

            def on_outcome(outcome: HostOutcome) -> None:
                merged = roll.absorb(phased.take_shared(outcome), number)
                with history.together():
                    history.record_run(did, outcome.host, run_id, merged.run_exit, merged.recap)
                    history.record_tasks(did, outcome.host, run_id, merged.events)

            what = "run" + (f" batch {number}/{roll.total} ({stage.label}, {describe_serial(stage.serial)})"
                            if rolling else "")
            return _fan_out(jobs, settings, None, reporter, on_outcome, what, throttle=stage.throttle)

        roll.run(fan_out, joins=phased.joins, stopped=phased.stopped)
        for name in reporter.names.settle():  # each result named by the task's first host
            if name in roll.outcomes:
                history.record_tasks(did, name, run_id, roll.outcomes[name].events)
    outcomes = [roll.outcomes[n] for n in host_of if n in roll.outcomes]
    summaries = [_summary(o) for o in outcomes]
    for h in not_deployed:
        summaries.append(HostSummary(name=str(h.get("name")), error=f"not deployed: {h.get('error')}"))
    reporter.recap(summaries, "PLAY RECAP")
    rollout_doc = roll.doc(list(host_of), "stopped" if roll.stopped_after is not None else "completed") if rolling else None
    if rollout_doc is not None:
        reporter.rollout(rollout_doc)
    if json_out:
        dump_json({"kind": "rustle-exec-result", "run_id": run_id, "hosts": [
            {"name": o.host, "ok": o.error is None and o.run_exit == 0, "recap": o.recap, "exit": o.run_exit,
             "error": str(o.error) if o.error else None, "tasks": task_docs(o.events),
             **({"batch": roll.batch_of.get(o.host), "rollout": roll.state_of(o.host)} if rolling else {})}
            for o in outcomes], **({"rollout": rollout_doc} if rollout_doc is not None else {})})
    return _exit_code(any(s.is_failure for s in summaries) or roll.stopped_after is not None, outcomes)
