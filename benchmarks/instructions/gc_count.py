"""Garbage collections per N requests, with and without asyncweb serve's start-up freeze.

    python gc_count.py N realistic|hello h11|httptools keepalive|concurrent|fresh [freeze]

``keepalive``: one connection, one request at a time (per_request.py's pattern);
``concurrent``: 100 connections at once; ``fresh``: a new connection per request. ``freeze``
does what ``asyncweb serve`` does before serving (``gc.collect(); gc.freeze()``). BALLAST=K in
the environment adds 2K start-up containers, for the cost of a full collection over them.
Prints collections per generation during the N requests, time in gc and the longest pause.
"""

import asyncio
import gc
import os
import sys
import time

from per_request import HELLO, REALISTIC, MainHandler, UserHandler

from asyncweb import web
from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets

BALLAST = [{"row": [n]} for n in range(int(os.environ.get("BALLAST", "0")))]


async def main(n: int, endpoint: str, parser: str, pattern: str, freeze: bool) -> None:
    app = web.Application(
        [(r"/", MainHandler), (r"/user/([^/]+)", UserHandler)], log_function=lambda handler: None
    )
    server = HTTPServer(app, http_parser=parser)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    request, end = (HELLO, b"Hello, world") if endpoint == "hello" else (REALISTIC, b'"abc123"}')

    async def client(count: int, fresh: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            if fresh:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await reader.readuntil(end)
        writer.close()

    await client(500, False)  # warm: caches, the Date header, first-use imports
    if freeze:
        gc.collect()
        gc.freeze()
    pauses: list[float] = []
    started: list[float] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            pauses.append(time.perf_counter() - started.pop())

    before = [stats["collections"] for stats in gc.get_stats()]
    gc.callbacks.append(watch)
    begin = time.perf_counter()
    if pattern == "concurrent":
        await asyncio.gather(*(client(n // 100, False) for _ in range(100)))
    else:
        await client(n, pattern == "fresh")
    elapsed = time.perf_counter() - begin
    gc.callbacks.remove(watch)
    after = [stats["collections"] for stats in gc.get_stats()]
    server.stop()
    print(
        f"{endpoint} {parser} {pattern}{' freeze' if freeze else ''}: collections per generation "
        f"{[a - b for a, b in zip(after, before, strict=True)]} in {n} requests; gc "
        f"{100 * sum(pauses) / elapsed:.2f}% of the time, longest pause "
        f"{1e3 * max(pauses, default=0):.2f} ms; frozen {gc.get_freeze_count()}"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(int(args[0]), args[1], args[2], args[3], args[4:] == ["freeze"]))
