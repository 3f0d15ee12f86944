"""A TCP proxy on 127.0.0.1 that holds every chunk D ms in each direction (one-way latency).

Usage: python delayproxy.py --delay-ms 25 LISTEN_PORT:TARGET_PORT [...]

Each chunk read from one side is written to the other side D ms after it arrived, in order,
so a request/response round trip costs 2*D plus processing; throughput is not limited.
Runs as its own process (started by hosts.Fleet) so its CPU is charged to neither the
controller nor the hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

CHUNK = 65536


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader -> writer, delivering every chunk `delay` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((loop.time() + delay, b""))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                 target: int, delay: float) -> None:
    try:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pump(client_r, server_w, delay), pump(server_r, client_w, delay))
    for w in (client_w, server_w):
        w.close()


async def serve(routes: list[tuple[int, int]], delay: float) -> None:
    servers = []
    for listen, target in routes:
        def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter, t: int = target) -> asyncio.Future:
            return handle(r, w, t, delay)
        servers.append(await asyncio.start_server(cb, "127.0.0.1", listen, backlog=1024))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("routes", nargs="+", help="LISTEN_PORT:TARGET_PORT")
    args = ap.parse_args()
    routes = [tuple(int(p) for p in r.split(":")) for r in args.routes]
    asyncio.run(serve(routes, args.delay_ms / 1000))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
