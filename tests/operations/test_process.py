"""asyncweb.process: fork_processes (in a child interpreter), Subprocess, cpu_count."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asyncweb import iostream, process
from asyncweb.process import Subprocess


def run_script(tmp_path: Path, body: str, *args: str, timeout: float = 30) -> subprocess.Popen[str]:
    script = tmp_path / "script.py"
    script.write_text(body)
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_cpu_count() -> None:
    assert 1 <= process.cpu_count() <= (os.cpu_count() or 1)
    assert process.task_id() is None


FORK_SCRIPT = """
import os, sys
from asyncweb import iostream, process
marker = sys.argv[1]
number = process.fork_processes(2, max_restarts=int(sys.argv[2]))
path = os.path.join(marker, f"started-{number}")
first = not os.path.exists(path)
with open(path, "a") as f:
    f.write(f"{os.getpid()} {process.task_id()}\\n")
if sys.argv[3] == "crash-once" and number == 0 and first:
    sys.exit(3)
if sys.argv[3] == "always-crash":
    os.kill(os.getpid(), 9)
if sys.argv[3] == "wait":
    import time
    while True:
        time.sleep(0.1)
sys.exit(0)
"""


def test_fork_processes_restarts_a_failed_child(tmp_path: Path) -> None:
    proc = run_script(tmp_path, FORK_SCRIPT, str(tmp_path), "5", "crash-once")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    first = (tmp_path / "started-0").read_text().split("\n")
    assert len([line for line in first if line]) == 2  # crashed once, restarted once
    assert first[0].split()[1] == "0"
    second = (tmp_path / "started-1").read_text().split()
    assert second[1] == "1"
    assert "exited with status 3, restarting" in err


def test_fork_processes_gives_up(tmp_path: Path) -> None:
    proc = run_script(tmp_path, FORK_SCRIPT, str(tmp_path), "2", "always-crash")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "Too many child restarts" in err
    assert "killed by signal 9" in err


def test_sigterm_to_parent_stops_children(tmp_path: Path) -> None:
    proc = run_script(tmp_path, FORK_SCRIPT, str(tmp_path), "5", "wait")
    try:
        wait_for(lambda: (tmp_path / "started-0").exists() and (tmp_path / "started-1").exists())
        pids = [int((tmp_path / f"started-{n}").read_text().split()[0]) for n in (0, 1)]
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "restarting" not in err
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_fork_processes_refuses_inside_a_loop() -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="event loop is running"):
            process.fork_processes(2)

    asyncio.run(inside())


async def test_subprocess_streams() -> None:
    proc = Subprocess(
        [
            sys.executable,
            "-c",
            "import sys; data = sys.stdin.read(); "
            "sys.stdout.write(data.upper()); sys.stderr.write('err:' + str(len(data)))",
        ],
        stdin=Subprocess.STREAM,
        stdout=Subprocess.STREAM,
        stderr=Subprocess.STREAM,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    await proc.stdin.write(b"hello\n" * 20000)  # more than a pipe buffer
    proc.stdin.close()
    out, err = await asyncio.gather(proc.stdout.read_until_close(), proc.stderr.read_until_close())
    assert out == b"HELLO\n" * 20000
    assert err == b"err:120000"
    assert await proc.wait_for_exit() == 0
    assert proc.returncode == 0
    proc.stdout.close()
    proc.stderr.close()


async def test_subprocess_read_until_and_bytes() -> None:
    proc = Subprocess(
        [sys.executable, "-c", "print('line one'); print('line two', flush=True)"],
        stdout=Subprocess.STREAM,
    )
    assert proc.stdout is not None
    assert await proc.stdout.read_until(b"\n") == b"line one\n"
    assert await proc.stdout.read_bytes(4) == b"line"
    assert await proc.stdout.read_until_close() == b" two\n"
    with pytest.raises(iostream.StreamClosedError):
        await proc.stdout.read_bytes(1)
    await proc.wait_for_exit()
    proc.stdout.close()
    assert proc.stdout.closed()


async def test_subprocess_exit_codes_and_callback() -> None:
    proc = Subprocess([sys.executable, "-c", "import sys; sys.exit(4)"])
    codes: list[int] = []
    proc.set_exit_callback(codes.append)
    with pytest.raises(subprocess.CalledProcessError) as info:
        await proc.wait_for_exit()
    assert info.value.returncode == 4
    assert await proc.wait_for_exit(raise_error=False) == 4
    assert isinstance(proc.wait_for_exit(raise_error=False), asyncio.Future)
    await asyncio.sleep(0)
    assert codes == [4]
    # A callback set after the exit still runs.
    late: list[int] = []
    proc.set_exit_callback(late.append)
    await asyncio.sleep(0)
    assert late == [4]


async def test_subprocess_killed_by_signal() -> None:
    proc = Subprocess([sys.executable, "-c", "import time; time.sleep(60)"])
    Subprocess.initialize()
    os.kill(proc.pid, signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait_for_exit(raise_error=False), 10) == -signal.SIGKILL
    Subprocess.uninitialize()


def test_subprocess_bad_command_leaks_nothing() -> None:
    async def main() -> None:
        with pytest.raises(FileNotFoundError):
            Subprocess(["/nonexistent/program"], stdout=Subprocess.STREAM)

    before = len(os.listdir("/proc/self/fd"))
    asyncio.run(main())
    assert len(os.listdir("/proc/self/fd")) <= before
