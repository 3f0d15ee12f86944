"""SSH through the OpenSSH client: one ``ssh -T`` process per host and command.

The ``ssh`` binary starts in a few milliseconds and runs its handshake in its own process, in
parallel with the controller, where asyncssh first costs ~0.2 s of imports and then does the
handshake on the controller's one thread (benchmarks/README.md). It also reads
``~/.ssh/config``, ``-F``, ProxyJump, certificates and agents exactly as the user's own ssh
does. The host's ``ansible_ssh_common_args`` and ``ansible_ssh_extra_args`` go first on the
command line, so the user's values win (OpenSSH keeps the first value of each option);
rustle-deploy adds: no prompts (``BatchMode``), no pseudo-terminal, the inventory's host, port,
user and key, host key checking as the inventory asks, and ``curve25519-sha256`` first among
the key exchanges, as the asyncssh transport does.

ssh's own failures end it with status 255 before the agent said anything; they become
``ConnectError`` here, worded like the asyncssh transport's.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..errors import ConnectError, TransferError
from ..model import Host
from . import Finished, RoundTrips
from .early import Early
from .options import (
    SshSettings,
    changed_host_key,
    ssh_argv,
    ssh_settings,
    unknown_host_key,
    unverified_host_key,
)
from .process import ProcessConnection, ProcessSession

SSH_FAILED = 255
# Parts of OpenSSH's changed-key warning: where the old key is, and the key the host sent.
_OFFENDING = re.compile(r"^Offending \S+ key in (.+):(\d+)\s*$", re.MULTILINE)
_SENT = re.compile(r"fingerprint for the (\S+) key sent by the remote host is\s+(\S+?)\.?\s*$", re.MULTILINE)


def _classify(name: str, s: SshSettings, stderr: bytes) -> ConnectError:
    """ssh's own failure (status 255 before the agent spoke), worded as the asyncssh transport does."""
    where = f"{s.address}:{s.port}"
    text = stderr.decode("utf-8", "replace").strip()
    last = text.splitlines()[-1] if text else "(ssh printed nothing)"
    low = text.lower()
    if "remote host identification has changed" in low or "has changed and you have requested strict" in low:
        offending = _OFFENDING.search(text)
        sent = _SENT.search(text)
        return changed_host_key(
            name, s, offending.group(1) if offending else None, int(offending.group(2)) if offending else None,
            f"{sent.group(1)} {sent.group(2)}" if sent else None,
        )
    if "host key is known for" in low:  # "No ED25519 host key is known for ...": never seen
        return unknown_host_key(name, s)
    if "no matching host key type" in low:
        return ConnectError(
            name, f"{name}: {where}: no host key type in common ({last})",
            "check HostKeyAlgorithms in ansible_ssh_common_args and ~/.ssh/config",
        )
    if "host key verification failed" in low:  # revoked, or ssh said too little to tell
        return unverified_host_key(name, s, last)
    if "permission denied" in low:
        return ConnectError(
            name,
            f"{name}: {where}: authentication failed as {s.user or 'the current user'} ({last})",
            "check ansible_user and ansible_ssh_private_key_file (or your ssh-agent); "
            "the public key must be in the host's authorized_keys",
        )
    if "connection refused" in low:
        return ConnectError(
            name, f"{name}: {where}: connection refused", "is sshd running there? check ansible_host and ansible_port"
        )
    if "timed out" in low:
        return ConnectError(name, f"{name}: {where}: timed out connecting", "check the address and firewall")
    if "could not resolve hostname" in low:
        return ConnectError(name, f"{name}: {where}: cannot resolve the host name ({last})", "check ansible_host")
    return ConnectError(name, f"{name}: {where}: SSH failed: {last}", "run ssh -v against the host")


class OpenSshSession(ProcessSession):
    """An ``ssh`` process; status 255 with no agent output is a connection failure."""

    def __init__(self, name: str, proc: Any, rt: RoundTrips, settings: SshSettings) -> None:
        super().__init__(name, proc, rt)
        self.settings = settings

    async def write(self, data: bytes) -> None:
        try:
            await super().write(data)
        except TransferError as exc:
            # ssh stopped reading: if it ended before the agent said anything, it never
            # connected (refused, host key, authentication), and its message says why.
            try:
                finished = await asyncio.wait_for(self.finish(), 10)
            except TimeoutError:
                raise exc from None
            closed = TransferError(
                self._name, f"{self._name}: the connection closed while sending (ssh exit status {finished.exit_status})",
                "retry the host",
            )
            closed.exit_status = finished.exit_status  # the remote side's answer (EXIT_NEED_RUNNER)
            raise closed from exc

    async def finish(self) -> Finished:
        done = await super().finish()
        if done.exit_status == SSH_FAILED:
            if not self.saw_output:
                raise _classify(self._name, self.settings, done.stderr)
            return Finished(None, done.stderr)  # the connection dropped after the agent started
        return done


class OpenSshConnection(ProcessConnection):
    """A host reached through the ``ssh`` binary; the connection is made by ``start``."""

    def __init__(
        self, name: str, argv: list[str], settings: SshSettings, early: Early | None = None
    ) -> None:
        super().__init__(name, argv, early)
        self.settings = settings

    def abort(self) -> None:
        """A cut, as asyncssh's abort is: end ssh, which drops the TCP connection (the agent
        sees EOF); waiting for a clean close could hang on a dead link."""
        super().abort()
        for s in self._sessions:
            s.kill()

    def _session(self, proc: Any) -> ProcessSession:
        return OpenSshSession(self.name, proc, self.round_trips, self.settings)


def connect_openssh(host: Host, binary: str, early: Early | None = None) -> OpenSshConnection:
    """The connection object; ``ssh`` itself starts with the first command (or already has)."""
    s = ssh_settings(host)
    if s.password:
        raise ConnectError(
            host.name,
            f"{host.name}: ansible_password needs ssh_client = asyncssh (OpenSSH runs without prompts here)",
            "use key authentication, or set ssh_client = \"asyncssh\" in [deployment]",
        )
    return OpenSshConnection(host.name, ssh_argv(host, binary), s, early)
