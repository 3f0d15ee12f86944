"""Connections to hosts: SSH (asyncssh, only in ``ssh.py``) and local subprocesses.

A ``Connection`` starts one remote command whose stdin begins with a preamble (written in the
same flight as the exec request) and gives back a ``Session`` to stream lines from and bytes
to. Third-party errors are translated here into ``errors.ConnectError`` / ``TransferError``.

Round trips are counted by ``RoundTrips``: each time the controller stops to wait for the
remote side after it has sent something (a "turn"). docs/remote.md lists the turns of each op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..model import Host


class RoundTrips:
    """Counts turns: a wait for the remote that follows something we sent."""

    def __init__(self) -> None:
        self.count = 0
        self._pending = False

    def sent(self) -> None:
        """Something went out; the next wait is a new turn."""
        self._pending = True

    def waiting(self) -> None:
        """We are about to wait for the remote."""
        if self._pending:
            self.count += 1
            self._pending = False


@dataclass(frozen=True)
class Finished:
    """How a remote command ended."""

    exit_status: int | None  # None: killed by a signal or the channel closed without status
    stderr: bytes


class Session(Protocol):
    """One running remote command."""

    async def readline(self) -> bytes:
        """The next line of stdout (with its newline); b"" at end of output."""

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's stdin and wait until they are buffered below the limit."""

    async def finish(self) -> Finished:
        """Wait for the command to end; collect its exit status and stderr."""


class Connection(Protocol):
    """A connected host; ``start`` may be called once per command."""

    name: str
    round_trips: RoundTrips

    async def start(self, command: str, preamble: bytes) -> Session:
        """Run ``command`` (a POSIX sh command line) with ``preamble`` as the start of stdin."""

    def abort(self) -> None:
        """Drop the connection at once (a cut; the remote side sees EOF)."""

    async def close(self) -> None:
        """Close the connection and wait until its resources are released."""


ConnectFn = Callable[[Host], Awaitable[Connection]]


async def default_connect(host: Host) -> Connection:
    """Connect to ``host``: a local subprocess for ``ansible_connection=local``, else SSH."""
    if host.is_local:
        from .local import LocalConnection

        return LocalConnection(host.name)
    if host.connection not in ("ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh"):
        from ..errors import ConnectError

        raise ConnectError(
            host.name,
            f"{host.name}: ansible_connection={host.connection!r} is not supported",
            "use ssh (the default) or local",
        )
    from .ssh import connect_ssh

    return await connect_ssh(host)


__all__ = ["ConnectFn", "Connection", "Finished", "RoundTrips", "Session", "default_connect"]
