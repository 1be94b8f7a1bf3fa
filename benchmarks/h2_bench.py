"""HTTP/2 throughput with h2load (Debian: nghttp2-client): asyncweb against hypercorn, the only
other Python server that speaks HTTP/2, on a hello-world response and a 100 KiB static file;
plus asyncweb's HTTP/1.1 hello with and without ``http2=True`` (the HTTP/1 path must not pay).

    python benchmarks/h2_bench.py [--duration 10] [--rounds 3] [--quick]

Cleartext h2c by prior knowledge (h2load's default for http:// URLs), ``-c 10 -m 10``; one
server process pinned to CPU 0, h2load to CPU 1. Figures are medians of the rounds; results go
to benchmarks/h2_results.md (not with --quick). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import cpu_seconds

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
STATIC_SIZE = 100 * 1024
FAILURES: list[str] = []  # runs in which h2load saw failed requests, reported with the figures


# -- the servers (run as subprocesses of this script) -------------------------------------------


def serve_asyncweb(kind: str, port: int, static_dir: str, http2: bool) -> None:
    from asyncweb import ioloop, web

    class Hello(web.RequestHandler):
        def get(self) -> None:
            self.write("Hello, world")

    app = web.Application([(r"/", Hello)], static_path=static_dir)
    app.listen(port, address=HOST, http2=http2)
    ioloop.IOLoop.current().start()


def serve_hypercorn(kind: str, port: int, static_dir: str) -> None:
    import uvloop
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("Hello, world")

    app = Starlette(routes=[Route("/", hello), Mount("/static", StaticFiles(directory=static_dir))])
    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    uvloop.install()
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


# -- the runner ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def h2load(url: str, h1: bool, limit: list[str]) -> tuple[float, int]:
    """(req/s, requests done) of one h2load run; ``limit``: ``-D secs`` or ``-n count``."""
    argv = ["h2load", "-c", "10", "-m", "1" if h1 else "10", *limit]
    if h1:
        argv.append("--h1")
    out = subprocess.run(pinned("1", [*argv, url]), capture_output=True, text=True).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if done is None or not int(done.group(2)):
        raise RuntimeError(f"h2load saw no success:\n{out}")
    failed = int(done.group(1)) - int(done.group(2))
    if failed:
        name = "/" + url.split("/", 3)[3]
        FAILURES.append(f"{failed} of {done.group(1)} with {' '.join(argv[1:])} {name}")
    found = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    if found is None:
        raise RuntimeError(f"no figure in h2load output:\n{out}")
    return float(found.group(1)), int(done.group(2))


def measure(
    server: list[str], path: str, duration: float, rounds: int, h1: bool = False
) -> tuple[float, float]:
    """Medians over the rounds of (req/s, requests per CPU second of the server). The second
    moves much less than the first when other processes share the machine."""
    rates, per_cpu = [], []
    for _ in range(rounds):
        port = free_port()
        # hypercorn prints a traceback per connection when it is stopped: not shown.
        quiet = subprocess.DEVNULL if "hypercorn" in server else None
        proc = subprocess.Popen(
            pinned("0", [*server, "--port", str(port)]), stdout=subprocess.DEVNULL, stderr=quiet
        )
        try:
            wait_for_port(port, proc)
            FAILURES.append(f"@{server[3]}")  # a marker: the runs below are this server's
            url = f"http://{HOST}:{port}{path}"
            h2load(url, h1, ["-n", "2000"])  # warm-up
            before = cpu_seconds(proc.pid)
            rate, done = h2load(url, h1, ["-D", f"{duration:g}"])
            used = cpu_seconds(proc.pid) - before
            rates.append(rate)
            per_cpu.append(done / used if used else 0.0)
        finally:
            proc.terminate()
            proc.wait(10)
    return statistics.median(rates), statistics.median(per_cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, no results file")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="hello", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--static-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "asyncweb":
        return serve_asyncweb(args.kind, args.port, args.static_dir, http2=True)
    if args.serve == "asyncweb-http1":
        return serve_asyncweb(args.kind, args.port, args.static_dir, http2=False)
    if args.serve == "hypercorn":
        return serve_hypercorn(args.kind, args.port, args.static_dir)
    if shutil.which("h2load") is None:
        sys.exit("h2load not found (Debian: apt-get install nghttp2-client)")
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    with tempfile.TemporaryDirectory() as static_dir:
        Path(static_dir, "file.bin").write_bytes(os.urandom(STATIC_SIZE))

        def server(name: str) -> list[str]:
            return [sys.executable, __file__, "--serve", name, "--static-dir", static_dir]

        rows = []
        for label, path in (("hello", "/"), ("static 100 KiB", "/static/file.bin")):
            ours = measure(server("asyncweb"), path, args.duration, args.rounds)
            theirs = measure(server("hypercorn"), path, args.duration, args.rounds)
            rows.append((f"HTTP/2 {label}", ours, theirs))
            print(f"{label}: asyncweb {ours}, hypercorn {theirs} (req/s, req per CPU s)")
        plain = measure(server("asyncweb-http1"), "/", args.duration, args.rounds, h1=True)
        both = measure(server("asyncweb"), "/", args.duration, args.rounds, h1=True)
        print(f"HTTP/1.1 hello: http2=False {plain}, http2=True {both}")
    if args.quick:
        return
    h2load_version = subprocess.run(
        ["h2load", "--version"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# HTTP/2 benchmark (h2load)",
        "",
        f"{datetime.date.today()} · {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"`{h2load_version}` · load average at the end {os.getloadavg()[0]:.1f}",
        "",
        f"`h2load -c 10 -m 10 -D {args.duration:g}` (h2c, prior knowledge), server on CPU 0, "
        f"h2load on CPU 1, median of {args.rounds} rounds. asyncweb: `Application.listen(port, "
        "http2=True)`, `RequestHandler` and `StaticFileHandler`. hypercorn: Starlette "
        "(`PlainTextResponse`, `StaticFiles`) on uvloop, one worker.",
        "",
        "| benchmark | asyncweb req/s | hypercorn req/s | ratio | asyncweb req/CPU-s | "
        "hypercorn req/CPU-s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {a[0]:.0f} | {b[0]:.0f} | {a[0] / b[0]:.2f}x "
        f"| {a[1]:.0f} | {b[1]:.0f} | {a[1] / b[1]:.2f}x |"
        for name, a, b in rows
    ]
    failures, who = [], ""
    for entry in FAILURES:
        if entry.startswith("@"):
            who = entry[1:]
        else:
            failures.append(f"{who}: {entry}")
    lines += ["", "Failed requests: " + ("; ".join(failures) if failures else "none.")]
    lines += [
        "",
        "req/CPU-s: requests served per second of the server process's own CPU time (from "
        "/proc), which other load on the machine moves far less than req/s.",
        "",
        f"HTTP/1.1 hello (`h2load --h1 -c 10 -m 1`): `http2=False` {plain[0]:.0f} req/s, "
        f"{plain[1]:.0f} req/CPU-s; `http2=True` {both[0]:.0f} req/s, {both[1]:.0f} req/CPU-s "
        f"({both[1] / plain[1]:.2f}x per CPU second): HTTP/1 requests go to the same protocol "
        "either way; `http2=True` adds one protocol choice per connection.",
        "",
    ]
    (HERE / "h2_results.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
