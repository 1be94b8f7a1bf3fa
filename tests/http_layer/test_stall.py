"""A streaming handler whose client has gone away must not stall the server (issue 15, part 1).

The server runs in its own process (tests/http_layer/stall_server.py) on each loop, so a loop
that never yields fails these tests by timeout instead of hanging the runner. The timeouts
only catch a hang: a healthy server answers within milliseconds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HANG = 10.0  # seconds: only a stalled server takes this long

LOOPS = ["asyncio"]
try:
    import uvloop  # noqa: F401

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover - uvloop is a test dependency here
    pass


@pytest.fixture(scope="module", params=LOOPS)
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    script = Path(__file__).with_name("stall_server.py")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, str(script), request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    sock.settimeout(HANG)
    return sock


def _status(port: int) -> dict[str, Any]:
    """GET /status on a fresh connection: the server answering at all is the check."""
    with _connect(port) as sock:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    result: dict[str, Any] = json.loads(body)
    return result


class _Reader:
    """Reads the stream in a thread as fast as it comes (so the server's transport buffer stays
    empty and no write waits for a drain), then hangs up."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            while not self.stop.is_set():
                data = self.sock.recv(65536)
                if not data:
                    return
                self.received += len(data)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + HANG
        while self.received < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.received >= count

    def hang_up(self, how: str) -> None:
        if how == "reset":
            # RST at once: the server's next send fails with ECONNRESET/EPIPE.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stop.set()
        self.thread.join(HANG)
        self.sock.close()


def _wait_for(port: int, key: str, value: int) -> dict[str, Any]:
    deadline = time.monotonic() + HANG
    while True:
        status = _status(port)
        if status[key] >= value or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def _check_ended_quietly(port: int, before: dict[str, Any], what: str) -> None:
    after = _wait_for(port, f"{what}_closed", before[f"{what}_closed"] + 1)
    assert after[f"{what}_closed"] == before[f"{what}_closed"] + 1
    assert after[f"{what}_other_error"] == before[f"{what}_other_error"]
    # Nothing much is logged for a client that left, never the transport's per-write warning.
    new_records = after["log_records"] - before["log_records"]
    assert new_records <= 5, after["log_messages"]
    assert not any("socket.send" in m for m in after["log_messages"])


@pytest.mark.parametrize("how", ["reset", "close"])
def test_sse_loop_ends_with_stream_closed_when_the_client_leaves(server: int, how: str) -> None:
    before = _status(server)
    sock = _connect(server)
    sock.sendall(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n")
    reader = _Reader(sock)
    reader.wait_for(50_000)
    # While the handler streams flat out to a fast reader, other clients are still served.
    during = _status(server)
    assert during["sse_started"] == before["sse_started"] + 1
    reader.hang_up(how)
    _check_ended_quietly(server, before, "sse")


def _ws_handshake(sock: socket.socket) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )


@pytest.mark.parametrize("how", ["reset", "close"])
def test_websocket_send_loop_ends_when_the_client_leaves(server: int, how: str) -> None:
    before = _status(server)
    sock = _connect(server)
    _ws_handshake(sock)
    reader = _Reader(sock)
    reader.wait_for(50_000)
    during = _status(server)
    assert during["ws_started"] == before["ws_started"] + 1
    reader.hang_up(how)
    _check_ended_quietly(server, before, "ws")
