"""``ssh`` processes started before the artifacts are built, so handshakes overlap compiling.

With the OpenSSH client, a host's connection is a process: it can be started as soon as the
hosts are known, running the agent's command line, which then waits for its request on stdin.
While the controller compiles, each ``ssh`` does its handshake in its own process (on another
core, and across the network's round trips). The fan-out adopts the process
(``process.AdoptedProcess``) and sends the request. A process that is never used is ended with
nothing sent: the agent reads EOF before any request and exits, touching nothing.

Only ``subprocess`` here: this runs before the event loop and before asyncio is imported.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from ..errors import ConnectError
from ..model import Host, RunnerSpec
from . import ssh_binary_for, through_ssh_binary
from .options import agent_launch, either_command, remote_command, ssh_argv

# (the remote commands it can run, each with the line that selects it, the ssh process)
Early = tuple[dict[str, bytes], "subprocess.Popen[bytes]"]
RunnerOf = Callable[[Host], "RunnerSpec | None"]  # a host's native runner


class EarlyStarts:
    """``ssh`` processes started before the artifacts are built, one per host, each already
    running the agent's command, so the handshakes overlap with compiling. The agent waits for
    its request on stdin; a process never used is ended with nothing sent (``close``)."""

    def __init__(self) -> None:
        self._procs: dict[str, Early] = {}

    def start(self, hosts: Sequence[Host], binary: str, runner: RunnerOf | None = None,
              either: Collection[str] = ()) -> None:
        for host in hosts:
            try:
                argv = ssh_argv(host, binary)
                launch = agent_launch(host, runner(host) if runner else None)
                command = remote_command(launch)
                commands = {command: b""}
                if host.name in either and launch.runner is not None:  # the runner's agent, or pyz's
                    pyz = remote_command(replace(launch, runner=None))
                    commands = {command: b"n\n", pyz: b"p\n"}
                    command = either_command(*commands)
                self._procs[host.name] = (commands, spawn_early([*argv, command]))
            except (ConnectError, OSError):
                continue  # the normal path reports it, with its context

    def take(self, name: str) -> Early | None:
        return self._procs.pop(name, None)

    def close(self) -> None:
        procs, self._procs = self._procs, {}
        for _commands, popen in procs.values():
            discard(popen)


def start_early(
    hosts: Sequence[Host], ssh_client: str, width: int, runner: RunnerOf | None = None, either: Collection[str] = ()
) -> EarlyStarts | None:
    """Start ``ssh`` for the first ``width`` SSH hosts (those the fan-out takes first) when
    the run goes through the OpenSSH client; None otherwise. ``runner(host)``:
    the native format's runner for that host, which the command starts instead of Python.
    ``either``: the hosts whose format the build decides (``--format auto``: whether the plan
    lowers): with a runner, their command starts the runner's agent or Python's, as the first
    line sent says (``options.either_command``), so one connection serves both."""
    binary = ssh_binary_for(ssh_client, min(width, len(hosts)))
    if binary is None:
        return None
    chosen: list[Host] = []
    for h in hosts:
        if len(chosen) >= width:
            break
        try:
            if through_ssh_binary(h, ssh_client):
                chosen.append(h)
        except ConnectError:
            continue  # reported with its context when the host's turn comes
    early = EarlyStarts()
    early.start(chosen, binary, runner, either)
    return early


def spawn_early(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` now, outside any event loop, for ``AdoptedProcess.adopt`` later."""
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def discard(popen: subprocess.Popen[bytes]) -> None:
    """End an early process that will not be used. It has been sent nothing, so the agent on
    the other side (if it started) reads EOF before any request and exits touching nothing."""
    with contextlib.suppress(OSError):
        if popen.stdin is not None:
            popen.stdin.close()
    with contextlib.suppress(ProcessLookupError):
        popen.terminate()
    try:
        popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()
    for pipe in (popen.stdout, popen.stderr):
        if pipe is not None:
            pipe.close()
