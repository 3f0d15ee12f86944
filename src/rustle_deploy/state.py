"""Local history in SQLite (``~/.rustle/state.db``): deployments, per-host outcomes, runs,
rollouts.

Each host's outcome is written the moment it is known, in its own transaction, so an
interrupted deployment still records which hosts reached their new release. A deployment
that runs in batches (docs/rollouts.md) also has a ``rollouts`` row (its schedule, how many
batches are done, where and why it stopped) and a ``rollout_hosts`` row per host (the batch
that first reached it, and whether it is pending, updated, failed, partial or not reached).
Until its outcome is known each host a deployment touches has a ``pending`` row, and the
deployment an ``open_deployments`` row naming the controller process that runs it and how it
reached its hosts: if that process dies without finishing (``kill -9``), a later command finds
the deployment there (``orphans``) and reconciles it from what the hosts recorded
(reconcile.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ._fs import private_dir
from .errors import StateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    op TEXT NOT NULL,
    plan_source TEXT,
    plan_sha256 TEXT,
    status TEXT NOT NULL,
    target_id TEXT
);
CREATE TABLE IF NOT EXISTS host_outcomes (
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    binary_name TEXT,
    sha256 TEXT,
    previous_sha256 TEXT,
    remote_dir TEXT,
    error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (deployment_id, host)
);
CREATE TABLE IF NOT EXISTS runs (
    deployment_id TEXT NOT NULL,
    host TEXT NOT NULL,
    run_id TEXT NOT NULL,
    exit_code INTEGER,
    ok INTEGER, changed INTEGER, failed INTEGER, skipped INTEGER,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (run_id, host)
);
CREATE TABLE IF NOT EXISTS rollouts (
    deployment_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    batches INTEGER NOT NULL,
    done_batches INTEGER NOT NULL,
    stopped_after INTEGER,
    reason TEXT,
    schedule TEXT NOT NULL,
    controller TEXT
);
CREATE TABLE IF NOT EXISTS rollout_hosts (
    deployment_id TEXT NOT NULL,
    host TEXT NOT NULL,
    batch INTEGER,
    state TEXT NOT NULL,
    stages_done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (deployment_id, host)
);
CREATE TABLE IF NOT EXISTS open_deployments (
    deployment_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    context TEXT
);
CREATE TABLE IF NOT EXISTS runners (
    host TEXT NOT NULL,
    remote_dir TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (host, remote_dir, sha256)
);
CREATE TABLE IF NOT EXISTS objects (
    host TEXT NOT NULL,
    remote_dir TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (host, remote_dir, sha256)
);
CREATE TABLE IF NOT EXISTS host_platforms (
    host TEXT NOT NULL,
    remote_dir TEXT NOT NULL,
    system TEXT,
    machine TEXT NOT NULL,
    deployment_id TEXT,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (host, remote_dir)
);
CREATE TABLE IF NOT EXISTS runner_failures (
    host TEXT NOT NULL,
    remote_dir TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    reason TEXT NOT NULL,
    deployment_id TEXT,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (host, remote_dir)
);
CREATE TABLE IF NOT EXISTS task_results (
    deployment_id TEXT NOT NULL,
    host TEXT NOT NULL,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    handler INTEGER NOT NULL,
    task TEXT,
    module TEXT,
    status TEXT,
    rc INTEGER,
    msg TEXT,
    stdout TEXT,
    stderr TEXT,
    diff TEXT,
    duration REAL,
    censored INTEGER NOT NULL,
    ignored INTEGER,
    PRIMARY KEY (run_id, host, seq)
);
CREATE TABLE IF NOT EXISTS host_progress (
    deployment_id TEXT NOT NULL,
    host TEXT NOT NULL,
    task TEXT,
    tasks_done INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (deployment_id, host)
);
CREATE INDEX IF NOT EXISTS task_results_deployment ON task_results (deployment_id, host);
CREATE INDEX IF NOT EXISTS host_outcomes_host ON host_outcomes (host, updated_at);
"""

# Columns added after the first release: a database made before gets them on open (NULL in
# its old rows). ``user``: who started the deployment; ``finished_at``: when it ended;
# ``context``: how it reached its hosts (inventory, -u, --private-key), kept after it ends so
# the web UI can roll it back; ``duration``: seconds a host took; ``uploaded_bytes``: what was
# sent to it (0 when it had the artifact already).
_ADDED_COLUMNS = (
    ("deployments", "user", "TEXT"),
    ("deployments", "finished_at", "REAL"),
    ("deployments", "context", "TEXT"),
    ("host_outcomes", "duration", "REAL"),
    ("host_outcomes", "uploaded_bytes", "INTEGER"),
    ("deployments", "artifacts", "INTEGER"),  # distinct artifacts the deployment compiled or found
    ("deployments", "artifacts_cached", "INTEGER"),  # of which the compilation cache held
    ("runner_failures", "machine", "TEXT"),  # the host's uname -m, as its bootstrap reported it
    ("host_platforms", "libc", "TEXT"),  # the host's C library ("glibc 2.36"), as its agent reported it
    ("task_results", "ignored", "INTEGER"),  # 1: a failure ignore_errors (or ignore_unreachable) let pass
)

# The schema's fingerprint (its text and added columns), kept in the database's user_version
# once its tables and columns are in place: an open that finds it there skips the schema
# statements, which on a fresh database were 25 synced transactions (16 CREATE, 9 ALTER) and on
# every other open 16 statements and 10 table_info reads (each deployment opens it 4 times).
# Any change to _SCHEMA or _ADDED_COLUMNS changes it, so a database is never taken for current
# when it is not; a database an older version made (user_version 0) is brought up to date.
SCHEMA_ID = int.from_bytes(hashlib.sha256((_SCHEMA + repr(_ADDED_COLUMNS)).encode()).digest()[:4], "big") >> 1 | 1

# Task results keep at most this many characters of each stdout, stderr, msg and diff.
TASK_TEXT_LIMIT = 64 * 1024


# A cleanup of the host's remote dir recorded after time {t} of the row ``o`` (cleanup removes
# every artifact and runner there; the rows before it stay, as history).
_CLEANED_SINCE = (
    "SELECT 1 FROM host_outcomes c JOIN deployments d ON d.id = c.deployment_id "
    "WHERE d.op = 'cleanup' AND c.status = 'cleanup' AND c.host = o.host "
    "AND c.remote_dir IS o.remote_dir AND c.updated_at >= {t}"
)


@dataclass(frozen=True)
class HostRecord:
    host: str
    status: str
    binary_name: str | None
    sha256: str | None
    previous_sha256: str | None
    remote_dir: str | None
    error: str | None


@dataclass(frozen=True)
class Rollout:
    state: str  # running, completed, stopped, interrupted
    batches: int
    done_batches: int
    stopped_after: int | None
    reason: str | None
    schedule: dict[str, Any]
    hosts: dict[str, tuple[int | None, str]]  # host -> (batch, state)
    stages_done: dict[str, int]  # host -> how many of its stages ran without failing (--resume skips them)
    controller: str | None = None  # "<hostname>:<pid>" of the process that ran it last

    def controller_alive(self) -> bool:
        """Whether the process that ran this rollout last is still running on this machine."""
        if self.state != "running" or not self.controller:
            return False
        where, _, pid = self.controller.rpartition(":")
        if where != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def describe(self) -> str:
        """One line: ``stopped after batch 2/4: why``, ``completed 4/4 batches`` ..."""
        if self.state == "stopped":
            return f"stopped after batch {self.stopped_after}/{self.batches}: {self.reason}"
        if self.state == "completed":
            return f"completed {self.batches} batch{'es' if self.batches != 1 else ''}"
        if self.state == "staged":
            return f"staged: uploaded and verified, not active; --promote runs it ({self.batches} batch"\
                   f"{'es' if self.batches != 1 else ''})"
        return f"{self.state.replace('_', ' ')} at batch {min(self.done_batches + 1, self.batches)}/{self.batches}"


@dataclass(frozen=True)
class Deployment:
    id: str
    created_at: float
    op: str
    plan_source: str | None
    plan_sha256: str | None
    status: str
    target_id: str | None
    hosts: tuple[HostRecord, ...] = ()
    rollout: Rollout | None = None


def _controller() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class OpenDeployment:
    """A deployment whose controller ended without finishing it: its ``pending`` hosts and
    ``context``, how it reached them (``inventory`` path, ``user``, ``private_key``)."""

    deployment: Deployment
    context: dict[str, Any]

    @property
    def pending(self) -> list[HostRecord]:
        return [h for h in self.deployment.hosts if h.status == "pending"]


def _proc_stat_start(pid: int | str) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def controller_identity() -> str:
    """This process, as an owner of open deployments: machine, boot, pid and start time."""
    return json.dumps({"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(),
                       "start": _proc_stat_start("self") or ""}, sort_keys=True)


def owner_alive(owner: str) -> bool:
    """Whether the controller process ``owner`` (``controller_identity``) still runs. One on
    another machine counts as running: this one cannot tell."""
    try:
        o = json.loads(owner)
        pid = int(o["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    if o.get("host") != socket.gethostname():
        return True
    if o.get("boot") and _boot_id() and o["boot"] != _boot_id():
        return False  # the machine rebooted since
    if Path("/proc/self/stat").exists():
        start = _proc_stat_start(pid)
        return start is not None and (not o.get("start") or start == o["start"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class Platform(NamedTuple):
    """What a host's agent last reported of its platform, and in which deployment."""

    system: str
    machine: str
    deployment_id: str | None
    libc: str = ""  # "glibc 2.36"; "" when the agent did not say (another C library, an older agent)


class RunnerFailure(NamedTuple):
    """A host that could not execute runner ``sha256``: why, in which deployment, and its
    ``uname -m`` when the bootstrap reported it ("" otherwise)."""

    reason: str
    deployment_id: str | None
    sha256: str
    machine: str


_DEPLOYMENT_COLUMNS = "id, created_at, op, plan_source, plan_sha256, status, target_id"


def _create(db: sqlite3.Connection) -> None:
    """Create what ``_SCHEMA`` declares and add the columns an older database lacks, in one
    transaction (one synced commit), and mark the database current (``SCHEMA_ID``)."""
    db.execute("BEGIN IMMEDIATE")  # two processes creating the same database: one after the other
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        _migrate(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_ID}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: sqlite3.Connection) -> None:
    """Add the columns of ``_ADDED_COLUMNS`` that an older database lacks."""
    for table, column, kind in _ADDED_COLUMNS:
        have = {str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc):
                    raise


def _text(value: Any) -> str | None:
    """``value`` as text for the history, cut to ``TASK_TEXT_LIMIT`` characters."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= TASK_TEXT_LIMIT else text[:TASK_TEXT_LIMIT] + "\n[... cut: too long to keep]"


def read_rollout(db: sqlite3.Connection, deployment_id: str) -> Rollout | None:
    """The rollout of ``deployment_id`` as recorded (also over the web UI's read-only connections)."""
    row = db.execute(
        "SELECT state, batches, done_batches, stopped_after, reason, schedule, controller FROM rollouts "
        "WHERE deployment_id = ?",
        (deployment_id,),
    ).fetchone()
    if row is None:
        return None
    rows = db.execute(
        "SELECT host, batch, state, stages_done FROM rollout_hosts WHERE deployment_id = ? ORDER BY host",
        (deployment_id,),
    ).fetchall()
    state, batches, done, stopped, reason, schedule, controller = row
    return Rollout(state, batches, done, stopped, reason, json.loads(schedule),
                   {str(h): (b, str(st)) for h, b, st, _ in rows}, {str(h): int(n) for h, _, _, n in rows},
                   controller)


def login_name() -> str:
    """Who runs this process, for the history: the login name (``SUDO_USER`` under sudo).

    The name is found as ``getpass.getuser()`` finds it (LOGNAME, USER, LNAME, USERNAME, else
    the password database), without importing getpass, which imports termios for its prompts
    (every deployment records this; docs/decisions.md)."""
    name = next((v for v in map(os.environ.get, ("LOGNAME", "USER", "LNAME", "USERNAME")) if v), "")
    if not name:
        import pwd

        try:
            name = pwd.getpwuid(os.getuid())[0]
        except KeyError:  # no such uid in the password database
            name = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {name})" if sudo and sudo != name else name


def new_id(prefix: str = "d") -> str:
    """A sortable, unique id: ``d-20261127T074501-3f9a2c``."""
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


class History:
    """The SQLite history database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._nested = 0
        self._grouped = 0  # inside grouped(): records join one open transaction
        try:
            private_dir(path.parent)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            os.chmod(path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            # every commit synced (SQLite's default, FULL): a deployment's record survives an OS
            # crash, as the history must; NORMAL would save ~8 ms per host here (docs/decisions.md)
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_ID:
                _create(self._db)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(
                f"{path}: cannot open the history database: {exc}",
                "check the path's permissions, or point RUSTLE_STATE_DB / [deployment] state_db elsewhere",
            ) from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def together(self) -> Iterator[None]:
        """The records made inside, in one transaction: one commit for all."""
        with self._tx():
            self._nested += 1
            try:
                yield
            finally:
                self._nested -= 1

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Inside, each record (or ``together()``) is a savepoint of one open transaction that
        ``commit()`` (and the exit) commits, synced: many hosts' records for one fsync, each
        still whole or absent. The caller bounds how long a record waits (fleetops._Commits)."""
        self._grouped += 1
        try:
            yield
        finally:
            self._grouped -= 1
            if not self._grouped:
                self.commit()

    def commit(self) -> None:
        """Commit (synced) the records made so far inside ``grouped()``."""
        if self._nested or not self._db.in_transaction:
            return
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}", "is the disk full, or another rustle-deploy holding the "
                                                    "database?") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._nested:
            yield self._db  # inside together(): its transaction commits
            return
        if self._grouped:
            yield from self._savepoint()
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StateError(f"{self.path}: {exc}", "is another rustle-deploy holding the database?") from exc
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("SAVEPOINT record")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}", "is another rustle-deploy holding the database?") from exc
        try:
            yield self._db
            self._db.execute("RELEASE record")
        except BaseException as exc:
            if self._db.in_transaction:  # this record only: the group's others stay
                self._db.execute("ROLLBACK TO record")
                self._db.execute("RELEASE record")
            if isinstance(exc, sqlite3.Error):
                raise StateError(f"{self.path}: {exc}", "is another rustle-deploy holding the database?") from exc
            raise

    def begin(
        self, op: str, *, plan_source: str | None = None, plan_sha256: str | None = None,
        target_id: str | None = None, deployment_id: str | None = None,
        context: dict[str, Any] | None = None, user: str | None = None,
    ) -> str:
        """Record a new deployment as running, owned by this process until ``finish``;
        ``context`` says how it reaches its hosts (for ``orphans``); ``user`` who started it
        (default: this process's login name)."""
        did = deployment_id or new_id()
        ctx = json.dumps(context or {}, sort_keys=True)
        with self._tx() as db:
            db.execute(
                "INSERT INTO deployments (id, created_at, op, plan_source, plan_sha256, status, target_id, user, "
                "context) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (did, time.time(), op, plan_source, plan_sha256, target_id, user or login_name(), ctx),
            )
            db.execute("INSERT INTO open_deployments VALUES (?, ?, ?)", (did, controller_identity(), ctx))
        return did

    def own(self, deployment_id: str, context: dict[str, Any] | None = None) -> None:
        """Make this process the owner of ``deployment_id`` (open again: a resumed rollout)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO open_deployments VALUES (?, ?, ?)",
                       (deployment_id, controller_identity(), json.dumps(context or {}, sort_keys=True)))

    def pending(self, deployment_id: str, hosts: list[tuple[str, str | None, str | None, str | None]]) -> None:
        """Each (host, binary_name, sha256, remote_dir) the deployment is about to touch, as
        ``pending`` until its outcome is recorded."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO host_outcomes (deployment_id, host, status, binary_name, sha256, previous_sha256, "
                "remote_dir, error, updated_at) VALUES (?, ?, 'pending', ?, ?, NULL, ?, NULL, ?)",
                [(deployment_id, h, b, s, d, time.time()) for h, b, s, d in hosts],
            )

    def orphans(self) -> list[OpenDeployment]:
        """Open deployments whose controller process is gone, oldest first."""
        rows = self._db.execute(
            "SELECT o.deployment_id, o.owner, o.context FROM open_deployments o "
            "JOIN deployments d ON d.id = o.deployment_id ORDER BY d.created_at, d.rowid"
        ).fetchall()
        out = []
        for did, owner, context in rows:
            if owner_alive(str(owner)):
                continue
            dep = self.get(str(did), op=None)
            if dep is None:
                continue
            try:
                ctx = json.loads(context or "{}")
            except ValueError:
                ctx = {}
            out.append(OpenDeployment(dep, ctx if isinstance(ctx, dict) else {}))
        return out

    def record_host(
        self, deployment_id: str, host: str, status: str, *, binary_name: str | None = None,
        sha256: str | None = None, previous_sha256: str | None = None,
        remote_dir: str | None = None, error: str | None = None, duration: float | None = None,
        uploaded_bytes: int | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO host_outcomes (deployment_id, host, status, binary_name, sha256, "
                "previous_sha256, remote_dir, error, updated_at, duration, uploaded_bytes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (deployment_id, host, status, binary_name, sha256, previous_sha256, remote_dir, error, time.time(),
                 duration, uploaded_bytes),
            )

    def record_artifacts(self, deployment_id: str, artifacts: int, cached: int) -> None:
        """Add to the deployment's count of artifacts it needed and of those the compilation
        cache already held (a resumed rollout compiles again: its counts add up)."""
        with self._tx() as db:
            db.execute("UPDATE deployments SET artifacts = coalesce(artifacts, 0) + ?, "
                       "artifacts_cached = coalesce(artifacts_cached, 0) + ? WHERE id = ?",
                       (artifacts, cached, deployment_id))

    def record_progress(self, deployment_id: str, progress: dict[str, tuple[str | None, int]]) -> None:
        """Each running host's current task and how many it finished (the UI's live view)."""
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO host_progress VALUES (?, ?, ?, ?, ?)",
                           [(deployment_id, h, t, n, time.time()) for h, (t, n) in progress.items()])

    def record_tasks(self, deployment_id: str, host: str, run_id: str, events: list[dict[str, Any]],
                     first: int = 0) -> None:
        """The task and handler results of ``host``'s run, as its events carried them: a
        ``no_log`` result arrives censored by the runtime (only its status keys), and is kept so.
        ``first``: the number (``seq``) of the first result in ``events`` (results recorded while
        the host runs, then all of them again, with the same numbers, when it ends)."""
        rows = []
        for seq, ev in enumerate((e for e in events if e.get("event") in ("task_result", "handler_result")), first):
            diff = ev.get("diff")
            rows.append((
                deployment_id, host, run_id, seq, int(ev.get("event") == "handler_result"),
                _text(ev.get("task") or ev.get("id")), _text(ev.get("module")), _text(ev.get("status")),
                ev.get("rc") if isinstance(ev.get("rc"), int) else None,
                _text(ev.get("msg")), _text(ev.get("stdout")), _text(ev.get("stderr")),
                None if diff in (None, "", [], {}) else _text(json.dumps(diff, default=str)),
                ev.get("duration") if isinstance(ev.get("duration"), (int, float)) else None,
                int("censored" in ev), int(bool(ev.get("ignored"))),
            ))
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO task_results (deployment_id, host, run_id, seq, handler, task, "
                           "module, status, rc, msg, stdout, stderr, diff, duration, censored, ignored) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def count_tasks(self, run_id: str, host: str) -> int:
        """How many task and handler results of ``host``'s run are recorded."""
        return int(self._db.execute("SELECT count(*) FROM task_results WHERE run_id = ? AND host = ?",
                                    (run_id, host)).fetchone()[0])

    def record_run(self, deployment_id: str, host: str, run_id: str, exit_code: int | None, recap: dict[str, Any] | None) -> None:
        recap = recap or {}
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (deployment_id, host, run_id, exit_code, recap.get("ok"), recap.get("changed"),
                 recap.get("failed"), recap.get("skipped"), time.time()),
            )

    def holders(self, sha256s: set[str]) -> set[tuple[str, str | None, str]]:
        """(host, remote_dir, sha256) for every host this history saw ending with one of
        ``sha256s`` in place (activated, already current, or staged) and not cleaned up since; a
        hint, the host has the last word."""
        if not sha256s:
            return set()
        marks = ",".join("?" * len(sha256s))
        with self._tx() as db:
            rows = db.execute(
                f"SELECT DISTINCT o.host, o.remote_dir, o.sha256 FROM host_outcomes o "  # noqa: S608 - placeholders only
                f"WHERE o.status IN ('activated', 'unchanged', 'staged') AND o.sha256 IN ({marks}) "
                f"AND NOT EXISTS ({_CLEANED_SINCE.format(t='o.updated_at')})",
                sorted(sha256s),
            ).fetchall()
        return {(str(h), d if d is None else str(d), str(s)) for h, d, s in rows}

    def record_runner(self, host: str, remote_dir: str, sha256: str) -> None:
        """``host`` ran the native runner ``sha256`` from ``remote_dir/runners`` (a failure of
        another runner stays: it keeps the host's machine, which picked this one)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO runners VALUES (?, ?, ?, ?)", (host, remote_dir, sha256, time.time()))
            db.execute("DELETE FROM runner_failures WHERE host = ? AND remote_dir = ? AND sha256 = ?",
                       (host, remote_dir, sha256))

    def record_objects(self, host: str, remote_dir: str, sha256s: list[str]) -> None:
        """``host`` holds these objects in ``remote_dir/objects`` (parts artifacts share, the
        agent's done line said so): a later artifact holding them is pushed without them."""
        now = time.time()
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                           [(host, remote_dir, sha, now) for sha in sha256s])

    def object_holders(self, sha256s: set[str]) -> dict[str, set[tuple[str, str]]]:
        """sha256 -> (host, remote_dir) of every host recorded holding that object and not
        cleaned up since; a hint: a host that lost one (a deploy of other modules pruned it)
        asks for what it lacks."""
        if not sha256s:
            return {}
        marks = ",".join("?" * len(sha256s))
        with self._tx() as db:
            rows = db.execute(
                f"SELECT o.sha256, o.host, o.remote_dir FROM objects o WHERE o.sha256 IN ({marks}) "  # noqa: S608
                f"AND NOT EXISTS ({_CLEANED_SINCE.format(t='o.recorded_at')})",
                sorted(sha256s),
            ).fetchall()
        out: dict[str, set[tuple[str, str]]] = {}
        for sha, host, remote_dir in rows:
            out.setdefault(str(sha), set()).add((str(host), str(remote_dir)))
        return out

    def record_runner_failure(self, host: str, remote_dir: str, sha256: str, reason: str,
                              deployment_id: str | None, machine: str = "") -> None:
        """``host`` (whose ``uname -m`` is ``machine``, when known) could not execute runner
        ``sha256`` from ``remote_dir``: ``--format auto`` does not send it that runner again
        (``runner_failures``), but the one built for its machine, or pyz."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO runner_failures "
                       "(host, remote_dir, sha256, reason, deployment_id, recorded_at, machine) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (host, remote_dir, sha256, reason, deployment_id, time.time(), machine or None))

    def record_platform(self, host: str, remote_dir: str, system: str, machine: str,
                        deployment_id: str | None, libc: str | None = "") -> None:
        """``host``'s agent (Python's or the runner's) said it runs on ``system``/``machine``
        (``uname -s``/``-m``) with the C library ``libc`` in ``deployment_id``: ``--format auto``
        builds its next runner for that machine, and ships none that needs a newer glibc
        (``host_platforms``; the last report wins). ``libc`` None: not known from this report
        (a static runner carries its own glibc and reports that one), the recorded one stays."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO host_platforms "
                       "(host, remote_dir, system, machine, deployment_id, recorded_at, libc) "
                       "VALUES (?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT libc FROM host_platforms "
                       "WHERE host = ? AND remote_dir = ?)))",
                       (host, remote_dir, system or None, machine, deployment_id, time.time(),
                        None if libc is None else libc or "", host, remote_dir))

    def platforms(self, hosts: Iterable[tuple[str, str]]) -> dict[str, Platform]:
        """Of ``hosts`` (name, remote_dir): the machine each last reported, by name."""
        wanted = set(hosts)
        if not wanted:
            return {}
        with self._tx() as db:
            rows = db.execute("SELECT host, remote_dir, system, machine, deployment_id, libc "
                              "FROM host_platforms").fetchall()
        return {str(h): Platform(str(sy or ""), str(m), d, str(lc or "")) for h, rd, sy, m, d, lc in rows
                if (h, rd) in wanted}

    def runner_failures(self, hosts: Iterable[tuple[str, str]]) -> dict[str, RunnerFailure]:
        """Of ``hosts`` (name, remote_dir): those that could not execute a runner, by name."""
        wanted = set(hosts)
        if not wanted:
            return {}
        with self._tx() as db:
            rows = db.execute("SELECT host, remote_dir, reason, deployment_id, sha256, machine "
                              "FROM runner_failures").fetchall()
        return {str(h): RunnerFailure(str(r), d, str(s), str(m or "")) for h, rd, r, d, s, m in rows
                if (h, rd) in wanted}

    def held_runners(self, cleaned: bool = False) -> dict[tuple[str, str], str]:
        """(host, remote_dir) -> the runner this history last saw it run, not cleaned up since;
        with ``cleaned``, also where a cleanup removed it since (the runner such a host ran,
        which can clean it again where there is no Python)."""
        since = "" if cleaned else f"WHERE NOT EXISTS ({_CLEANED_SINCE.format(t='o.recorded_at')}) "
        with self._tx() as db:
            rows = db.execute(
                f"SELECT o.host, o.remote_dir, o.sha256 FROM runners o {since}ORDER BY o.recorded_at",  # noqa: S608
            ).fetchall()
        return {(str(h), str(d)): str(s) for h, d, s in rows}

    def runner_holders(self, sha256: str) -> set[tuple[str, str]]:
        """(host, remote_dir) of every host this history saw running runner ``sha256`` and not
        cleaned up since; a hint: a host that lost it answers ``need_runner`` and gets it."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT o.host, o.remote_dir FROM runners o WHERE o.sha256 = ? "  # noqa: S608 - a constant
                f"AND NOT EXISTS ({_CLEANED_SINCE.format(t='o.recorded_at')})",
                (sha256,),
            ).fetchall()
        return {(str(h), str(d)) for h, d in rows}

    def begin_rollout(self, deployment_id: str, schedule: dict[str, Any], batches: int, hosts: list[str]) -> None:
        """Record a deployment's rollout schedule; every host starts ``pending``."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO rollouts VALUES (?, 'running', ?, 0, NULL, NULL, ?, ?)",
                       (deployment_id, batches, json.dumps(schedule), _controller()))
            db.executemany("INSERT OR REPLACE INTO rollout_hosts VALUES (?, ?, NULL, 'pending', 0)",
                           [(deployment_id, h) for h in hosts])

    def resume_rollout(self, deployment_id: str) -> None:
        """Mark a stopped or interrupted rollout as running again (``--resume``)."""
        with self._tx() as db:
            db.execute("UPDATE deployments SET status = 'running' WHERE id = ?", (deployment_id,))
            db.execute("UPDATE rollouts SET state = 'running', stopped_after = NULL, reason = NULL, controller = ? "
                       "WHERE deployment_id = ?", (_controller(), deployment_id))

    def record_rollout_host(self, deployment_id: str, host: str, batch: int | None, state: str,
                            stages_done: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO rollout_hosts VALUES (?, ?, ?, ?, ?)",
                       (deployment_id, host, batch, state, stages_done))

    def record_batch_done(self, deployment_id: str, number: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE rollouts SET done_batches = ? WHERE deployment_id = ?", (number, deployment_id))

    def finish_rollout(self, deployment_id: str, state: str, stopped_after: int | None = None,
                       reason: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE rollouts SET state = ?, stopped_after = ?, reason = ? WHERE deployment_id = ?",
                       (state, stopped_after, reason, deployment_id))

    def rollout(self, deployment_id: str) -> Rollout | None:
        return read_rollout(self._db, deployment_id)

    def cleaned_since(self, host: str, remote_dir: str | None, since: float) -> str | None:
        """The id of the latest cleanup of ``host``'s ``remote_dir`` at or after ``since``, if any."""
        row = self._db.execute(
            "SELECT c.deployment_id FROM host_outcomes c JOIN deployments d ON d.id = c.deployment_id "
            "WHERE d.op = 'cleanup' AND c.status = 'cleanup' AND c.host = ? AND c.remote_dir IS ? "
            "AND c.updated_at >= ? ORDER BY c.updated_at DESC LIMIT 1",
            (host, remote_dir, since),
        ).fetchone()
        return None if row is None else str(row[0])

    def finish(self, deployment_id: str, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE deployments SET status = ?, finished_at = ? WHERE id = ?",
                       (status, time.time(), deployment_id))
            db.execute("DELETE FROM open_deployments WHERE deployment_id = ?", (deployment_id,))

    def get(self, deployment_id: str | None = None, *, op: str | None = "deploy") -> Deployment | None:
        """One deployment with its hosts; None means the latest (of ``op``)."""
        if deployment_id is None:
            row = self._db.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE (? IS NULL OR op = ?) "
                "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (op, op),
            ).fetchone()
        else:
            row = self._db.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ? AND (? IS NULL OR op = ?)",
                (deployment_id, op, op),
            ).fetchone()
        if row is None:
            return None
        hosts = tuple(
            HostRecord(*r)
            for r in self._db.execute(
                "SELECT host, status, binary_name, sha256, previous_sha256, remote_dir, error "
                "FROM host_outcomes WHERE deployment_id = ? ORDER BY host",
                (row[0],),
            )
        )
        did, created_at, op, plan_source, plan_sha256, status, target_id = row
        return Deployment(did, created_at, op, plan_source, plan_sha256, status, target_id, hosts=hosts,
                          rollout=self.rollout(did))

    def latest(self, *, status: str, op: str = "deploy") -> Deployment | None:
        """The latest deployment of ``op`` in ``status`` (``staged``, for ``--promote``)."""
        row = self._db.execute(
            "SELECT id FROM deployments WHERE op = ? AND status = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (op, status),
        ).fetchone()
        return None if row is None else self.get(row[0], op=op)

    def list(self, limit: int = 50) -> list[Deployment]:
        ids = [r[0] for r in self._db.execute(
            "SELECT id FROM deployments ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,)
        )]
        return [d for d in (self.get(i, op=None) for i in ids) if d is not None]
