"""Run one phase of a play for one host elsewhere than on the host: on the controller
(``delegate_to: localhost``, or a task whose action plugin ansible-core runs on the controller
against the host: bridge/action.py) or on another inventory host (``delegate_to: db1``).

The same artifact the host runs is run, with the host's own variables and the state the
host's previous phase sent back (registered results, set_fact, include_vars, facts, pending
handlers: a carry file in a private temporary directory), and ``--share vars``, so that what
the delegated tasks set goes back to the host with its next phase (docs/phases.md). On the
controller there is no round trip; on a delegate host, one exchange over that host's
connection (its ``ansible_host``, port, user, key, become, interpreter): the artifact, the
carry and the variables travel in the command's stdin, into a private temporary directory
that is removed when the run ends. The result is an ordinary ``HostOutcome`` of the host the
task belongs to.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConnectError, HostError, PhaseError
from ..model import Host, run_vars, tag_unsafe
from ..transport import ConnectFn
from .fetched import write_fetched
from .host import HostOutcome, RunOptions


def _write_private(path: Path, value: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(value, fh, default=str)


def _environment() -> dict[str, str]:
    """The run's environment: the controller's, and how its action plugins run (ansible-core on
    the controller, bridge/action.py; the runtime's modules/bridge.py ``run_action``)."""
    runner = [sys.executable, str(Path(__file__).parent.parent / "bridge" / "action.py")]
    return dict(os.environ, RUSTLE_ACTION_RUNNER=json.dumps(runner))


def command(artifact: Path, host: Host, options: RunOptions, carry: Path, host_vars: Path) -> list[str]:
    """The artifact's ``run`` command line for ``host``'s phase ``options.phase``."""
    return [sys.executable, str(artifact), *run_args(host, options, str(carry), str(host_vars))]


def run_args(host: Host, options: RunOptions, carry: str, host_vars: str) -> list[str]:
    """The arguments of the artifact's ``run`` for ``host``'s phase ``options.phase``."""
    cmd = ["run", "--host", host.name, "--carry", carry, "--vars", host_vars, "--share", "vars",
           "--run-id", options.run_id]
    if options.plays is not None:
        cmd += ["--plays", ",".join(str(i) for i in options.plays)]
    if options.phase is not None:
        cmd += ["--phase", str(options.phase)]
    if options.check:
        cmd.append("--check")
    if options.diff:
        cmd.append("--diff")
    for tag in options.tags:
        cmd += ["--tags", tag]
    for tag in options.skip_tags:
        cmd += ["--skip-tags", tag]
    if options.unreachable is not None:
        cmd += ["--unreachable", options.unreachable]
    return cmd + ["-v"] * options.verbosity


def run_here(artifact: Path, host: Host, options: RunOptions, state: dict[str, Any] | None, workdir: Path,
             timeout: float) -> HostOutcome:
    """Run ``host``'s phase of ``artifact`` here, starting from ``state`` (None: the host ran
    nothing yet, so no facts of it are known: the run must not take the controller's)."""
    carry = workdir / f"{host.name}.carry.json"
    host_vars = workdir / f"{host.name}.vars.json"
    _write_private(carry, state if state is not None else {"__rustle_carry__": 2, "facts": {}})
    _write_private(host_vars, tag_unsafe(run_vars(host)))
    started, began = time.monotonic(), time.time()  # began: a trace's clock (tracing.py)
    stages = [("run", began)]
    try:
        proc = subprocess.run(command(artifact, host, options, carry, host_vars), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False, env=_environment())
    except subprocess.TimeoutExpired:
        return HostOutcome(host=host.name, error=PhaseError(
            host.name, f"the task delegated to the controller did not finish within {timeout:g}s",
            "raise --timeout"), duration=time.monotonic() - started, started_at=began, stages=stages)
    return _outcome(artifact, host, proc.stdout.splitlines(), proc.returncode, proc.stderr, started, began, stages,
                    "on the controller of the tasks delegated to localhost")


def _outcome(artifact: Path, host: Host, lines: list[bytes], returncode: int | None, stderr: bytes, started: float,
             began: float, stages: list[tuple[str, float]], where: str) -> HostOutcome:
    """``host``'s outcome of a run elsewhere, from its output lines (``where``: which run)."""
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "fetched":
            try:
                write_fetched(artifact, host.name, event)
            except HostError as exc:
                return HostOutcome(host=host.name, error=exc, duration=time.monotonic() - started, started_at=began,
                                   stages=stages)
        elif isinstance(event, dict) and "event" in event:
            events.append(event)
    recap = next((e for e in reversed(events) if e.get("event") == "recap"), None)
    error = None
    if returncode not in (0, 2):
        detail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        error = PhaseError(host.name, f"the run {where} exited {returncode}: {detail[0]}",
                           "this is a bug of rustle-deploy if the artifact was built by it")
    return HostOutcome(host=host.name, ok=error is None and returncode == 0, error=error,
                       run_exit=returncode, recap=recap, events=events,
                       duration=time.monotonic() - started, started_at=began, stages=stages)


# Runs on the delegate host (stdlib, Python 3.8): reads a header line (the artifact's size,
# the carry and the variables, the run's arguments), then the artifact; runs it in a private
# temporary directory ("@D@" in the arguments) that is removed afterwards; exits as it did.
# With "path" (the delegate holds the artifact: size 0), runs that file, or says it needs
# the upload when it is not there.
_BOOT = """\
import json,os,shutil,subprocess,sys,tempfile
i=sys.stdin.buffer
h=json.loads(i.readline())
p=h.get("path")
if p and not os.path.isfile(os.path.expanduser(p)):
    print(json.dumps({"delegated":"need_upload"}))
    sys.exit(75)
d=tempfile.mkdtemp(prefix="rustle-delegated-")
r=3
try:
    a=os.path.expanduser(p) if p else os.path.join(d,"artifact.pyz")
    with open(os.devnull if p else a,"wb") as f:
        n=h["size"]
        while n>0:
            b=i.read(min(n,1<<16))
            if not b:
                sys.exit(3)
            f.write(b)
            n-=len(b)
    for k in ("carry","vars"):
        with os.fdopen(os.open(os.path.join(d,k+".json"),os.O_WRONLY|os.O_CREAT,0o600),"w") as f:
            f.write(h[k])
    sys.stdout.flush()
    e=["--delegate",h["delegate"]]+sys.argv[1:3] if len(sys.argv)>2 and h.get("delegate") else []
    r=subprocess.call([sys.executable,a]+[x.replace("@D@",d) for x in h["argv"]]+e,stdin=subprocess.DEVNULL)
finally:
    shutil.rmtree(d,ignore_errors=True)
sys.exit(r)
"""


def delegated_command(delegate: Host) -> str:
    """The sh command line that starts ``_BOOT`` on ``delegate`` with its Python, as its become
    user: its ``ansible_python_interpreter``, or ansible-core's discovery as the agent's launcher
    runs it (transport/options.remote_command: the first absolute path ``command -v`` gives over
    the fallback list), which ``_BOOT`` hands on to the run (``--delegate``) to report."""
    from ..transport.options import agent_launch, become_prefix

    launch = agent_launch(delegate)
    candidates: tuple[str, ...]
    if launch.python_interpreter:
        candidates, found, discovered = (launch.python_interpreter,), 'command -v "$P" >/dev/null 2>&1 || continue; ', ""
    else:
        candidates, discovered = launch.fallback, f' "$P" {shlex.quote(launch.discovery)}'
        found = 'P=$(command -v "$P" 2>/dev/null) || continue; case "$P" in /*) ;; *) continue;; esac; '
    line = (f"for P in {' '.join(shlex.quote(c) for c in candidates)}; do {found}"
            f'exec "$P" -c {shlex.quote(_BOOT)}{discovered}; done; echo "no python on this host" >&2; exit 127')
    if launch.become:
        return f"{become_prefix(launch)} /bin/sh -c {shlex.quote(line)}"
    return line


NEED_UPLOAD = 75  # the delegate does not hold the artifact after all: send it


async def run_there(connect: ConnectFn, delegate: Host, artifact: Path, host: Host, options: RunOptions,
                    state: dict[str, Any] | None, timeout: float, held: str | None = None) -> HostOutcome:
    """Run ``host``'s phase of ``artifact`` on ``delegate``, over its connection, starting
    from ``state`` (as ``run_here``); one exchange. ``held``: where the delegate holds that
    very artifact (its remote dir's ``artifacts/<sha256>``): it is not sent, only checked
    there (``--sha256``); if it is gone, one more exchange sends it."""
    started, began = time.monotonic(), time.time()
    stages = [("run", began)]
    blob = b"" if held else artifact.read_bytes()
    argv = run_args(host, options, "@D@/carry.json", "@D@/vars.json")
    if held:
        argv += ["--sha256", Path(held).name]
    header = {"size": len(blob), "argv": argv, "path": held, "delegate": delegate.name,
              "carry": json.dumps(state if state is not None else {"__rustle_carry__": 2, "facts": {}}, default=str),
              "vars": json.dumps(tag_unsafe(run_vars(host)), default=str)}
    where = f"of the tasks delegated to {delegate.name}"
    lines: list[bytes] = []
    conn = None
    try:
        async with asyncio.timeout(timeout):
            conn = await connect(delegate)
            session = await conn.start(delegated_command(delegate), json.dumps(header).encode() + b"\n" + blob)
            while True:
                raw = await session.readline()
                if not raw:
                    break
                lines.append(raw)
            finished = await session.finish()
    except ConnectError as exc:
        return HostOutcome(host=host.name, error=ConnectError(
            host.name, f"delegate_to {delegate.name}: {exc.message}", exc.hint),
            duration=time.monotonic() - started, started_at=began, stages=stages)
    except TimeoutError:
        return HostOutcome(host=host.name, error=PhaseError(
            host.name, f"the task delegated to {delegate.name} did not finish within {timeout:g}s", "raise --timeout"),
            duration=time.monotonic() - started, started_at=began, stages=stages)
    finally:
        if conn is not None:
            await conn.close()
    if held and finished.exit_status == NEED_UPLOAD and b"need_upload" in b"".join(lines):
        again = await run_there(connect, delegate, artifact, host, options, state, timeout)
        again.round_trips += conn.round_trips.count if conn is not None else 0
        return again
    outcome = _outcome(artifact, host, lines, finished.exit_status, finished.stderr, started, began, stages, where)
    if finished.exit_status == 127 and not outcome.events:
        outcome.error = ConnectError(host.name, f"delegate_to {delegate.name}: no Python on {delegate.name}",
                                     "install python3 there, or set its ansible_python_interpreter")
    outcome.round_trips = conn.round_trips.count if conn is not None else 0
    return outcome
