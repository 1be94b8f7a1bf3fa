"""Server memory during and after large uploads (issue 15, part 2).

Starts an asyncweb server in a subprocess (a handler that reads ``self.request.body``, a
``@stream_request_body`` handler, and a small GET), then sends N concurrent uploads of SIZE MiB
while other clients keep fetching the small page, and reads the server's ``VmRSS``/``VmHWM``
from /proc: before, at the peak, and after the uploads ended (once more small traffic ran).

    python benchmarks/upload_memory.py [--uploads 20] [--size 50] [--rounds 2] [--json F]

Not a test: the figures depend on the machine and the allocator. The goal is an RSS after the
uploads within 2x of the starting figure, and a peak that does not grow with N x SIZE when
bodies are spooled (see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from asyncweb import web
    from asyncweb.httpserver import HTTPServer
    from asyncweb.netutil import bind_sockets

    class Upload(web.RequestHandler):
        def post(self):
            self.write({"length": len(self.request.body)})

    @web.stream_request_body
    class Streamed(web.RequestHandler):
        def prepare(self):
            self.received = 0
        def data_received(self, chunk):
            self.received += len(chunk)
        def post(self):
            self.write({"length": self.received})

    class Small(web.RequestHandler):
        def get(self):
            self.write("small")

    async def main():
        app = web.Application([("/upload", Upload), ("/stream", Streamed), ("/", Small)])
        server = HTTPServer(app, max_body_size=1 << 30)
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        print(sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    if sys.argv[1] == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    """
)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid`` in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def upload(port: int, path: str, payload: memoryview, chunked: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(payload)}"
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n"
    writer.write((head + "Connection: close\r\n\r\n").encode())
    step = 256 * 1024
    for start in range(0, len(payload), step):
        piece = payload[start : start + step]
        if chunked:
            writer.write(b"%x\r\n" % len(piece))
        writer.write(piece)
        if chunked:
            writer.write(b"\r\n")
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    response = await reader.read()
    assert response.startswith(b"HTTP/1.1 200"), response[:100]
    assert str(len(payload)).encode() in response
    writer.close()


async def small_traffic(port: int, stop: asyncio.Event) -> int:
    """Small requests, each on a new connection; the last 25 connections are kept open, so
    the server allocates (and keeps) small objects between the uploads' buffers."""
    count = 0
    held: list[asyncio.StreamWriter] = []
    while not stop.is_set():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"small")
        count += 1
        held.append(writer)
        if len(held) > 25:
            held.pop(0).close()
        await asyncio.sleep(0.001)
    for writer in held:
        writer.close()
    return count


async def run_round(
    port: int, pid: int, uploads: int, size: int, path: str, chunked: bool = False
) -> dict[str, int]:
    payload = memoryview(os.urandom(1024) * (size * 1024))
    stop = asyncio.Event()
    peak_rss = 0
    background = [asyncio.ensure_future(small_traffic(port, stop)) for _ in range(4)]

    async def sample() -> None:
        nonlocal peak_rss
        while not stop.is_set():
            peak_rss = max(peak_rss, memory(pid)["VmRSS"])
            await asyncio.sleep(0.05)

    sampler = asyncio.ensure_future(sample())
    await asyncio.gather(*(upload(port, path, payload, chunked) for _ in range(uploads)))
    await asyncio.sleep(0.5)  # the small clients go on a moment after the uploads
    stop.set()
    small = sum(await asyncio.gather(*background))
    await sampler
    return {"peak_rss_kib": peak_rss, "small_requests": small}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--size", type=int, default=50, help="MiB per upload")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--path", default="/upload", choices=("/upload", "/stream"))
    parser.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    parser.add_argument("--chunked", action="store_true", help="chunked uploads (read by h11)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, args.loop], stdout=subprocess.PIPE, env=env, cwd=str(root)
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        # Warm up: some small requests and one small upload, so "before" includes the imports.
        await run_round(port, proc.pid, 1, 1, args.path)
        before = memory(proc.pid)["VmRSS"]
        results = {"before_rss_kib": before, "rounds": []}
        for _ in range(args.rounds):
            started = time.monotonic()
            figures = await run_round(
                port, proc.pid, args.uploads, args.size, args.path, args.chunked
            )
            await asyncio.sleep(1.0)
            figures["after_rss_kib"] = memory(proc.pid)["VmRSS"]
            figures["seconds"] = round(time.monotonic() - started, 1)
            results["rounds"].append(figures)
            kind = args.loop + (", chunked" if args.chunked else "")
            print(
                f"{args.uploads} x {args.size} MiB to {args.path} ({kind}):"
                f" before {before / 1024:.0f} MiB,"
                f" peak {figures['peak_rss_kib'] / 1024:.0f} MiB,"
                f" after {figures['after_rss_kib'] / 1024:.0f} MiB"
                f" ({figures['small_requests']} small requests alongside,"
                f" {figures['seconds']} s)",
                flush=True,
            )
        results["peak_hwm_kib"] = memory(proc.pid)["VmHWM"]
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    asyncio.run(main())
