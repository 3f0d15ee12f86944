"""SSH connections over asyncssh: options, host keys, pipelined exec, error translation.

The only module that imports asyncssh. One ``SSHClientConnectionOptions`` is built per
distinct ``SshSettings`` and reused for every host that shares them (keys are loaded once).
The key exchange prefers ``curve25519-sha256`` (PERF_NOTES.md: the post-quantum hybrids cost
~0.1 CPU s per side per connection); compression is off (it costs CPU on fast links).

Exec is pipelined as OpenSSH's client does it: the stdin preamble is written right after the
exec request, without waiting for the server's reply, so the exec and the first agent reply
share one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # cryptography deprecates DSA, and asyncssh touches it at import time: a third-party
    # notice that says nothing to our users (asyncssh never offers DSA keys unless asked).
    warnings.filterwarnings("ignore", message=".*DSA", module="asyncssh")
    warnings.filterwarnings("ignore", message=".*DSA", module=r"asyncssh\..*")
    import asyncssh

from ..errors import ConnectError, TransferError
from ..model import Host
from . import Finished, RoundTrips, write_file_chunks
from .options import (
    SshSettings,
    changed_host_key,
    known_hosts_files,
    known_hosts_pattern,
    ssh_settings,
    unknown_host_key,
    unverified_host_key,
)

_PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
_options_cache: dict[tuple[Any, ...], asyncssh.SSHClientConnectionOptions] = {}


def _kex_algs() -> list[str]:
    from asyncssh.kex import get_default_kex_algs

    rest = [a.decode() for a in get_default_kex_algs()]
    rest = [a for a in rest if a not in _PREFERRED_KEX and not a.startswith("gss-")]
    return [*_PREFERRED_KEX, *rest]


def _known_hosts_arg(s: SshSettings) -> Any:
    """What asyncssh gets as ``known_hosts``: None disables checking; never "trust anything"."""
    if s.strict_host_key_checking in ("no", "accept-new"):
        return None  # accept-new checks after the handshake, in _accept_new
    existing = [p for p in known_hosts_files(s) if os.path.isfile(p)]
    return existing if existing else asyncssh.import_known_hosts("")


def connection_options(s: SshSettings) -> asyncssh.SSHClientConnectionOptions:
    """The (cached) asyncssh options for one distinct set of settings."""
    key = (
        s.user, tuple(s.identity_files), s.strict_host_key_checking, tuple(s.known_hosts),
        s.proxy_jump, s.proxy_command, s.config_files, s.password, s.connect_timeout,
    )
    cached = _options_cache.get(key)
    if cached is not None:
        return cached
    kwargs: dict[str, Any] = {
        "known_hosts": _known_hosts_arg(s),
        "kex_algs": _kex_algs(),
        "compression_algs": ["none"],
        "gss_kex": False,
        "gss_auth": False,
        "x509_trusted_certs": None,
    }
    if s.user:
        kwargs["username"] = s.user
    if s.identity_files:
        kwargs["client_keys"] = [os.path.expanduser(p) for p in s.identity_files]
    if s.config_files is not None:
        kwargs["config"] = [os.path.expanduser(p) for p in s.config_files]
    if s.proxy_jump:
        kwargs["tunnel"] = s.proxy_jump
    if s.proxy_command:
        kwargs["proxy_command"] = s.proxy_command
    if s.password:
        kwargs["password"] = s.password
    if s.connect_timeout:
        kwargs["connect_timeout"] = s.connect_timeout
    try:
        options = asyncssh.SSHClientConnectionOptions(**kwargs)
    except (OSError, ValueError, RuntimeError, asyncssh.Error) as exc:  # RuntimeError: pathlib's ~ expansion
        raise ConnectError(
            s.address,
            f"{s.address}: cannot use the SSH settings: {exc}",
            "check ansible_ssh_private_key_file, -i and -F paths in the inventory",
        ) from exc
    _options_cache[key] = options
    return options


def _where(s: SshSettings) -> str:
    return f"{s.address}:{s.port}"


def _recorded_keys(s: SshSettings) -> tuple[str | None, list[asyncssh.SSHKey], list[asyncssh.SSHKey], bool]:
    """What known_hosts records for this host: (the first file with keys for it, those keys,
    revoked keys, whether every file could be read)."""
    readable = True
    revoked: list[asyncssh.SSHKey] = []
    for path in known_hosts_files(s):
        if not os.path.isfile(path):
            continue
        try:
            host_keys, _ca_keys, revoked_keys, *_ = asyncssh.read_known_hosts(path).match(s.address, "", s.port)
        except (OSError, ValueError, asyncssh.Error):
            readable = False
            continue
        revoked.extend(revoked_keys)
        if host_keys:
            return path, list(host_keys), revoked, readable
    return None, [], revoked, readable


def _described(key: asyncssh.SSHKey | None) -> str | None:
    """A key as OpenSSH's warning shows it: its type and SHA256 fingerprint."""
    if key is None:
        return None
    alg = key.get_algorithm()
    kind = "ECDSA" if alg.startswith("ecdsa") else alg.removeprefix("ssh-").upper()
    return f"{kind} {key.get_fingerprint('sha256')}"


class _KeyWitness(asyncssh.SSHClient):
    """Keeps the host key a server offered when known_hosts did not trust it (for the message)."""

    offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.offered = key
        return False


def _untrusted(name: str, s: SshSettings, exc: asyncssh.HostKeyNotVerifiable, offered: asyncssh.SSHKey | None) -> ConnectError:
    """The host key failed the known_hosts check: changed, never seen, or unclear which."""
    path, keys, _revoked, readable = _recorded_keys(s)
    if keys:
        return changed_host_key(name, s, path, None, _described(offered))
    if readable and "revoked" not in exc.reason.lower():
        return unknown_host_key(name, s, _described(offered))
    return unverified_host_key(name, s, exc.reason)


def _accept_new(name: str, s: SshSettings, conn: asyncssh.SSHClientConnection) -> None:
    """StrictHostKeyChecking=accept-new: refuse a changed or revoked key, record an unknown one."""
    key = conn.get_server_host_key()
    if key is None:
        return
    path, keys, revoked, readable = _recorded_keys(s)
    if any(k.public_data == key.public_data for k in revoked):
        raise unverified_host_key(name, s, f"the key it sent, {_described(key)}, is revoked")
    if keys:
        if any(k.public_data == key.public_data for k in keys):
            return
        raise changed_host_key(name, s, path, None, _described(key))
    if not readable:
        raise unverified_host_key(name, s, "a known_hosts file cannot be read, so the key cannot be checked")
    target = known_hosts_files(s)[0]
    Path(target).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as f:
        f.write(f"{known_hosts_pattern(s)} {key.export_public_key('openssh').decode().strip()}\n")


async def connect_ssh(host: Host) -> SshConnection:
    """Open an authenticated SSH connection to ``host``; raise ConnectError on any failure."""
    s = ssh_settings(host)
    options = connection_options(s)
    rt = RoundTrips()
    where = _where(s)
    witness = _KeyWitness()
    try:
        conn = await asyncssh.connect(s.address, s.port, options=options, client_factory=lambda: witness)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise _untrusted(host.name, s, exc, witness.offered) from exc
    except asyncssh.PermissionDenied as exc:
        raise ConnectError(
            host.name,
            f"{host.name}: {where}: authentication failed as {s.user or 'the current user'}",
            "check ansible_user and ansible_ssh_private_key_file (or your ssh-agent); "
            "the public key must be in the host's authorized_keys",
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectError(
            host.name,
            f"{host.name}: {where}: connection refused",
            "is sshd running there? check ansible_host and ansible_port",
        ) from exc
    except TimeoutError as exc:
        raise ConnectError(
            host.name, f"{host.name}: {where}: timed out connecting", "check the address and firewall"
        ) from exc
    except asyncssh.Error as exc:
        raise ConnectError(
            host.name, f"{host.name}: {where}: SSH failed: {exc.reason}", "run ssh -v against the host"
        ) from exc
    except OSError as exc:
        raise ConnectError(
            host.name,
            f"{host.name}: {where}: cannot connect: {exc.strerror or exc}",
            "check ansible_host, ansible_port and the network",
        ) from exc
    if s.strict_host_key_checking == "accept-new":
        try:
            _accept_new(host.name, s, conn)
        except BaseException:
            conn.abort()
            raise
    return SshConnection(host.name, conn, rt)


class _PipelinedProcess(asyncssh.SSHClientProcess[bytes]):
    """A client process that sends its stdin preamble right behind the exec request."""

    preamble = b""
    round_trips: RoundTrips | None = None

    def connection_made(self, chan: Any) -> None:
        super().connection_made(chan)
        rt = self.round_trips
        if rt is not None:
            rt.waiting()  # the channel-open confirmation just arrived: one turn
            rt.sent()  # exec request and preamble go out together now
        # create() sends the exec request synchronously after this returns, before it next
        # awaits; call_soon runs after that, so the preamble follows the exec request.
        asyncio.get_running_loop().call_soon(self._send_preamble, chan)

    def _send_preamble(self, chan: Any) -> None:
        if self.preamble:
            with contextlib.suppress(BrokenPipeError, OSError):
                chan.write(self.preamble)


class SshSession:
    """A running remote command over one SSH channel."""

    def __init__(self, name: str, process: asyncssh.SSHClientProcess[bytes], rt: RoundTrips) -> None:
        self._name = name
        self._process = process
        self._rt = rt
        self._stderr = asyncio.ensure_future(self._read_stderr())

    async def _read_stderr(self) -> bytes:
        try:
            return await self._process.stderr.read()
        except (asyncssh.Error, OSError):
            return b""

    async def readline(self) -> bytes:
        self._rt.waiting()
        try:
            return await self._process.stdout.readline()
        except (asyncssh.Error, OSError) as exc:
            raise TransferError(
                self._name, f"{self._name}: connection lost while reading: {exc}", "retry the host"
            ) from exc

    async def write(self, data: bytes) -> None:
        self._rt.sent()
        try:
            self._process.stdin.write(data)
            await self._process.stdin.drain()
        except (asyncssh.Error, OSError) as exc:
            raise TransferError(
                self._name, f"{self._name}: connection lost while sending: {exc}", "retry the host"
            ) from exc

    async def write_file(self, path: Path, size: int) -> None:
        await write_file_chunks(self, path, size)

    async def finish(self) -> Finished:
        try:
            await self._process.wait_closed()
        except (asyncssh.Error, OSError):
            pass
        stderr = await self._stderr
        return Finished(self._process.exit_status, stderr)

    def cancel(self) -> None:
        self._stderr.cancel()


class SshConnection:
    """An authenticated asyncssh connection to one host."""

    def __init__(self, name: str, conn: asyncssh.SSHClientConnection, rt: RoundTrips) -> None:
        self.name = name
        self.round_trips = rt
        self._conn = conn
        self._sessions: list[SshSession] = []

    async def start(self, command: str, preamble: bytes) -> SshSession:
        rt = self.round_trips

        def factory() -> _PipelinedProcess:
            proc = _PipelinedProcess()
            proc.preamble = preamble
            proc.round_trips = rt
            return proc

        rt.sent()  # channel open
        try:
            _chan, process = await self._conn.create_session(factory, command, encoding=None)
            await process.redirect(asyncssh.PIPE, asyncssh.PIPE, asyncssh.PIPE, 65536, True, True)  # type: ignore[attr-defined]
        except (asyncssh.Error, OSError) as exc:
            raise TransferError(
                self.name, f"{self.name}: cannot start a command: {exc}", "check the host's sshd logs"
            ) from exc
        session = SshSession(self.name, process, rt)  # type: ignore[arg-type]
        self._sessions.append(session)
        return session

    def abort(self) -> None:
        self._conn.abort()

    async def close(self) -> None:
        self._conn.close()
        try:
            await self._conn.wait_closed()
        finally:
            for s in self._sessions:
                s.cancel()
