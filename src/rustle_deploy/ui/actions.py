"""The UI's actions: roll back a deployment (or one of its hosts), through the command line's
own code (fleetops.rollback), recorded in the history with who asked for it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ..errors import RustleError
from ..fleetops import rollback, rollback_refusal
from ..report import Reporter
from ..state import HostRecord
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
