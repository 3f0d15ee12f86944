"""Read the history database for the pages: read-only connections, one per request.

The deploy command writes the history (state.py, SQLite in WAL mode); the UI only reads it,
through ``mode=ro`` connections, so a page can never change it and a running deployment is
never blocked by one. A database that does not exist yet reads as empty.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..state import Rollout, owner_alive, read_rollout

# What a host's row says about the release it runs afterwards (sha256 is then current there).
CURRENT_STATUSES = ("activated", "unchanged", "rollback")
FAILED_STATUSES = ("failed", "rolled_back")
RECENT = 3  # task results of a running host the live view shows


@dataclass(frozen=True)
class Filters:
    """The deployments list's filters; empty strings and None mean no filter."""

    state: str = ""
    plan: str = ""
    user: str = ""
    op: str = ""
    since: float | None = None
    until: float | None = None


@dataclass
class DeploymentRow:
    id: str
    created_at: float
    finished_at: float | None
    op: str
    plan: str | None
    plan_sha256: str | None
    status: str
    target_id: str | None
    user: str | None
    context: dict[str, Any]
    hosts: int = 0
    failed: int = 0
    pending: int = 0
    artifacts: int | None = None  # distinct artifacts compiled or taken from the cache
    artifacts_cached: int | None = None  # of which the compilation cache held (hits)
    uploaded_bytes: int | None = None  # artifact bytes sent to its hosts

    @property
    def duration(self) -> float:
        return (self.finished_at or (time.time() if self.status == "running" else self.created_at)) - self.created_at


@dataclass
class HostRow:
    host: str
    status: str
    binary_name: str | None
    sha256: str | None
    previous_sha256: str | None
    remote_dir: str | None
    error: str | None
    updated_at: float
    duration: float | None
    recap: dict[str, int] | None = None
    run_exit: int | None = None
    failed_tasks: list[TaskRow] = field(default_factory=list)
    task: str | None = None  # while pending: the task it runs now (host_progress)
    tasks_done: int = 0
    recent: list[tuple[str, str]] = field(default_factory=list)  # while pending: its last results (task, status)


@dataclass
class TaskRow:
    host: str
    run_id: str
    seq: int
    handler: bool
    task: str | None
    module: str | None
    status: str | None
    rc: int | None
    msg: str | None
    stdout: str | None
    stderr: str | None
    diff: Any
    duration: float | None
    censored: bool
    ignored: bool = False  # a failure ignore_errors let pass (NULL in rows recorded before the column)


class HistoryReader:
    """Queries over the history at ``path``, each on its own read-only connection."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            yield db

    @staticmethod
    def _has(db: sqlite3.Connection, table: str, column: str | None = None) -> bool:
        cols = [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]
        return bool(cols) and (column is None or column in cols)

    def _deployment_select(self, db: sqlite3.Connection) -> str:
        extra = ("d.user, d.finished_at, d.context" if self._has(db, "deployments", "user")
                 else "NULL, NULL, NULL")  # a database no deploy of this version opened yet
        return (
            "SELECT d.id, d.created_at, d.op, d.plan_source, d.plan_sha256, d.status, d.target_id, "
            f"{extra}, "
            "(SELECT count(*) FROM host_outcomes o WHERE o.deployment_id = d.id), "
            "(SELECT count(*) FROM host_outcomes o WHERE o.deployment_id = d.id AND (o.status IN ('failed', 'rolled_back') "
            "OR EXISTS (SELECT 1 FROM runs r WHERE r.deployment_id = d.id AND r.host = o.host "
            "AND (coalesce(r.exit_code, 0) != 0 OR coalesce(r.failed, 0) > 0)))), "
            "(SELECT count(*) FROM host_outcomes o WHERE o.deployment_id = d.id AND o.status = 'pending'), "
            + ("d.artifacts, d.artifacts_cached, " if self._has(db, "deployments", "artifacts") else "NULL, NULL, ")
            + ("(SELECT sum(o.uploaded_bytes) FROM host_outcomes o WHERE o.deployment_id = d.id) "
               if self._has(db, "host_outcomes", "uploaded_bytes") else "NULL ")
            + "FROM deployments d"
        )

    @staticmethod
    def _deployment(row: tuple[Any, ...]) -> DeploymentRow:
        (did, created, op, plan, sha, status, target, user, finished, context, hosts, failed, pending, artifacts, cached,
         uploaded) = row
        try:
            ctx = json.loads(context) if context else {}
        except ValueError:
            ctx = {}
        return DeploymentRow(str(did), float(created), finished, str(op), plan, sha, str(status), target, user,
                             ctx if isinstance(ctx, dict) else {}, int(hosts), int(failed), int(pending), artifacts,
                             cached, uploaded)

    def deployments(self, filters: Filters = Filters(), limit: int = 200, offset: int = 0) -> list[DeploymentRow]:
        """The deployments ``filters`` match, newest first: ``limit`` of them after the first ``offset``."""
        with self._db() as db:
            if db is None:
                return []
            where: list[str] = []
            args: list[Any] = []
            if filters.state:
                where.append("d.status = ?")
                args.append(filters.state)
            if filters.op:
                where.append("d.op = ?")
                args.append(filters.op)
            if filters.plan:
                where.append("instr(coalesce(d.plan_source, ''), ?) > 0")
                args.append(filters.plan)
            if filters.user and self._has(db, "deployments", "user"):
                where.append("instr(coalesce(d.user, ''), ?) > 0")
                args.append(filters.user)
            elif filters.user:
                return []
            if filters.since is not None:
                where.append("d.created_at >= ?")
                args.append(filters.since)
            if filters.until is not None:
                where.append("d.created_at < ?")
                args.append(filters.until)
            sql = self._deployment_select(db) + (" WHERE " + " AND ".join(where) if where else "")
            rows = db.execute(sql + " ORDER BY d.created_at DESC, d.rowid DESC LIMIT ? OFFSET ?",
                              [*args, limit, offset]).fetchall()
            return [self._deployment(r) for r in rows]

    def states(self) -> list[str]:
        with self._db() as db:
            return [] if db is None else [str(r[0]) for r in db.execute("SELECT DISTINCT status FROM deployments ORDER BY 1")]

    def deployment(self, deployment_id: str) -> DeploymentRow | None:
        with self._db() as db:
            if db is None:
                return None
            row = db.execute(self._deployment_select(db) + " WHERE d.id = ?", (deployment_id,)).fetchone()
            return None if row is None else self._deployment(row)

    def actions_on(self, deployment_id: str) -> list[DeploymentRow]:
        """The rollbacks (and other operations) recorded against ``deployment_id``."""
        with self._db() as db:
            if db is None:
                return []
            rows = db.execute(self._deployment_select(db) + " WHERE d.target_id = ? ORDER BY d.created_at",
                              (deployment_id,)).fetchall()
            return [self._deployment(r) for r in rows]

    def hosts(self, deployment_id: str) -> list[HostRow]:
        """The hosts of a deployment with their last run's recap and their failed tasks."""
        with self._db() as db:
            if db is None:
                return []
            duration = "o.duration" if self._has(db, "host_outcomes", "duration") else "NULL"
            out = [
                HostRow(*r)
                for r in db.execute(
                    "SELECT o.host, o.status, o.binary_name, o.sha256, o.previous_sha256, o.remote_dir, o.error, "
                    f"o.updated_at, {duration} FROM host_outcomes o WHERE o.deployment_id = ? ORDER BY o.host",
                    (deployment_id,),
                )
            ]
            by_host = {h.host: h for h in out}
            for host, exit_code, ok, changed, failed, skipped in db.execute(
                "SELECT host, exit_code, ok, changed, failed, skipped FROM runs WHERE deployment_id = ? "
                "ORDER BY recorded_at", (deployment_id,)
            ):
                if host in by_host:
                    by_host[host].run_exit = exit_code
                    by_host[host].recap = {"ok": ok or 0, "changed": changed or 0, "failed": failed or 0,
                                           "skipped": skipped or 0}
            if self._has(db, "host_progress"):
                for host, task, done in db.execute(
                    "SELECT host, task, tasks_done FROM host_progress WHERE deployment_id = ?", (deployment_id,)
                ):
                    if host in by_host and by_host[host].status == "pending":
                        by_host[host].task, by_host[host].tasks_done = task, int(done)
            if self._has(db, "task_results"):
                for host, task, status in db.execute(
                    "SELECT t.host, t.task, t.status FROM task_results t JOIN host_outcomes o ON o.deployment_id = "
                    "t.deployment_id AND o.host = t.host WHERE t.deployment_id = ? AND o.status = 'pending' "
                    "ORDER BY t.host, t.seq", (deployment_id,)
                ):
                    by_host[host].recent = [*by_host[host].recent[-(RECENT - 1):], (task or "", status or "")]
            for t in self._tasks(db, deployment_id, None, failed_only=True):
                if t.host in by_host:
                    by_host[t.host].failed_tasks.append(t)
            return out

    def _tasks(self, db: sqlite3.Connection, deployment_id: str, host: str | None,
               failed_only: bool = False) -> list[TaskRow]:
        if not self._has(db, "task_results"):
            return []
        ignored = "coalesce(ignored, 0)" if self._has(db, "task_results", "ignored") else "0"
        sql = ("SELECT host, run_id, seq, handler, task, module, status, rc, msg, stdout, stderr, diff, duration, "
               f"censored, {ignored} FROM task_results WHERE deployment_id = ?")
        args: list[Any] = [deployment_id]
        if host is not None:
            sql += " AND host = ?"
            args.append(host)
        if failed_only:
            sql += f" AND status = 'failed' AND NOT {ignored}"
        out = []
        for r in db.execute(sql + " ORDER BY host, run_id, seq", args):
            row = list(r)
            try:
                row[11] = json.loads(row[11]) if row[11] else None
            except ValueError:
                pass  # cut: too long to keep whole; shown as the text it is
            row[3], row[13], row[14] = bool(row[3]), bool(row[13]), bool(row[14])
            out.append(TaskRow(*row))
        return out

    def tasks(self, deployment_id: str, host: str) -> list[TaskRow]:
        with self._db() as db:
            return [] if db is None else self._tasks(db, deployment_id, host)

    def host_history(self, host: str, limit: int = 100) -> list[tuple[DeploymentRow, HostRow]]:
        """What each deployment did on ``host``, newest first."""
        with self._db() as db:
            if db is None:
                return []
            duration = "o.duration" if self._has(db, "host_outcomes", "duration") else "NULL"
            rows = db.execute(
                "SELECT o.deployment_id, o.host, o.status, o.binary_name, o.sha256, o.previous_sha256, o.remote_dir, "
                f"o.error, o.updated_at, {duration} FROM host_outcomes o WHERE o.host = ? "
                "ORDER BY o.updated_at DESC LIMIT ?", (host, limit)).fetchall()
            out = []
            select = self._deployment_select(db) + " WHERE d.id = ?"
            for did, *rest in rows:
                d = db.execute(select, (did,)).fetchone()
                if d is not None:
                    out.append((self._deployment(d), HostRow(*rest)))
            return out

    def host_runs(self, host: str, limit: int = 20) -> list[dict[str, Any]]:
        with self._db() as db:
            if db is None:
                return []
            return [
                {"deployment_id": did, "run_id": rid, "exit": code, "ok": ok, "changed": ch, "failed": fa,
                 "skipped": sk, "at": at}
                for did, rid, code, ok, ch, fa, sk, at in db.execute(
                    "SELECT deployment_id, run_id, exit_code, ok, changed, failed, skipped, recorded_at FROM runs "
                    "WHERE host = ? ORDER BY recorded_at DESC LIMIT ?", (host, limit))
            ]

    def releases(self) -> list[tuple[str, str, str | None]]:
        """(host, sha256, binary_name) of the release each host runs, as the history last saw it."""
        with self._db() as db:
            if db is None:
                return []
            marks = ",".join("?" * len(CURRENT_STATUSES))
            rows = db.execute(
                "SELECT host, sha256, binary_name, max(updated_at) FROM host_outcomes "
                f"WHERE status IN ({marks}) AND sha256 IS NOT NULL GROUP BY host ORDER BY host",
                CURRENT_STATUSES).fetchall()
            return [(str(h), str(s), b) for h, s, b, _ in rows]

    def live(self, deployment_id: str) -> dict[str, Any] | None:
        """What the live view shows: the deployment's state and each host's, as JSON data."""
        d = self.deployment(deployment_id)
        if d is None:
            return None
        return {
            "id": d.id, "status": d.status, "hosts": d.hosts, "failed": d.failed, "pending": d.pending,
            "duration": round(d.duration, 1),
            "rows": [
                {"host": h.host, "status": h.status, "error": (h.error or "").splitlines()[0] if h.error else "",
                 "duration": None if h.duration is None else round(h.duration, 2),
                 "before": (h.previous_sha256 or "")[:12], "after": (h.sha256 or "")[:12],
                 "recap": h.recap, "failed_tasks": [t.task or "" for t in h.failed_tasks],
                 "task": h.task, "tasks_done": h.tasks_done,
                 "recent": [{"task": t, "status": st} for t, st in h.recent]}
                for h in self.hosts(deployment_id)
            ],
        }

    def metrics_rows(self) -> dict[str, Any]:
        """Everything /metrics reports, in one read."""
        with self._db() as db:
            if db is None:
                return {"orphaned": 0, "uploaded": 0, "artifacts": 0, "cache_hits": 0, "deployments": [], "hosts": [], "durations": [], "host_durations": []}
            finished = "finished_at" if self._has(db, "deployments", "finished_at") else "NULL"
            duration = "duration" if self._has(db, "host_outcomes", "duration") else "NULL"
            cache = (db.execute("SELECT coalesce(sum(artifacts), 0), coalesce(sum(artifacts_cached), 0) "
                                "FROM deployments").fetchone() if self._has(db, "deployments", "artifacts") else (0, 0))
            uploaded = (db.execute("SELECT coalesce(sum(uploaded_bytes), 0) FROM host_outcomes").fetchone()[0]
                        if self._has(db, "host_outcomes", "uploaded_bytes") else 0)
            owners = (db.execute("SELECT o.owner FROM open_deployments o JOIN deployments d ON d.id = o.deployment_id "
                                 "WHERE d.status = 'running'").fetchall() if self._has(db, "open_deployments") else [])
            return {
                "orphaned": sum(1 for (owner,) in owners if not owner_alive(str(owner))),
                "uploaded": uploaded,
                "artifacts": cache[0],
                "cache_hits": cache[1],
                "deployments": db.execute("SELECT op, status, count(*) FROM deployments GROUP BY op, status").fetchall(),
                "hosts": db.execute(
                    "SELECT d.op, o.status, count(*) FROM host_outcomes o JOIN deployments d ON d.id = o.deployment_id "
                    "GROUP BY d.op, o.status").fetchall(),
                "durations": db.execute(
                    f"SELECT op, {finished} - created_at FROM deployments WHERE {finished} IS NOT NULL").fetchall(),
                "host_durations": db.execute(
                    f"SELECT d.op, o.{duration} FROM host_outcomes o JOIN deployments d ON d.id = o.deployment_id "
                    f"WHERE o.{duration} IS NOT NULL").fetchall() if duration != "NULL" else [],
            }

    def rollout(self, deployment_id: str) -> Rollout | None:
        """The deployment's rollout (batches, each host's state), if it ran in batches."""
        with self._db() as db:
            return None if db is None or not self._has(db, "rollouts") else read_rollout(db, deployment_id)

    def owner(self, deployment_id: str) -> str | None:
        """The controller process that runs ``deployment_id`` (state.controller_identity), if open."""
        with self._db() as db:
            if db is None:
                return None
            row = db.execute("SELECT owner FROM open_deployments WHERE deployment_id = ?", (deployment_id,)).fetchone()
            return None if row is None else str(row[0])

    def orphaned(self, deployment_id: str) -> bool:
        """Whether ``deployment_id`` is recorded as open by a controller process that is gone."""
        owner = self.owner(deployment_id)
        return owner is not None and not owner_alive(owner)

    def cleaned_since(self, host: str, remote_dir: str | None, since: float) -> str | None:
        """The latest cleanup of ``host``'s ``remote_dir`` at or after ``since`` (as
        ``History.cleaned_since``, on a read-only connection)."""
        with self._db() as db:
            if db is None:
                return None
            row = db.execute(
                "SELECT c.deployment_id FROM host_outcomes c JOIN deployments d ON d.id = c.deployment_id "
                "WHERE d.op = 'cleanup' AND c.status = 'cleanup' AND c.host = ? AND c.remote_dir IS ? "
                "AND c.updated_at >= ? ORDER BY c.updated_at DESC LIMIT 1",
                (host, remote_dir, since),
            ).fetchone()
            return None if row is None else str(row[0])
