"""websocket_connect against the third-party ``websockets`` server (and our own, for TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

import asyncweb.websocket
from asyncweb import web
from asyncweb.httpclient import HTTPClientError, HTTPRequest
from asyncweb.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketError,
    WebSocketHandler,
    websocket_connect,
)
from tests.support.servers import Serve, wait_until, wait_until_stable

seen: dict[str, Any] = {}


async def peer(ws: ServerConnection) -> None:
    """The websockets-library server: behaviour chosen by the request path."""
    assert ws.request is not None
    path = ws.request.path
    seen["subprotocol"] = ws.subprotocol
    try:
        if path == "/echo":
            async for message in ws:
                await ws.send(message)
        elif path == "/fragments":
            await ws.send(["frag", "men", "ted"])
            await ws.send([b"\x01" * 70000, b"\x02"])
            await ws.wait_closed()
        elif path == "/headers":
            headers = ws.request.headers
            await ws.send(
                json.dumps(
                    {
                        "cookie": headers.get("Cookie"),
                        "authorization": headers.get("Authorization"),
                        "x-extra": headers.get("X-Extra"),
                    }
                )
            )
            await ws.wait_closed()
        elif path.startswith("/close"):
            await ws.close(4001, "server says bye")
        elif path == "/big":
            await ws.send(b"x" * 2000)
            await ws.wait_closed()
        elif path == "/ping":
            await ws.recv()
            pong = await ws.ping(b"from server")
            await asyncio.wait_for(pong, 20)
            await ws.send("pong received")
            await ws.wait_closed()
        elif path == "/extensions":
            assert ws.response is not None
            await ws.send(ws.response.headers.get("Sec-WebSocket-Extensions") or "none")
            async for message in ws:
                await ws.send(message)
    except ConnectionClosed:
        pass
    finally:
        seen["close"] = (ws.close_code, ws.close_reason)


def refuse(ws: ServerConnection, request: Request) -> Response | None:
    if request.path == "/forbidden":
        return ws.respond(403, "Forbidden here\n")
    return None


@pytest.fixture
async def peer_url() -> AsyncIterator[str]:
    seen.clear()
    async with serve(
        peer,
        "127.0.0.1",
        0,
        select_subprotocol=lambda ws, offered: "chat.v2" if "chat.v2" in offered else None,
        process_request=refuse,
        max_size=None,
        ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def connected(url: str, **kwargs: Any) -> AsyncIterator[WebSocketClientConnection]:
    conn = await asyncio.wait_for(websocket_connect(url, **kwargs), 20)
    try:
        yield conn
    finally:
        conn.close()
        await asyncio.wait_for(conn.wait_closed(), 20)


async def test_echo_text_binary_empty_and_large(peer_url: str) -> None:
    big = os.urandom(4 * 1024 * 1024)
    async with connected(peer_url + "/echo") as conn:
        for message in ["hello", "", b"", b"\x00\xff", "😀€é\U0010ffff", big, "Ω" * 500_000]:
            await conn.write_message(message, binary=isinstance(message, bytes))
            assert await conn.read_message() == message


async def test_dict_is_sent_as_json(peer_url: str) -> None:
    async with connected(peer_url + "/echo") as conn:
        await conn.write_message({"a": [1, 2]})
        assert json.loads(await conn.read_message() or "") == {"a": [1, 2]}


async def test_fragmented_messages_from_server(peer_url: str) -> None:
    async with connected(peer_url + "/fragments") as conn:
        assert await conn.read_message() == "fragmented"
        assert await conn.read_message() == b"\x01" * 70000 + b"\x02"


async def test_client_close_code_reaches_server(peer_url: str) -> None:
    conn = await websocket_connect(peer_url + "/echo")
    conn.close(4000, "client says bye")
    await asyncio.wait_for(conn.wait_closed(), 20)
    await wait_for(lambda: "close" in seen)
    assert seen["close"] == (4000, "client says bye")
    assert conn.close_code == 4000  # the server echoed it
    assert await conn.read_message() is None
    with pytest.raises(WebSocketClosedError):
        conn.write_message("after close")


async def test_server_close_code_reaches_client(peer_url: str) -> None:
    conn = await websocket_connect(peer_url + "/close")
    assert await asyncio.wait_for(conn.read_message(), 20) is None
    assert conn.close_code == 4001
    assert conn.close_reason == "server says bye"
    await asyncio.wait_for(conn.wait_closed(), 20)


async def test_client_ping_gets_pong(peer_url: str) -> None:
    async with connected(peer_url + "/echo") as conn:
        pongs: list[bytes] = []
        conn.on_pong = pongs.append  # type: ignore[method-assign]
        conn.ping(b"hi")
        await wait_for(lambda: pongs == [b"hi"])


async def test_server_ping_is_answered(peer_url: str) -> None:
    async with connected(peer_url + "/ping") as conn:
        pings: list[bytes] = []
        conn.on_ping = pings.append  # type: ignore[method-assign]
        await conn.write_message("ping me")
        assert await conn.read_message() == "pong received"
        assert pings == [b"from server"]


async def test_compression_negotiated(peer_url: str) -> None:
    text = "squeeze " * 20000
    async with connected(peer_url + "/extensions", compression_options={}) as conn:
        assert "permessage-deflate" in (await conn.read_message() or "")
        assert "permessage-deflate" in conn.headers["Sec-WebSocket-Extensions"]
        for _ in range(3):
            await conn.write_message(text)
            assert await conn.read_message() == text


async def test_compression_not_requested(peer_url: str) -> None:
    async with connected(peer_url + "/extensions") as conn:
        assert await conn.read_message() == "none"
        await conn.write_message("plain")
        assert await conn.read_message() == "plain"


async def test_subprotocols(peer_url: str) -> None:
    async with connected(peer_url + "/echo", subprotocols=["chat.v1", "chat.v2"]) as conn:
        assert conn.selected_subprotocol == "chat.v2"
        assert seen["subprotocol"] == conn.selected_subprotocol
    async with connected(peer_url + "/echo") as conn:
        assert conn.selected_subprotocol is None


async def test_message_over_max_size_closes_with_1009(peer_url: str) -> None:
    conn = await websocket_connect(peer_url + "/big", max_message_size=1000)
    assert await asyncio.wait_for(conn.read_message(), 20) is None
    await asyncio.wait_for(conn.wait_closed(), 20)
    await wait_for(lambda: "close" in seen)
    assert seen["close"][0] == 1009


async def test_extra_headers_from_url_and_request(peer_url: str) -> None:
    async with connected(
        peer_url + "/headers", headers={"Cookie": "session=abc", "X-Extra": "1"}
    ) as conn:
        got = json.loads(await conn.read_message() or "")
        assert got == {"cookie": "session=abc", "authorization": None, "x-extra": "1"}
    request = HTTPRequest(
        peer_url + "/headers",
        headers={"Cookie": "a=b"},
        auth_username="user",
        auth_password="pass",
    )
    async with connected(request) as conn:  # type: ignore[arg-type]
        got = json.loads(await conn.read_message() or "")
        assert got["cookie"] == "a=b"
        assert got["authorization"] == "Basic dXNlcjpwYXNz"


async def test_refused_handshake_raises_http_error(peer_url: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(peer_url + "/forbidden")
    assert info.value.code == 403
    assert "Forbidden here" in str(info.value.message)


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError):
        await websocket_connect(f"ws://127.0.0.1:{port}/")


async def test_not_a_websocket_url() -> None:
    with pytest.raises(ValueError):
        await websocket_connect("ftp://127.0.0.1/")


async def test_on_message_callback_gets_messages_then_none(peer_url: str) -> None:
    received: list[str | bytes | None] = []
    conn = await websocket_connect(peer_url + "/echo", on_message_callback=received.append)
    await conn.write_message("one")
    await conn.write_message("two")
    await wait_for(lambda: len(received) == 2)
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), 20)
    assert received == ["one", "two", None]


async def test_legacy_callback_argument(peer_url: str) -> None:
    asyncweb.websocket.client._warned_callback = False
    done: asyncio.Future[WebSocketClientConnection] = asyncio.get_running_loop().create_future()
    with pytest.warns(DeprecationWarning):
        websocket_connect(peer_url + "/echo", callback=lambda f: done.set_result(f.result()))
    conn = await asyncio.wait_for(done, 20)
    await conn.write_message("legacy")
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    conn.read_message(callback=lambda f: got.set_result(f.result()))
    assert await asyncio.wait_for(got, 20) == "legacy"
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), 20)


async def test_resolver_is_used(peer_url: str) -> None:
    port = int(peer_url.rsplit(":", 1)[1])

    class FixedResolver:
        async def resolve(self, host: str, port: int, family: int) -> list[Any]:
            assert host == "chat.invalid"
            return [(socket.AF_INET, ("127.0.0.1", port))]

    async with connected(f"ws://chat.invalid:{port}/echo", resolver=FixedResolver()) as conn:
        await conn.write_message("resolved")
        assert await conn.read_message() == "resolved"


async def accept_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """A raw server's side of the handshake: read the request head, answer 101; the head."""
    from asyncweb.protocol.websocket import accept_token

    head = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_token(key.decode()).encode() + b"\r\n\r\n"
    )
    return head


async def test_client_ping_timeout_drops_a_silent_server() -> None:
    """A server that completes the handshake, then never answers anything."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await accept_handshake(reader, writer)
        await reader.read()  # read the pings, never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await websocket_connect(
            f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.2
        )
        assert await asyncio.wait_for(conn.read_message(), 20) is None  # a hang guard
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_client_ping_timeout_zero_keeps_pinging_a_silent_server() -> None:
    """ping_timeout=0 means no timeout, as in Tornado: the client used to give up at once."""
    pings: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await accept_handshake(reader, writer)
        while True:
            frame = await reader.readexactly(6)  # an empty masked frame: never answered
            pings.append(frame[:2])

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await websocket_connect(
            f"ws://127.0.0.1:{port}/", ping_interval=0.01, ping_timeout=0
        )
        await wait_until(lambda: len(pings) >= 40 or conn.protocol is None)
        assert pings[:40] == [b"\x89\x80"] * 40
        assert conn.protocol is not None and not conn.protocol.is_closing
        conn.close()
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


# -- our client with our server, over TLS ---------------------------------------------------------


class EchoHandler(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


async def test_wss_with_trusted_certificate(serve: Serve) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    url = await serve(web.Application([(r"/echo", EchoHandler)]), ssl_options=server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    wss = url.replace("https://", "wss://") + "/echo"
    async with connected(wss, ssl_options=client_context) as conn:
        await conn.write_message("secret")
        assert await conn.read_message() == "secret"
        await conn.write_message(b"\x00" * 300000, binary=True)
        assert await conn.read_message() == b"\x00" * 300000
    # Without trusting the CA the handshake fails.
    with pytest.raises(ssl.SSLError):
        await websocket_connect(wss)


async def test_our_client_against_our_server_with_compression(serve: Serve) -> None:
    class Compressed(EchoHandler):
        def get_compression_options(self) -> dict[str, Any]:
            return {"no_context_takeover": True, "compression_level": 1}

    url = await serve(web.Application([(r"/ws", Compressed)]))
    ws_url = url.replace("http://", "ws://") + "/ws"
    async with connected(ws_url, compression_options={"compression_level": 9}) as conn:
        header = conn.headers["Sec-WebSocket-Extensions"]
        assert "permessage-deflate" in header and "server_no_context_takeover" in header
        for i in range(3):
            await conn.write_message("repeat " * 1000 + str(i))
            assert await conn.read_message() == "repeat " * 1000 + str(i)


async def test_read_queue_is_bounded_and_loses_nothing(serve: Serve) -> None:
    """A client that does not read stops reading the socket; nothing is lost when it resumes."""

    class Burst(WebSocketHandler):
        async def on_message(self, message: str | bytes) -> None:
            for i in range(200):
                await self.write_message(f"{i:04d}" + "." * 10000)

    url = await serve(web.Application([(r"/ws", Burst)]))
    async with connected(url.replace("http://", "ws://") + "/ws") as conn:
        await conn.write_message("go")
        # Once it stops growing (counted in loop turns), the queue is within its bound.
        queued = await wait_until_stable(lambda: len(conn._queue))
        assert 0 < queued <= conn.max_queued_messages  # type: ignore[operator]
        received = [await conn.read_message() for _ in range(200)]
        assert [m[:4] for m in received if isinstance(m, str)] == [f"{i:04d}" for i in range(200)]


async def start_raw_server(answer: bytes | None) -> tuple[asyncio.Server, int, list[Any]]:
    """A TCP server that reads the handshake and sends ``answer`` (None: never answers)."""
    writers: list[Any] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        if answer is not None:
            writer.write(answer)
        await reader.read()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], writers


async def stop_raw_server(server: asyncio.Server, writers: list[Any]) -> None:
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_connect_timeout_when_the_handshake_never_comes() -> None:
    server, port, writers = await start_raw_server(None)
    try:
        with pytest.raises(HTTPClientError) as info:
            await websocket_connect(f"ws://127.0.0.1:{port}/", connect_timeout=0.2)
        assert info.value.code == 599
    finally:
        await stop_raw_server(server, writers)


async def test_wrong_accept_token_is_refused() -> None:
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: bm90IHRoZSByaWdodCB0b2tlbg==\r\n\r\n"
    )
    server, port, writers = await start_raw_server(answer)
    try:
        with pytest.raises(WebSocketError, match="Sec-WebSocket-Accept"):
            await websocket_connect(f"ws://127.0.0.1:{port}/")
    finally:
        await stop_raw_server(server, writers)


async def test_frames_arriving_between_the_101_and_the_switch_are_kept() -> None:
    # The server sends its first message a few loop turns after the 101: depending on the
    # turn, the frame reaches the client with the 101, after the switch, or in between,
    # while websocket_connect is still checking the answer (those frames were dropped), and
    # then the connection closes, which must reach the connection too.
    writers: list[asyncio.StreamWriter] = []

    async def greet_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        head = await accept_handshake(reader, writer)
        turns = int(head.split(b" ", 2)[1].strip(b"/"))
        for _ in range(turns):
            await asyncio.sleep(0)
        writer.write(b"\x81\x05hello")  # an unmasked text frame
        for _ in range(turns):
            await asyncio.sleep(0)
        writer.close()

    server = await asyncio.start_server(greet_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for turns in range(16):
            conn = await websocket_connect(f"ws://127.0.0.1:{port}/{turns}")
            # wait_for is a hang guard: a lost frame or close never comes.
            assert await asyncio.wait_for(conn.read_message(), 20) == "hello", turns
            assert await asyncio.wait_for(conn.read_message(), 20) is None, turns
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_plain_http_success_is_not_a_websocket_and_errors_keep_their_status() -> None:
    # As in Tornado: a 2xx answer is a WebSocketError, a redirect or an error an HTTP error.
    for answer, expected in [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", None),
        (b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", 302),
        (b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nboom", 500),
    ]:
        server, port, writers = await start_raw_server(answer)
        try:
            if expected is None:
                with pytest.raises(WebSocketError, match="Non-websocket response"):
                    await websocket_connect(f"ws://127.0.0.1:{port}/")
            else:
                with pytest.raises(HTTPClientError) as info:
                    await websocket_connect(f"ws://127.0.0.1:{port}/")
                assert info.value.code == expected
        finally:
            await stop_raw_server(server, writers)
