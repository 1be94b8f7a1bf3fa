"""Soak test: mixed HTTP and WebSocket traffic at a moderate rate against a server subprocess,
sampling the server's resident memory. Not part of CI; run with ``nox -s soak``.

    python benchmarks/soak.py [--duration 600] [--rate 200] [--warmup 0.2] [--tolerance 0.05]

Traffic (per second, spread evenly): keep-alive GETs, new-connection GETs, urlencoded and
multipart POSTs, JSON, 404s, handler errors (500), signed cookies, a template render, static
files, and WebSocket clients that connect, exchange messages and close. RSS is read from
/proc/PID/status every few seconds. After warm-up (the first ``--warmup`` fraction of the run)
the final RSS must stay within ``--tolerance`` of the warm-up RSS; the script prints a summary
and exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# -- the server (run in the subprocess) -----------------------------------------------------


def serve(port: int, static_dir: str) -> None:
    from asyncweb import template
    from asyncweb.httpserver import HTTPServer
    from asyncweb.web import Application, HTTPError, RequestHandler

    page = template.Template("<ul>{% for item in items %}<li>{{ item }}</li>{% end %}</ul>")

    class Hello(RequestHandler):
        def get(self) -> None:
            self.write("Hello, world")

    class Form(RequestHandler):
        def post(self) -> None:
            fields = self.request.body_arguments
            self.write({"fields": len(fields), "files": len(self.request.files)})

    class Data(RequestHandler):
        async def get(self) -> None:
            await asyncio.sleep(0.001)
            self.write({"n": int(self.get_argument("n", "0")), "items": list(range(20))})

    class Boom(RequestHandler):
        def get(self) -> None:
            raise HTTPError(500) if self.get_argument("http", "") else RuntimeError("soak")

    class Cookie(RequestHandler):
        def get(self) -> None:
            seen = self.get_signed_cookie("visit")
            count = int(seen or b"0") + 1
            self.set_signed_cookie("visit", str(count))
            self.write(str(count))

    class Page(RequestHandler):
        def get(self) -> None:
            self.write(page.generate(items=["<b>", "&", "x" * 50] * 5))

    handlers: list[Any] = [
        ("/", Hello),
        ("/form", Form),
        ("/data", Data),
        ("/boom", Boom),
        ("/cookie", Cookie),
        ("/page", Page),
    ]
    try:
        from asyncweb.websocket import WebSocketHandler

        class Echo(WebSocketHandler):
            def on_message(self, message: str | bytes) -> None:
                self.write_message(message, binary=isinstance(message, bytes))

        handlers.append(("/ws", Echo))
    except ImportError:
        pass

    async def main() -> None:
        app = Application(handlers, cookie_secret="soak-secret", static_path=static_dir)
        server = HTTPServer(app)
        server.listen(port, "127.0.0.1")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    import logging

    logging.getLogger("asyncweb").setLevel(logging.CRITICAL)
    logging.getLogger("asyncweb.access").setLevel(logging.CRITICAL)
    asyncio.run(main())


# -- the clients ----------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.ws_messages = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                return status, b"".join(parts)
    return status, await reader.readexactly(length or 0)


def requests_mix(n: int) -> tuple[bytes, int]:
    """One request of the mix and the status it must get."""
    kind = n % 10
    if kind == 0:
        body = b"a=1&b=two&c=" + b"x" * 200
        return (
            b"POST /form HTTP/1.1\r\nHost: soak\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
            200,
        )
    if kind == 1:
        body = (
            b'--S\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n" + b"y" * 2000 + b"\r\n"
            b'--S\r\nContent-Disposition: form-data; name="g"\r\n\r\nvalue\r\n--S--\r\n'
        )
        return (
            b"POST /form HTTP/1.1\r\nHost: soak\r\nContent-Type: multipart/form-data; boundary=S"
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
            200,
        )
    paths = {
        2: (b"/data?n=%d" % n, 200),
        3: (b"/missing/%d" % n, 404),
        4: (b"/boom", 500),
        5: (b"/page", 200),
        6: (b"/static/file.txt", 200),
        7: (b"/boom?http=1", 500),
    }
    path, status = paths.get(kind, (b"/", 200))
    return b"GET " + path + b" HTTP/1.1\r\nHost: soak\r\n\r\n", status


async def keep_alive_client(port: int, rate: float, until: float, stats: Stats) -> None:
    n = random.randrange(1000)
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats.error("connect")
            await asyncio.sleep(0.5)
            continue
        try:
            cookie = b""
            for _ in range(200):  # then a new connection
                if time.monotonic() >= until:
                    break
                started = time.monotonic()
                request, expected = requests_mix(n)
                if n % 10 == 8:
                    request = b"GET /cookie HTTP/1.1\r\nHost: soak\r\n" + cookie + b"\r\n"
                n += 1
                writer.write(request)
                status, _body = await asyncio.wait_for(read_response(reader), 10)
                stats.requests += 1
                if status != expected:
                    stats.error(f"status {status} for {request[:30]!r}")
                await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as err:
            stats.error(type(err).__name__)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def churn_client(port: int, rate: float, until: float, stats: Stats) -> None:
    """One request per connection, closing: exercises accept/close paths."""
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await writer.wait_closed()
            stats.requests += 1
            if not data.startswith(b"HTTP/1.1 200"):
                stats.error("churn status")
        except (OSError, asyncio.TimeoutError) as err:
            stats.error("churn " + type(err).__name__)
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


async def websocket_client(port: int, rate: float, until: float, stats: Stats) -> None:
    import websockets

    while time.monotonic() < until:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=2**20) as ws:
                for i in range(50):  # then reconnect
                    if time.monotonic() >= until:
                        break
                    started = time.monotonic()
                    message: str | bytes = f"message {i}" if i % 2 else os.urandom(512)
                    await ws.send(message)
                    echoed = await asyncio.wait_for(ws.recv(), 10)
                    if echoed != message:
                        stats.error("ws echo")
                    stats.ws_messages += 1
                    await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
        except Exception as err:  # any failure is counted; the soak goes on
            stats.error("ws " + type(err).__name__)
            await asyncio.sleep(0.5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def soak(args: argparse.Namespace) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    static_dir = tempfile.mkdtemp(prefix="asyncweb-soak-")
    Path(static_dir, "file.txt").write_bytes(b"static content\n" * 100)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--static", static_dir], cwd=ROOT
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        stats = Stats()
        started = time.monotonic()
        until = started + args.duration
        clients = args.clients
        per_client = args.rate * 0.8 / clients  # 80% on keep-alive connections
        tasks = [keep_alive_client(port, per_client, until, stats) for _ in range(clients)]
        tasks.append(churn_client(port, args.rate * 0.1, until, stats))
        ws_clients = 4
        tasks += [
            websocket_client(port, args.rate * 0.1 / ws_clients, until, stats)
            for _ in range(ws_clients)
        ]
        samples: list[tuple[float, int]] = []

        async def sample() -> None:
            while time.monotonic() < until:
                samples.append((time.monotonic() - started, rss_kib(server.pid)))
                await asyncio.sleep(args.interval)

        await asyncio.gather(sample(), *tasks)
        samples.append((time.monotonic() - started, rss_kib(server.pid)))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    warm_at = args.duration * args.warmup
    warm = [rss for t, rss in samples if t >= warm_at]
    baseline = warm[0]
    final = warm[-1]
    peak = max(warm)
    growth = (final - baseline) / baseline
    ok = growth <= args.tolerance and not (set(stats.errors) - {"ws ConnectionClosedError"})
    summary = {
        "duration_s": round(time.monotonic() - started, 1),
        "requests": stats.requests,
        "websocket_messages": stats.ws_messages,
        "rate_per_s": round((stats.requests + stats.ws_messages) / args.duration, 1),
        "errors": stats.errors,
        "rss_start_kib": samples[0][1],
        "rss_after_warmup_kib": baseline,
        "rss_peak_after_warmup_kib": peak,
        "rss_final_kib": final,
        "growth_after_warmup_pct": round(100 * growth, 2),
        "ok": ok,
    }
    print(json.dumps(summary, indent=1))
    print("samples (s, KiB):", " ".join(f"{round(t)}:{rss}" for t, rss in samples))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (600)")
    parser.add_argument("--rate", type=float, default=200.0, help="requests+messages/s (200)")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive clients (8)")
    parser.add_argument("--warmup", type=float, default=0.2, help="warm-up fraction (0.2)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="RSS growth (0.05)")
    parser.add_argument("--interval", type=float, default=5.0, help="RSS sampling, s (5)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--static", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(ROOT))
        serve(args.serve, args.static)
        return 0
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
