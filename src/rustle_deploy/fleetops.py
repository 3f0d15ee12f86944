"""Modes that touch hosts: deploy (+run), deploy-only, rollback, cleanup, and rustle-exec.

Each checks every host's remote dir, builds one HostJob per host, fans out through
``deploy.deploy_fleet``, records every host's outcome in the SQLite history as soon as it is
known, and ends with a recap. ``--cleanup --dry-run`` asks the hosts and records nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .deploy import HostJob, HostOutcome, RunOptions, deploy_fleet
from .deploy.host import runner_identity
from .errors import ConnectError, UsageError
from .inventory import check_remote_dirs
from .model import Host, Plan
from .reconcile import apply, settle, settle_orphans
from .report import HostSummary, dump_json
from .settings import Settings
from .state import History
from .transport import make_connect

if TYPE_CHECKING:
    from .compiler.build import Artifact
    from .pipeline import Session
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
) -> list[HostOutcome]:
    reporter = session_reporter
    parallel = _parallel(settings, plan)
    connect = make_connect(settings.ssh_client, min(parallel, len(jobs)), early)
    reporter.start(what, len(jobs))

    def on_event(host: str, event: dict[str, Any]) -> None:
        if "event" in event:
            reporter.event(host, event)

    def done(outcome: HostOutcome) -> None:
        on_outcome(outcome)
        reporter.host_done(outcome.host, _host_line(outcome), failed=outcome.error is not None)

    try:
        return asyncio.run(
            deploy_fleet(
                jobs,
                parallel=parallel,
                timeout=settings.timeout,
                on_event=on_event,
                on_outcome=done,
                connect=connect,
            )
        )
    finally:
        if early is not None:
            early.close()
        reporter.stop()


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


def _summary(outcome: HostOutcome) -> HostSummary:
    s = HostSummary(name=outcome.host)
    recap = outcome.recap or {}
    s.ok = int(recap.get("ok", 0))
    s.changed = int(recap.get("changed", 0))
    s.failed = int(recap.get("failed", 0))
    s.skipped = int(recap.get("skipped", 0))
    s.ignored = int(recap.get("ignored", 0))
    for event in outcome.events:
        if event.get("event") in ("task_result", "handler_result") and event.get("status") == "failed" and not event.get("ignored"):
            s.failed_tasks.append(str(event.get("task") or event.get("id")))
    if outcome.error is not None:
        s.unreachable = isinstance(outcome.error, ConnectError)
        s.error = str(outcome.error).replace("\n", " — ")
    elif outcome.run_exit not in (None, 0) and not s.failed:
        s.error = f"the artifact exited with status {outcome.run_exit}"
    return s


def _outcome_status(outcome: HostOutcome) -> str:
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
        history.record_runner(job.host.name, job.host.remote_dir, runner[0])
    history.record_host(
        did,
        outcome.host,
        _outcome_status(outcome),
        binary_name=job.binary_name,
        sha256=outcome.sha256 or job.sha256,
        previous_sha256=outcome.previous_sha256,
        remote_dir=job.host.remote_dir,
        error=str(outcome.error) if outcome.error else None,
    )


def _deploy_jobs(
    session: Session,
    plan: Plan | None,
    hosts: Sequence[Host],
    by_host: dict[str, Artifact],
    source: str | None,
    plan_sha: str | None,
    early: EarlyStarts | None = None,
) -> int:
    opts, settings = session.opts, session.settings
    run = bool(opts.get("run_"))
    run_id = f"r-{secrets.token_hex(6)}"
    settle_orphans(session, hosts)
    with History(settings.state_db) as history:
        did = history.begin("deploy", plan_source=source, plan_sha256=plan_sha, context=_context(session))
        # Send the artifact with the request, without waiting for the agent to ask, to hosts
        # this history has not seen holding it: saves a round trip on first deployments.
        held = history.holders({by_host[h.name].sha256 for h in hosts})
        runners = {a.runner: _runner_path(session, a.runner) for a in by_host.values() if a.runner}
        has_runner = {sha: history.runner_holders(sha) for sha in runners}
        jobs = [
            HostJob(
                host=h,
                op="deploy",
                artifact=by_host[h.name].path,
                sha256=by_host[h.name].sha256,
                size=by_host[h.name].size,
                binary_name=by_host[h.name].binary_name,
                deployment_id=did,
                verify=settings.verify,
                run=_run_options(opts, run_id) if run else None,
                bytecode_tag=by_host[h.name].bytecode_tag,
                push=(h.name, h.remote_dir, by_host[h.name].sha256) not in held,
                runner=runners.get(by_host[h.name].runner or ""),
                push_runner=(h.name, h.remote_dir) not in has_runner.get(by_host[h.name].runner or "", set()),
            )
            for h in hosts
        ]
        job_of = {j.host.name: j for j in jobs}
        history.pending(did, [(j.host.name, j.binary_name, j.sha256, j.host.remote_dir) for j in jobs])

        recorded: set[str] = set()

        def on_outcome(outcome: HostOutcome) -> None:
            with history.together():  # one commit per host
                _record(history, did, job_of[outcome.host], outcome)
                if run and outcome.run_exit is not None:
                    history.record_run(did, outcome.host, run_id, outcome.run_exit, outcome.recap)
            recorded.add(outcome.host)

        status = "interrupted"
        try:
            outcomes = _fan_out(
                jobs, settings, plan, session.reporter, on_outcome, "deploy+run" if run else "deploy", early
            )
            uncertain = {
                o.host: str(o.error) for o in outcomes
                if o.error is not None and not o.activated and o.agent is None
                and not isinstance(o.error, ConnectError) and (o.uploaded or o.events)  # got far enough to activate
            }
            found = settle(session, history, did, [job_of[h] for h in uncertain], uncertain)
            for o in outcomes:
                if o.host in found:
                    apply(o, found[o.host])
            status = "done"
        except KeyboardInterrupt:
            settle(session, history, did, [j for j in jobs if j.host.name not in recorded])
            raise
        finally:
            history.finish(did, status)
    summaries = [_summary(o) for o in outcomes]
    for o, s in zip(outcomes, summaries, strict=True):
        if not run and o.error is None:
            s.deploy = "uploaded" if o.uploaded else "already present"
            if (o.agent or {}).get("damaged"):
                s.deploy = "re-uploaded (the host's copy had changed)"
    failed = any(s.is_failure for s in summaries)
    if run:
        session.reporter.recap(summaries, "PLAY RECAP")
    else:
        session.reporter.recap(summaries, f"DEPLOY RECAP {did}")
    if session.json_out:
        dump_json(_manifest(did, session, source, outcomes, job_of))
    else:
        session.reporter.line(f"deployment {did}: {len(outcomes)} host(s), {sum(s.is_failure for s in summaries)} failed")
    return 1 if failed else 0


def _context(session: Session) -> dict[str, Any]:
    """How this command reaches its hosts, for a later command that must ask them
    (reconcile.py): the inventory's path and the -u / --private-key given."""
    inv = session.opts.get("inventory")
    return {"inventory": os.path.abspath(inv) if inv else None, "user": session.opts.get("user"),
            "private_key": session.opts.get("private_key")}


def _manifest(did: str, session: Session, source: str | None, outcomes: list[HostOutcome], job_of: dict[str, HostJob]) -> dict[str, Any]:
    inv = session.opts.get("inventory")
    return {
        "kind": MANIFEST_KIND,
        "version": 1,
        "deployment_id": did,
        "plan": source,
        "inventory": os.path.abspath(inv) if inv else None,
        # -u / --private-key of the deploying command, so rustle-exec reaches hosts the same way
        "connection": {"user": session.opts.get("user"), "private_key": session.opts.get("private_key")},
        "state_db": str(session.settings.state_db),
        "hosts": [
            {
                "name": o.host,
                "ok": o.error is None,
                "status": _outcome_status(o),
                "binary_name": job_of[o.host].binary_name,
                "sha256": o.sha256 or job_of[o.host].sha256,
                "previous_sha256": o.previous_sha256,
                "uploaded": o.uploaded,
                "repaired": _repaired(o),
                "remote_dir": job_of[o.host].host.remote_dir,
                "error": str(o.error) if o.error else None,
                "recap": o.recap,
                "run_exit": o.run_exit,
                "platform": {k: (o.agent or {}).get(k) for k in ("system", "machine", "python", "python_path")},
            }
            for o in outcomes
        ],
    }


def deploy(
    session: Session, plan: Plan, hosts: list[Host], artifacts: list[Artifact], early: EarlyStarts | None = None
) -> int:
    by_host = {name: a for a in artifacts for name in a.hosts}
    return _deploy_jobs(session, plan, hosts, by_host, plan.source, plan.sha256, early)


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
    return _deploy_jobs(session, None, hosts, by_host, str(path), doc.get("plan_sha256"))


def _simple_op(
    session: Session, op: str, jobs_for: Callable[[str], list[HostJob]], target_id: str | None, title: str,
    not_attempted: Sequence[HostSummary] = (),
    detail: Callable[[HostOutcome, HostJob], dict[str, Any]] | None = None,
) -> int:
    """Fan ``op`` out, record each host in the history, print the recap (and JSON).

    ``detail`` adds keys to each host's JSON entry; its ``notes`` are printed in text too.
    """
    with History(session.settings.state_db) as history:
        did = history.begin(op, target_id=target_id, context=_context(session))
        jobs = jobs_for(did)
        job_of = {j.host.name: j for j in jobs}
        history.pending(did, [(j.host.name, j.binary_name or None, j.sha256, j.host.remote_dir) for j in jobs])

        def on_outcome(outcome: HostOutcome) -> None:
            job = job_of[outcome.host]
            history.record_host(
                did, outcome.host, "failed" if outcome.error else op,
                binary_name=job.binary_name or None, sha256=outcome.sha256,
                previous_sha256=outcome.previous_sha256,
                remote_dir=job.host.remote_dir, error=str(outcome.error) if outcome.error else None,
            )

        status = "interrupted"
        try:
            outcomes = _fan_out(jobs, session.settings, None, session.reporter, on_outcome, op)
            status = "done"
        finally:
            history.finish(did, status)
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


def rollback(session: Session, deployment_id: str | None) -> int:
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
    records = {r.host: r for r in dep.hosts}
    hosts = _hosts_by_name(session, inv, list(records))

    def reason(name: str) -> str | None:
        r = records[name]
        if cleaned.get(name):
            return f"cleanup {cleaned[name]} removed what deployment {dep.id} put there since"
        if r.status not in ("activated", "unchanged"):
            return f"deployment {dep.id} never activated a release there ({r.error or r.status})"
        if not r.previous_sha256:
            return f"nothing was current there before deployment {dep.id}; use --cleanup to remove it"
        return None

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


def cleanup(session: Session) -> int:
    """Remove what rustle-deploy made on the inventory's hosts, leave and report the rest;
    with ``--dry-run`` only show, per host, what would be removed and left."""
    if not session.opts.get("inventory"):
        raise UsageError("--cleanup needs an inventory", "rustle-deploy --cleanup -i inventory.yml")
    inv = session.inventory()
    hosts = inv.select(session.opts.get("limit") or "all")
    hosts = [session.with_cli_connection(h) for h in hosts]
    check_remote_dirs(hosts, inv.source)
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
                r.line(f"  FAILED: {e['error']}")
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
    return [session.with_cli_connection(h) for h in hosts]


def exec_manifest(manifest: Any, name: str, settings: Settings, opts: dict[str, Any]) -> int:
    from .inventory import implicit_localhost, load_inventory
    from .pipeline import with_connection
    from .report import Reporter

    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        raise UsageError(f"{name}: not a rustle-deploy deployment manifest", "rustle-exec reads what 'rustle-deploy ... --output json' prints")
    json_out = opts.get("output") == "json"
    reporter = Reporter(stream=sys.stderr if json_out else sys.stdout, verbosity=int(opts.get("verbose") or 0),
                        diff=bool(opts.get("diff")))
    inv = load_inventory(manifest["inventory"]) if manifest.get("inventory") else implicit_localhost()
    entries = [h for h in manifest.get("hosts", []) if isinstance(h, dict)]
    not_deployed = [h for h in entries if not h.get("ok")]
    for h in not_deployed:
        reporter.line(f"{h.get('name')}: skipped: not deployed ({h.get('error')})")
    run_id = f"r-{secrets.token_hex(6)}"
    entry_of = {str(h["name"]): h for h in entries if h.get("ok")}
    hosts = inv.resolve(list(entry_of)) if entry_of else []
    connection = manifest.get("connection") or {}
    hosts = [with_connection(h, connection.get("user"), connection.get("private_key")) for h in hosts]
    check_remote_dirs(hosts, inv.source)
    jobs = [
        HostJob(
            host=h, op="run", artifact=None, sha256=str(entry_of[h.name]["sha256"]), size=0,
            binary_name=str(entry_of[h.name]["binary_name"]), deployment_id=str(manifest.get("deployment_id")),
            verify=False, run=_run_options(opts, run_id),
        )
        for h in hosts
    ]
    state_db = Path(manifest.get("state_db") or settings.state_db)
    with History(state_db) as history:
        def on_outcome(outcome: HostOutcome) -> None:
            history.record_run(str(manifest.get("deployment_id")), outcome.host, run_id, outcome.run_exit, outcome.recap)

        outcomes = _fan_out(jobs, settings, None, reporter, on_outcome, "run")
    summaries = [_summary(o) for o in outcomes]
    for h in not_deployed:
        summaries.append(HostSummary(name=str(h.get("name")), error=f"not deployed: {h.get('error')}"))
    reporter.recap(summaries, "PLAY RECAP")
    if json_out:
        dump_json({"kind": "rustle-exec-result", "run_id": run_id, "hosts": [
            {"name": o.host, "ok": o.error is None and o.run_exit == 0, "recap": o.recap, "exit": o.run_exit,
             "error": str(o.error) if o.error else None} for o in outcomes]})
    return 1 if any(s.is_failure for s in summaries) else 0

