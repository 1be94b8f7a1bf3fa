"""Tail stability at saturation (issue 20): one server process on one CPU, wrk on another,
100 / 400 / 1000 connections, servers interleaved within each round; prints a markdown table
of p99 per round, throughput, and wrk's socket errors (timeouts included).

    benchmarks/.venv/bin/python benchmarks/tails.py [--rounds 2] [--duration 4] [--tree DIR]

``--tree DIR`` serves asyncweb from another checkout (``git archive REV asyncweb | tar -x -C
DIR``) to compare before and after. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

SERVERS = [
    ("asyncweb (h11)", "asyncweb_hello.py"),
    ("asyncweb (httptools)", "asyncweb_httptools_hello.py"),
    ("Tornado", "tornado_hello.py"),
    ("aiohttp", "aiohttp_hello.py"),
    ("uvicorn (httptools)", "starlette_httptools.py"),
]
CONNECTIONS = (100, 400, 1000)


def _ok(response: bl.Response) -> str | None:
    return None if response.status == 200 else f"status {response.status}"


def _listen_overflows() -> int | None:
    try:
        out = subprocess.run(
            ["nstat", "-az", "TcpExtListenOverflows"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.startswith("TcpExtListenOverflows"):
            return int(line.split()[1])
    return None


def run_one(
    script: str, conns: int, duration: float, tree: str | None, raw: Path
) -> dict[str, str]:
    port = bl.free_port()
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    proc = bl.start_server(
        bl.app_argv(script, port),
        port,
        raw / "server.log",
        _ok,
        cwd=bl.APPS,
        env=env,
        raise_limit=True,
    )
    try:
        url = f"http://{bl.HOST}:{port}/"
        bl.run_wrk(bl.wrk_argv(url, 1, conns, threads=2), 1, raw / "warm.log")
        before = _listen_overflows()
        argv = bl.wrk_argv(url, duration, conns, threads=2)
        argv[-1:-1] = ["--timeout", "5s"]
        out = bl.run_wrk(argv, duration, raw / "wrk.log")
        after = _listen_overflows()
    finally:
        bl.terminate(proc)
    sample = bl.parse_wrk(out)
    drops = "—" if before is None or after is None else str(after - before)
    return {
        "p99": bl.fmt_ms(sample.p99_ms),
        "max": bl.fmt_ms(sample.max_ms),
        "rps": f"{sample.rps:,.0f}",
        "errors": sample.errors or "none",
        "drops": drops,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--tree", default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, bl.on_sigterm)
    bl.raise_nofile_limit()
    raw = Path(tempfile.mkdtemp(prefix="tails-"))
    results: dict[tuple[str, int], list[dict[str, str]]] = {}
    try:
        for _round in range(args.rounds):
            for conns in CONNECTIONS:
                for name, script in SERVERS:
                    try:
                        r = run_one(script, conns, args.duration, args.tree, raw)
                    except (bl.StartError, RuntimeError) as exc:
                        r = {
                            "p99": "failed",
                            "max": "—",
                            "rps": "—",
                            "errors": str(exc)[:80],
                            "drops": "—",
                        }
                    results.setdefault((name, conns), []).append(r)
                    time.sleep(0.5)
    finally:
        bl.kill_all()
    print(
        "| connections | server | p99 per round | max per round | req/s per round |"
        " listen overflows per round | wrk errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for conns in CONNECTIONS:
        for name, _script in SERVERS:
            rs = results[(name, conns)]
            errors = "; ".join(sorted({r["errors"] for r in rs}))
            print(
                f"| {conns} | {name} | {' / '.join(r['p99'] for r in rs)} | "
                f"{' / '.join(r['max'] for r in rs)} | {' / '.join(r['rps'] for r in rs)} | "
                f"{' / '.join(r['drops'] for r in rs)} | {errors} |"
            )


if __name__ == "__main__":
    main()
