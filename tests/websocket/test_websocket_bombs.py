"""permessage-deflate bombs: inflation is bounded by ``max_message_size``, on both sides.

A few KB of deflate data can inflate to gigabytes. The server (and our client) must refuse
such a message with 1009 (Message Too Big) without ever holding much more than the limit, and
keep serving everyone else; messages under the limit, however well they compress, must arrive
intact.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest
from websockets.asyncio.client import connect

from asyncweb.protocol.websocket import accept_token
from asyncweb.web import Application, RequestHandler
from asyncweb.websocket import WebSocketHandler, websocket_connect
from tests.support.servers import Fetch, Serve

LIMIT = 64 * 1024
PEAK_BUDGET = 10 * 1024 * 1024


class CompressingEcho(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))

    def get_compression_options(self) -> dict[str, object]:
        return {}


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


@pytest.fixture(autouse=True)
def quiet_websocket_log() -> Iterator[None]:
    logger = logging.getLogger("asyncweb")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def deflated(size: int, byte: bytes = b"\0") -> bytes:
    """``size`` copies of ``byte`` as one permessage-deflate message body (compressed chunk by
    chunk, so building a bomb never allocates what it inflates to)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = byte * (1 << 20)
    parts = [deflate.compress(chunk) for _ in range(size >> 20)]
    parts.append(deflate.compress(byte * (size & ((1 << 20) - 1))))
    parts.append(deflate.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]  # RFC 7692 7.2.1: drop the 00 00 ff ff tail


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked (client-to-server) frame."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask = os.urandom(4)
    masked = (
        int.from_bytes(payload, "big")
        ^ int.from_bytes((mask * (len(payload) // 4 + 1))[: len(payload)], "big")
    ).to_bytes(len(payload), "big")
    return header(first, len(payload), masked=True) + mask + masked


def header(first: int, length: int, *, masked: bool) -> bytes:
    """A frame header with the shortest length encoding (RFC 6455 5.2 requires it)."""
    mask_bit = 0x80 if masked else 0
    if length < 126:
        return struct.pack("!BB", first, mask_bit | length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, mask_bit | 126, length)
    return struct.pack("!BBQ", first, mask_bit | 127, length)


async def open_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n" % (port, key)
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" in head
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """An unmasked (server-to-client) frame: (opcode, rsv1, payload)."""
    first, second = await asyncio.wait_for(reader.readexactly(2), 10)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    return first & 0x0F, bool(first & 0x40), await reader.readexactly(length)


async def close_code_after(reader: asyncio.StreamReader) -> int:
    """Skip data frames; the code of the Close that follows (checking its reason)."""
    while True:
        opcode, _, payload = await read_frame(reader)
        if opcode == 0x8:
            code = int(struct.unpack("!H", payload[:2])[0])
            if code == 1009:
                assert payload[2:] == b"message too big"
            return code


@contextlib.contextmanager
def traced() -> Iterator[list[int]]:
    """Trace allocations; the list gets the peak once the block ends."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
        result.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


@pytest.fixture
async def app_url(serve: Serve) -> AsyncIterator[str]:
    yield await serve(
        Application([("/ws", CompressingEcho), ("/", Hello)], websocket_max_message_size=LIMIT)
    )


async def still_serving(url: str, fetch: Fetch) -> None:
    """A normal compressed WebSocket exchange and an HTTP request both work."""
    async with connect(url.replace("http", "ws") + "/ws", compression="deflate") as ws:
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), 20) == "still here"
    response = await fetch(url + "/")
    assert response.status == 200 and response.body == b"hello"


async def test_single_frame_bomb_is_refused_with_1009_and_little_memory(
    app_url: str, fetch: Fetch
) -> None:
    bomb = frame(0x2, deflated(50_000_000), rsv1=True)  # about 50 KB inflating to 50 MB
    reader, writer = await open_raw(app_url)
    try:
        with traced() as peak:
            writer.write(bomb)
            code = await close_code_after(reader)
            assert await asyncio.wait_for(reader.read(), 20) == b""  # the server hangs up
    finally:
        writer.close()
    assert code == 1009
    assert peak[0] < PEAK_BUDGET, f"peak {peak[0] / 1e6:.1f} MB for a 64 KiB limit"
    await still_serving(app_url, fetch)


async def test_bomb_spread_over_continuation_frames_is_counted_as_one_message(
    app_url: str, fetch: Fetch
) -> None:
    # Each fragment inflates to less than the limit; together they are 40 MB.
    body = deflated(40_000_000)
    pieces = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    frames = [frame(0x2, pieces[0], fin=False, rsv1=True)]
    frames += [frame(0x0, piece, fin=False) for piece in pieces[1:-1]]
    frames.append(frame(0x0, pieces[-1]))
    reader, writer = await open_raw(app_url)
    try:
        with traced() as peak:
            writer.write(b"".join(frames))
            code = await close_code_after(reader)
    finally:
        writer.close()
    assert code == 1009
    assert peak[0] < PEAK_BUDGET, f"peak {peak[0] / 1e6:.1f} MB for a 64 KiB limit"
    await still_serving(app_url, fetch)


async def test_the_count_restarts_with_each_message(app_url: str) -> None:
    # Three messages of 60 KiB in one write: 180 KiB together, each under the 64 KiB limit.
    messages = [bytes([n]) * (60 * 1024) for n in (1, 2, 3)]
    reader, writer = await open_raw(app_url)
    try:
        writer.write(b"".join(frame(0x2, deflated(len(m), m[:1]), rsv1=True) for m in messages))
        inflate = zlib.decompressobj(-15)
        for message in messages:
            opcode, rsv1, payload = await read_frame(reader)
            assert opcode == 0x2 and rsv1
            assert inflate.decompress(payload + b"\x00\x00\xff\xff") == message
    finally:
        writer.close()


async def test_limit_is_exact_for_compressed_messages(app_url: str) -> None:
    async with connect(app_url.replace("http", "ws") + "/ws", compression="deflate") as ws:
        at_limit = b"a" * LIMIT
        await ws.send(at_limit)
        assert await asyncio.wait_for(ws.recv(), 20) == at_limit
        await ws.send(b"a" * (LIMIT + 1))
        await asyncio.wait_for(ws.wait_closed(), 20)
    assert ws.close_code == 1009


async def test_large_compressible_message_under_the_limit_arrives_intact(serve: Serve) -> None:
    limit = 8 * 1024 * 1024
    url = await serve(Application([("/ws", CompressingEcho)], websocket_max_message_size=limit))
    # Compresses well yet is not trivial: a repeating pattern with varying content.
    message = "".join(f"line {n:07d}: {'abc' * (n % 17)}\n" for n in range(120_000))
    assert len(message) < limit
    async with connect(
        url.replace("http", "ws") + "/ws", compression="deflate", max_size=None
    ) as ws:
        await ws.send(message)
        assert await asyncio.wait_for(ws.recv(), 10) == message


async def bomb_server(payload: bytes) -> tuple[asyncio.Server, asyncio.Future[int]]:
    """A raw WebSocket server that accepts permessage-deflate, sends ``payload`` as one
    compressed frame, and reports the code of the client's Close."""
    loop = asyncio.get_running_loop()
    client_close: asyncio.Future[int] = loop.create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n" % accept_token(key).encode()
            )
            writer.write(header(0xC2, len(payload), masked=False) + payload)
            first, second = await asyncio.wait_for(reader.readexactly(2), 10)
            mask = await reader.readexactly(4)
            body = await reader.readexactly(second & 0x7F)
            unmasked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
            assert first & 0x0F == 0x8
            client_close.set_result(struct.unpack("!H", unmasked[:2])[0])
        except Exception as err:  # reported through the future
            if not client_close.done():
                client_close.set_exception(err)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, client_close


async def test_client_refuses_a_bomb_from_the_server_with_1009() -> None:
    server, client_close = await bomb_server(deflated(50_000_000))
    port = server.sockets[0].getsockname()[1]
    try:
        with traced() as peak:
            conn = await websocket_connect(
                f"ws://127.0.0.1:{port}/", compression_options={}, max_message_size=LIMIT
            )
            assert await asyncio.wait_for(conn.read_message(), 10) is None
            code = await asyncio.wait_for(client_close, 10)
        conn.close()
    finally:
        server.close()
        await server.wait_closed()
    assert code == 1009
    assert peak[0] < PEAK_BUDGET, f"peak {peak[0] / 1e6:.1f} MB for a 64 KiB limit"
