"""The UI's actions, each recorded in the history with who asked for it: roll back a
deployment (or one of its hosts) through the command line's own code (fleetops.rollback),
stop a running deployment by interrupting the command that runs it, as Ctrl-C does, and
resume a stopped rollout by starting ``rustle-deploy ... --resume ID`` as the deployment
recorded it (fleetops.resume_spec).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RustleError
from ..fleetops import rollback, rollback_refusal
from ..report import Reporter
from ..state import History, HostRecord, owner_alive
from .data import HistoryReader


@dataclass(frozen=True)
class RollbackStep:
    """What a rollback would do on one host: restore ``to`` over ``current``, or why it cannot."""

    host: str
    current: str | None
    to: str | None
    refused: str | None


def rollback_preview(reader: HistoryReader, deployment_id: str, only: str | None) -> list[RollbackStep]:
    """Per host of the deployment (or just ``only``), what ``--rollback`` would do, from the
    history: the same refusals as the command line's (fleetops.rollback_refusal)."""
    dep = reader.deployment(deployment_id)
    if dep is None:
        return []
    steps = []
    for h in reader.hosts(deployment_id):
        if only and h.host != only:
            continue
        record = HostRecord(h.host, h.status, h.binary_name, h.sha256, h.previous_sha256, h.remote_dir, h.error)
        cleaned = reader.cleaned_since(h.host, h.remote_dir, dep.created_at)
        steps.append(RollbackStep(h.host, h.sha256, h.previous_sha256, rollback_refusal(deployment_id, record, cleaned)))
    return steps


def stop_target(reader: HistoryReader, deployment_id: str) -> tuple[int | None, str]:
    """The pid of the command running ``deployment_id`` and what it is, or None and why it
    cannot be stopped from here."""
    owner = reader.owner(deployment_id)
    if owner is None:
        return None, "it is not running"
    try:
        who = json.loads(owner)
        pid = int(who["pid"])
    except (ValueError, KeyError, TypeError):
        return None, "the history does not say which process runs it"
    if who.get("host") != socket.gethostname():
        return None, f"it runs on {who.get('host')}, not on this machine"
    if not owner_alive(owner):
        return None, "the process that ran it is gone (the next command reconciles it)"
    return pid, f"process {pid} on {who.get('host')}"


def stop(state_db: Path, reader: HistoryReader, deployment_id: str, actor: str) -> tuple[str | None, str]:
    """Interrupt the command running ``deployment_id`` as Ctrl-C would (SIGINT): it records
    every host as it stands and the deployment as interrupted; ``--resume ID`` goes on with a
    rollout. Recorded as a ``stop`` of the deployment, with who asked. Returns (its id, what
    happened)."""
    pid, what = stop_target(reader, deployment_id)
    if pid is None:
        return None, f"deployment {deployment_id} cannot be stopped: {what}"
    with History(state_db) as history:
        sid = history.begin("stop", target_id=deployment_id, user=actor)
        try:
            os.kill(pid, signal.SIGINT)
            outcome = f"sent an interrupt (SIGINT) to {what}"
            history.finish(sid, "done")
        except OSError as exc:
            outcome = f"could not interrupt {what}: {exc.strerror}"
            history.finish(sid, "failed")
    return sid, outcome


@dataclass(frozen=True)
class ActionResult:
    exit_code: int
    output: str


def run_rollback(deployment_id: str, context: dict[str, Any], only: list[str] | None, actor: str,
                 config: str | None) -> ActionResult:
    """Roll ``deployment_id`` back (on ``only`` of its hosts), reaching the hosts as the
    deployment did (its recorded inventory, -u and --private-key); blocking, so call it from a
    worker thread. The recap the command line would print is returned as ``output``."""
    from ..pipeline import Session

    opts: dict[str, Any] = {
        "rollback": deployment_id, "inventory": context.get("inventory"), "user": context.get("user"),
        "private_key": context.get("private_key"), "config": config, "output": "text", "actor": actor,
    }
    out = io.StringIO()
    try:
        session = Session.from_options(opts)
        session.reporter = Reporter(stream=out, verbosity=0, diff=False)
        code = rollback(session, deployment_id, only)
    except RustleError as exc:
        out.write(f"error: {exc}\n")
        code = exc.exit_code
    return ActionResult(code, out.getvalue())


@dataclass(frozen=True)
class ResumePlan:
    """What resuming a rollout from the UI would do: the command, in ``cwd``, and the hosts it
    goes on with; ``refused`` says why the UI cannot (then ``command`` is what to type)."""

    refused: str | None
    command: list[str]
    cwd: str | None
    withheld: list[str]
    left: list[tuple[str, int | None, str]]  # (host, batch, state) of the hosts not finished
    describe: str

    @property
    def shown(self) -> str:
        return shlex.join(["rustle-deploy", *self.command])


def resume_plan(reader: HistoryReader, deployment_id: str) -> ResumePlan | None:
    """None when ``deployment_id`` is not a deployment that ran in batches."""
    dep = reader.deployment(deployment_id)
    rollout = reader.rollout(deployment_id) if dep is not None and dep.op == "deploy" else None
    if dep is None or rollout is None:
        return None
    spec = dep.context.get("resume")
    left = sorted(((h, b, st) for h, (b, st) in rollout.hosts.items() if st not in ("updated", "completed")),
                  key=lambda x: (x[1] is None, x[1] or 0, x[0]))
    refused = None
    if isinstance(spec, dict):
        command = [*map(str, spec.get("argv") or []), "--resume", deployment_id]
        withheld = [str(w) for w in spec.get("withheld") or []]
        cwd = str(spec.get("cwd") or "") or None
    else:
        from ..inventory import inventory_sources

        sources = inventory_sources(dep.context.get("inventory"))  # a list, or one as a string
        command = [dep.plan or "PLAN", *[a for src in sources for a in ("-i", src)], "--run", "--resume",
                   deployment_id]
        withheld, cwd = [], None
        refused = "the history does not say how this deployment was started (it was recorded by an earlier version)"
    owner = reader.owner(deployment_id)
    if rollout.state == "completed":
        refused = "its rollout completed: there is nothing to resume"
    elif rollout.state == "staged":
        refused = f"it is staged, not started: rustle-deploy --promote {deployment_id} runs it"
    elif owner is not None and owner_alive(owner):
        refused = "it is still running: stop it first, or wait for it"
    elif withheld:
        refused = "it was started with options the history does not keep: " + "; ".join(withheld)
    elif refused is None and command and not os.path.exists(command[0]):
        refused = f"{command[0]}: the plan or playbook is not there any more"
    return ResumePlan(refused, command, cwd, withheld, left, rollout.describe())


def start_resume(state_db: Path, reader: HistoryReader, deployment_id: str, actor: str,
                 logs: Path) -> tuple[str | None, str]:
    """Start ``rustle-deploy ... --resume ID`` in its own process (it goes on if the UI stops),
    its output to a log file under ``logs``; recorded as a ``resume`` of the deployment with who
    asked and the process. Returns (the record's id, what happened)."""
    plan = resume_plan(reader, deployment_id)
    if plan is None:
        return None, f"deployment {deployment_id} did not run in batches: there is nothing to resume"
    if plan.refused is not None:
        return None, f"deployment {deployment_id} cannot be resumed from here: {plan.refused}"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ, RUSTLE_STATE_DB=str(state_db))  # into the history this UI shows
    with History(state_db) as history:
        rid = history.begin("resume", target_id=deployment_id, user=actor)
        log = logs / f"{rid}.log"
        try:
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rustle_deploy.cli", *plan.command, "--output", "json"],
                    cwd=plan.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
        except OSError as exc:
            history.finish(rid, "failed")
            return rid, f"could not start {plan.shown}: {exc.strerror}"
        history.finish(rid, "done")
    threading.Thread(target=proc.wait, daemon=True).start()  # reaped when it ends
    return rid, f"started {plan.shown} as process {proc.pid}; its output goes to {log}"
