"""Connections to hosts: SSH (the OpenSSH client in ``openssh.py``, or asyncssh, only in
``ssh.py``) and local subprocesses (``process.py``).

A ``Connection`` starts one remote command whose stdin begins with a preamble (written in the
same flight as the exec request) and gives back a ``Session`` to stream lines from and bytes
to. Third-party errors are translated here into ``errors.ConnectError`` / ``TransferError``.

Round trips are counted by ``RoundTrips``: each time the controller stops to wait for the
remote side after it has sent something (a "turn"). docs/remote.md lists the turns of each op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import TransferError
from ..model import Host

if TYPE_CHECKING:
    from .early import EarlyStarts


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

    async def write_file(self, path: Path, size: int) -> None:
        """Send ``size`` bytes of the file at ``path`` to the command's stdin."""

    async def finish(self) -> Finished:
        """Wait for the command to end; collect its exit status and stderr."""


async def write_file_chunks(session: Session, path: Path, size: int, chunk: int = 1 << 18) -> None:
    """``Session.write_file`` for sessions without a file descriptor to hand the kernel."""
    left = size
    with open(path, "rb") as source:
        while left > 0:
            block = source.read(min(chunk, left))
            if not block:
                raise TransferError(path.name, f"{path}: shorter than {size} bytes", "build it again")
            await session.write(block)
            left -= len(block)


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


OPENSSH_MAX_WIDTH = 256  # ssh processes at once; past this, one asyncssh loop needs far less memory


def _check_kind(host: Host) -> None:
    from .options import check_kind

    check_kind(host)


def ssh_binary_for(ssh_client: str, width: int) -> str | None:
    """The ``ssh`` binary SSH hosts go through, or None for asyncssh.

    ``auto``: the OpenSSH client when it is installed and at most ``OPENSSH_MAX_WIDTH`` hosts
    are handled at once (``width``), else asyncssh. Raises UsageError when ``openssh`` is asked
    for and there is no ``ssh``.
    """
    if ssh_client == "asyncssh":
        return None
    import shutil

    binary = shutil.which("ssh")
    if ssh_client == "openssh":
        if binary is None:
            from ..errors import UsageError

            raise UsageError(
                "ssh_client is openssh, but there is no ssh command on PATH",
                "install the OpenSSH client (Debian: openssh-client), or use --ssh-client asyncssh",
            )
        return binary
    return binary if width <= OPENSSH_MAX_WIDTH else None


def through_ssh_binary(host: Host, ssh_client: str) -> bool:
    """Whether ``host`` goes through the ``ssh`` binary once a run has chosen it: an SSH host,
    and under ``auto`` one that needs no password. ConnectError for an unsupported
    ``ansible_connection`` or unusable SSH variables."""
    if host.is_local:
        return False
    _check_kind(host)
    from .options import ssh_settings

    return ssh_client == "openssh" or not ssh_settings(host).password


def make_connect(ssh_client: str = "auto", width: int = 1, early: EarlyStarts | None = None) -> ConnectFn:
    """The connect function for a run: local hosts through ``/bin/sh``, SSH hosts through the
    ``ssh`` binary or asyncssh (see ``ssh_binary_for``). With ``auto``, a host that needs a
    password goes through asyncssh. ``early`` holds ssh processes started before the run."""
    binary = ssh_binary_for(ssh_client, width)

    async def connect(host: Host) -> Connection:
        if host.is_local:
            from .process import ProcessConnection

            return ProcessConnection(host.name, ["/bin/sh", "-c"])
        if binary is not None and through_ssh_binary(host, ssh_client):
            from .openssh import connect_openssh

            return connect_openssh(host, binary, early.take(host.name) if early else None)
        _check_kind(host)
        from .ssh import connect_ssh

        return await connect_ssh(host)

    return connect


# asyncssh, or /bin/sh for a local host: what tests and callers get without choosing.
default_connect: ConnectFn = make_connect("asyncssh")


__all__ = [
    "ConnectFn", "Connection", "Finished", "RoundTrips", "Session", "default_connect", "make_connect", "ssh_binary_for",
    "through_ssh_binary",
]
