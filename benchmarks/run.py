"""wrk harness: asyncweb against its peers, each a hello-world server on uvloop.

Run with the benchmark venv's python (see ``setup.sh``)::

    benchmarks/.venv/bin/python benchmarks/run.py [--rounds N] [--duration S] [--only a,b] [--quick]

For every round, for every contender (round-robin, so machine noise hits all of them alike):
start the server pinned to CPU 1, wait until ``GET /`` answers ``Hello, world``, warm up for
2 s, run ``wrk -t1 -c100 --latency`` pinned to CPU 0, stop the server. Reports the median
req/s and latency percentiles over the rounds, and ratios against Tornado, uvicorn+Starlette
(h11) and the bare-h11 ceiling. A contender that does not come up is reported as
"failed to start" and the others go on. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
RAW = HERE / "raw"
HOST = "127.0.0.1"
SERVER_CPU = "1"
CLIENT_CPU = "0"
WARMUP_SECONDS = 2
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
WRK_CONNECTIONS = 100
WRK_THREADS = 1


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    script: str
    packages: tuple[str, ...]
    content_type: str


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "asyncweb", "asyncweb", "asyncweb_hello.py", ("asyncweb", "h11", "uvloop"), "text/html"
    ),
    Contender("tornado", "Tornado", "tornado_hello.py", ("tornado", "uvloop"), "text/html"),
    Contender(
        "starlette_h11",
        "uvicorn+Starlette (h11)",
        "starlette_h11.py",
        ("uvicorn", "starlette", "h11", "uvloop"),
        "text/plain",
    ),
    Contender(
        "starlette_httptools",
        "uvicorn+Starlette (httptools)",
        "starlette_httptools.py",
        ("uvicorn", "starlette", "httptools", "uvloop"),
        "text/plain",
    ),
    Contender("aiohttp", "aiohttp", "aiohttp_hello.py", ("aiohttp", "uvloop"), "text/plain"),
    Contender(
        "h11_bare", "bare h11 Protocol (ceiling)", "h11_bare.py", ("h11", "uvloop"), "text/plain"
    ),
)
BY_NAME = {c.name: c for c in CONTENDERS}
# The ratio columns: (column title, contender name).
BASELINES = (
    ("vs Tornado", "tornado"),
    ("vs Starlette/h11", "starlette_h11"),
    ("vs h11 ceiling", "h11_bare"),
)


class StartError(Exception):
    """The server did not come up (or did not answer ``Hello, world``)."""


@dataclass
class Sample:
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: str  # wrk's socket errors / non-2xx summary, "" when clean


@dataclass
class Result:
    contender: Contender
    samples: list[Sample] = field(default_factory=list)
    failure: str | None = None

    def median(self, attr: str) -> float | None:
        values = [getattr(s, attr) for s in self.samples if getattr(s, attr) is not None]
        return statistics.median(values) if values else None


# -- processes --------------------------------------------------------------------------------

_live: list[subprocess.Popen[bytes]] = []


def _terminate(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Stop a process we started (and its process group): SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    if proc in _live:
        _live.remove(proc)


def _kill_all() -> None:
    for proc in list(_live):
        _terminate(proc, timeout=2.0)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: killable as a whole, no stray Ctrl-C
        )
    _live.append(proc)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def probe(port: int, timeout: float = 1.0) -> bytes:
    """One ``GET /`` on a fresh connection; returns the raw response (up to EOF)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:])


def start_server(contender: Contender, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    argv = [
        "taskset",
        "-c",
        SERVER_CPU,
        sys.executable,
        str(APPS / contender.script),
        "--port",
        str(port),
    ]
    proc = _spawn(argv, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _terminate(proc)
            raise StartError(f"exited with code {proc.returncode}: {tail(log_path)}")
        try:
            response = probe(port)
        except OSError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
            continue
        status_line = response.split(b"\r\n", 1)[0]
        if b" 200 " not in status_line + b" " or not response.endswith(b"Hello, world"):
            _terminate(proc)
            snippet = response[:200].decode("latin-1")
            raise StartError(f"bad answer to GET /: {snippet!r}; log: {tail(log_path)}")
        return proc
    _terminate(proc)
    raise StartError(f"no answer within {START_TIMEOUT:.0f}s ({last_error}); log: {tail(log_path)}")


# -- wrk --------------------------------------------------------------------------------------


def wrk_argv(port: int, duration: float, latency: bool = True) -> list[str]:
    argv = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{duration:g}s",
    ]
    if latency:
        argv.append("--latency")
    argv.append(f"http://{HOST}:{port}/")
    return argv


def run_wrk(port: int, duration: float, log_path: Path, latency: bool = True) -> str:
    proc = _spawn(wrk_argv(port, duration, latency), log_path)
    try:
        proc.wait(duration + 30)
    except subprocess.TimeoutExpired:
        _terminate(proc)
        raise RuntimeError(f"wrk did not finish within {duration + 30:g}s") from None
    _live.remove(proc)
    output = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {output.strip()[-300:]}")
    return output


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> Sample:
    m = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not m:
        raise RuntimeError(f"no Requests/sec in wrk output: {output.strip()[-300:]}")
    rps = float(m.group(1))
    percentiles: dict[str, float] = {}
    for pm in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        percentiles[pm.group(1)] = _to_ms(pm.group(2), pm.group(3))
    errors = []
    em = re.search(r"Socket errors:(.*)$", output, re.M)
    if em:
        errors.append("socket errors:" + em.group(1).strip())
    nm = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if nm:
        errors.append(f"non-2xx: {nm.group(1)}")
    return Sample(rps, percentiles.get("50"), percentiles.get("99"), "; ".join(errors))


# -- the run ----------------------------------------------------------------------------------


def bench_once(contender: Contender, rnd: int, duration: float) -> Sample:
    port = free_port()
    prefix = RAW / f"{contender.name}-r{rnd}"
    proc = start_server(contender, port, prefix.with_suffix(".server.log"))
    try:
        run_wrk(port, WARMUP_SECONDS, prefix.with_suffix(".warmup.txt"), latency=False)
        output = run_wrk(port, duration, prefix.with_suffix(".wrk.txt"))
        if proc.poll() is not None:
            raise RuntimeError(
                f"server died during the run: {tail(prefix.with_suffix('.server.log'))}"
            )
        return parse_wrk(output)
    finally:
        _terminate(proc)


def run(contenders: list[Contender], rounds: int, duration: float) -> list[Result]:
    results = {c.name: Result(c) for c in contenders}
    for rnd in range(1, rounds + 1):
        # Rotate the starting point each round so no contender always runs first/last.
        shift = (rnd - 1) % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        for contender in order:
            result = results[contender.name]
            if result.failure is not None:
                continue
            print(f"[round {rnd}/{rounds}] {contender.name:20} ", end="", flush=True)
            try:
                sample = bench_once(contender, rnd, duration)
            except StartError as exc:
                result.failure = f"failed to start: {exc}"
                print(result.failure)
                continue
            except RuntimeError as exc:
                result.failure = f"failed: {exc}"
                print(result.failure)
                continue
            result.samples.append(sample)
            print(
                f"{sample.rps:10.0f} req/s  p50 {fmt_ms(sample.p50_ms)}  p99 "
                f"{fmt_ms(sample.p99_ms)}" + (f"  [{sample.errors}]" if sample.errors else "")
            )
    order = list(BY_NAME)
    return sorted(results.values(), key=lambda r: order.index(r.contender.name))


# -- reporting --------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def table(results: list[Result]) -> list[str]:
    medians = {r.contender.name: r.median("rps") for r in results}
    head = ["contender", "median req/s", "p50", "p99", "rounds (req/s)"]
    head += [title for title, _ in BASELINES]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        name = r.contender.label
        if not r.samples:
            short = (r.failure or "no data").split(":", 1)[0]
            cells = [name, short, "—", "—", "—"] + ["—"] * len(BASELINES)
            rows.append("| " + " | ".join(cells) + " |")
            continue
        rps = medians[r.contender.name]
        assert rps is not None
        per_round = ", ".join(f"{s.rps:.0f}" for s in r.samples)
        if r.failure:
            per_round += " (then " + r.failure.split(":", 1)[0] + ")"
        errors = sorted({s.errors for s in r.samples if s.errors})
        if errors:
            per_round += " [" + "; ".join(errors) + "]"
        cells = [
            name,
            f"{rps:,.0f}",
            fmt_ms(r.median("p50_ms")),
            fmt_ms(r.median("p99_ms")),
            per_round,
        ]
        for _, base in BASELINES:
            base_rps = medians.get(base)
            cells.append(f"{rps / base_rps:.2f}x" if base_rps else "—")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def failures(results: list[Result]) -> list[str]:
    lines = [f"- {r.contender.name}: {r.failure}" for r in results if r.failure]
    return ["Failures:", "", *(line.replace("|", "/") for line in lines), ""] if lines else []


def report(
    results: list[Result], rounds: int, duration: float, started: datetime.datetime, elapsed: float
) -> str:
    packages = sorted({p for r in results for p in r.contender.packages})
    cmd = shlex.join(wrk_argv(0, duration)).replace(":0/", ":PORT/")
    lines = [
        "# asyncweb benchmark results",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} (run took {elapsed / 60:.1f} min)",
        f"- machine: {os.cpu_count()} CPUs (`nproc`: {nproc()}), {cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        "- packages: " + ", ".join(f"{p} {pkg_version(p)}" for p in packages),
        f"- client: {wrk_version()}; command: `{cmd}`",
        f"- method: {rounds} round(s) of {duration:g} s per contender, round-robin across "
        f"contenders; each run starts a fresh server pinned to CPU {SERVER_CPU} "
        f"(`taskset -c {SERVER_CPU}`), checks `GET /` answers `Hello, world`, warms up "
        f"{WARMUP_SECONDS} s with wrk, then measures; wrk pinned to CPU {CLIENT_CPU}. "
        "Figures are medians over rounds; ratios are median req/s over the baseline's.",
        "- all servers run on uvloop, one process, access logs off.",
        "",
        *table(results),
        "",
        *failures(results),
        "Content-Type of the answer: "
        + ", ".join(f"{r.contender.name} `{r.contender.content_type}`" for r in results)
        + ".",
        "",
    ]
    return "\n".join(lines)


def nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return str(os.cpu_count())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--only", help="comma-separated contenders: " + ",".join(BY_NAME))
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round of 3 s")
    parser.add_argument(
        "--output",
        type=Path,
        help="report file (default results.md; raw/results-quick.md with --quick)",
    )
    args = parser.parse_args(argv)

    if args.quick:
        args.rounds, args.duration = 1, 3
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            parser.error(f"unknown contender(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
        contenders = [BY_NAME[n] for n in names]
    else:
        contenders = list(CONTENDERS)
    output = args.output or (RAW / "results-quick.md" if args.quick else HERE / "results.md")

    for tool in ("wrk", "taskset"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            print(f"error: {tool} not found (Debian: apt-get install -y {tool})", file=sys.stderr)
            return 2
    RAW.mkdir(exist_ok=True)
    per_run = WARMUP_SECONDS + args.duration + 2
    estimate = per_run * args.rounds * len(contenders)
    print(
        f"{len(contenders)} contender(s) x {args.rounds} round(s) x {args.duration:g} s "
        f"(about {estimate / 60:.1f} min); python {platform.python_version()} at {sys.executable}"
    )

    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    try:
        results = run(contenders, args.rounds, args.duration)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        _kill_all()
    text = report(results, args.rounds, args.duration, started, time.monotonic() - t0)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print()
    print(text)
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
