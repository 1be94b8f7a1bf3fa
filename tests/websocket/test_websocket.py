"""WebSocketHandler against the third-party ``websockets`` client and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asyncweb import web
from asyncweb.websocket import TransportConnection, WebSocketClosedError, WebSocketHandler
from tests.support.servers import Serve, raw_exchange, wait_until_stable

# -- handlers -------------------------------------------------------------------------------------

events: list[Any] = []
handlers: list[WebSocketHandler] = []


class EchoHandler(WebSocketHandler):
    def open(self, *args: Any, **kwargs: Any) -> None:
        handlers.append(self)
        events.append(("open", args))

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data: bytes) -> None:
        events.append(("ping", data))

    def on_pong(self, data: bytes) -> None:
        events.append(("pong", data))

    def on_close(self) -> None:
        events.append(("close", self.close_code, self.close_reason))


class CommandHandler(WebSocketHandler):
    """Does what the client's text message says."""

    def open(self) -> None:
        handlers.append(self)

    def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        command, _, arg = message.partition(" ")
        if command == "close":
            code, _, reason = arg.partition(" ")
            self.close(int(code), reason)
        elif command == "ping":
            self.ping(arg.encode())
        elif command == "json":
            self.write_message({"answer": 42, "arg": arg})
        elif command == "raise":
            raise RuntimeError("on_message failed on purpose")
        elif command == "http-output":
            # Tornado's list of RequestHandler methods refused once the WebSocket is open.
            attempts: list[Callable[[], object]] = [
                lambda: self.write("an HTTP body"),
                lambda: self.redirect("/elsewhere"),
                lambda: self.set_header("X-Test", "1"),
                lambda: self.set_cookie("chocolate", "chip"),
                lambda: self.set_status(503),
                self.flush,
                self.finish,
            ]
            for attempt in attempts:
                try:
                    attempt()
                    self.write_message("no error")
                except RuntimeError as err:
                    self.write_message(str(err))
        elif command == "subprotocol":
            self.write_message(str(self.selected_subprotocol))

    def on_pong(self, data: bytes) -> None:
        self.write_message("pong " + data.decode())

    def on_close(self) -> None:
        events.append(("close", self.close_code, self.close_reason))


class SubprotocolHandler(EchoHandler):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chat.v2" if "chat.v2" in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.write_message(f"subprotocol={self.selected_subprotocol}")


class CompressedHandler(EchoHandler):
    def get_compression_options(self) -> dict[str, Any]:
        return {"compression_level": 9, "mem_level": 5}


class StoredDeflateHandler(EchoHandler):
    def get_compression_options(self) -> dict[str, Any]:
        return {"compression_level": 0}


class NoContextTakeoverHandler(EchoHandler):
    def get_compression_options(self) -> dict[str, Any]:
        return {"no_context_takeover": True}


class AnyOriginHandler(EchoHandler):
    def check_origin(self, origin: str) -> bool:
        return origin.endswith(".example")


class AsyncOpenHandler(WebSocketHandler):
    async def open(self) -> None:
        self.ready = False
        await asyncio.sleep(0.1)
        self.ready = True

    def on_message(self, message: str | bytes) -> None:
        self.write_message(f"ready={self.ready} {message!s}")


class AsyncMessageHandler(WebSocketHandler):
    async def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        # Later messages sleep less: only in-order processing keeps the echo in order.
        await asyncio.sleep(max(0.0, 0.05 - int(message) * 0.01))
        await self.write_message(message)


class FloodHandler(WebSocketHandler):
    """Writes 64 KiB messages, awaiting each write, until the peer stops reading."""

    def open(self) -> None:
        handlers.append(self)
        self.sent = 0
        self.pending: asyncio.Future[None] | None = None
        self.task = asyncio.ensure_future(self.flood())

    async def flood(self) -> None:
        chunk = b"x" * 65536
        with contextlib.suppress(WebSocketClosedError):
            while True:
                written = self.write_message(chunk, binary=True)
                self.sent += 1
                self.pending = asyncio.ensure_future(written)
                await self.pending

    def on_message(self, message: str | bytes) -> None:
        pass


class AfterCloseHandler(WebSocketHandler):
    def open(self) -> None:
        handlers.append(self)

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        try:
            self.write_message("too late")
        except WebSocketClosedError:
            events.append("closed-error")


class NoDelayHandler(WebSocketHandler):
    def open(self) -> None:
        self.set_nodelay(True)
        assert self.get_websocket_protocol() is self.ws_connection
        assert isinstance(self.ws_connection, TransportConnection)
        assert self.ws_connection.protocol.transport is not None
        sock = self.ws_connection.protocol.transport.get_extra_info("socket")
        self.write_message(f"nodelay={sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)}")

    def on_message(self, message: str | bytes) -> None:
        pass


class ClosingAsyncOpenHandler(WebSocketHandler):
    async def open(self) -> None:
        self.close(4003, "not today")
        await asyncio.sleep(60)  # the close handshake must not wait for this

    def on_message(self, message: str | bytes) -> None:
        pass


class SlowHandler(WebSocketHandler):
    async def on_message(self, message: str | bytes) -> None:
        await asyncio.sleep(0.8)  # longer than the ping timeout
        await self.write_message(message)


class FailingMessageHandler(WebSocketHandler):
    """on_message fails as the message says: raising or cancelled, sync or async."""

    def on_message(self, message: str | bytes) -> Any:
        if message == "raise":
            raise RuntimeError("on_message failed on purpose")
        if message == "cancel":
            raise asyncio.CancelledError()
        return self.fail_later(str(message))

    async def fail_later(self, message: str) -> None:
        await asyncio.sleep(0)
        if message == "async raise":
            raise RuntimeError("async on_message failed on purpose")
        cancelled = asyncio.get_running_loop().create_future()
        cancelled.cancel()
        await cancelled

    def on_close(self) -> None:
        events.append(("close", self.close_code, self.close_reason))


class FailingOpenHandler(WebSocketHandler):
    def open(self) -> None:
        raise RuntimeError("open failed on purpose")

    def on_message(self, message: str | bytes) -> None:
        pass


def make_app(**settings: Any) -> web.Application:
    return web.Application(
        [
            (r"/echo", EchoHandler),
            (r"/echo/(\w+)", EchoHandler),
            (r"/cmd", CommandHandler),
            (r"/subprotocol", SubprotocolHandler),
            (r"/compressed", CompressedHandler),
            (r"/nocontext", NoContextTakeoverHandler),
            (r"/stored", StoredDeflateHandler),
            (r"/anyorigin", AnyOriginHandler),
            (r"/asyncopen", AsyncOpenHandler),
            (r"/asyncmessage", AsyncMessageHandler),
            (r"/flood", FloodHandler),
            (r"/afterclose", AfterCloseHandler),
            (r"/nodelay", NoDelayHandler),
            (r"/failopen", FailingOpenHandler),
            (r"/failmessage", FailingMessageHandler),
            (r"/slow", SlowHandler),
            (r"/closingopen", ClosingAsyncOpenHandler),
        ],
        **settings,
    )


@pytest.fixture(autouse=True)
def _reset() -> None:
    events.clear()
    handlers.clear()


@pytest.fixture
async def ws_url(protocol_settings: dict[str, Any], serve: Serve) -> str:
    """Base ws:// URL of a server with the handlers above, for each HTTP/1 protocol variant."""
    url = await serve(make_app(), **protocol_settings)
    return url.replace("http://", "ws://")


async def serve_ws(serve: Serve, **settings: Any) -> str:
    return (await serve(make_app(**settings))).replace("http://", "ws://")


@contextlib.asynccontextmanager
async def client(url: str, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("max_size", None)
    async with connect(url, **kwargs) as ws:
        yield ws


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- messages -------------------------------------------------------------------------------------


async def test_text_and_binary_echo(ws_url: str) -> None:
    async with client(ws_url + "/echo") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01\xff")
        assert await ws.recv() == b"\x00\x01\xff"
    await wait_for(lambda: any(e[0] == "close" for e in events))
    assert ("close", 1000, None) in events


async def test_empty_messages(ws_url: str) -> None:
    async with client(ws_url + "/echo") as ws:
        await ws.send("")
        assert await ws.recv() == ""
        await ws.send(b"")
        assert await ws.recv() == b""


async def test_multi_megabyte_messages(ws_url: str) -> None:
    binary = os.urandom(3 * 1024 * 1024)
    text = "äbc€😀" * 300_000  # about 4 MB of UTF-8
    async with client(ws_url + "/echo") as ws:
        await ws.send(binary)
        assert await ws.recv() == binary
        await ws.send(text)
        assert await ws.recv() == text


async def test_fragmented_messages(ws_url: str) -> None:
    async with client(ws_url + "/echo") as ws:
        await ws.send(["frag", "men", "ted", ""])
        assert await ws.recv() == "fragmented"
        await ws.send([b"\x01", b"\x02" * 70000, b"\x03"])
        assert await ws.recv() == b"\x01" + b"\x02" * 70000 + b"\x03"


@pytest.mark.parametrize(
    "text",
    ["é", "€", "😀", "\U0010ffff", "\ufeff", "a\x00b", "\ud7ff\ue000", "Ω" * 1000],
)
async def test_utf8_edge_cases(ws_url: str, text: str) -> None:
    async with client(ws_url + "/echo") as ws:
        await ws.send(text)
        assert await ws.recv() == text


async def test_path_arguments_reach_open(ws_url: str) -> None:
    async with client(ws_url + "/echo/room42") as ws:
        await ws.send("x")
        await ws.recv()
    assert ("open", ("room42",)) in events


async def test_dict_is_sent_as_json(ws_url: str) -> None:
    async with client(ws_url + "/cmd") as ws:
        await ws.send("json hi")
        assert await ws.recv() == '{"answer": 42, "arg": "hi"}'


# -- ping / pong ----------------------------------------------------------------------------------


async def test_client_ping_is_answered_and_reported(ws_url: str) -> None:
    async with client(ws_url + "/echo") as ws:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 20)
        await ws.send("sync")
        await ws.recv()
    assert ("ping", b"are you there") in events


async def test_server_ping_gets_pong(ws_url: str) -> None:
    async with client(ws_url + "/cmd") as ws:
        await ws.send("ping hello")
        assert await ws.recv() == "pong hello"


# -- closing --------------------------------------------------------------------------------------


async def test_client_close_code_and_reason_reach_server(ws_url: str) -> None:
    async with client(ws_url + "/cmd") as ws:
        await ws.close(4000, "client says bye")
    await wait_for(lambda: bool(events))
    assert events == [("close", 4000, "client says bye")]


async def test_server_close_code_and_reason_reach_client(ws_url: str) -> None:
    async with client(ws_url + "/cmd") as ws:
        await ws.send("close 4001 server says bye")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4001
        assert info.value.rcvd.reason == "server says bye"
    await wait_for(lambda: bool(events))
    assert events[0][1] == 4001  # the client echoed our code


async def test_write_message_after_close_raises(ws_url: str) -> None:
    async with client(ws_url + "/afterclose") as ws:
        await ws.send("x")
    await wait_for(lambda: "closed-error" in events)


async def test_exception_in_on_message_closes_with_1011(ws_url: str) -> None:
    async with client(ws_url + "/cmd") as ws:
        await ws.send("raise")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011


@pytest.mark.parametrize("failure", ["raise", "cancel", "async raise", "async cancel"])
async def test_failing_on_message_is_logged_as_uncaught_and_closes_with_1011(
    ws_url: str, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    # As in Tornado: app_log's "Uncaught exception", whether on_message raised or was
    # cancelled (a CancelledError from a sync on_message used to escape to the transport).
    async with client(ws_url + "/failmessage") as ws:
        await ws.send(failure)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    await wait_for(lambda: any(e[0] == "close" for e in events))  # on_close ran
    uncaught = [r for r in caplog.records if r.name == "asyncweb.application"]
    assert [r.getMessage().split("\n")[0] for r in uncaught] == [
        "Uncaught exception GET /failmessage (127.0.0.1)"
    ]
    assert not [r for r in caplog.records if "Fatal error" in r.getMessage()]


async def test_server_shutdown_says_going_away(serve: Serve) -> None:
    from asyncweb.httpserver import HTTPServer
    from asyncweb.netutil import bind_sockets

    server = HTTPServer(make_app())
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    async with client(f"ws://127.0.0.1:{port}/echo") as ws:
        await ws.send("x")
        await ws.recv()
        server.stop()
        await asyncio.wait_for(server.close_all_connections(), 20)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


# -- open / on_message ordering -------------------------------------------------------------------


async def test_messages_wait_for_async_open(ws_url: str) -> None:
    async with client(ws_url + "/asyncopen") as ws:
        await ws.send("first")
        assert await ws.recv() == "ready=True first"


async def test_async_on_message_runs_in_order(ws_url: str) -> None:
    async with client(ws_url + "/asyncmessage") as ws:
        for i in range(5):
            await ws.send(str(i))
        assert [await ws.recv() for _ in range(5)] == ["0", "1", "2", "3", "4"]


# -- negotiation ----------------------------------------------------------------------------------


async def test_subprotocol_selected(ws_url: str) -> None:
    async with client(ws_url + "/subprotocol", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert await ws.recv() == "subprotocol=chat.v2"


async def test_no_subprotocol_when_none_fits(ws_url: str) -> None:
    async with client(ws_url + "/subprotocol", subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
        assert await ws.recv() == "subprotocol=None"


async def test_compression_negotiated(ws_url: str) -> None:
    text = "compress me " * 10000
    async with client(ws_url + "/compressed", compression="deflate") as ws:
        assert ws.response is not None
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        for _ in range(3):  # context takeover across messages
            await ws.send(text)
            assert await ws.recv() == text
        await ws.send(b"\x00" * 100000)
        assert await ws.recv() == b"\x00" * 100000


async def test_compression_without_context_takeover(ws_url: str) -> None:
    async with client(ws_url + "/nocontext", compression="deflate") as ws:
        assert ws.response is not None
        header = ws.response.headers["Sec-WebSocket-Extensions"]
        assert "server_no_context_takeover" in header
        assert "client_no_context_takeover" in header
        for i in range(3):
            await ws.send(f"message {i} " * 100)
            assert await ws.recv() == f"message {i} " * 100


async def test_no_compression_unless_the_handler_offers_it(ws_url: str) -> None:
    async with client(ws_url + "/echo", compression="deflate") as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send("plain")
        assert await ws.recv() == "plain"


async def test_client_without_compression_on_compressing_handler(ws_url: str) -> None:
    async with client(ws_url + "/compressed", compression=None) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send("plain")
        assert await ws.recv() == "plain"


# -- origin ---------------------------------------------------------------------------------------


async def test_cross_origin_refused_with_403(ws_url: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with client(ws_url + "/echo", origin="http://evil.example"):
            pass
    assert info.value.response.status_code == 403
    assert b"Cross origin" in info.value.response.body


async def test_same_origin_accepted(ws_url: str) -> None:
    host = ws_url.split("//", 1)[1]
    async with client(ws_url + "/echo", origin=f"http://{host}") as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"


async def test_check_origin_override(ws_url: str) -> None:
    async with client(ws_url + "/anyorigin", origin="https://app.example") as ws:
        await ws.send("ok")
        assert await ws.recv() == "ok"


@pytest.mark.parametrize(
    ("path", "headers", "accepted"),
    [
        # Sec-Fetch-Site decides first: a proxy may have rewritten Host.
        ("/echo", {"Origin": "http://proxied.example", "Sec-Fetch-Site": "same-origin"}, True),
        ("/echo", {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, False),
        ("/echo", {"Origin": "http://sub.example", "Sec-Fetch-Site": "same-site"}, False),
        # The trusted_origins setting, through the default check_origin().
        ("/echo", {"Origin": "http://trusted.example"}, True),
        ("/echo", {"Origin": "http://trusted.example", "Sec-Fetch-Site": "cross-site"}, True),
        # An override is asked only about other sites' handshakes.
        ("/anyorigin", {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, True),
        ("/anyorigin", {"Origin": "http://evil.other", "Sec-Fetch-Site": "cross-site"}, False),
    ],
)
async def test_origin_rules_of_tornado_6_6(
    serve: Serve, path: str, headers: dict[str, str], accepted: bool
) -> None:
    url = await serve_ws(serve, trusted_origins=["http://trusted.example"])
    if accepted:
        async with client(url + path, additional_headers=headers) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
    else:
        with pytest.raises(InvalidStatus) as info:
            async with client(url + path, additional_headers=headers):
                pass
        assert info.value.response.status_code == 403


class SameOriginVetoHandler(EchoHandler):
    def check_origin(self, origin: str) -> bool:
        raise AssertionError("check_origin() is for other sites' handshakes")


async def test_check_origin_is_not_asked_about_same_origin_handshakes(serve: Serve) -> None:
    url = await serve(web.Application([("/veto", SameOriginVetoHandler)]))
    host = url.split("//", 1)[1]
    for headers in ({"Origin": f"http://{host}"}, {"Sec-Fetch-Site": "same-origin"}, {}):
        async with client(url.replace("http", "ws") + "/veto", additional_headers=headers) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"


# -- limits ---------------------------------------------------------------------------------------


async def test_message_over_max_size_closes_with_1009(serve: Serve) -> None:
    url = await serve_ws(serve, websocket_max_message_size=1024)
    async with client(url + "/echo") as ws:
        await ws.send("a" * 1024)
        assert await ws.recv() == "a" * 1024
        await ws.send("a" * 1025)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_fragmented_message_over_max_size_closes_with_1009(serve: Serve) -> None:
    url = await serve_ws(serve, websocket_max_message_size=10000)
    async with client(url + "/echo") as ws:
        await ws.send([b"x" * 6000, b"x" * 6000])
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_ping_timeout_closes_a_dead_peer(serve: Serve) -> None:
    url = await serve_ws(serve, websocket_ping_interval=0.1, websocket_ping_timeout=0.3)
    # A raw client: handshakes, then never answers a ping nor sends anything.
    reader, writer = await open_raw_websocket(url, "/echo")
    try:
        await wait_for(lambda: any(e[0] == "close" for e in events))
        data = await asyncio.wait_for(reader.read(), 20)  # the server hung up
        assert data.startswith(b"\x89")  # it had pinged
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_ping_keeps_a_live_peer(serve: Serve) -> None:
    # 40 pings take at least 0.8 s, past the ping timeout: it is checked at least once.
    url = await serve_ws(serve, websocket_ping_interval=0.02, websocket_ping_timeout=0.5)
    async with client(url + "/echo", ping_interval=None) as ws:
        # Ping rounds counted, not slept through; answered by the client library.
        await wait_for(lambda: sum(e[0] == "pong" for e in events) >= 40)
        await ws.send("still here")
        assert await ws.recv() == "still here"
    assert not any(e[0] == "close" and e[1] != 1000 for e in events)


async def test_busy_application_does_not_count_as_a_dead_peer(serve: Serve) -> None:
    """While on_message() is slow the socket is not read, so pongs wait unread in it."""
    url = await serve_ws(serve, websocket_ping_interval=0.1, websocket_ping_timeout=0.3)
    async with client(url + "/slow", ping_interval=None) as ws:
        await ws.send("one")
        await ws.send("two")
        assert await asyncio.wait_for(ws.recv(), 20) == "one"
        assert await asyncio.wait_for(ws.recv(), 20) == "two"


# -- back-pressure --------------------------------------------------------------------------------


async def test_slow_reader_gets_back_pressure_not_buffering(ws_url: str) -> None:
    reader, writer = await open_raw_websocket(ws_url.replace("ws://", "http://"), "/flood")
    try:
        # The client reads nothing: soon a write_message() future stays pending.
        await wait_for(lambda: bool(handlers) and getattr(handlers[0], "pending", None) is not None)
        flood = handlers[0]
        await wait_for(lambda: flood.pending is not None and not flood.pending.done())
        # Stalled, not buffering: no progress over many loop turns (each polls the sockets).
        sent = await wait_until_stable(lambda: flood.sent)
        await asyncio.sleep(0.2)
        assert flood.sent == sent
        assert flood.pending is not None and not flood.pending.done()
        assert flood.ws_connection is not None
        # Bounded: the transport holds at most its high-water mark plus one message.
        assert flood.ws_connection.buffered_amount() <= 2 * 65536 + 16
        # The server still serves others meanwhile.
        async with client(ws_url + "/echo") as ws:
            await ws.send("others are fine")
            assert await ws.recv() == "others are fine"
        # Reading again lets the writer go on.
        deadline = asyncio.get_running_loop().time() + 20
        while flood.sent == sent:
            assert asyncio.get_running_loop().time() < deadline, "writer never resumed"
            await asyncio.wait_for(reader.read(1 << 20), 20)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    await wait_for(lambda: flood.task.done())


# -- handshake rejections (raw HTTP) --------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the example key of RFC 6455 1.3


def upgrade_request(
    path: str = "/echo", method: str = "GET", drop: str = "", **replace: str
) -> bytes:
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    headers.update({k.replace("_", "-"): v for k, v in replace.items()})
    headers.pop(drop, None)
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_handshake_accepted_raw(ws_url: str) -> None:
    data = await raw_exchange(
        ws_url.replace("ws://", "http://"), upgrade_request(), until_close=False
    )
    head = data.decode("latin-1").lower()
    assert head.startswith("http/1.1 101 switching protocols\r\n")
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n" in head  # RFC 6455 1.3
    assert "upgrade: websocket\r\n" in head
    assert "connection: upgrade\r\n" in head
    assert "content-length" not in head and "transfer-encoding" not in head


@pytest.mark.parametrize(
    ("request_bytes", "status", "text"),
    [
        (upgrade_request(method="POST"), 405, "Method Not Allowed"),
        (upgrade_request(drop="Sec-WebSocket-Key"), 400, "Sec-WebSocket-Key"),
        (upgrade_request(Sec_WebSocket_Key="tooshort"), 400, "Sec-WebSocket-Key"),
        (upgrade_request(Upgrade="h2c"), 400, 'Can "Upgrade" only to "WebSocket".'),
        (upgrade_request(drop="Upgrade"), 400, 'Can "Upgrade" only to "WebSocket".'),
        (upgrade_request(Connection="keep-alive"), 400, '"Connection" must be "Upgrade".'),
        (upgrade_request(Sec_WebSocket_Version="12"), 426, "version"),
        (upgrade_request(Origin="http://elsewhere.example"), 403, "Cross origin"),
    ],
)
async def test_handshake_rejections(
    ws_url: str, request_bytes: bytes, status: int, text: str
) -> None:
    data = await raw_exchange(
        ws_url.replace("ws://", "http://"), request_bytes, read_timeout=20, until_close=False
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert text.encode() in body
    if status == 426:
        assert b"\r\nsec-websocket-version: 13" in head.lower()
    assert not handlers and not any(e[0] == "open" for e in events)


async def test_keep_alive_continues_after_a_refused_upgrade(ws_url: str) -> None:
    host, port = ws_url.split("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(upgrade_request(Sec_WebSocket_Version="12") + upgrade_request())
        # The WebSocket then stays open: read up to its 101, however long that takes.
        switched = reader.readuntil(b"HTTP/1.1 101 Switching Protocols")
        data = await asyncio.wait_for(switched, 20)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    assert data.startswith(b"HTTP/1.1 426 ")


# -- raw frames: protocol errors ------------------------------------------------------------------


async def open_raw_websocket(
    url: str, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.split("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(upgrade_request(path))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    mask = b"\x11\x22\x33\x44"
    first = (0x80 if fin else 0) | rsv | opcode
    if len(payload) < 126:
        head = struct.pack("!BB", first, 0x80 | len(payload))
    else:
        head = struct.pack("!BBH", first, 0x80 | 126, len(payload))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def raw_close_code(url: str, frames: bytes) -> int:
    reader, writer = await open_raw_websocket(url.replace("ws://", "http://"), "/echo")
    try:
        writer.write(frames)
        data = await asyncio.wait_for(reader.read(), 20)  # the server closes after its Close
        while data and data[0] & 0x0F != 0x8:
            length = data[1] & 0x7F
            data = data[2 + length :]
        assert data, "no Close frame"
        code: int = struct.unpack("!H", data[2:4])[0]
        return code
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_invalid_utf8_closes_with_1007(ws_url: str) -> None:
    assert await raw_close_code(ws_url, client_frame(0x1, b"ok \xff\xfe")) == 1007


async def test_invalid_utf8_split_across_fragments_closes_with_1007(ws_url: str) -> None:
    frames = client_frame(0x1, b"\xe2\x82", fin=False) + client_frame(0x0, b"\x28")
    assert await raw_close_code(ws_url, frames) == 1007


async def test_valid_utf8_split_across_fragments(ws_url: str) -> None:
    reader, writer = await open_raw_websocket(ws_url.replace("ws://", "http://"), "/echo")
    try:
        euro = "€".encode()
        writer.write(client_frame(0x1, euro[:1], fin=False) + client_frame(0x0, euro[1:]))
        frame = await asyncio.wait_for(reader.readexactly(2 + len(euro)), 20)
        assert frame == b"\x81\x03" + euro
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    "frames",
    [
        client_frame(0x3, b"reserved opcode"),
        client_frame(0x1, b"rsv bit", rsv=0x40),  # RSV1 without negotiated compression
        client_frame(0x0, b"continuation without a start"),
        client_frame(0x9, b"fragmented ping", fin=False),
        b"\x81\x05hello",  # unmasked client frame
    ],
)
async def test_protocol_errors_close_with_1002(ws_url: str, frames: bytes) -> None:
    assert await raw_close_code(ws_url, frames) == 1002


# -- odds and ends --------------------------------------------------------------------------------


async def test_set_nodelay(ws_url: str) -> None:
    async with client(ws_url + "/nodelay") as ws:
        assert await ws.recv() == "nodelay=1"


async def test_exception_in_open_closes_with_1011(ws_url: str) -> None:
    async with client(ws_url + "/failopen") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1011


async def test_peer_vanishing_without_close_frame(ws_url: str) -> None:
    _reader, writer = await open_raw_websocket(ws_url.replace("ws://", "http://"), "/echo")
    writer.close()
    await writer.wait_closed()
    await wait_for(lambda: any(e[0] == "close" for e in events))
    assert ("close", None, None) in events


async def test_handshake_with_gzip_responses_on(serve: Serve) -> None:
    url = await serve_ws(serve, compress_response=True)
    async with client(url + "/echo", additional_headers={"Accept-Encoding": "gzip"}) as ws:
        await ws.send("x" * 5000)
        assert await ws.recv() == "x" * 5000


async def test_http_output_methods_refused_after_upgrade(ws_url: str) -> None:
    async with client(ws_url + "/cmd") as ws:
        await ws.send("http-output")
        refused = [await ws.recv() for _ in range(7)]
        methods = ["write", "redirect", "set_header", "set_cookie", "set_status", "flush", "finish"]
        assert refused == [f"{m}() is not supported on an open WebSocket" for m in methods]
        await ws.send("json still")  # the connection is unharmed
        assert await ws.recv() == '{"answer": 42, "arg": "still"}'


async def test_close_during_async_open_completes_at_once(ws_url: str) -> None:
    async with client(ws_url + "/closingopen") as ws:
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 20)  # well before open() would end
        assert info.value.rcvd is not None and info.value.rcvd.code == 4003
    assert ws.close_code == 4003


async def test_compressed_bomb_closes_with_1009(serve: Serve) -> None:
    """50 MB of zeros deflate to about 50 kB: the limit applies to the inflated size."""
    url = await serve_ws(serve, websocket_max_message_size=1024 * 1024)
    async with client(url + "/compressed", compression="deflate") as ws:
        await ws.send(b"\0" * (50 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


@pytest.mark.parametrize(
    ("path", "smaller_than", "larger_than"),
    [
        ("/compressed", 200, 0),  # compression_level 9
        ("/stored", 20000, 10000),  # compression_level 0: deflate's stored blocks
    ],
)
async def test_compression_level_is_applied(
    ws_url: str, path: str, smaller_than: int, larger_than: int
) -> None:
    host, port = ws_url.split("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = upgrade_request(path).replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert b"permessage-deflate" in head
        writer.write(client_frame(0x1, b"a" * 10000))  # uncompressed (RSV1 clear) is allowed
        first, second = await asyncio.wait_for(reader.readexactly(2), 20)
        assert first == 0x80 | 0x40 | 0x1  # FIN, RSV1 (compressed), text
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        assert larger_than < length < smaller_than
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_ping_timeout_zero_keeps_pinging_a_silent_peer(serve: Serve) -> None:
    # websocket_ping_timeout=0 turns the check off (Tornado's documented meaning); it used to
    # mean the default timeout (30 s at these intervals), so no answer is ever awaited now.
    url = await serve_ws(serve, websocket_ping_interval=0.01, websocket_ping_timeout=0)
    reader, writer = await open_raw_websocket(url, "/echo")
    try:
        # 40 empty pings (2 bytes each, unmasked); a close or EOF would end the read short.
        data = await asyncio.wait_for(reader.readexactly(80), 20)
        assert data == b"\x89\x00" * 40
        assert not any(e[0] == "close" for e in events)
        connection = handlers[-1].ws_connection
        assert connection is not None
        assert connection.protocol._pong_timer is None  # no pong deadline armed
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
