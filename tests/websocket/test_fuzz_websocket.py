"""Property-based tests of WebSocket connections after a real upgrade (hypothesis): the
server's protocol object on a real transport, fed exact byte chunks (``fuzz/harness.py``).

- valid frame sequences (text, binary, fragmented messages, pings, a close) give identical
  server output however the bytes are split, and every message is echoed back intact;
- arbitrary bytes after the upgrade never raise out of ``data_received``, and once the client
  sends EOF the server closes the connection.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import struct
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from asyncweb.httpserver import HTTPServer
from asyncweb.web import Application
from asyncweb.websocket import WebSocketHandler
from fuzz.harness import exchange, run

BOUNDED = settings(
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: fuzz.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    logging.getLogger("asyncweb").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("asyncweb").setLevel(logging.NOTSET)


class Echo(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


def server() -> HTTPServer:
    app = Application([("/ws", Echo)], websocket_max_message_size=4096)
    return HTTPServer(app, idle_connection_timeout=0.05, header_timeout=0.05)


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    else:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@st.composite
def conversations(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Client frames for a few messages (some fragmented, pings between), and the messages."""
    data = b""
    messages: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            payload = draw(st.text(max_size=200)).encode()
            opcode = 0x1
        else:
            payload = draw(st.binary(max_size=300))
            opcode = 0x2
        messages.append((opcode, payload))
        pieces = draw(st.integers(1, 3))
        size = -(-len(payload) // pieces) if payload else 0
        parts = [payload[i : i + size] for i in range(0, len(payload), size)] if size else [b""]
        for index, part in enumerate(parts):
            data += frame(opcode if index == 0 else 0x0, part, fin=index == len(parts) - 1)
            if draw(st.integers(0, 4)) == 0:
                data += frame(0x9, draw(st.binary(max_size=20)))  # a ping between fragments
    if draw(st.booleans()):
        data += frame(0x8, struct.pack("!H", 1000))
    return data, messages


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=30))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def server_frames(stream: bytes) -> list[tuple[int, bytes]]:
    frames = []
    pos = 0
    while pos < len(stream):
        opcode, length = stream[pos] & 0x0F, stream[pos + 1] & 0x7F
        assert not stream[pos + 1] & 0x80, "server frames are never masked"
        pos += 2
        if length == 126:
            (length,) = struct.unpack("!H", stream[pos : pos + 2])
            pos += 2
        frames.append((opcode, stream[pos : pos + length]))
        pos += length
    return frames


def after_head(written: bytes) -> bytes:
    head, _, rest = written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), written[:200]
    return rest


@BOUNDED
@given(st.data())
def test_frames_give_identical_output_however_split(data: st.DataObject) -> None:
    client, messages = data.draw(conversations())
    chunks = data.draw(chunked(HANDSHAKE + client))

    async def both() -> tuple[tuple[bytes, bool], tuple[bytes, bool]]:
        whole = await exchange(server(), [HANDSHAKE + client], half_close=True)
        split = await exchange(server(), chunks, half_close=True)
        return whole, split

    (whole, whole_closed), (split, split_closed) = run(both())
    assert whole_closed and split_closed
    assert after_head(split) == after_head(whole)
    echoed = [(op, payload) for op, payload in server_frames(after_head(whole)) if op in (1, 2)]
    assert echoed == messages


@BOUNDED
@given(st.binary(max_size=400), st.data())
def test_arbitrary_bytes_after_the_upgrade_never_raise(payload: bytes, data: st.DataObject) -> None:
    chunks: list[Any] = data.draw(chunked(payload)) if payload else []
    written, closed = run(exchange(server(), [HANDSHAKE, *chunks], half_close=True))
    assert closed, "connection left open after the client's EOF"
    for opcode, _ in server_frames(after_head(written)):
        assert opcode in (0x1, 0x2, 0x8, 0x9, 0xA)


def test_websocket_connections_leave_nothing_behind() -> None:
    from asyncweb.protocol.websocket import WebSocketProtocol

    def live() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if isinstance(obj, (WebSocketProtocol, Echo)))

    hello = frame(0x1, b"hello") + frame(0x2, bytes(300))
    inputs = [
        [HANDSHAKE + hello + frame(0x8, struct.pack("!H", 1000))],  # clean close
        [HANDSHAKE + hello],  # EOF without a close frame
        [HANDSHAKE + hello + b"\x81\x05abcde"],  # unmasked: protocol error
        [HANDSHAKE + frame(0x2, bytes(5000))],  # over websocket_max_message_size
    ]

    async def rounds(count: int) -> None:
        ws_server = server()
        for _ in range(count):
            for chunks in inputs:
                written, closed = await exchange(ws_server, chunks, half_close=True)
                assert closed and written.startswith(b"HTTP/1.1 101 ")

    baseline = live()
    run(rounds(10))  # warm-up
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        run(rounds(50))  # 200 connections
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert live() == baseline
    assert growth < 48 * 1024, f"memory grew by {growth} bytes over 200 connections"
