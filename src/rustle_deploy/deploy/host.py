"""The per-host pipeline: connect, start the agent, upload if asked, stream events, collect the outcome.

One connection and one exec per host per command. The exec runs a one-line POSIX-sh
interpreter discovery that starts Python with a short bootstrap; the bootstrap reads the agent
source and the JSON request from stdin (both sent with the exec request, so the warm path has
no extra round trip) and hands over to ``agent.main``. docs/remote.md is the protocol.

Every failure becomes data: ``HostOutcome.error`` holds a ``HostError``; nothing but bugs and
cancellation escapes ``deploy_host``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import marshal
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ChecksumMismatch, HostError, RemoteError, RunnerNotExecutable, TransferError
from ..model import Host, RunnerSpec, run_vars, tag_unsafe
from ..transport import ConnectFn, Connection, Session, default_connect
from ..transport.options import (
    EXIT_NEED_RUNNER,
    AgentLaunch,
    agent_launch,
    become_password,
    become_password_variables,
    remote_command,
)
from .fetched import write_fetched

log = logging.getLogger(__name__)

OPS = ("deploy", "run", "rollback", "cleanup", "status", "health")
EXIT_AGENT_ERROR = 20  # agent.EXIT_AGENT_ERROR
UPLOAD_CHUNK = 1 << 18
MAGIC = b"RUSTLE-AGENT"

# (offset, chunk) -> chunk to send, or None to cut the connection there.
UploadFilter = Callable[[int, bytes], "bytes | None"]
EventFn = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class RunOptions:
    """How the artifact's ``run`` is invoked on the host."""

    run_id: str
    check: bool = False
    diff: bool = False
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    verbosity: int = 0
    plays: tuple[int, ...] | None = None  # a rollout stage: only these plays (plan indices)
    carry: str | None = None  # a rollout: keep registered results and set_fact under this id
    # -K: the become password, given to sudo on the host; never shown (repr), logged or stored
    become_password: str | None = field(default=None, repr=False)
    phase: int | None = None  # a play cut into phases: only this phase's tasks (docs/phases.md)
    inject: dict[str, Any] | None = None  # carried in from another run: {"vars", "notified"}
    share: str | None = None  # "vars" / "state": send back what this run set / the host's state
    unreachable: str | None = None  # the phase's connection failed so: its tasks are unreachable


@dataclass(frozen=True)
class HealthCheck:
    """A rollout's health gate on one host: ``command`` (already templated for the host) run
    by ``sh -c`` until it exits 0, and/or ``url`` fetched from the host until it answers 2xx,
    at most ``retries`` more times, ``interval`` seconds apart, within ``timeout`` seconds in
    all."""

    command: str
    url: str = ""
    retries: int = 3
    interval: float = 5.0
    timeout: float = 60.0


@dataclass(frozen=True)
class HostJob:
    """What to do on one host.

    ``op``: deploy (upload if missing, verify if asked, activate, run if ``run``; with
    ``push`` the artifact follows the request at once instead of when the agent asks), run (the
    current release of ``binary_name``; ``sha256`` if given must match it), rollback (to
    ``rollback_to`` or the previous release; every release when ``binary_name`` is None; then
    run the restored release if ``run``), cleanup (only what rustle-deploy made; with ``dry_run``
    it only says what it would remove and leave), status, health (``health``). ``upload_filter``
    is a fault-injection seam for tests only: it sees each
    chunk of the upload and may change it or return None to cut the connection.
    """

    host: Host
    op: str
    artifact: Path | None = None
    sha256: str | None = None
    size: int | None = None
    binary_name: str | None = None
    deployment_id: str | None = None
    verify: bool = False
    run: RunOptions | None = None
    rollback_to: str | None = None
    bytecode_tag: str | None = None  # the artifact carries .pyc files for this interpreter
    push: bool = False  # send the artifact right behind the request (deploy only)
    runner: Path | None = None  # native format: the rustle-runner binary that plays the agent
    push_runner: bool = False  # send the runner's bytes ahead of the request
    lock_timeout: float = 60.0
    dry_run: bool = False  # cleanup only: list what would be removed and left, change nothing
    upload_filter: UploadFilter | None = None
    health: HealthCheck | None = None  # op health: the gate's command and its patience
    activate: bool = True  # deploy: False stages (upload, verify, prepare; current stays as it is)
    trace: bool = False  # the agent says when each stage starts (tracing.py's spans)
    # runs of the artifact's bytes other artifacts share, (offset, size, sha256) each
    # (artifact_objects); a push leaves out those named in ``without`` (the host holds them)
    objects: tuple[tuple[int, int, str], ...] = ()
    without: frozenset[str] = frozenset()


@dataclass
class HostOutcome:
    """One host's result. ``ok`` is False when ``error`` is set or a task failed (run_exit 2)."""

    host: str
    ok: bool = False
    error: HostError | None = None
    uploaded: bool = False
    uploaded_bytes: int = 0  # artifact (and lib object) bytes sent
    sha256: str | None = None
    previous_sha256: str | None = None
    activated: bool = False
    rolled_back: bool = False
    run_exit: int | None = None
    recap: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    round_trips: int = 0
    duration: float = 0.0
    agent: dict[str, Any] | None = None  # the agent's final "done" line (status, cleanup detail)
    # when (time.time() on the controller) the host's part started, its connection was up, and
    # each stage the agent announced (HostJob.trace) began: what its trace spans are cut from
    started_at: float = 0.0
    stages: list[tuple[str, float]] = field(default_factory=list)
    python: str | None = None  # the host's Python version that ran the agent


@cache
def agent_source() -> bytes:
    """The agent's source, shipped on every connection."""
    return (Path(__file__).with_name("agent.py")).read_bytes()


@cache
def agent_code() -> bytes:
    """The agent compiled by this interpreter, for hosts whose Python has the same cache tag."""
    return marshal.dumps(compile(agent_source(), "rustle_agent.py", "exec", dont_inherit=True))


def build_request(job: HostJob) -> dict[str, Any]:
    """The JSON request the agent reads."""
    req: dict[str, Any] = {
        "op": job.op,
        "remote_dir": job.host.remote_dir,
        "host": job.host.name,
        "binary_name": job.binary_name,
        "sha256": job.sha256,
        "size": job.size,
        "deployment_id": job.deployment_id,
        "verify": job.verify,
        "rollback_to": job.rollback_to,
        "lock_timeout": job.lock_timeout,
        "bytecode_tag": job.bytecode_tag,
        "push": bool(job.push and job.op == "deploy"),
        "dry_run": bool(job.dry_run and job.op == "cleanup"),
        "run": None,
    }
    if job.trace:
        req["trace"] = True
    if job.objects and job.op == "deploy":
        req["objects"] = [{"offset": offset, "size": size, "sha256": sha} for offset, size, sha in job.objects]
        if req["push"] and job.without:
            req["without"] = sorted(job.without)
    if not job.activate and job.op == "deploy":
        req["activate"] = False
    if job.health is not None:
        h = job.health
        req["health"] = {"command": h.command, "url": h.url, "retries": h.retries, "interval": h.interval,
                         "timeout": h.timeout}
    if job.run is not None:
        r = job.run
        req["run"] = {
            "run_id": r.run_id, "check": r.check, "diff": r.diff, "tags": list(r.tags),
            "skip_tags": list(r.skip_tags), "verbosity": r.verbosity,
        }
        if job.runner is None:  # a native program has its host's values compiled in
            # the host's own variables: only in its own request (docs/artifact.md, "Host variables")
            req["run"]["vars"] = tag_unsafe(run_vars(job.host))
        if r.plays is not None:
            req["run"]["plays"] = list(r.plays)
        # in this request only (stdin of the ssh channel): the host's own become password
        # variable (a connection secret, in no artifact) over -K, as ansible-core's variables win
        password = become_password(job.host)
        password = r.become_password if password is None else password
        if password is not None:
            req["run"]["become_password"] = password
        named = become_password_variables(job.host)
        if named:  # each by its name: the runtime weighs them against the play's, per task method
            req["run"]["become_passwords"] = named
        if r.carry is not None:
            req["run"]["carry"] = r.carry
        if r.phase is not None:
            req["run"]["phase"] = r.phase
        if r.inject:
            req["run"]["inject"] = r.inject
        if r.share:
            req["run"]["share"] = r.share
    return req


def preamble(request: dict[str, Any]) -> bytes:
    """Header line, agent source, request: what the bootstrap reads from stdin."""
    body = json.dumps(request, default=str).encode()
    src = agent_source()
    code = agent_code()
    tag = sys.implementation.cache_tag.encode()
    return b"%s %d %d %d %s\n" % (MAGIC, len(src), len(body), len(code), tag) + src + code + body


def runner_identity(job: HostJob) -> RunnerSpec | None:
    """The job's runner as the bootstrap knows it (its sha256 is its name on hosts; ``size``
    bytes of it are sent, gzip'd); None for Python jobs."""
    if job.runner is None:
        return None
    from ..compiler.runner import spec

    return spec(job.runner)


def native_preamble(job: HostJob, request: dict[str, Any]) -> tuple[bytes, bytes]:
    """What the native bootstrap reads, around the runner's bytes (sent from the file when
    ``job.push_runner``): the flag line, then the request."""
    assert job.runner is not None
    body = json.dumps(request, default=str).encode() + b"\n"
    return (b"1\n" if job.push_runner else b"0\n"), body


class _NeedRunner(Exception):
    """The host has no runner and none was sent: send it on a second connection."""


def _check_job(job: HostJob) -> None:
    name = job.host.name
    if job.op not in OPS:
        raise RemoteError(name, f"{name}: unknown operation {job.op!r}", f"use one of {', '.join(OPS)}")
    if job.op == "deploy" and (job.artifact is None or not job.sha256 or job.size is None or not job.binary_name):
        raise RemoteError(name, f"{name}: a deploy needs artifact, sha256, size and binary_name", None)
    if job.op == "run" and (not job.binary_name or job.run is None):
        raise RemoteError(name, f"{name}: a run needs binary_name and run options", None)
    if job.op == "health" and job.health is None:
        raise RemoteError(name, f"{name}: a health check needs its command", None)


# Entries that are the same in many artifacts, each group one run of bytes (the compiler writes
# entries sorted by name): the module bridge's code, the runtime, Jinja2 and MarkupSafe.
OBJECT_PREFIXES = ("bridge/lib/", "jinja2/", "markupsafe/", "rustle_runtime/")
OBJECT_MIN = 8192  # smaller runs are not worth a file on the host


def artifact_objects(path: Path) -> tuple[tuple[int, int, str], ...]:
    """(offset, size, sha256) of each run of a pyz artifact's bytes that other artifacts share:
    the entries under each of ``OBJECT_PREFIXES``. A zip entry's local header holds no offset,
    so the same files give the same bytes at any place in any artifact: the host keeps each run
    as an object of its own (``objects/<sha256>``) and a later artifact holding it travels
    without it (docs/remote.md, "Objects artifacts share"). Empty for a native artifact."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return _artifact_objects(path, st.st_size, st.st_mtime_ns)


@cache
def _artifact_objects(path: Path, size: int, mtime_ns: int) -> tuple[tuple[int, int, str], ...]:
    import hashlib
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.header_offset)
            start_dir = getattr(zf, "start_dir", None)  # where the central directory begins
    except (OSError, zipfile.BadZipFile):
        return ()  # a native artifact is no zip
    if start_dir is None:
        return ()
    out = []
    with open(path, "rb") as f:
        for prefix in OBJECT_PREFIXES:
            run = [i for i, info in enumerate(infos) if info.filename.startswith(prefix)]
            if not run or run != list(range(run[0], run[-1] + 1)):
                continue
            offset = infos[run[0]].header_offset
            end = infos[run[-1] + 1].header_offset if run[-1] + 1 < len(infos) else start_dir
            if end - offset < OBJECT_MIN:
                continue
            f.seek(offset)
            data = f.read(end - offset)
            out.append((offset, len(data), hashlib.sha256(data).hexdigest()))
    return tuple(sorted(out))


async def _upload(session: Session, conn: Connection, job: HostJob, out: HostOutcome,
                  ranges: list[tuple[int, int]] | None = None) -> None:
    """Send the artifact (or those byte ranges of its file); when the agent stopped reading, its
    own error line (a full disk, say) is the better explanation than the broken pipe, so it
    wins when it arrives."""
    try:
        out.uploaded_bytes += await _send_artifact(session, conn, job, ranges)
    except TransferError as exc:
        try:
            while raw := await asyncio.wait_for(session.readline(), 5):
                obj = json.loads(raw) if raw.startswith(b"{") else None
                if isinstance(obj, dict) and obj.get("agent") == "error":
                    raise _agent_error(job, obj) from exc
                if isinstance(obj, dict) and obj.get("agent") == "no_python":  # it stopped before reading
                    raise _no_python(job, agent_launch(job.host)) from exc
        except (TimeoutError, ValueError, OSError):
            pass
        raise


async def _send_artifact(session: Session, conn: Connection, job: HostJob,
                         ranges: list[tuple[int, int]] | None) -> int:
    """Send the artifact's bytes (``ranges`` of them: (start, end) in order); return how many."""
    assert job.artifact is not None and job.size is not None
    name = job.host.name
    offset = 0
    try:
        f = open(job.artifact, "rb")  # noqa: SIM115 - closed below; chunks come from page cache
    except OSError as exc:
        raise TransferError(
            name, f"{job.artifact}: cannot read the artifact: {exc.strerror}", "build it again"
        ) from exc
    with f:
        if os.fstat(f.fileno()).st_size != job.size:
            raise TransferError(
                name,
                f"{job.artifact}: is {os.fstat(f.fileno()).st_size} bytes, the job says {job.size}",
                "the artifact changed after it was built; build it again",
            )
        for start, end in ranges if ranges is not None else [(0, job.size)]:
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(UPLOAD_CHUNK, left))
                if not chunk:
                    raise TransferError(name, f"{job.artifact}: ended while being sent", "build it again")
                left -= len(chunk)
                if job.upload_filter is not None:
                    filtered = job.upload_filter(offset, chunk)
                    if filtered is None:
                        conn.abort()
                        raise TransferError(
                            name, f"{name}: upload cut after {offset} bytes (test fault injection)", None
                        )
                    chunk = filtered
                await session.write(chunk)
                offset += len(chunk)
    return offset


def _ranges(job: HostJob, without: frozenset[str]) -> list[tuple[int, int]] | None:
    """The byte ranges of the artifact to send: all but the objects named in ``without``."""
    if not without or job.size is None:
        return None
    out, at = [], 0
    for offset, size, sha in job.objects:
        if sha in without:
            out.append((at, offset))
            at = offset + size
    out.append((at, job.size))
    return out


def _after_the_fact(line: dict[str, Any]) -> str:
    """What the failed operation had already done, as the agent's error line says."""
    sha = str(line.get("sha256") or "")[:12]
    if line.get("activated"):
        prev = str(line.get("previous") or "")[:12]
        return (f"; release {sha} had been activated and is current on the host (its history.jsonl says so"
                f"{'; ' + prev + ' is the previous release' if prev else ''}), "
                f"so the failure came after the switch{' during the run' if line.get('stage') == 'run' else ''}")
    if line.get("stage") in ("activate", "history"):
        return f"; release {sha} was not activated: the current release is unchanged"
    return ""


def _runner_install_hint(line: dict[str, Any]) -> str:
    """What to do when the runner could not be installed: the target that fits the host's
    machine (exit 126), the static build (127: the loader or C library is missing or too old)."""
    from ..compiler.toolchain import controller_target, linux_target

    machine = str(line.get("machine") or "")
    fits = linux_target(machine) if machine else None
    if line.get("exit") == 126:
        if fits is None:
            return f"this host is {machine or 'of an unknown machine'}: no rustle-runner exists for it; use --format pyz"
        return (f"this host is {machine}: give it the runner built for it, rustle_target={fits} in the inventory "
                f"(or -t {fits}), or use --format pyz")
    if line.get("exit") == 127:
        return (f"the runner could not be loaded (the host's C library is older than this controller's, or "
                f"missing): give it the static build, rustle_target={fits or controller_target()}+static in the "
                "inventory (or -t ...+static), or use --format pyz")
    return ("nothing was left half-written; check the remote directory's free space, or use --format pyz "
            f"for hosts that are not {os.uname().sysname} {os.uname().machine} like this controller")


def _agent_error(job: HostJob, line: dict[str, Any]) -> HostError:
    name = job.host.name
    kind = line.get("kind")
    msg = f"{name}: {line.get('message', 'the agent failed')}{_after_the_fact(line)}"
    if kind in ("checksum", "verify_failed", "damaged") and line.get("expected") and line.get("actual") and line["expected"] != line["actual"]:
        err = ChecksumMismatch(
            name,
            str(line["expected"]),
            str(line["actual"]),
            "the bytes changed in transit or on the host's disk; deploy again"
            + ("; the host kept its previous release" if kind == "verify_failed" else "")
            + ("; a deployment replaces a copy that changed on the host" if kind == "damaged" else ""),
        )
        err.message = f"{name}: {line.get('message')}: sha256 mismatch: expected {line['expected']}, got {line['actual']}"
        err.args = (err.message,)
        return err
    hints = {
        "short_read": ("upload cut: the connection closed before the whole artifact arrived", TransferError),
        "remote_dir": (
            f"set rustle_remote_dir for {name} to a directory the SSH user can create and write",
            RemoteError,
        ),
        "lock_busy": ("another deployment to this host is still running; wait for it, then retry", RemoteError),
        "verify_failed": ("the artifact's own check failed; rebuild it and deploy again", RemoteError),
        "not_deployed": ("deploy first (rustle-deploy --deploy-only or without it)", RemoteError),
        "no_previous": ("there is nothing older to go back to; see --list-deployments", RemoteError),
        "disk_full": (
            "free space on the host (or point rustle_remote_dir at a roomier filesystem)"
            + ("; then run the plan again (rustle-exec, or deploy again with --run)" if line.get("activated") else
               "; nothing partial was kept and the current release is unchanged"),
            TransferError,
        ),
        "damaged": ("deploy it again: a deployment replaces a copy that changed on the host", RemoteError),
        "io": ("check the remote directory's filesystem and permissions", RemoteError),
        "runner_install": (_runner_install_hint(line), TransferError),
    }
    hint, cls = hints.get(str(kind), ("this is a bug in rustle-deploy's agent; please report it", RemoteError))
    if kind == "runner_install" and line.get("exit") in (126, 127):  # it could not be executed there
        return RunnerNotExecutable(
            name, f"{msg} (exit {line['exit']} on {line.get('machine') or 'an unknown machine'})",
            f"{hint}; --format auto deploys pyz to this host instead, and remembers it",
            str(line.get("machine") or ""))
    return cls(name, msg, hint)


def _wrong_runner(job: HostJob, line: dict[str, Any]) -> HostError:
    """The host the runner was sent to is of another machine, or its C library cannot load it
    (``runner_command``'s probe): nothing was installed."""
    name = job.host.name
    ident = runner_identity(job)
    machine, libc = str(line.get("machine") or ""), str(line.get("libc") or "")
    system = str(line.get("system") or "")
    sha = ident.sha256[:12] if ident else "?"
    if system != "Linux" or (ident is not None and ident.machines and machine not in ident.machines):
        built = f"Linux {ident.machines[0]}" if ident and ident.machines else "Linux"
        why = f"it is {system or '?'} {machine or '?'}, rustle-runner {sha} is built for {built}"
        hint = (_runner_install_hint({"exit": 126, "machine": machine}) if system == "Linux"
                else "no rustle-runner exists for it; use --format pyz")
    else:
        need = ".".join(map(str, ident.glibc)) if ident and ident.glibc else "?"
        why = f"its C library is {libc or 'not glibc'}, rustle-runner {sha} needs glibc {need} or newer"
        hint = _runner_install_hint({"exit": 127, "machine": machine})
    return RunnerNotExecutable(
        name, f"{name}: cannot run rustle-runner {sha}: {why} (nothing was installed)",
        f"{hint}; --format auto deploys the runner that fits (or pyz) to this host instead, and remembers it",
        machine, libc, system)


def _no_python(job: HostJob, launch: AgentLaunch) -> HostError:
    name = job.host.name
    tried = launch.python_interpreter or ", ".join(launch.fallback)
    return RemoteError(
        name,
        f"{name}: no usable Python 3.8+ on {name} (tried {tried})",
        "install python3 (3.8 or newer) on the host, or set ansible_python_interpreter to one",
    )


def _failure_without_done(job: HostJob, launch: AgentLaunch, status: int | None, stderr: bytes) -> HostError:
    known = _become_failure(job, launch, status, stderr)
    if known is not None:
        return known
    tail = stderr.decode("utf-8", "replace").strip()[-2000:] or "(no output on stderr)"
    return RemoteError(
        job.host.name,
        f"{job.host.name}: the agent ended without a result (exit status {status}): {tail}",
        "check that /bin/sh and python3 work on the host; run with -vvv for details",
    )


def _become_failure(job: HostJob, launch: AgentLaunch, status: int | None, stderr: bytes) -> HostError | None:
    """What the connection-level become's own words say went wrong, if they say it: sudo asking
    for a password, a become program the host does not have."""
    name = job.host.name
    text = stderr.decode("utf-8", "replace").strip()
    if launch.become and ("password is required" in text or "a terminal is required" in text):
        return RemoteError(
            name,
            f"{name}: sudo -n -u {launch.become_user} asks for a password",
            "allow passwordless sudo (NOPASSWD) for the connecting user, or set ansible_become=false",
        )
    exe = (launch.become_exe or "").split()
    if launch.become and status == 127 and exe and exe[0] in text:
        return RemoteError(
            name,
            f"{name}: the become program {exe[0]!r} was not found on the host: {text[-500:]}",
            "set ansible_become_exe (or ansible_sudo_exe) to the path of sudo on this host",
        )
    return None


async def deploy_host(
    job: HostJob,
    *,
    connect: ConnectFn = default_connect,
    on_event: EventFn | None = None,
    outcome: HostOutcome | None = None,
) -> HostOutcome:
    """Carry out ``job`` on its host and return the outcome; failures are in ``outcome.error``.

    Pass ``outcome`` to keep what was learnt so far if the caller cancels (fleet timeouts).
    """
    out = outcome if outcome is not None else HostOutcome(host=job.host.name)
    start = time.monotonic()
    out.started_at = time.time()
    try:
        try:
            await _drive(job, connect, on_event, out)
        except _NeedRunner:
            await _drive(replace(job, push_runner=True), connect, on_event, out)
    except HostError as exc:
        out.error = exc
    finally:
        out.duration = time.monotonic() - start
    out.ok = out.error is None and out.run_exit in (None, 0)
    return out


async def _drive(job: HostJob, connect: ConnectFn, on_event: EventFn | None, out: HostOutcome) -> None:
    _check_job(job)
    launch = agent_launch(job.host, runner_identity(job))
    command = remote_command(launch)
    request = build_request(job)
    body = b""
    if job.runner is None:
        data = preamble(request)
    else:
        data, body = native_preamble(job, request)
    conn = await connect(job.host)
    clean = False
    unsent: TransferError | None = None
    try:
        session = await conn.start(command, data)
        if job.trace:
            out.stages.append(("connect", out.started_at))  # from the start to the first stage
        if job.runner is not None:
            if job.push_runner:
                from ..compiler.runner import packed

                await session.write_file(packed(job.runner), runner_identity(job).size)  # type: ignore[union-attr]
            try:
                await session.write(body)
            except TransferError as exc:
                # a host without the runner may answer need_runner and exit before it reads
                # the request: ssh then stops reading, and its exit status is the answer
                if not job.push_runner and exc.exit_status == EXIT_NEED_RUNNER:
                    raise _NeedRunner() from exc
                if exc.exit_status is None:
                    raise
                # the bootstrap ended before it read the request (a runner it sent could not be
                # executed there: exit 126, then its error line and exit 20): the lines it wrote
                # before it ended, read below, say why
                unsent = exc
        if job.push and job.op == "deploy" and unsent is None:
            # the agent reads it, or skips it if it has it
            await _upload(session, conn, job, out, _ranges(job, job.without))
            out.uploaded = True  # sent; the agent's "done" says whether it was needed
        done: dict[str, Any] | None = None
        error: HostError | None = None
        while True:
            raw = await session.readline()
            out.round_trips = conn.round_trips.count
            if not raw:
                break
            try:
                obj = json.loads(raw)
            except ValueError:
                log.debug("%s: not a protocol line: %r", job.host.name, raw[:200])
                continue
            if not isinstance(obj, dict):
                continue
            if obj.get("event") == "fetched":  # a fetch task's file: written here, not kept
                write_fetched(job.artifact, job.host.name, obj)
                continue
            if "event" in obj:
                out.events.append(obj)
                if obj.get("event") == "recap":
                    out.recap = obj
                if on_event is not None:
                    on_event(job.host.name, obj)
                continue
            kind = obj.get("agent")
            if kind == "stage":
                out.stages.append((str(obj.get("stage")), time.time()))
            elif kind == "need_upload":  # all of it but the objects the agent has
                without = frozenset(str(s) for s in obj.get("without") or ())
                await _upload(session, conn, job, out, _ranges(job, without))
                out.uploaded = True
            elif kind == "done":
                done = obj
            elif kind == "error":
                error = _agent_error(job, obj)
                _apply_progress(out, obj)
            elif kind == "no_python":
                error = _no_python(job, launch)
            elif kind == "need_runner" and not job.push_runner:
                raise _NeedRunner()
            elif kind == "wrong_runner":  # the bootstrap's probe: it would not execute there
                error = _wrong_runner(job, obj)
            elif kind == "health":  # one attempt of a health gate, shown as it ends
                event = {"event": "health", "attempt": obj.get("attempt"), "healthy": obj.get("healthy"),
                         "output": obj.get("output")}
                event.update({k: obj[k] for k in ("rc", "status") if k in obj})  # command, URL
                out.events.append(event)
                if on_event is not None:
                    on_event(job.host.name, event)
            elif kind is not None:
                log.debug("%s: agent says %s", job.host.name, obj)
        finished = await session.finish()
        out.round_trips = conn.round_trips.count
        if done is not None:
            _apply_done(job, out, done, finished.exit_status, finished.stderr)
        elif error is not None:
            raise error
        elif unsent is not None:
            # sudo refusing (a password asked, no terminal) ends before the request is read too
            raise _become_failure(job, launch, finished.exit_status, finished.stderr) or unsent
        else:
            raise _failure_without_done(job, launch, finished.exit_status, finished.stderr)
        clean = True
    finally:
        out.round_trips = conn.round_trips.count
        if clean:
            await conn.close()
        else:
            conn.abort()  # a cut: an agent still reading the upload sees EOF and aborts
            await conn.close()


def _apply_progress(out: HostOutcome, line: dict[str, Any]) -> None:
    """What an operation that failed had done (the agent's error line): a failure after
    activation leaves the host on the new release, and the outcome says so."""
    out.agent = None
    if "uploaded" in line:
        out.uploaded = bool(line["uploaded"])
    if line.get("activated"):
        out.activated = True
        out.sha256 = line.get("sha256") or out.sha256
        out.previous_sha256 = line.get("previous")


def _apply_done(job: HostJob, out: HostOutcome, done: dict[str, Any], status: int | None, stderr: bytes) -> None:
    out.agent = done
    out.python = done.get("python")
    out.sha256 = done.get("sha256")
    out.previous_sha256 = done.get("previous")
    out.uploaded = bool(done.get("uploaded", out.uploaded))
    out.activated = bool(done.get("activated"))
    out.rolled_back = bool(done.get("rolled_back"))
    run_exit = done.get("run_exit")
    out.run_exit = int(run_exit) if isinstance(run_exit, int) else None
    failed = done.get("failed") if job.op == "cleanup" else None
    if failed:
        name = job.host.name
        first = failed[0] if isinstance(failed[0], dict) else {}
        out.error = RemoteError(
            name,
            f"{name}: cleanup could not remove {len(failed)} of rustle-deploy's entries under "
            f"{done.get('remote_dir')}: {first.get('path')}: {first.get('error')}",
            "check the permissions there (with ansible_become, cleanup runs as the become user), then "
            "run --cleanup again",
        )
    if out.run_exit is not None and out.run_exit not in (0, 2):
        name = job.host.name
        text = stderr.decode("utf-8", "replace").strip()[-2000:]
        out.error = RemoteError(
            name,
            f"{name}: the artifact's run exited {out.run_exit}: {text or '(no output on stderr)'}",
            "exit 3 means a bad invocation or a corrupt artifact (try --verify); other codes are runtime bugs",
        )
