"""WebSocket benchmark: asyncweb vs Tornado's WebSocketHandler vs aiohttp, in one run.

For each server (``benchmarks/ws/<name>_ws.py``, one process on uvloop pinned to CPU 1) the load
client (``benchmarks/ws/load.py``, pinned to CPU 0) measures

- **echo**: round trips per second, 50 connections, one 64-byte text message in flight each;
- **fan-out**: 1,000 connections in one room, 100 broadcasts of 64 bytes: deliveries per second.

Rounds alternate between servers; the report takes medians. Run with the benchmark venv::

    benchmarks/.venv/bin/python benchmarks/ws_bench.py               # 3 rounds, 10 s echo
    benchmarks/.venv/bin/python benchmarks/ws_bench.py --quick       # 1 round, 2 s: a smoke test

Writes ``benchmarks/ws_results.md`` (``--quick``: ``benchmarks/raw/ws-results-quick.md``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import subprocess
import sys
from pathlib import Path

from benchlib import (
    CLIENT_CPU,
    RAW,
    SERVER_CPU,
    Response,
    StartError,
    free_port,
    kill_all,
    machine_line,
    median,
    on_sigterm,
    pkg_version,
    raise_nofile_limit,
    start_server,
    terminate,
)

HERE = Path(__file__).resolve().parent
WS = HERE / "ws"
SERVERS = ["asyncweb", "tornado", "aiohttp"]


def hello_check(response: Response) -> str | None:
    if response.status != 200 or response.body != b"Hello, world":
        return f"status {response.status}, body {response.body[:40]!r}"
    return None


def run_client(args: list[str], timeout: float) -> dict[str, float]:
    argv = ["taskset", "-c", CLIENT_CPU, sys.executable, str(WS / "load.py"), *args]
    done = subprocess.run(
        argv,
        capture_output=True,
        timeout=timeout,
        preexec_fn=raise_nofile_limit,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr.decode()[-500:]}")
    result: dict[str, float] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def one_round(name: str, round_no: int, duration: float, clients: int) -> dict[str, float]:
    port = free_port()
    argv = ["taskset", "-c", SERVER_CPU, sys.executable, str(WS / f"{name}_ws.py")]
    argv += ["--port", str(port)]
    log = RAW / f"ws-{name}-r{round_no}.server.log"
    proc = start_server(argv, port, log, hello_check, raise_limit=True)
    try:
        echo = run_client(["echo", "--port", str(port), "--duration", str(duration)], duration + 60)
        fanout = run_client(
            ["fanout", "--port", str(port), "--clients", str(clients), "--messages", "100"], 120
        )
    finally:
        terminate(proc)
    return {
        "echo": echo["round_trips_per_s"],
        "fanout": fanout["deliveries_per_s"],
        "echo_client_cpu": echo["client_cpu_share"],
        "fanout_client_cpu": fanout["client_cpu_share"],
    }


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    echo = {name: median([r["echo"] for r in runs]) or 0.0 for name, runs in results.items()}
    fanout = {name: median([r["fanout"] for r in runs]) or 0.0 for name, runs in results.items()}
    base_echo = echo.get("tornado") or 0.0
    base_fanout = fanout.get("tornado") or 0.0
    lines = [
        "# WebSocket benchmark",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
        f"Machine: {machine_line()}.",
        f"Rounds: {args.rounds}, echo {args.duration:g} s per round; medians. Server pinned to "
        f"CPU {SERVER_CPU}, load client (benchmarks/ws/load.py) to CPU {CLIENT_CPU}.",
        f"Versions: tornado {pkg_version('tornado')}, aiohttp {pkg_version('aiohttp')}, "
        f"wsproto {pkg_version('wsproto')}, uvloop {pkg_version('uvloop')}.",
        "",
        "- echo: 50 connections, one 64-byte text message in flight on each.",
        f"- fan-out: {args.clients} connections in one room, 100 broadcasts of 64 bytes each.",
        "",
        "| server | echo round trips/s | vs Tornado | fan-out deliveries/s | vs Tornado |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in results:
        echo_ratio = f"{echo[name] / base_echo:.2f}x" if base_echo else "-"
        fan_ratio = f"{fanout[name] / base_fanout:.2f}x" if base_fanout else "-"
        lines.append(
            f"| {name} | {echo[name]:,.0f} | {echo_ratio} | {fanout[name]:,.0f} | {fan_ratio} |"
        )
    lines += ["", "Per round:", ""]
    for name, runs in results.items():
        rounds = ", ".join(
            f"{r['echo']:,.0f} / {r['fanout']:,.0f} (load client CPU "
            f"{r['echo_client_cpu']:.0%} / {r['fanout_client_cpu']:.0%})"
            for r in runs
        )
        lines.append(f"- {name} (echo / fan-out): {rounds}")
    lines += [
        "",
        "The load client's CPU share tells whether it, rather than the server, set the pace: "
        "near 100% means the figure is a lower bound for that server.",
    ]
    if args.quick or args.rounds < 3 or args.duration < 10:
        lines += [
            "",
            "**Short validation run** (fewer than 3 rounds of 10 s, possibly on a busy "
            "machine): it shows the harness works; take final figures from a full run.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    output = args.output or (RAW / "ws-results-quick.md" if args.quick else HERE / "ws_results.md")
    names = [name for name in args.only.split(",") if name in SERVERS]
    signal.signal(signal.SIGTERM, on_sigterm)
    raise_nofile_limit()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for round_no in range(1, args.rounds + 1):
            for name in names:
                try:
                    outcome = one_round(name, round_no, args.duration, args.clients)
                except (StartError, RuntimeError, subprocess.TimeoutExpired) as err:
                    print(f"{name} round {round_no}: {err}", file=sys.stderr)
                    continue
                results[name].append(outcome)
                print(
                    f"{name} round {round_no}: echo {outcome['echo']:,.0f}/s, "
                    f"fan-out {outcome['fanout']:,.0f}/s",
                    flush=True,
                )
    finally:
        kill_all()
    results = {name: runs for name, runs in results.items() if runs}
    text = report(results, args)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
