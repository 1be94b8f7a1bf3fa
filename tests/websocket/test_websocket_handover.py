"""The WebSocket handover (101 written, connection switched to the WebSocket protocol) when the
connection ends around it: ``on_close`` is called exactly once and the server lets go of the
connection. Real servers and clients over loopback, for both HTTP/1 writers."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect

from asyncweb import web
from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets
from asyncweb.websocket import WebSocketHandler
from tests.support.servers import Serve, wait_until_stable

events: list[str] = []
prepares: list[str] = []  # SlowHandshake.prepare() starting and ending, for tests to wait on


class Recording(WebSocketHandler):
    def open(self) -> None:
        events.append("open")

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)

    def on_close(self) -> None:
        events.append("close")


class AbortedJustBeforeTheHandshake(Recording):
    """Aborts its own connection one loop step before answering. Over TLS the transport then
    reports the loss to the protocol that was current a step earlier (the HTTP one), after the
    handover: the same order a client that resets at that moment produces."""

    async def prepare(self) -> None:
        connection: Any = self.request.connection
        connection.transport.abort()
        await asyncio.sleep(0)


class SlowHandshake(Recording):
    async def prepare(self) -> None:
        prepares.append("start")
        await asyncio.sleep(0.3)
        prepares.append("end")


@pytest.fixture(autouse=True)
def _reset() -> None:
    events.clear()
    prepares.clear()


def app() -> web.Application:
    return web.Application(
        [("/aborted", AbortedJustBeforeTheHandshake), ("/slow", SlowHandshake), ("/", Recording)]
    )


def upgrade_request(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n"
        % (path.encode(), port, key)
    )


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def assert_echo_works(url: str, **kwargs: Any) -> None:
    async with connect(url, open_timeout=20, close_timeout=20, **kwargs) as ws:
        await ws.send("still serving")
        assert await asyncio.wait_for(ws.recv(), 20) == "still serving"


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_connection_lost_around_the_handover_calls_on_close(
    protocol_settings: dict[str, Any], tls: bool
) -> None:
    ca = trustme.CA()
    server_ctx = client_ctx = None
    if tls:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
    server = HTTPServer(app(), **protocol_settings, ssl_options=server_ctx)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        writer.write(upgrade_request(port, "/aborted"))
        await asyncio.wait_for(reader.read(), 20)  # the server hangs up
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 20)
        await wait_for(lambda: "close" in events)
        await asyncio.sleep(0.05)
        assert events.count("close") == 1, events
        # The server forgot the connection: a graceful shutdown has nothing to wait for.
        events.clear()
        scheme = "wss" if tls else "ws"
        await assert_echo_works(f"{scheme}://127.0.0.1:{port}/", ssl=client_ctx)
        server.stop()
        await asyncio.wait_for(server.close_all_connections(), 20)
    finally:
        server.stop()


async def test_graceful_shutdown_during_the_handshake_closes_the_websocket(
    protocol_settings: dict[str, Any],
) -> None:
    server = HTTPServer(app(), **protocol_settings)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        async with connect(f"ws://127.0.0.1:{port}/slow", open_timeout=20, close_timeout=20) as ws:
            pass  # (a first connection, to be sure the route works)
        assert events == ["open", "close"]
        events.clear()
        prepares.clear()
        client = asyncio.ensure_future(
            connect(f"ws://127.0.0.1:{port}/slow", open_timeout=20, close_timeout=20)
        )
        await wait_for(lambda: prepares == ["start"])  # the handler is in prepare()
        server.stop()
        # It must not wait for the WebSocket forever: it gets 1001 (Going Away) once open.
        await asyncio.wait_for(server.close_all_connections(), 20)
        ws = await client
        await asyncio.wait_for(ws.wait_closed(), 20)
        assert ws.close_code == 1001
        assert events == ["open", "close"]
    finally:
        server.stop()


async def test_client_gone_before_the_handshake_calls_on_close_once(
    serve: Serve, protocol_settings: dict[str, Any]
) -> None:
    url = await serve(app(), **protocol_settings)
    port = int(url.rsplit(":", 1)[1])
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request(port, "/slow"))
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await wait_for(lambda: "close" in events)
    # Past the end of prepare(), and then some loop turns: get() must not open it after all.
    await wait_for(lambda: prepares == ["start", "end"])
    await wait_until_stable(lambda: list(events))
    assert events == ["close"]
    await assert_echo_works(url.replace("http://", "ws://") + "/")
