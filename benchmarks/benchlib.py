"""Shared plumbing for the benchmark scripts: processes, loopback probes, wrk, machine facts.

Every process started here is tracked and stopped on exit (SIGTERM to its process group, then
SIGKILL). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
RAW = HERE / "raw"
HOST = "127.0.0.1"
SERVER_CPU = "1"
CLIENT_CPU = "0"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class StartError(Exception):
    """The server did not come up, or did not answer its check request correctly."""


# -- processes --------------------------------------------------------------------------------

_live: list[subprocess.Popen[bytes]] = []


def raise_nofile_limit() -> int:
    """Raise this process's soft open-file limit to the hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def terminate(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Stop a process we started (and its process group): SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
    if proc in _live:
        _live.remove(proc)


def kill_all() -> None:
    for proc in list(_live):
        terminate(proc, timeout=2.0)


def on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def spawn(
    argv: Sequence[str],
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    raise_limit: bool = False,
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,  # own process group: killable as a whole, no stray Ctrl-C
            preexec_fn=raise_nofile_limit if raise_limit else None,
        )
    _live.append(proc)
    return proc


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float, what: str) -> int:
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        terminate(proc)
        raise RuntimeError(f"{what} did not finish within {timeout:g}s") from None
    if proc in _live:
        _live.remove(proc)
    return code


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from ``/proc/<pid>/stat`` (0.0 once gone).
    On a shared machine CPU time per request moves far less than req/s."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of a process (``VmRSS`` in ``/proc/<pid>/status``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# -- one loopback request ---------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


def _dechunk(body: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2


def http_get(
    port: int, path: str = "/", headers: Sequence[tuple[str, str]] = (), timeout: float = 1.0
) -> Response:
    """One ``GET`` on a fresh connection with ``Connection: close``, read to EOF."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"incomplete response: {raw[:200]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        parsed[key] = f"{parsed[key]}, {value.strip()}" if key in parsed else value.strip()
    if parsed.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Response(int(status_line.split()[1]), parsed, body)


Check = Callable[[Response], "str | None"]  # None when the answer is right, else what is wrong


def start_server(
    argv: Sequence[str],
    port: int,
    log_path: Path,
    check: Check,
    path: str = "/",
    headers: Sequence[tuple[str, str]] = (),
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    raise_limit: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a server and wait until ``GET path`` passes ``check``; StartError otherwise."""
    proc = spawn(argv, log_path, cwd=cwd, env=env, raise_limit=raise_limit)
    deadline = time.monotonic() + START_TIMEOUT
    last_error = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            terminate(proc)
            raise StartError(f"exited with code {proc.returncode}: {tail(log_path)}")
        try:
            response = http_get(port, path, headers)
        except (OSError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
            continue
        problem = check(response)
        if problem is not None:
            terminate(proc)
            raise StartError(f"bad answer to GET {path}: {problem}; log: {tail(log_path)}")
        return proc
    terminate(proc)
    raise StartError(f"no answer within {START_TIMEOUT:.0f}s ({last_error}); log: {tail(log_path)}")


def app_argv(script: str, port: int, pin: bool = True) -> list[str]:
    """Run ``apps/<script> --port PORT`` with this interpreter, pinned to the server CPU."""
    argv = [sys.executable, str(APPS / script), "--port", str(port)]
    return ["taskset", "-c", SERVER_CPU, *argv] if pin else argv


# -- wrk --------------------------------------------------------------------------------------


@dataclass
class WrkSample:
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    errors: str  # wrk's socket errors / non-2xx summary, "" when clean
    requests: int = 0  # answered in the run
    cpu_us: float | None = None  # the server's CPU time per request, where measured


def wrk_argv(
    url: str,
    duration: float,
    connections: int = 100,
    threads: int = 1,
    latency: bool = True,
    headers: Sequence[tuple[str, str]] = (),
    script: Path | None = None,
    pin: str | None = CLIENT_CPU,
) -> list[str]:
    argv = ["taskset", "-c", pin] if pin is not None else []
    argv += ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s"]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    if latency:
        argv.append("--latency")
    argv.append(url)
    return argv


def run_wrk(argv: Sequence[str], duration: float, log_path: Path) -> str:
    proc = spawn(argv, log_path)
    code = wait_or_kill(proc, duration + 30, "wrk")
    output = log_path.read_text(errors="replace")
    if code != 0:
        raise RuntimeError(f"wrk exited with {code}: {output.strip()[-300:]}")
    return output


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkSample:
    m = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not m:
        raise RuntimeError(f"no Requests/sec in wrk output: {output.strip()[-300:]}")
    percentiles: dict[str, float] = {}
    for pm in re.finditer(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        percentiles[pm.group(1)] = _to_ms(pm.group(2), pm.group(3))
    mx = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)", output, re.M)
    errors = []
    em = re.search(r"Socket errors:(.*)$", output, re.M)
    if em:
        errors.append("socket errors:" + em.group(1).strip())
    nm = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if nm:
        errors.append(f"non-2xx: {nm.group(1)}")
    done = re.search(r"^\s*(\d+) requests in ", output, re.M)
    return WrkSample(
        float(m.group(1)),
        percentiles.get("50"),
        percentiles.get("90"),
        percentiles.get("99"),
        _to_ms(mx.group(1), mx.group(2)) if mx else None,
        "; ".join(errors),
        int(done.group(1)) if done else 0,
    )


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


# -- figures and machine facts ----------------------------------------------------------------


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


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


def nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return str(os.cpu_count())


def machine_line() -> str:
    return (
        f"{os.cpu_count()} CPUs (`nproc`: {nproc()}), {cpu_model()}, "
        f"{platform.system()} {platform.release()}"
    )
