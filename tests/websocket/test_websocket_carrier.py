"""The plug point for other carriers (ASGI): a request connection with ``accept_websocket``.

The carrier here keeps messages in memory, as an ASGI adapter would turn them into
``websocket.send`` / ``websocket.receive`` events. The application is driven through Tornado's
public delegate interface (``start_request`` / ``headers_received`` / ``finish``), the way such
an adapter drives it; everything from routing to the handler is the real code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from asyncweb import httputil, web
from asyncweb.protocol.websocket import MessageReceiver
from asyncweb.websocket import WebSocketClosedError, WebSocketHandler
from tests.support.servers import wait_until


class MemoryWebSocket:
    """A WebSocketConnection whose peer is the test: ``sent`` is what the handler wrote."""

    def __init__(self, receiver: MessageReceiver, subprotocol: str | None) -> None:
        self.receiver = receiver
        self.selected_subprotocol = subprotocol
        self.sent: list[str | bytes] = []
        self.inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.receiving = asyncio.Event()
        self.closed_with: tuple[int | None, str | None] | None = None
        self.pump = asyncio.ensure_future(self._pump())

    # -- WebSocketConnection ---------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        return self.closed_with[0] if self.closed_with else None

    @property
    def close_reason(self) -> str | None:
        return self.closed_with[1] if self.closed_with else None

    @property
    def is_closing(self) -> bool:
        return self.closed_with is not None

    def write_message(self, message: str | bytes) -> Awaitable[None]:
        if self.closed_with is not None:
            raise WebSocketClosedError()
        self.sent.append(message)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def ping(self, data: bytes) -> None:
        self.receiver.pong_received(data)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.closed_with is None:
            self.closed_with = (code, reason)
            self.inbox.put_nowait(None)

    def start_receiving(self) -> None:
        self.receiving.set()

    def set_nodelay(self, value: bool) -> None:
        pass

    def buffered_amount(self) -> int:
        return 0

    # -- the carrier's side ------------------------------------------------------------------------

    async def _pump(self) -> None:
        await self.receiving.wait()
        while True:
            message = await self.inbox.get()
            if message is None:
                break
            pending = self.receiver.message_received(message)
            if pending is not None:
                await pending  # one at a time, in order
        code, reason = self.closed_with or (None, None)
        self.receiver.connection_closed(code, reason)


class MemoryCarrier:
    """The request's HTTPConnection: ordinary responses are recorded, WebSockets accepted."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, bytes]] = []
        self.socket: MemoryWebSocket | None = None
        self._status = 0
        self._body = b""

    def set_close_callback(self, callback: Any) -> None:
        pass

    def write_headers(
        self, start_line: Any, headers: Any, chunk: bytes | None = None
    ) -> asyncio.Future[None]:
        self._status = start_line.code
        self._body = chunk or b""
        return self._done()

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        self._body += chunk
        return self._done()

    def finish(self) -> None:
        self.responses.append((self._status, self._body))

    def accept_websocket(
        self, receiver: MessageReceiver, subprotocol: str | None
    ) -> MemoryWebSocket:
        self.socket = MemoryWebSocket(receiver, subprotocol)
        return self.socket

    def _done(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


log: list[Any] = []


class RoomHandler(WebSocketHandler):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[-1]

    async def open(self, room: str) -> None:
        await asyncio.sleep(0.01)
        log.append(("open", room, self.selected_subprotocol))

    async def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        await asyncio.sleep(0.02 if message == "first" else 0)
        await self.write_message({"echo": message})

    def on_close(self) -> None:
        log.append(("close", self.close_code, self.close_reason))


def run_request(app: web.Application, carrier: MemoryCarrier, headers: dict[str, str]) -> None:
    delegate = app.start_request(None, carrier)  # type: ignore[arg-type]
    start_line = httputil.RequestStartLine("GET", "/room/lobby", "HTTP/1.1")
    delegate.headers_received(start_line, httputil.HTTPHeaders(headers))
    delegate.finish()


HANDSHAKE = {
    "Host": "chat.example",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Protocol": "v1, v2",
}


async def test_handler_runs_over_another_carrier() -> None:
    log.clear()
    app = web.Application([(r"/room/(\w+)", RoomHandler)])
    carrier = MemoryCarrier()
    run_request(app, carrier, HANDSHAKE)
    assert carrier.responses == []  # no HTTP response: the carrier did the handshake
    socket = carrier.socket
    assert socket is not None and socket.selected_subprotocol == "v2"
    socket.inbox.put_nowait("first")
    socket.inbox.put_nowait("second")
    await wait_until(lambda: len(socket.sent) == 2)
    assert log[0] == ("open", "lobby", "v2")
    assert socket.sent == ['{"echo": "first"}', '{"echo": "second"}']
    socket.close(1000, "done")
    await asyncio.wait_for(socket.pump, 20)
    assert log[-1] == ("close", 1000, "done")


async def test_refusal_is_an_ordinary_response_on_the_carrier() -> None:
    app = web.Application([(r"/room/(\w+)", RoomHandler)])
    carrier = MemoryCarrier()
    run_request(app, carrier, {**HANDSHAKE, "Origin": "https://elsewhere.example"})
    assert carrier.socket is None
    assert carrier.responses[0][0] == 403
    assert b"Cross origin" in carrier.responses[0][1]
