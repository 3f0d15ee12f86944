"""What the hosts recorded, for deployments whose controller could not record it itself.

A deployment can end without the controller hearing a host's result: Ctrl-C, a connection cut
after the upload, a host's deadline, or a controller killed outright (``kill -9``, which leaves
the deployment ``running`` in the local history). The host's agent keeps its own record and
writes it before it releases the host's lock: in ``history.jsonl``, the ``deploy`` line of the
deployment (activated or not, and what was current before) and, when the controller went away
during the run, an ``interrupted`` line (the run and every process it started were ended). The
``status`` op waits for that lock, so asking it gives the settled answer.

- ``settle``: hosts of the deployment this process runs whose outcome is uncertain;
- ``settle_orphans``: deployments whose controller process is gone (state.py ``orphans``),
  reconciled by the next command that touches their hosts and by ``--list-deployments``.

Imports: state, deploy, inventory, model; called by fleetops and pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .deploy import HostJob, HostOutcome, deploy_fleet
from .errors import RustleError
from .model import Host
from .state import History, OpenDeployment

if TYPE_CHECKING:
    from .pipeline import Session

ASK_TIMEOUT = 45.0  # per host; the agent's grace for ending a run fits well inside
LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class Finding:
    """What one host recorded about one deployment.

    ``status``: ``activated`` or ``unchanged`` (its deploy line), ``rollback`` (its rollback
    line), None when it has no line of that deployment (it never got that far).
    """

    status: str | None
    sha256: str | None
    previous_sha256: str | None
    note: str | None  # the run was interrupted on the host, and what that ended


def read_finding(agent: dict[str, Any], deployment_id: str, binary_name: str | None) -> Finding:
    """The finding in a ``status`` reply (``agent``) for ``deployment_id`` and ``binary_name``."""
    lines = agent.get("deployment")
    if not isinstance(lines, list):  # an agent older than the "deployment" key: recent lines only
        lines = agent.get("history") or []
    mine = [h for h in lines if isinstance(h, dict) and h.get("deployment_id") == deployment_id
            and (binary_name is None or h.get("binary_name") in (None, binary_name))]
    stop = next((h for h in reversed(mine) if h.get("op") == "interrupted"), None)
    note = None
    if stop is not None:
        note = f"the run was interrupted on the host: {stop.get('why') or 'the controller went away'}"
        note += f"; it ended {stop.get('killed', 0)} process(es) the run had started"
        if stop.get("left"):
            note += f", {stop['left']} could not be ended"
    done = next((h for h in reversed(mine) if h.get("op") in ("deploy", "rollback")), None)
    release = (agent.get("releases") or {}).get(binary_name) or {}
    if done is None:
        return Finding(None, release.get("current"), release.get("previous"), note)
    if done.get("op") == "rollback":
        return Finding("rollback", done.get("sha256"), done.get("previous"), note)
    status = "activated" if done.get("changed") else "unchanged"
    return Finding(status, done.get("sha256"), done.get("previous"), note)


def through_runner(jobs: Sequence[HostJob], history: History, cache_dir: Path) -> list[HostJob]:
    """``jobs`` (rollback, cleanup, status, run) for hosts the history saw run a rustle-runner
    that this controller has a copy of, handed to that runner's agent instead of Python: a host
    without Python is reached too (docs/native.md, "Remote side"). A host that lost its runner
    answers ``need_runner`` and gets it sent. A cleanup (not a dry run, which must not send
    anything) also goes to the runner a host ran before an earlier cleanup removed it: it is
    sent again, cleans, and is removed again, so a host without Python can be cleaned up any
    number of times."""
    held = history.held_runners()
    ever = history.held_runners(cleaned=True) if any(j.op == "cleanup" and not j.dry_run for j in jobs) else {}
    out = []
    for job in jobs:
        key = (job.host.name, job.host.remote_dir or "")
        sha = held.get(key) or (ever.get(key) if job.op == "cleanup" and not job.dry_run else None)
        path = cache_dir.expanduser() / "native" / f"rustle-runner-{sha}"
        if job.runner is None and job.op in ("rollback", "cleanup", "status", "run") and sha and path.is_file():
            job = replace(job, runner=path)
        out.append(job)
    return out


def ask(hosts: Sequence[tuple[Host, str | None]], deployment_id: str, parallel: int,
        via: tuple[History, Path] | None = None) -> dict[str, HostOutcome]:
    """Each host's ``status`` reply about ``deployment_id`` (host, binary_name pairs); ``via``
    (history, cache dir): through the host's runner where it has one (``through_runner``)."""
    jobs = [HostJob(host=h, op="status", binary_name=b, deployment_id=deployment_id, lock_timeout=LOCK_TIMEOUT)
            for h, b in hosts]
    if via is not None:
        jobs = through_runner(jobs, *via)
    try:
        outcomes = asyncio.run(deploy_fleet(jobs, parallel=max(1, parallel), timeout=ASK_TIMEOUT))
    except KeyboardInterrupt:
        outcomes = []
    return {o.host: o for o in outcomes}


def settle(session: Session, history: History, did: str, jobs: Sequence[HostJob],
           errors: dict[str, str] | None = None) -> dict[str, Finding]:
    """Ask hosts whose outcome is uncertain what they recorded, and record that.

    Used after an interrupt (hosts in flight) and for hosts that failed after their upload
    (a timeout or a cut during the run may come after activation). A host that cannot be
    asked is recorded as ``unknown``. Returns what each host that answered said.
    """
    if not jobs:
        return {}
    errors = errors or {}
    session.reporter.stop()
    session.reporter.line(f"asking {len(jobs)} host(s) what they recorded")
    answered = ask([(j.host, j.binary_name) for j in jobs], did, session.settings.hosts_at_once(0),
                   (history, session.settings.cache_dir))
    found: dict[str, Finding] = {}
    for job in jobs:
        name = job.host.name
        why = errors.get(name, "interrupted")
        finding = _record(history, did, job.host, job.binary_name, job.sha256, answered.get(name), why,
                          "failed" if name in errors else "interrupted")
        if finding is not None:
            found[name] = finding
    return found


def _record(history: History, did: str, host: Host, binary_name: str | None, sha256: str | None,
            o: HostOutcome | None, why: str, not_reached: str) -> Finding | None:
    record: dict[str, Any] = {"binary_name": binary_name, "remote_dir": host.remote_dir}
    if o is None or o.error is not None or o.agent is None:
        asked = str(o.error).splitlines()[0] if o is not None and o.error is not None else "not asked"
        history.record_host(did, host.name, "unknown", sha256=sha256,
                            error=f"{why}; what the host did is unknown: {asked}", **record)
        return None
    f = read_finding(o.agent, did, binary_name)
    note = f"; {f.note}" if f.note else ""
    if f.status is None:
        history.record_host(did, host.name, not_reached, sha256=f.sha256, previous_sha256=f.previous_sha256,
                            error=f"{why} (before activation; the old release is current){note}", **record)
    else:
        where = " (after activation)" if f.status == "activated" else ""
        history.record_host(did, host.name, f.status, sha256=f.sha256, previous_sha256=f.previous_sha256,
                            error=f"{why}{where}{note}", **record)
    return f


def apply(outcome: HostOutcome, finding: Finding) -> None:
    """Let ``outcome`` (what the controller saw) say what the host recorded."""
    if finding.status == "activated":
        outcome.activated = True
    outcome.sha256 = finding.sha256 or outcome.sha256
    outcome.previous_sha256 = finding.previous_sha256
    if finding.note and outcome.error is not None and finding.note not in outcome.error.message:
        err = outcome.error
        err.message = f"{err.message}; {finding.note}"
        err.args = (err.message,)


def settle_orphans(session: Session, hosts: Sequence[Host] | None = None, deployment_id: str | None = None) -> None:
    """Reconcile deployments whose controller died: ``deployment_id`` only when given, else
    every one when ``hosts`` is None (``--list-deployments``), else those that touched one of
    ``hosts``. ``hosts`` (the command's own) are used to reach them; the others are reached
    through the inventory the deployment recorded."""
    with History(session.settings.state_db) as history:
        orphans = history.orphans()
        given = {h.name: h for h in hosts or ()}
        for dep in orphans:
            if deployment_id is not None:
                if dep.deployment.id != deployment_id:
                    continue
            elif hosts is not None and not any(r.host in given for r in dep.pending):
                continue
            _settle_orphan(session, history, dep, given)


def _settle_orphan(session: Session, history: History, dep: OpenDeployment, given: dict[str, Host]) -> None:
    d = dep.deployment
    pending = dep.pending
    why = "the controller ended without recording this host (killed?)"
    if pending:
        session.reporter.line(
            f"deployment {d.id} was left running by a controller that is gone: asking its "
            f"{len(pending)} host(s) what they recorded")
    reachable, unknown = _hosts_of(session, dep, given)
    answered = ask([(reachable[r.host], r.binary_name) for r in pending if r.host in reachable], d.id,
                   session.settings.hosts_at_once(0), (history, session.settings.cache_dir)) if reachable else {}
    for r in pending:
        host = reachable.get(r.host)
        if host is None:
            history.record_host(d.id, r.host, "unknown", binary_name=r.binary_name, sha256=r.sha256,
                                remote_dir=r.remote_dir, error=f"{why}; cannot ask it: {unknown.get(r.host)}")
            continue
        _record(history, d.id, host, r.binary_name, r.sha256, answered.get(r.host), why, "interrupted")
    rollout = d.rollout
    if rollout is not None and rollout.state == "running":  # --resume goes on from here
        with history.together():
            for r in pending:
                batch, _ = rollout.hosts.get(r.host, (None, "pending"))
                history.record_rollout_host(d.id, r.host, batch, "interrupted", rollout.stages_done.get(r.host, 0))
            history.finish_rollout(d.id, "interrupted", None, "its controller ended without finishing it")
    history.finish(d.id, "interrupted")


def _hosts_of(session: Session, dep: OpenDeployment, given: dict[str, Host]) -> tuple[dict[str, Host], dict[str, str]]:
    """The pending hosts as Host objects, at the remote dir the deployment used; and why the
    others cannot be reached."""
    from .inventory import implicit_localhost, inventory_sources, load_inventory
    from .pipeline import with_connection

    ctx = dep.context
    out: dict[str, Host] = {}
    unknown: dict[str, str] = {}
    inv = None
    need = [r for r in dep.pending if r.host not in given]
    if need:
        try:
            sources = inventory_sources(ctx.get("inventory"))  # a list, or one as a string
            inv = load_inventory(sources) if sources else implicit_localhost()
        except RustleError as exc:
            for r in need:
                unknown[r.host] = f"the deployment's inventory cannot be read: {exc.message}"
    for r in dep.pending:
        host = given.get(r.host)
        if host is None and inv is not None:
            try:
                (host,) = [h for h in inv.resolve([r.host]) if h.name == r.host]
            except (RustleError, ValueError) as exc:
                unknown[r.host] = f"{ctx.get('inventory') or 'the implicit localhost'} no longer has it ({exc})"
                continue
            host = with_connection(host, ctx.get("user"), ctx.get("private_key"))
        if host is None:
            continue
        if r.remote_dir and host.remote_dir != r.remote_dir:
            host = replace(host, vars={**host.vars, "rustle_remote_dir": r.remote_dir})
        out[r.host] = host
    return out, unknown
