"""Multi-process scaling: hello world with 1..N worker processes, req/s and the ratio to
N x one worker, for three set-ups:

- ``asyncweb``: ``asyncweb serve --workers N`` (each worker binds its own SO_REUSEPORT socket);
- ``asyncweb-shared``: Tornado's ``HTTPServer.bind()`` + ``start(N)`` (forked after bind, one
  listening socket shared by every worker);
- ``aiohttp``: N forked ``web.run_app(reuse_port=True)`` processes on uvloop.

Besides req/s it reads each worker's CPU time from /proc during the run and reports the
busiest and idlest worker's share, which shows how evenly the kernel spread the connections
even where the machine has too few cores for the req/s to scale.

    benchmarks/.venv/bin/python benchmarks/scaling.py [--max-workers N] [--duration S]
        [--rounds R] [--only asyncweb,aiohttp] [--wrk-threads T] [--connections C]

Nothing is pinned: wrk and the workers share the machine's cores, so on a machine with no more
cores than workers the ratios measure the machine, not the server. Run it where cores are free.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from benchlib import (
    APPS,
    HOST,
    RAW,
    cpu_seconds,
    free_port,
    kill_all,
    machine_line,
    parse_wrk,
    pkg_version,
    run_wrk,
    start_server,
    terminate,
    wrk_argv,
)

# Tornado's own multi-process recipe: bind in the parent, fork, every child serves the socket.
SHARED = """
import sys
from asyncweb import ioloop
from asyncweb.httpserver import HTTPServer
sys.path.insert(0, sys.argv[3])
from asyncweb_serve_app import app
server = HTTPServer(app)
server.bind(int(sys.argv[1]), "127.0.0.1")
server.start(int(sys.argv[2]))
ioloop.IOLoop.current().start()
"""

# N aiohttp processes, each with its own SO_REUSEPORT socket, as aiohttp documents for scaling.
AIOHTTP = """
import os, sys
from aiohttp import web
port, count = int(sys.argv[1]), int(sys.argv[2])
async def hello(request):
    return web.Response(text="Hello, world")
def serve():
    import uvloop
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, access_log=None,
                print=None, loop=uvloop.new_event_loop())
children = []
for _ in range(count):
    pid = os.fork()
    if pid == 0:
        serve()
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def argv_for(setup: str, port: int, workers: int) -> list[str]:
    if setup == "asyncweb":
        return [
            sys.executable, "-m", "asyncweb", "serve", "asyncweb_serve_app:app",
            "--app-dir", str(APPS), "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    if setup == "asyncweb-shared":
        return [sys.executable, "-c", SHARED, str(port), str(workers), str(APPS)]
    return [sys.executable, "-c", AIOHTTP, str(port), str(workers)]


def descendants(root: int) -> list[int]:
    """The process and every process below it, from /proc (no psutil needed)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def check(response: object) -> str | None:
    body = getattr(response, "body", b"")
    return None if body == b"Hello, world" else f"body {body[:60]!r}"


def measure(
    setup: str, workers: int, opts: argparse.Namespace, rnd: int
) -> tuple[float, float, str]:
    port = free_port()
    tag = f"scaling-{setup}-{workers}-r{rnd}"
    proc = start_server(argv_for(setup, port, workers), port, RAW / f"{tag}.log", check)
    try:
        time.sleep(0.5)  # every worker up and listening
        pids = descendants(proc.pid)
        url = f"http://{HOST}:{port}/"
        warm = wrk_argv(url, 1, opts.connections, opts.wrk_threads, latency=False, pin=None)
        run_wrk(warm, 1, RAW / f"{tag}-warm.txt")
        before = {pid: cpu_seconds(pid) for pid in pids}
        argv = wrk_argv(url, opts.duration, opts.connections, opts.wrk_threads, pin=None)
        sample = parse_wrk(run_wrk(argv, opts.duration, RAW / f"{tag}.txt"))
        used = [cpu_seconds(pid) - before[pid] for pid in pids]
    finally:
        terminate(proc)
    busy = sorted((seconds for seconds in used if seconds > 0), reverse=True)[:workers]
    total = sum(busy) or 1
    # Requests per CPU-second of the server processes: what each worker's time buys, which a
    # crowded machine changes far less than req/s (a herd of wake-ups would lower it).
    per_cpu_second = sample.rps * opts.duration / (sum(used) or 1)
    spread = f"{100 * busy[0] / total:.0f}/{100 * busy[-1] / total:.0f}%" if busy else "-"
    if sample.errors:
        spread += f" ({sample.errors})"
    return sample.rps, per_cpu_second, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--only", default="asyncweb,asyncweb-shared,aiohttp")
    opts = parser.parse_args()
    setups = opts.only.split(",")
    counts = list(range(1, opts.max_workers + 1))
    results: dict[tuple[str, int], list[float]] = {}
    spreads: dict[tuple[str, int], list[str]] = {}
    efficiency: dict[tuple[str, int], list[float]] = {}
    try:
        for rnd in range(opts.rounds):  # interleaved, so drift hits every set-up alike
            for setup in setups:
                for workers in counts:
                    rps, per_cpu, spread = measure(setup, workers, opts, rnd)
                    efficiency.setdefault((setup, workers), []).append(per_cpu)
                    results.setdefault((setup, workers), []).append(rps)
                    spreads.setdefault((setup, workers), []).append(spread)
                    print(
                        f"round {rnd + 1} {setup} x{workers}: {rps:,.0f} req/s, "
                        f"{per_cpu:,.0f} per CPU-s, {spread}"
                    )
    finally:
        kill_all()
    print()
    print(f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine_line()}, Python "
          f"{sys.version.split()[0]}, asyncweb {pkg_version('asyncweb')}, aiohttp "
          f"{pkg_version('aiohttp')}, uvloop {pkg_version('uvloop')}; wrk -t{opts.wrk_threads} "
          f"-c{opts.connections} {opts.duration:g}s, not pinned, {opts.rounds} rounds")  # fmt: skip
    print()
    print(
        "| set-up | workers | median req/s | rounds | vs N x 1 worker | requests per server "
        "CPU-second (vs 1 worker) | CPU busiest/idlest worker |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for setup in setups:
        one = statistics.median(results[(setup, 1)])
        one_cpu = statistics.median(efficiency[(setup, 1)])
        for workers in counts:
            rps = statistics.median(results[(setup, workers)])
            rounds = " / ".join(f"{value:,.0f}" for value in results[(setup, workers)])
            ratio = rps / (workers * one)
            per_cpu = statistics.median(efficiency[(setup, workers)])
            print(f"| {setup} | {workers} | {rps:,.0f} | {rounds} | {ratio:.2f} | "
                  f"{per_cpu:,.0f} ({per_cpu / one_cpu:.2f}) | "
                  f"{', '.join(spreads[(setup, workers)])} |")  # fmt: skip


if __name__ == "__main__":
    main()
