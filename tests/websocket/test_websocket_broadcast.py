"""BroadcastGroup (the chat-room pattern) and 1,000 concurrent clients on one server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asyncweb import web
from asyncweb.websocket import (
    BroadcastGroup,
    WebSocketClientConnection,
    WebSocketHandler,
    websocket_connect,
)
from tests.support.servers import Serve


class RoomHandler(WebSocketHandler):
    """Joins the application's group; "say X" broadcasts X, anything else is echoed."""

    def initialize(self, group: BroadcastGroup) -> None:  # type: ignore[override]
        self.group = group

    def open(self) -> None:
        self.group.add(self)
        self.write_message("joined")

    async def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        if message.startswith("say "):
            await self.group.broadcast(message[4:])
        else:
            await self.write_message(message)

    def on_close(self) -> None:
        self.group.discard(self)


async def room_url(serve: Serve, group: BroadcastGroup) -> str:
    url = await serve(web.Application([(r"/room", RoomHandler, {"group": group})]))
    return url.replace("http://", "ws://") + "/room"


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_message_reaches_every_member_and_skips_closed_ones(serve: Serve) -> None:
    group = BroadcastGroup()
    url = await room_url(serve, group)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(url)) for _ in range(5)]
        for ws in clients:
            assert await ws.recv() == "joined"
        await clients[0].send("say hello all")
        for ws in clients:
            assert await asyncio.wait_for(ws.recv(), 20) == "hello all"
        await clients[4].close()
        await wait_for(lambda: len(group) == 4)
        assert group.send("direct") == 4
        for ws in clients[:4]:
            assert await asyncio.wait_for(ws.recv(), 20) == "direct"


async def test_broadcast_to_handlers_with_closed_connection_is_skipped(serve: Serve) -> None:
    group = BroadcastGroup()
    url = await room_url(serve, group)
    async with connect(url) as ws:
        assert await ws.recv() == "joined"
        member = next(iter(group))
        # Closed but not yet discarded (on_close may not have run): skipped and removed.
        member.close()
        assert group.send("nobody") == 0
        assert len(group) == 0
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 20)


async def open_silent_client(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that completes the handshake and then never reads."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 101 ")
    return reader, writer


@pytest.mark.parametrize("policy", ["close", "drop"])
async def test_slow_member_never_delays_the_others(serve: Serve, policy: str) -> None:
    group = BroadcastGroup(max_buffer=256 * 1024, slow_policy=policy)
    url = await room_url(serve, group)
    _reader, writer = await open_silent_client(url)
    try:
        async with connect(url, max_size=None) as fast:
            assert await fast.recv() == "joined"
            await wait_for(lambda: len(group) == 2)
            slow = next(m for m in group if m.ws_connection is not None)
            chunk = "m" * 100_000
            received = 0
            for i in range(200):  # 20 MB in all: far beyond what the socket buffers hold
                group.send(f"{i:03d}{chunk}")
                message = await asyncio.wait_for(fast.recv(), 20)
                assert message[:3] == f"{i:03d}"
                received += 1
                buffered = [m.ws_connection.buffered_amount() for m in group]
                # Memory stays bounded: nobody holds much more than the limit and a message.
                assert all(b <= group.max_buffer + 2 * 100_100 for b in buffered)
            assert received == 200
            if policy == "close":
                assert len(group) == 1  # the slow one was closed
                assert slow.ws_connection is not None and slow.ws_connection.is_closing
            else:
                assert len(group) == 2  # kept, its messages dropped
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class FakeBroker:
    """An in-memory stand-in with the shape of ``asyncweb.pubsub.Broker``."""

    def __init__(self) -> None:
        self.queues: dict[str, list[asyncio.Queue[Any]]] = {}

    async def publish(self, channel: str, message: Any) -> None:
        for queue in self.queues.get(channel, []):
            queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queues.setdefault(channel, []).append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self.queues[channel].remove(queue)


async def test_broker_fans_out_across_groups(serve: Serve) -> None:
    """Two groups (as in two processes) share a broker: a broadcast in one reaches both."""
    broker = FakeBroker()
    group_a = BroadcastGroup(broker=broker, channel="chat")
    group_b = BroadcastGroup(broker=broker, channel="chat")
    group_a.start()
    group_b.start()
    try:
        url_a = await room_url(serve, group_a)
        url_b = await room_url(serve, group_b)
        await wait_for(lambda: len(broker.queues.get("chat", [])) == 2)
        async with connect(url_a) as a, connect(url_b) as b:
            assert await a.recv() == "joined" and await b.recv() == "joined"
            await a.send("say across processes")
            assert await asyncio.wait_for(a.recv(), 20) == "across processes"
            assert await asyncio.wait_for(b.recv(), 20) == "across processes"
            await group_b.broadcast({"kind": "json"})
            assert await asyncio.wait_for(a.recv(), 20) == '{"kind": "json"}'
    finally:
        await group_a.stop()
        await group_b.stop()


# -- 1,000 clients ---------------------------------------------------------------------------------


async def test_thousand_concurrent_clients(serve: Serve) -> None:
    group = BroadcastGroup()
    url = await room_url(serve, group)
    clients: list[WebSocketClientConnection] = []
    gate = asyncio.Semaphore(100)

    async def join() -> WebSocketClientConnection:
        async with gate:
            conn = await websocket_connect(url)
            assert await conn.read_message() == "joined"
            return conn

    try:
        clients.extend(await asyncio.wait_for(asyncio.gather(*(join() for _ in range(1000))), 30))
        assert len(group) == 1000

        async def converse(index: int, conn: WebSocketClientConnection) -> int:
            got = 0
            for turn in range(3):
                text = f"client {index} turn {turn}"
                await conn.write_message(text)
                assert await conn.read_message() == text
                got += 1
            return got

        echoes = await asyncio.wait_for(
            asyncio.gather(*(converse(i, c) for i, c in enumerate(clients))), 30
        )
        assert sum(echoes) == 3000
        await clients[0].write_message("say to everyone")
        heard = await asyncio.wait_for(asyncio.gather(*(c.read_message() for c in clients)), 30)
        assert heard == ["to everyone"] * 1000
    finally:
        for conn in clients:
            conn.close()
        await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in clients)), 30)
    await wait_for(lambda: len(group) == 0)
