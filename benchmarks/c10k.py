"""C10K: hold N idle keep-alive connections (or WebSockets) open against one server process.

Run with the benchmark venv's python::

    benchmarks/.venv/bin/python benchmarks/c10k.py --app asyncweb [-n 10000] [--websocket]

Starts ``apps/<app>_hello.py`` (``apps/<app>_websocket.py`` with ``--websocket``) pinned to
CPU 1, reads its resident memory (``VmRSS``), then opens N connections from this process (a
separate one: the open-file limit is per process), each sending one ``GET /`` (or a WebSocket
handshake to ``/ws``), reading the whole answer and then staying open and silent. Once all are
held it reads the server's memory again and times an active client meanwhile: 200 sequential
keep-alive ``GET /`` on a fresh connection (also timed before the idle connections, for
comparison). Reports ``(RSS_after - RSS_before) / held`` per connection. Every step is bounded
in time; the server is stopped at the end whatever happens. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from benchlib import (
    RAW,
    StartError,
    app_argv,
    free_port,
    kill_all,
    on_sigterm,
    percentile,
    raise_nofile_limit,
    rss_kib,
    start_server,
    terminate,
)

APPS_HTTP = {
    "asyncweb": "asyncweb_hello.py",
    "tornado": "tornado_hello.py",
    "aiohttp": "aiohttp_hello.py",
    "h11_bare": "h11_bare.py",
    "starlette_h11": "starlette_h11.py",
    "starlette_httptools": "starlette_httptools.py",
}
APPS_WS = {
    "asyncweb": "asyncweb_websocket.py",
    "tornado": "tornado_websocket.py",
    "aiohttp": "aiohttp_websocket.py",
}
CONNECT_CONCURRENCY = 64  # below every server's listen backlog (128 or more): no SYN retries
ACTIVE_REQUESTS = 200
HELLO_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
WS_KEY = base64.b64encode(b"asyncweb-c10k-16").decode()
WS_REQUEST = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


class IdleClient(asyncio.Protocol):
    """Sends one request, waits for the complete answer, then stays open and says nothing."""

    def __init__(self, request: bytes, websocket: bool, answered: asyncio.Future[None]) -> None:
        self.request = request
        self.websocket = websocket
        self.answered = answered
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.open = True
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.answered.done():
            return
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        if self.websocket:
            if head.startswith(b"HTTP/1.1 101"):
                self.answered.set_result(None)
            else:
                self.answered.set_exception(RuntimeError(f"no upgrade: {head[:80]!r}"))
        elif body.endswith(b"Hello, world"):
            self.answered.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.answered.done():
            self.answered.set_exception(ConnectionError("closed before the answer"))


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class C10KResult:
    app: str
    kind: str  # "http" or "websocket"
    requested: int
    held: int
    still_open: int  # of those, still open after the active-client run
    rss_before_kib: int
    rss_after_kib: int
    kib_per_connection: float
    open_seconds: float
    active_before: Latency
    active_during: Latency
    errors: list[str]


async def active_client(port: int, count: int = ACTIVE_REQUESTS) -> Latency:
    """``count`` sequential keep-alive ``GET /`` on one fresh connection, each one timed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            writer.write(HELLO_REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    times.sort()
    return Latency(percentile(times, 0.5), percentile(times, 0.99), times[-1])


async def hold(
    pid: int, port: int, n: int, websocket: bool, settle: float, timeout: float
) -> tuple[C10KResult, list[IdleClient]]:
    loop = asyncio.get_running_loop()
    errors: dict[str, int] = {}
    await active_client(port, 50)  # warm the server's code paths before measuring
    await asyncio.sleep(settle)
    rss_before = rss_kib(pid)
    before = await active_client(port)

    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    clients: list[IdleClient] = []
    request = WS_REQUEST if websocket else HELLO_REQUEST

    async def open_one() -> None:
        async with limit:
            answered: asyncio.Future[None] = loop.create_future()
            client = IdleClient(request, websocket, answered)
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: client, "127.0.0.1", port), 10
                )
                await asyncio.wait_for(answered, 10)
            except (OSError, asyncio.TimeoutError, RuntimeError) as exc:
                key = f"{type(exc).__name__}: {exc}"[:120]
                errors[key] = errors.get(key, 0) + 1
                if client.transport is not None:
                    client.transport.abort()
                return
            clients.append(client)

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(open_one()) for _ in range(n)]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        errors[f"{len(pending)} connection(s) not open within {timeout:g}s"] = 1
    open_seconds = time.monotonic() - t0
    await asyncio.sleep(settle)
    held = sum(1 for c in clients if c.open)
    rss_after = rss_kib(pid)
    during = await active_client(port)
    still_open = sum(1 for c in clients if c.open)
    result = C10KResult(
        app="",
        kind="websocket" if websocket else "http",
        requested=n,
        held=held,
        still_open=still_open,
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        kib_per_connection=(rss_after - rss_before) / held if held else float("nan"),
        open_seconds=round(open_seconds, 2),
        active_before=before,
        active_during=during,
        errors=[f"{k} (x{v})" for k, v in sorted(errors.items())],
    )
    return result, clients


def measure(app: str, n: int, websocket: bool, settle: float, timeout: float) -> C10KResult:
    scripts = APPS_WS if websocket else APPS_HTTP
    if app not in scripts:
        raise SystemExit(f"unknown app {app!r}; known: {', '.join(scripts)}")
    limit = raise_nofile_limit()
    if limit < n + 100:
        raise SystemExit(f"open-file limit {limit} is too low for {n} connections")
    port = free_port()
    kind = "ws" if websocket else "http"
    log = RAW / f"c10k-{app}-{kind}.server.log"

    def check(response: object) -> str | None:
        status = getattr(response, "status", 0)
        body = getattr(response, "body", b"")
        return None if status == 200 and body == b"Hello, world" else f"{status} {body[:80]!r}"

    proc = start_server(app_argv(scripts[app], port), port, log, check, raise_limit=True)
    clients: list[IdleClient] = []
    try:

        async def main() -> C10KResult:
            result, held = await hold(proc.pid, port, n, websocket, settle, timeout)
            clients.extend(held)
            for client in held:
                if client.transport is not None:
                    client.transport.abort()
            await asyncio.sleep(0.2)
            return result

        result = asyncio.run(asyncio.wait_for(main(), timeout + 120))
        if proc.poll() is not None:
            result.errors.append(f"server exited with {proc.returncode}")
        result.app = app
        return result
    finally:
        terminate(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True, help="one of " + ", ".join(APPS_HTTP))
    parser.add_argument("-n", "--connections", type=int, default=10_000)
    parser.add_argument("--websocket", action="store_true", help="idle WebSockets, not HTTP")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before each RSS read")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on opening them all")
    parser.add_argument("--json", type=Path, help="also write the result here as JSON")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {0})  # the server is on CPU 1
    signal.signal(signal.SIGTERM, on_sigterm)
    RAW.mkdir(exist_ok=True)
    try:
        result = measure(args.app, args.connections, args.websocket, args.settle, args.timeout)
    except StartError as exc:
        print(f"failed to start: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    finally:
        kill_all()
    data = asdict(result)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
