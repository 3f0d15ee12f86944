"""The local connection (``ansible_connection=local``): the same agent through ``/bin/sh -c``."""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import TransferError
from . import Finished, RoundTrips

_LINE_LIMIT = 1 << 26  # event lines can carry a task's whole stdout


class LocalSession:
    """A local subprocess with piped stdin, stdout and stderr."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, rt: RoundTrips) -> None:
        self._name = name
        self._proc = proc
        self._rt = rt
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(proc.stderr.read())

    async def readline(self) -> bytes:
        self._rt.waiting()
        assert self._proc.stdout is not None
        return await self._proc.stdout.readline()

    async def write(self, data: bytes) -> None:
        self._rt.sent()
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise TransferError(
                self._name, f"{self._name}: the local agent stopped reading: {exc}", None
            ) from exc

    async def finish(self) -> Finished:
        status = await self._proc.wait()
        stderr = await self._stderr
        return Finished(status if status >= 0 else None, stderr)

    def kill(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        if self._proc.stdin is not None:
            self._proc.stdin.close()


class LocalConnection:
    """Runs commands on the controller itself."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.round_trips = RoundTrips()
        self._sessions: list[LocalSession] = []

    async def start(self, command: str, preamble: bytes) -> LocalSession:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
            start_new_session=True,  # Ctrl-C reaches the controller, which cancels cleanly
        )
        session = LocalSession(self.name, proc, self.round_trips)
        self._sessions.append(session)
        await session.write(preamble)
        return session

    def abort(self) -> None:
        # Closing stdin is the cut: the agent sees EOF, aborts an upload, stops a run.
        for s in self._sessions:
            if s._proc.stdin is not None:
                s._proc.stdin.close()

    async def close(self) -> None:
        for s in self._sessions:
            if s._proc.stdin is not None:
                s._proc.stdin.close()
            if s._proc.returncode is None:
                # give the agent its EOF, then wait for it to end (it stops a run on EOF)
                try:
                    await asyncio.wait_for(s._proc.wait(), 10)
                except TimeoutError:
                    s.kill()
                    await s._proc.wait()
            with contextlib.suppress(Exception):
                await s._stderr
