"""Run one phase of a play on the controller, for one host: ``delegate_to: localhost``, or a
task whose action plugin ansible-core runs on the controller against the host (bridge/action.py).

The controller runs the same artifact the host runs, with the host's own variables and the
state the host's previous phase sent back (registered results, set_fact, include_vars, facts,
pending handlers: a carry file in a private temporary directory), and ``--share vars``, so
that what the delegated tasks set goes back to the host with its next phase (docs/phases.md).
The result is an ordinary ``HostOutcome`` of that host, with no round trip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import HostError, PhaseError
from ..model import Host, own_vars, tag_unsafe
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
    cmd = [sys.executable, str(artifact), "run", "--host", host.name, "--carry", str(carry),
           "--vars", str(host_vars), "--share", "vars", "--run-id", options.run_id]
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
    return cmd + ["-v"] * options.verbosity


def run_here(artifact: Path, host: Host, options: RunOptions, state: dict[str, Any] | None, workdir: Path,
             timeout: float) -> HostOutcome:
    """Run ``host``'s phase of ``artifact`` here, starting from ``state`` (None: the host ran
    nothing yet, so no facts of it are known: the run must not take the controller's)."""
    carry = workdir / f"{host.name}.carry.json"
    host_vars = workdir / f"{host.name}.vars.json"
    _write_private(carry, state if state is not None else {"__rustle_carry__": 2, "facts": {}})
    _write_private(host_vars, tag_unsafe(own_vars(host)))
    started, began = time.monotonic(), time.time()  # began: a trace's clock (tracing.py)
    stages = [("run", began)]
    try:
        proc = subprocess.run(command(artifact, host, options, carry, host_vars), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False, env=_environment())
    except subprocess.TimeoutExpired:
        return HostOutcome(host=host.name, error=PhaseError(
            host.name, f"the task delegated to the controller did not finish within {timeout:g}s",
            "raise --timeout"), duration=time.monotonic() - started, started_at=began, stages=stages)
    events: list[dict[str, Any]] = []
    for line in proc.stdout.splitlines():
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
    if proc.returncode not in (0, 2):
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        error = PhaseError(host.name, f"the run on the controller of the tasks delegated to localhost "
                                      f"exited {proc.returncode}: {detail[0]}",
                           "this is a bug of rustle-deploy if the artifact was built by it")
    return HostOutcome(host=host.name, ok=error is None and proc.returncode == 0, error=error,
                       run_exit=proc.returncode, recap=recap, events=events,
                       duration=time.monotonic() - started, started_at=began, stages=stages)
