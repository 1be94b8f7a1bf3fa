"""The benchmark suite: asyncweb against its peers, side by side in one run.

Run with the benchmark venv's python (see ``setup.sh``), or ``nox -s bench``::

    benchmarks/.venv/bin/python benchmarks/run.py [--quick] [--only hello,realistic,...]

Benchmarks (``--only`` picks some, in this order):

- ``hello``: hello world, wrk -t1 -c100 against each peer (server on CPU 1, wrk on CPU 0);
- ``realistic``: a route with a path argument, a query argument, a cookie read, a header set and
  a JSON answer, the same semantics in every peer (``apps/*_realistic.py``);
- ``latency``: asyncweb and Tornado at the same fixed request rate (wrk paced by ``pace.lua``),
  p50/p90/p99;
- ``c10k``: 10,000 idle keep-alive HTTP connections held at once (``c10k.py``): resident memory
  per connection, and an active client's latency meanwhile;
- ``c10k_ws``: the same with 10,000 idle WebSockets;
- ``workers``: ``asyncweb serve --workers 2`` against 1 worker, when that command exists;
- ``templates``, ``ws_echo``: ``template_bench.py`` and ``ws_bench.py``, when present.

Within a benchmark the contenders are interleaved round by round (the starting one rotated each
round) so machine noise hits all of them alike; figures are medians over rounds and ratios are
taken between medians. A contender that does not come up is reported as "failed to start" and
the rest go on. Writes ``results.md`` and ``results.png`` (``raw/results-quick.*`` with
``--quick``). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    APPS,
    CLIENT_CPU,
    HERE,
    HOST,
    RAW,
    SERVER_CPU,
    Check,
    Response,
    StartError,
    WrkSample,
    app_argv,
    cpu_seconds,
    fmt_ms,
    free_port,
    kill_all,
    machine_line,
    median,
    on_sigterm,
    parse_wrk,
    pkg_version,
    run_wrk,
    spawn,
    start_server,
    tail,
    terminate,
    wait_or_kill,
    wrk_argv,
    wrk_version,
)

WRK_CONNECTIONS = 100
# req/s for the latency benchmark: about 60% of Tornado's hello-world capacity on one core, so
# both servers keep up and queueing (not idle noise) shows in the tail.
DEFAULT_RATE = 5000
C10K_CONNECTIONS = 10_000
QUICK_C10K_CONNECTIONS = 1_000


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    packages: tuple[str, ...]


CONTENDERS: tuple[Contender, ...] = (
    Contender("asyncweb", "asyncweb", ("asyncweb", "h11", "uvloop")),
    # The same apps with the optional accelerated request parser (HTTPServer http_parser=).
    Contender(
        "asyncweb_httptools", "asyncweb (httptools parser)", ("asyncweb", "httptools", "uvloop")
    ),
    Contender("tornado", "Tornado", ("tornado", "uvloop")),
    Contender(
        "starlette_h11", "uvicorn+Starlette (h11)", ("uvicorn", "starlette", "h11", "uvloop")
    ),
    Contender(
        "starlette_httptools",
        "uvicorn+Starlette (httptools)",
        ("uvicorn", "starlette", "httptools", "uvloop"),
    ),
    Contender("aiohttp", "aiohttp", ("aiohttp", "uvloop")),
    Contender("h11_bare", "bare h11 Protocol (ceiling)", ("h11", "uvloop")),
)
BY_NAME = {c.name: c for c in CONTENDERS}
LABELS = {c.name: c.label for c in CONTENDERS}
MEASURED_PACKAGES = sorted({p for c in CONTENDERS for p in c.packages} | {"wsproto", "jinja2"})


# -- what a report section is -----------------------------------------------------------------


@dataclass
class Chart:
    """One panel of results.png: a value per contender."""

    title: str
    unit: str
    bars: list[tuple[str, float]]
    lower_is_better: bool = False
    target: tuple[float, str] | None = None  # a dashed line: (value, label)


@dataclass
class Section:
    name: str
    title: str
    lines: list[str]
    charts: list[Chart] = field(default_factory=list)
    data: Any = None  # the raw figures, for raw/results*.json


@dataclass
class Options:
    rounds: int
    duration: float
    warmup: float
    quick: bool
    contenders: list[str] | None  # None: each benchmark's own list
    rate: int
    c10k_connections: int


def selected(names: Sequence[str], opts: Options) -> list[str]:
    return [n for n in names if opts.contenders is None or n in opts.contenders]


def interleave(
    names: list[str], rounds: int, measure: Callable[[str, int], Any], tag: str
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Run ``measure(name, round)`` for every contender, round by round, rotating the start.

    Returns the samples per contender and, for contenders that failed, why (a contender that
    fails is not tried again)."""
    samples: dict[str, list[Any]] = {n: [] for n in names}
    failures: dict[str, str] = {}
    for rnd in range(1, rounds + 1):
        shift = (rnd - 1) % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            if name in failures:
                continue
            print(f"[{tag} {rnd}/{rounds}] {name:20} ", end="", flush=True)
            try:
                sample = measure(name, rnd)
            except StartError as exc:
                failures[name] = f"failed to start: {exc}"
            except RuntimeError as exc:
                failures[name] = f"failed: {exc}"
            else:
                samples[name].append(sample)
                print(summary(sample))
                continue
            print(failures[name])
    return samples, failures


def summary(sample: Any) -> str:
    if isinstance(sample, WrkSample):
        text = f"{sample.rps:10.0f} req/s  p50 {fmt_ms(sample.p50_ms)}  p99 {fmt_ms(sample.p99_ms)}"
        return text + (f"  [{sample.errors}]" if sample.errors else "")
    if isinstance(sample, dict) and "kib_per_connection" in sample:
        return (
            f"{sample['held']} held, {sample['kib_per_connection']:.2f} KiB each, "
            f"active p99 {fmt_ms(sample['active_during']['p99_ms'])}"
        )
    return str(sample)


def failure_lines(failures: dict[str, str]) -> list[str]:
    if not failures:
        return []
    lines = [f"- {LABELS.get(n, n)}: {why.replace('|', '/')}" for n, why in failures.items()]
    return ["", "Failures:", "", *lines]


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "—"


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


# -- throughput (hello, realistic) ------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    name: str
    title: str
    scripts: dict[str, str]  # contender -> app script
    path: str
    headers: tuple[tuple[str, str], ...]
    check: Check
    baselines: tuple[str, ...]
    note: str


def _check_hello(response: Response) -> str | None:
    if response.status == 200 and response.body == b"Hello, world":
        return None
    return f"{response.status} {response.body[:80]!r}"


REALISTIC_PATH = "/user/alice?greeting=hi"
REALISTIC_HEADERS = (("Cookie", "theme=dark; session=abc123"),)
REALISTIC_ANSWER = {"user": "alice", "greeting": "hi", "session": "abc123"}


def _check_realistic(response: Response) -> str | None:
    try:
        body = json.loads(response.body)
    except ValueError:
        body = response.body[:80]
    if response.status != 200 or body != REALISTIC_ANSWER:
        return f"{response.status} {body!r}"
    if response.headers.get("cache-control") != "no-store":
        return f"Cache-Control is {response.headers.get('cache-control')!r}"
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"Content-Type is {response.headers.get('content-type')!r}"
    return None


HELLO = Throughput(
    "hello",
    "Hello world",
    {
        "asyncweb": "asyncweb_hello.py",
        "asyncweb_httptools": "asyncweb_httptools_hello.py",
        "tornado": "tornado_hello.py",
        "starlette_h11": "starlette_h11.py",
        "starlette_httptools": "starlette_httptools.py",
        "aiohttp": "aiohttp_hello.py",
        "h11_bare": "h11_bare.py",
    },
    "/",
    (),
    _check_hello,
    ("tornado", "starlette_h11", "h11_bare"),
    "`GET /` answered with `Hello, world`. Targets: asyncweb >= 2.0x Tornado, >= 1.5x "
    "uvicorn+Starlette (h11), near the bare h11 ceiling. asyncweb (httptools parser) is the "
    "same app with `http_parser='httptools'`; the default parser is h11.",
)
REALISTIC = Throughput(
    "realistic",
    "Realistic endpoint",
    {
        "asyncweb": "asyncweb_realistic.py",
        "asyncweb_httptools": "asyncweb_httptools_realistic.py",
        "tornado": "tornado_realistic.py",
        "starlette_h11": "starlette_h11_realistic.py",
        "starlette_httptools": "starlette_httptools_realistic.py",
        "aiohttp": "aiohttp_realistic.py",
        "h11_bare": "h11_realistic.py",
    },
    REALISTIC_PATH,
    REALISTIC_HEADERS,
    _check_realistic,
    ("tornado", "starlette_h11", "h11_bare"),
    f"`GET {REALISTIC_PATH}` with `Cookie: {REALISTIC_HEADERS[0][1]}`: route with a path "
    "argument, a query argument (default `hello`), a cookie read (default `anonymous`), "
    "`Cache-Control: no-store` set, answer `"
    + json.dumps(REALISTIC_ANSWER)
    + "` as JSON. Every answer is checked before measuring. Target: asyncweb >= 2.0x Tornado.",
)


def wrk_once(
    bench: Throughput,
    contender: str,
    rnd: int,
    opts: Options,
    script: Path | None = None,
    script_args: Sequence[str] = (),
) -> WrkSample:
    port = free_port()
    prefix = RAW / f"{bench.name}-{contender}-r{rnd}"
    if script is not None:
        prefix = prefix.with_name(prefix.name + "-paced")
    proc = start_server(
        app_argv(bench.scripts[contender], port),
        port,
        prefix.with_suffix(".server.log"),
        bench.check,
        bench.path,
        bench.headers,
    )
    url = f"http://{HOST}:{port}{bench.path}"
    try:
        warm = wrk_argv(url, opts.warmup, WRK_CONNECTIONS, latency=False, headers=bench.headers)
        run_wrk(warm, opts.warmup, prefix.with_suffix(".warmup.txt"))
        argv = wrk_argv(url, opts.duration, WRK_CONNECTIONS, headers=bench.headers, script=script)
        if script_args:
            argv += ["--", *script_args]
        cpu_before = cpu_seconds(proc.pid)
        sample = parse_wrk(run_wrk(argv, opts.duration, prefix.with_suffix(".wrk.txt")))
        cpu_used = cpu_seconds(proc.pid) - cpu_before
        if proc.poll() is not None:
            raise RuntimeError(f"server died: {tail(prefix.with_suffix('.server.log'))}")
        if sample.requests:
            sample.cpu_us = 1e6 * cpu_used / sample.requests
        return sample
    finally:
        terminate(proc)


def throughput(bench: Throughput, opts: Options) -> Section:
    names = selected(list(bench.scripts), opts)
    samples, failures = interleave(
        names, opts.rounds, lambda n, r: wrk_once(bench, n, r, opts), bench.name
    )
    med = {n: median([s.rps for s in samples[n]]) for n in names}
    baselines = [b for b in bench.baselines if b in names]
    cpu = {n: median([s.cpu_us for s in samples[n]]) for n in names}
    head = ["contender", "median req/s", "p50", "p99", "rounds (req/s)", "server CPU us/req"]
    head += [f"vs {LABELS[b]}" for b in baselines]
    rows = []
    for n in names:
        if not samples[n]:
            rows.append([LABELS[n], failures.get(n, "no data").split(":", 1)[0]] + ["—"] * 4)
            rows[-1] += ["—"] * len(baselines)
            continue
        per_round = ", ".join(f"{s.rps:.0f}" for s in samples[n])
        errors = sorted({s.errors for s in samples[n] if s.errors})
        if errors:
            per_round += " [" + "; ".join(errors) + "]"
        row = [
            LABELS[n],
            f"{med[n]:,.0f}",
            fmt_ms(median([s.p50_ms for s in samples[n]])),
            fmt_ms(median([s.p99_ms for s in samples[n]])),
            per_round,
            "—" if cpu[n] is None else f"{cpu[n]:.1f}",
        ]
        rows.append(row + [ratio(med[n], med[b]) for b in baselines])
    cmd = shlex.join(wrk_argv("URL", opts.duration, WRK_CONNECTIONS, headers=bench.headers))
    lines = [
        bench.note,
        "",
        f"Client: `{cmd}`. Ratios are median req/s over the baseline's median req/s. Server "
        "CPU us/req: the server process's user + system time during the measured run over the "
        "requests answered (median), which a shared machine moves less than req/s.",
        "",
        *md_table(head, rows),
        *failure_lines(failures),
    ]
    bars = [(LABELS[n], v) for n in names if (v := med[n]) is not None]
    chart = Chart(f"{bench.title}: median req/s (higher is better)", "req/s", bars)
    if (tornado := med.get("tornado")) is not None:
        chart.target = (2 * tornado, "target: 2x Tornado")
    data = {n: [asdict(s) for s in samples[n]] for n in names}
    return Section(bench.name, bench.title, lines, [chart], data)


# -- latency at a fixed rate ------------------------------------------------------------------


def latency(opts: Options) -> Section:
    names = selected(["asyncweb", "tornado"], opts)
    script = HERE / "pace.lua"
    args = [str(opts.rate), str(WRK_CONNECTIONS)]
    samples, failures = interleave(
        names,
        opts.rounds,
        lambda n, r: wrk_once(HELLO, n, r, opts, script=script, script_args=args),
        "latency",
    )
    p99 = {n: median([s.p99_ms for s in samples[n]]) for n in names}
    rows = []
    for n in names:
        if not samples[n]:
            rows.append([LABELS[n], failures.get(n, "no data").split(":", 1)[0]] + ["—"] * 6)
            continue
        rows.append(
            [
                LABELS[n],
                f"{median([s.rps for s in samples[n]]):,.0f}",
                fmt_ms(median([s.p50_ms for s in samples[n]])),
                fmt_ms(median([s.p90_ms for s in samples[n]])),
                fmt_ms(p99[n]),
                fmt_ms(median([s.max_ms for s in samples[n]])),
                ", ".join(fmt_ms(s.p99_ms) for s in samples[n]),
                ratio(p99[n], p99.get("tornado")),
            ]
        )
    cmd = shlex.join(
        [*wrk_argv("URL", opts.duration, WRK_CONNECTIONS, script=Path("pace.lua")), "--", *args]
    )
    lines = [
        f"Hello world at a fixed offered rate of {opts.rate:,} req/s over {WRK_CONNECTIONS} "
        "connections, the same for both. No wrk2 in Debian: `pace.lua` makes every wrk "
        "connection wait a random delay (uniform, mean connections/rate) before each request, "
        "and wrk times each request from send to answer. A server that falls behind lowers "
        "the achieved rate (shown) rather than queueing: this is not wrk2's "
        "coordinated-omission correction. The saturated p99 at equal connections is in the "
        "hello-world table. Target: asyncweb's p99 < 60% of Tornado's (ratio < 0.60x).",
        "",
        f"Client: `{cmd}`.",
        "",
        *md_table(
            [
                "contender",
                "achieved req/s",
                "p50",
                "p90",
                "p99",
                "max",
                "rounds (p99)",
                "p99 vs Tornado",
            ],
            rows,
        ),
        *failure_lines(failures),
    ]
    bars = [(LABELS[n], v) for n in names if (v := p99[n]) is not None]
    chart = Chart(f"Latency at {opts.rate:,} req/s: p99 ms (lower is better)", "ms", bars, True)
    if (tornado := p99.get("tornado")) is not None:
        chart.target = (0.6 * tornado, "target: 60% of Tornado")
    data = {n: [asdict(s) for s in samples[n]] for n in names}
    return Section("latency", "Latency at a fixed rate", lines, [chart], data)


# -- C10K -------------------------------------------------------------------------------------

C10K_HTTP = ["asyncweb", "tornado", "aiohttp", "h11_bare"]
C10K_WS = ["asyncweb", "tornado", "aiohttp"]


def c10k_once(name: str, rnd: int, opts: Options, websocket: bool) -> dict[str, Any]:
    kind = "ws" if websocket else "http"
    out = RAW / f"c10k-{kind}-{name}-r{rnd}.json"
    log = RAW / f"c10k-{kind}-{name}-r{rnd}.client.log"
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(HERE / "c10k.py"), "--app", name, "--json", str(out)]
    argv += ["-n", str(opts.c10k_connections), "--settle", "1" if opts.quick else "2"]
    if websocket:
        argv.append("--websocket")
    code = wait_or_kill(spawn(argv, log), 400, "c10k.py")
    if code == 3:
        raise StartError(tail(log, 3))
    if code != 0 or not out.exists():
        raise RuntimeError(f"c10k.py exited with {code}: {tail(log, 3)}")
    result: dict[str, Any] = json.loads(out.read_text())
    if result["errors"]:
        print(f"(errors: {'; '.join(result['errors'])[:200]}) ", end="")
    return result


def c10k(opts: Options, websocket: bool) -> Section:
    names = selected(C10K_WS if websocket else C10K_HTTP, opts)
    if websocket and not (APPS / "asyncweb_websocket.py").exists():
        names = [n for n in names if n != "asyncweb"]
    kind = "WebSockets" if websocket else "keep-alive HTTP connections"
    samples, failures = interleave(
        names,
        opts.rounds,
        lambda n, r: c10k_once(n, r, opts, websocket),
        "c10k_ws" if websocket else "c10k",
    )
    per_conn = {n: median([s["kib_per_connection"] for s in samples[n]]) for n in names}
    rows = []
    for n in names:
        if not samples[n]:
            rows.append([LABELS[n], failures.get(n, "no data").split(":", 1)[0]] + ["—"] * 6)
            continue
        last = samples[n][-1]
        held = min(s["held"] for s in samples[n])
        kept = min(s["still_open"] for s in samples[n])
        rows.append(
            [
                LABELS[n],
                f"{held:,} / {last['requested']:,}" + ("" if kept == held else f" ({kept} kept)"),
                f"{last['rss_before_kib'] / 1024:.1f} → {last['rss_after_kib'] / 1024:.1f} MiB",
                f"{per_conn[n]:.2f}",
                ratio(per_conn[n], per_conn.get("tornado")),
                fmt_ms(median([s["active_before"]["p99_ms"] for s in samples[n]])),
                fmt_ms(median([s["active_during"]["p99_ms"] for s in samples[n]])),
            ]
        )
    goal = "12 KiB per idle WebSocket" if websocket else "4 KiB per idle HTTP connection"
    what = (
        "a WebSocket handshake to `/ws` (echo app, `apps/*_websocket.py`)"
        if websocket
        else "one `GET /` (hello-world app)"
    )
    lines = [
        f"{opts.c10k_connections:,} idle {kind} held at once against one server process "
        f"(pinned to CPU {SERVER_CPU}); the client (`c10k.py`, a separate process on CPU "
        f"{CLIENT_CPU}, open-file limits raised to the hard limit) opens them {what}, reads "
        "the whole answer, then keeps them open and silent. Memory per connection is "
        "(VmRSS after - VmRSS before) / connections held, from `/proc/<pid>/status`. The "
        "active client makes 200 sequential keep-alive `GET /` on a fresh connection, before "
        f"and while the idle ones are held. Goal: asyncweb <= {goal}.",
        "",
        *md_table(
            [
                "server",
                "held",
                "server RSS",
                "KiB / connection",
                "vs Tornado",
                "active p99 before",
                "active p99 during",
            ],
            rows,
        ),
        *failure_lines(failures),
    ]
    if websocket and "asyncweb" not in names and opts.contenders in (None, ["asyncweb"]):
        lines += ["", "asyncweb: pending (no `apps/asyncweb_websocket.py`)."]
    bars = [(LABELS[n], v) for n in names if (v := per_conn[n]) is not None]
    chart = Chart(
        f"C10K: KiB per idle {'WebSocket' if websocket else 'HTTP connection'} (lower is better)",
        "KiB",
        bars,
        True,
        (12.0, "goal: 12 KiB") if websocket else (4.0, "goal: 4 KiB"),
    )
    name = "c10k_ws" if websocket else "c10k"
    title = "C10K: idle WebSockets" if websocket else "C10K: idle HTTP connections"
    return Section(name, title, lines, [chart], samples)


# -- multi-process ----------------------------------------------------------------------------


def serve_command() -> list[str]:
    return [sys.executable, "-m", "asyncweb", "serve"]


def serve_available() -> str | None:
    """None when ``asyncweb serve`` exists here, else why not."""
    try:
        out = subprocess.run(
            [*serve_command(), "--help"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if out.returncode != 0 or "--workers" not in out.stdout:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit code {out.returncode}"
    return None


CHAT_DIR = APPS.parent.parent / "examples" / "chat"
CHAT_PAGE = "/auth/login"


def _check_chat(response: Response) -> str | None:
    if response.status == 200 and b'name="_xsrf"' in response.body:
        return None
    return f"{response.status} {response.body[:80]!r}"


# What the workers benchmark serves: (label, target, app dir, path, check).
WORKER_APPS = (
    ("hello", "asyncweb_serve_app:app", APPS, "/", _check_hello),
    # The chat demo's sign-in page: a template with a layout, a locale and an XSRF cookie.
    ("chat sign-in page", "app:application", CHAT_DIR, CHAT_PAGE, _check_chat),
)


def workers_once(app: int, workers: int, rnd: int, opts: Options) -> WrkSample:
    _label, target, app_dir, path, check = WORKER_APPS[app]
    port = free_port()
    prefix = RAW / f"workers-{app}-{workers}-r{rnd}"
    argv = [*serve_command(), target, "--port", str(port), "--host", HOST]
    argv += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    argv += ["--app-dir", str(app_dir)]
    env = dict(os.environ, PYTHONPATH=str(app_dir), CHAT_COOKIE_SECRET="benchmark")
    proc = start_server(
        argv, port, prefix.with_suffix(".server.log"), check, path=path, cwd=app_dir, env=env
    )
    url = f"http://{HOST}:{port}{path}"
    try:
        warm = wrk_argv(url, opts.warmup, WRK_CONNECTIONS, latency=False, pin=None)
        run_wrk(warm, opts.warmup, prefix.with_suffix(".warmup.txt"))
        argv = wrk_argv(url, opts.duration, WRK_CONNECTIONS, threads=2, pin=None)
        return parse_wrk(run_wrk(argv, opts.duration, prefix.with_suffix(".wrk.txt")))
    finally:
        terminate(proc)


def workers(opts: Options) -> Section:
    title = "Multi-process: `asyncweb serve --workers N`"
    if opts.contenders is not None and "asyncweb" not in opts.contenders:
        return Section("workers", title, ["Skipped (asyncweb not selected)."])
    missing = serve_available()
    if missing is not None:
        return Section(
            "workers",
            title,
            [f"Pending: `python -m asyncweb serve --help` does not offer `--workers` ({missing})."],
        )
    keys = [f"{app}:{n}" for app in range(len(WORKER_APPS)) for n in (1, 2)]

    def once(key: str, rnd: int) -> WrkSample:
        app, n = key.split(":")
        return workers_once(int(app), int(n), rnd, opts)

    samples, failures = interleave(keys, opts.rounds, once, "workers")
    med = {k: median([s.rps for s in samples[k]]) for k in samples}
    rows = []
    bars = []
    for key in keys:
        app, n = key.split(":")
        label = WORKER_APPS[int(app)][0]
        if not samples[key]:
            rows.append([label, n, failures.get(key, "no data").split(":", 1)[0], "—", "—", "—"])
            continue
        rows.append(
            [
                label,
                n,
                f"{med[key]:,.0f}",
                fmt_ms(median([s.p99_ms for s in samples[key]])),
                ", ".join(f"{s.rps:.0f}" for s in samples[key]),
                ratio(med[key], med.get(f"{app}:1")),
            ]
        )
        if med[key] is not None:
            bars.append((f"{label}, {n} worker(s)", med[key]))
    lines = [
        "Hello world (`apps/asyncweb_serve_app.py`) and the chat demo's sign-in page "
        "(`asyncweb serve app:application --app-dir examples/chat`: a template with a layout, "
        "a locale and an XSRF cookie) under `asyncweb serve` with 1 and 2 worker processes, not "
        "pinned; `wrk -t2 -c100`, also not pinned. With 2 cores the client shares the CPUs with "
        "the workers, so 2 workers cannot reach 2x here.",
        "",
        *md_table(["app", "workers", "median req/s", "p99", "rounds (req/s)", "vs 1 worker"], rows),
        *failure_lines({f"{k} worker(s)": v for k, v in failures.items()}),
    ]
    chart = Chart("asyncweb serve --workers N: req/s", "req/s", bars)
    data = {k: [asdict(s) for s in samples[k]] for k in samples}
    return Section("workers", title, lines, [chart], data)


# -- other helpers' benchmarks ----------------------------------------------------------------


def script_options(path: Path) -> str:
    """The ``--help`` text of a benchmark script ("" if it has none)."""
    try:
        out = subprocess.run(
            [sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout if out.returncode == 0 else ""


def table_chart(lines: Sequence[str], title: str) -> Chart | None:
    """A chart from the first markdown table in ``lines``: first column against the first
    numeric column. Time-like columns (us, ms, s, KiB) are lower-is-better."""
    rows = [line.strip().strip("|").split("|") for line in lines if line.lstrip().startswith("|")]
    rows = [[cell.strip() for cell in row] for row in rows]
    if len(rows) < 3:
        return None
    head, body = rows[0], [r for r in rows[2:] if len(r) == len(rows[0])]

    def number(cell: str) -> float | None:
        try:
            return float(cell.replace(",", "").rstrip("x").split()[0])
        except (ValueError, IndexError):
            return None

    for col in range(1, len(head)):
        values = [number(r[col]) for r in body]
        if body and all(v is not None for v in values):
            unit = head[col]
            lower = any(w in unit.lower().split() for w in ("us", "ms", "s", "kib", "latency"))
            better = "lower" if lower else "higher"
            bars = [(r[0], v) for r, v in zip(body, values, strict=True) if v is not None]
            return Chart(f"{title}: {unit} ({better} is better)", unit, bars, lower)
    return None


# The issue's targets for the other scripts' figures, as a factor over Tornado's.
EXTERNAL_TARGETS = {
    "templates": (1.5, "target: 1.5x Tornado's speed"),
    "ws_echo": (1.5, "target: 1.5x Tornado"),
}


def external(name: str, title: str, script: str, opts: Options) -> Section:
    """Run another helper's ``benchmarks/<script>`` and fold its report into ours.

    Its ``--help`` decides how: with ``--output`` it writes its markdown to ``raw/`` (never
    over its own committed file); with ``--quick`` it gets that in a quick run. The markdown
    tables it writes (or prints) become this section, the first one charted."""
    path = HERE / script
    if not path.exists():
        return Section(name, title, [f"Pending: `benchmarks/{script}` is not there yet."])
    options = script_options(path)
    out = RAW / f"{name}.md"
    out.unlink(missing_ok=True)
    log = RAW / f"{name}.log"
    argv = [sys.executable, str(path)]
    if "--output" in options:
        argv += ["--output", str(out)]
    if opts.quick and "--quick" in options:
        argv.append("--quick")
    elif opts.quick and "--repeats" in options:
        argv += ["--repeats", "3"]
    print(f"[{name}] {shlex.join(argv[1:])}", flush=True)
    code = wait_or_kill(spawn(argv, log, cwd=HERE), 1800, script)
    if code != 0:
        return Section(name, title, [f"Failed: `{script}` exited with {code}: {tail(log, 4)}"])
    text = out.read_text(errors="replace") if out.exists() else log.read_text(errors="replace")
    tables = [line for line in text.splitlines() if line.lstrip().startswith("|")]
    if out.exists():  # its own report, minus its heading (ours is the section title)
        kept = [line for line in text.splitlines() if not line.startswith("#")]
    else:
        kept = tables or ["```", *text.strip().splitlines()[-20:], "```"]
    chart = table_chart(tables, title)
    if chart is not None and name in EXTERNAL_TARGETS:
        factor, label = EXTERNAL_TARGETS[name]
        tornado = {lab.lower(): v for lab, v in chart.bars}.get("tornado")
        if tornado is not None:
            chart.target = (tornado / factor if chart.lower_is_better else tornado * factor, label)
    command = shlex.join(["benchmarks/" + script, *argv[2:]]).replace(str(HERE) + "/", "")
    while kept and not kept[0].strip():
        kept.pop(0)
    lines = [f"From `{command}` (its own method).", "", *kept]
    return Section(name, title, lines, [chart] if chart else [], text)


# -- the run ----------------------------------------------------------------------------------

BENCHMARKS: dict[str, Callable[[Options], Section]] = {
    "hello": lambda o: throughput(HELLO, o),
    "realistic": lambda o: throughput(REALISTIC, o),
    "latency": latency,
    "c10k": lambda o: c10k(o, websocket=False),
    "c10k_ws": lambda o: c10k(o, websocket=True),
    "workers": workers,
    "templates": lambda o: external("templates", "Template page", "template_bench.py", o),
    "ws_echo": lambda o: external("ws_echo", "WebSocket echo", "ws_bench.py", o),
}


def headline(sections: list[Section]) -> list[str]:
    """One line per target: the asyncweb figure that answers it."""
    out = []
    for s in sections:
        for chart in s.charts:
            bars = {label.lower(): value for label, value in chart.bars}
            tornado = bars.get("tornado")
            for name in ("asyncweb", LABELS["asyncweb_httptools"].lower()):
                mine = bars.get(name)
                if mine is None or tornado is None:
                    continue
                figure = f"{mine:.2f}" if chart.lower_is_better else f"{mine:,.0f}"
                line = f"- {s.title}: {name} {figure} {chart.unit} = {mine / tornado:.2f}x Tornado"
                line += " (lower is better" if chart.lower_is_better else " (higher is better"
                if chart.target is not None:
                    value, label = chart.target
                    met = mine <= value if chart.lower_is_better else mine >= value
                    line += f"; {label}: {'met' if met else 'NOT met'}"
                out.append(line + ")")
    return ["Headline (asyncweb against Tornado):", "", *out, ""] if out else []


def report(
    sections: list[Section],
    opts: Options,
    started: datetime.datetime,
    elapsed: float,
    chart_name: str | None,
) -> str:
    lines = [
        "# asyncweb benchmark results",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} (run took {elapsed / 60:.1f} min)"
        + (" — **quick smoke run, not for comparison**" if opts.quick else ""),
        f"- machine: {machine_line()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        "- packages: " + ", ".join(f"{p} {pkg_version(p)}" for p in MEASURED_PACKAGES),
        f"- client: {wrk_version()}",
        f"- method: {opts.rounds} round(s) of {opts.duration:g} s per contender and benchmark, "
        "contenders interleaved round by round (start rotated); each run starts a fresh "
        f"server pinned to CPU {SERVER_CPU}, checks its answer, warms up {opts.warmup:g} s, "
        f"then measures with the client pinned to CPU {CLIENT_CPU}. Figures are medians over "
        "rounds; ratios are taken between medians. All servers run on uvloop, one process, "
        "access logs off.",
        "",
        *headline(sections),
    ]
    if chart_name:
        lines += [f"![results]({chart_name})", ""]
    for s in sections:
        lines += [f"## {s.title}", "", *s.lines, ""]
    return "\n".join(lines)


def draw(sections: list[Section], path: Path) -> bool:
    """One horizontal bar panel per chart; asyncweb's bar highlighted. False without charts."""
    charts = [c for s in sections for c in s.charts if c.bars]
    if not charts:
        return False
    import matplotlib  # type: ignore[import-not-found]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    cols = 2 if len(charts) > 1 else 1
    rows = math.ceil(len(charts) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 0.5 + 2.6 * rows), squeeze=False)
    for ax, chart in zip(axes.flat, charts, strict=False):
        labels = [label for label, _ in chart.bars][::-1]
        values = [value for _, value in chart.bars][::-1]
        colors = ["#d95f02" if "asyncweb" in lab else "#7570b3" for lab in labels]
        ax.barh(labels, values, color=colors)
        ax.set_title(chart.title, fontsize=10)
        ax.set_xlabel(chart.unit)
        ax.tick_params(axis="y", labelsize=8)
        top = max(values) if values else 1
        for y, value in enumerate(values):
            text = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
            ax.text(value + top * 0.01, y, text, va="center", fontsize=7)
        if chart.target is not None:
            ax.axvline(chart.target[0], color="#1b9e77", linestyle="--", label=chart.target[1])
            ax.legend(fontsize=7, loc="best")
            top = max(top, chart.target[0])
        ax.set_xlim(0, top * 1.18)
    for ax in list(axes.flat)[len(charts) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    parser.add_argument(
        "--only",
        help="comma-separated benchmarks: " + ",".join(BENCHMARKS) + " (contender names here "
        "act as --contenders)",
    )
    parser.add_argument("--contenders", help="comma-separated contenders: " + ",".join(BY_NAME))
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 round of 3 s, 1,000 C10K connections"
    )
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE, help="latency req/s (5000)")
    parser.add_argument("--connections", type=int, help="C10K connections (10000)")
    parser.add_argument(
        "--output",
        type=Path,
        help="report file (default results.md; raw/results-quick.md with --quick); the chart "
        "goes next to it with the suffix .png",
    )
    args = parser.parse_args(argv)

    if args.quick:
        args.rounds, args.duration = 1, 3
    if args.rounds < 1 or args.duration <= 0 or args.rate <= 0:
        parser.error("--rounds must be >= 1, --duration and --rate > 0")

    def names(value: str | None, known: Sequence[str], what: str) -> list[str] | None:
        if not value:
            return None
        chosen = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in known]
        if unknown:
            parser.error(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
        return chosen

    # --only takes benchmark names; contender names there (the older usage) act as --contenders.
    only = names(args.only, [*BENCHMARKS, *BY_NAME], "benchmark(s) or contender(s)") or []
    benchmarks = [n for n in only if n in BENCHMARKS] or list(BENCHMARKS)
    contenders = names(args.contenders, list(BY_NAME), "contender(s)")
    if any(n in BY_NAME for n in only):
        contenders = [*(contenders or []), *(n for n in only if n in BY_NAME)]
    connections = args.connections or (QUICK_C10K_CONNECTIONS if args.quick else C10K_CONNECTIONS)
    opts = Options(
        rounds=args.rounds,
        duration=args.duration,
        warmup=1 if args.quick else 2,
        quick=args.quick,
        contenders=contenders,
        rate=args.rate,
        c10k_connections=connections,
    )
    output: Path = args.output or (RAW / "results-quick.md" if args.quick else HERE / "results.md")

    for tool in ("wrk", "taskset"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            print(f"error: {tool} not found (Debian: apt-get install -y {tool})", file=sys.stderr)
            return 2
    RAW.mkdir(exist_ok=True)
    print(
        f"benchmarks: {', '.join(benchmarks)}; {opts.rounds} round(s) x {opts.duration:g} s; "
        f"python {platform.python_version()} at {sys.executable}"
    )

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    sections: list[Section] = []
    try:
        for name in benchmarks:
            sections.append(BENCHMARKS[name](opts))
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        kill_all()
    output.parent.mkdir(parents=True, exist_ok=True)
    chart_path = output.with_suffix(".png")
    chart_name = chart_path.name if draw(sections, chart_path) else None
    text = report(sections, opts, started, time.monotonic() - t0, chart_name)
    output.write_text(text)
    raw = {s.name: s.data for s in sections}
    (RAW / (output.stem + ".json")).write_text(json.dumps(raw, indent=1, default=str))
    print()
    print(text)
    print(f"written to {output}" + (f" and {chart_path}" if chart_name else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
