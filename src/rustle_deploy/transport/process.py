"""Connections that are a child process with pipes: ``/bin/sh -c`` for the local connection
(``ansible_connection=local``) and the OpenSSH client for ``ssh_client = openssh``.

The command line is the child's last argument; the preamble is written to its stdin at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from ..errors import TransferError
from . import Finished, RoundTrips, write_file_chunks
from .early import Early, discard

log = logging.getLogger(__name__)

_LINE_LIMIT = 1 << 26  # event lines can carry a task's whole stdout


class AdoptedProcess:
    """A ``subprocess.Popen`` started before the event loop, seen through asyncio streams.

    Lets an ``ssh`` started while the artifact was still compiling be used like a process
    from ``asyncio.create_subprocess_exec``: ``stdin``, ``stdout``, ``stderr``, ``wait()``,
    ``returncode``, ``kill()``.
    """

    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @classmethod
    async def adopt(cls, popen: subprocess.Popen[bytes], limit: int) -> AdoptedProcess:
        loop = asyncio.get_running_loop()
        self = cls(popen)
        self.stdout = asyncio.StreamReader(limit=limit)
        self.stderr = asyncio.StreamReader()
        for reader, pipe in ((self.stdout, popen.stdout), (self.stderr, popen.stderr)):
            await loop.connect_read_pipe(lambda r=reader: asyncio.StreamReaderProtocol(r), pipe)  # type: ignore[misc]
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, popen.stdin)
        self.stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        return self

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    async def wait(self) -> int:
        if self._popen.poll() is None and not hasattr(os, "pidfd_open"):  # not Linux
            while self._popen.poll() is None:
                await asyncio.sleep(0.01)
        if self._popen.poll() is None:
            fd = os.pidfd_open(self._popen.pid)  # readable once the process has ended
            try:
                await _ready(fd, write=False)
            finally:
                os.close(fd)
        return self._popen.wait()

    def kill(self) -> None:
        self._popen.kill()


async def _ready(fd: int, write: bool) -> None:
    """Wait until ``fd`` is readable (or, with ``write``, writable) in the running event loop."""
    loop = asyncio.get_running_loop()
    add, remove = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    add(fd, ready)
    try:
        await done
    finally:
        remove(fd)


class ProcessSession:
    """A child process with piped stdin, stdout and stderr."""

    def __init__(self, name: str, proc: Any, rt: RoundTrips) -> None:
        self._name = name
        self._proc = proc
        self._rt = rt
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(proc.stderr.read())
        self.saw_output = False

    async def readline(self) -> bytes:
        self._rt.waiting()
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if line:
            self.saw_output = True
        return line

    async def write(self, data: bytes) -> None:
        self._rt.sent()
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise await self._stopped_reading(exc) from exc

    async def _stopped_reading(self, exc: BaseException) -> TransferError:
        """The error of a write the command stopped reading, with its exit status when it has
        ended (a bootstrap that answers before it reads the request: need_runner, a runner it
        cannot execute); what it wrote before is still there to read."""
        error = TransferError(self._name, f"{self._name}: the agent stopped reading: {exc}", None)
        try:
            error.exit_status = await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            pass
        return error

    async def write_file(self, path: Path, size: int) -> None:
        """Send ``size`` bytes of ``path``. Into an idle pipe with ``sendfile``: the kernel
        moves the pages, and a 1 MB runner for 50 hosts costs no copies and no buffer shuffling
        in this process; otherwise through ``write``."""
        transport = self._proc.stdin.transport
        pipe = transport.get_extra_info("pipe")
        if pipe is None or transport.get_write_buffer_size() or not hasattr(os, "sendfile"):
            await write_file_chunks(self, path, size)
            return
        self._rt.sent()
        fd = pipe.fileno()
        offset = 0
        with open(path, "rb") as source:
            while offset < size:
                try:
                    sent = os.sendfile(fd, source.fileno(), offset, size - offset)
                except BlockingIOError:
                    await _ready(fd, write=True)
                    continue
                except (BrokenPipeError, ConnectionResetError) as exc:
                    raise await self._stopped_reading(exc) from exc
                if sent == 0:
                    raise TransferError(self._name, f"{path}: shorter than {size} bytes", "build it again")
                offset += sent

    async def finish(self) -> Finished:
        status = await self._proc.wait()
        stderr = await self._stderr
        return Finished(status if status >= 0 else None, stderr)

    def close_stdin(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()

    async def ended(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the process to end (the agent stops on EOF), then kill it."""
        if self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), grace)
            except TimeoutError:
                self.kill()
                await self._proc.wait()
        with contextlib.suppress(Exception):
            await self._stderr

    def kill(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        if self._proc.stdin is not None:
            self._proc.stdin.close()


class ProcessConnection:
    """Runs each command as ``argv + [command]``: on the controller itself with
    ``["/bin/sh", "-c"]``, on a host with an ``ssh`` command line."""

    def __init__(self, name: str, argv: list[str], early: Early | None = None) -> None:
        self.name = name
        self.round_trips = RoundTrips()
        self._argv = list(argv)
        self._early = early  # (commands, process) started before the event loop
        self._sessions: list[ProcessSession] = []

    async def start(self, command: str, preamble: bytes) -> ProcessSession:
        early, self._early = self._early, None
        proc: Any
        if early is not None and command in early[0]:
            proc = await AdoptedProcess.adopt(early[1], _LINE_LIMIT)
            preamble = early[0][command] + preamble  # the line choosing the agent (options.either_command)
        else:
            if early is not None:
                discard(early[1])
            proc = await asyncio.create_subprocess_exec(
                *self._argv, command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=_LINE_LIMIT,
                start_new_session=True,  # Ctrl-C reaches the controller, which cancels cleanly
            )
        session = self._session(proc)
        self._sessions.append(session)
        try:
            await session.write(preamble)
        except TransferError:
            # It stopped reading before the whole preamble (~150 kB: more than a pipe holds)
            # was in: no usable Python (the shell line says so and exits 86), or ssh could not
            # connect. Its output and exit status say why; a later write raises again.
            log.debug("%s: the command stopped reading its preamble", self.name)
        return session

    def _session(self, proc: Any) -> ProcessSession:
        return ProcessSession(self.name, proc, self.round_trips)

    def abort(self) -> None:
        if self._early is not None:
            discard(self._early[1])
            self._early = None
        # Closing stdin is the cut: the agent sees EOF, aborts an upload, stops a run.
        for s in self._sessions:
            s.close_stdin()

    async def close(self) -> None:
        self.abort()
        for s in self._sessions:
            await s.ended(10)
