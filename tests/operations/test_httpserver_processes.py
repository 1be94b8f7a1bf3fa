"""HTTPServer.bind() + start(num_processes): pre-forked workers sharing the listening socket."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from asyncweb.httpserver import HTTPServer

TESTS = Path(__file__).parents[1]

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from asyncweb.httpserver import HTTPServer
from asyncweb.ioloop import IOLoop
from cli_apps.pid_app import make_app

server = HTTPServer(make_app())
server.bind(0, "127.0.0.1")
print(server._pending_sockets[0].getsockname()[1], flush=True)
server.start(2)
IOLoop.current().start()
"""


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as resp:
        return str(resp.read().decode())


def test_start_two_processes(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(TESTS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        marker = tmp_path / "blocking"
        blocked: list[str] = []
        # One worker blocks its whole process; the other must answer meanwhile.
        thread = threading.Thread(
            target=lambda: blocked.append(get(f"{base}/block?seconds=1.5&marker={marker}"))
        )
        thread.start()
        deadline = time.monotonic() + 15
        while not marker.exists() or not marker.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        blocked_pid = marker.read_text()
        other_pid = get(base + "/")
        thread.join(20)
        assert blocked == [blocked_pid]
        assert other_pid != blocked_pid
        assert int(other_pid) != proc.pid
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


async def test_reuse_port_through_listen_and_bind() -> None:
    def hello(request: object) -> None:
        pass

    first, second, third = HTTPServer(hello), HTTPServer(hello), HTTPServer(hello)
    try:
        first.listen(0, "127.0.0.1", reuse_port=True)
        port = next(iter(first._sockets.values())).getsockname()[1]
        second.bind(port, "127.0.0.1", reuse_port=True)
        second.start()
        assert next(iter(second._sockets.values())).getsockname()[1] == port
        with pytest.raises(OSError) as info:
            third.listen(port, "127.0.0.1")
        assert info.value.errno == errno.EADDRINUSE
    finally:
        for server in (first, second, third):
            server.stop()
