"""The UI's actions, each recorded in the history with who asked for it: roll back a
deployment (or one of its hosts) through the command line's own code (fleetops.rollback), and
stop a running deployment by interrupting the command that runs it, as Ctrl-C does.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
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
