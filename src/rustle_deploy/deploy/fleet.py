"""The fleet fan-out: many hosts at once, one semaphore for the width, one deadline per host.

One host failing never stops the others: each host's failure is a ``HostError`` in its
``HostOutcome``. Cancelling the caller's task cancels every host; each closes its channel and
its agent aborts (an unfinished upload is discarded; activation is a single rename that has
either happened or not), so every host stays on its old or its new release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..errors import HostTimeout
from ..transport import ConnectFn, default_connect
from .host import EventFn, HostJob, HostOutcome, deploy_host


async def deploy_fleet(
    jobs: Sequence[HostJob],
    *,
    parallel: int,
    timeout: float,
    on_event: EventFn | None = None,
    on_outcome: Callable[[HostOutcome], None] | None = None,
    connect: ConnectFn = default_connect,
) -> list[HostOutcome]:
    """Run every job, at most ``parallel`` at a time, each within ``timeout`` seconds.

    ``on_event(host, event)`` sees each artifact event as it arrives; ``on_outcome(outcome)``
    each host's outcome as soon as that host is done. The outcomes come back in the order of
    ``jobs``.
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    gate = asyncio.Semaphore(parallel)

    async def one(job: HostJob) -> HostOutcome:
        out = HostOutcome(host=job.host.name)
        async with gate:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with asyncio.timeout(timeout):
                    await deploy_host(job, connect=connect, on_event=on_event, outcome=out)
            except TimeoutError:
                out.error = HostTimeout(
                    job.host.name,
                    f"{job.host.name}: no result within {timeout:g}s ({_stage(out)})",
                    "raise --timeout, or check the host; it stays on its old or new release",
                )
                out.ok = False
                out.duration = loop.time() - started
        if on_outcome is not None:
            on_outcome(out)
        return out

    tasks = [asyncio.ensure_future(one(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _stage(out: HostOutcome) -> str:
    if out.events:
        return f"the run had sent {len(out.events)} events"
    if out.uploaded:
        return "after the upload"
    return "while connecting or starting the agent"
