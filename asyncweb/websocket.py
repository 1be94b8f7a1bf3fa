"""WebSockets: :class:`WebSocketHandler` (server), :func:`websocket_connect` (client) and
:class:`BroadcastGroup` (send to many), as Tornado's ``tornado.websocket``.

Frames are parsed and built by wsproto inside :class:`asyncweb.protocol.websocket.
WebSocketProtocol`; this module does the HTTP handshake and the Tornado-facing API.

**The connection interface.** A handler never touches a transport: it talks to a
:class:`WebSocketConnection` (``write_message``, ``ping``, ``close``, ``start_receiving``,
``set_nodelay``, ``buffered_amount``, ``is_closing``, ``close_code``, ``close_reason``,
``selected_subprotocol``), and the connection calls back into the handler through a
:class:`~asyncweb.protocol.websocket.MessageReceiver` (``message_received``, ``ping_received``,
``pong_received``, ``connection_closed``) that :meth:`WebSocketHandler.websocket_receiver`
returns. :class:`TransportConnection` is the implementation over an asyncio transport.

**Another carrier** (ASGI websocket messages) plugs in through the request's connection: the
handler runs as any other (routing, ``prepare()``, decorators, :meth:`WebSocketHandler.get`),
and when ``request.connection`` has an ``accept_websocket(receiver, subprotocol)`` method,
``get()`` calls it instead of writing a ``101`` itself::

    class ASGIRequestConnection:                    # the HTTPConnection given to the request
        def accept_websocket(self, receiver, subprotocol) -> WebSocketConnection:
            # send {"type": "websocket.accept", "subprotocol": subprotocol}; return an object
            # that feeds later "websocket.receive" events to receiver.message_received(...)
            ...

A refused handshake (``websocket_refusal()``: 400/403/426...) is written as an ordinary error
response through ``write_headers``/``finish``; the carrier maps it (``websocket.close`` or the
HTTP response extension). Compression is the carrier's business there, so none is negotiated.

The connection contract: ``get()`` calls ``open()`` and, once it has returned (or its awaitable
resolved), ``connection.start_receiving()``; the connection holds messages until then, delivers
them one at a time (waiting for an awaitable ``message_received`` result before the next), and
calls ``connection_closed(code, reason)`` exactly once at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
import ssl
import urllib.parse
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast

import h11

from asyncweb import escape, httpclient, httputil
from asyncweb.netutil import ssl_options_to_context
from asyncweb.protocol.stream_face import StreamFace
from asyncweb.protocol.websocket import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MessageReceiver,
    WebSocketClosedError,
    WebSocketError,
    WebSocketParams,
    WebSocketProtocol,
    accept_client_extensions,
    accept_token,
    build_frame,
    client_offer,
    negotiate_server_extensions,
    new_key,
    valid_key,
)
from asyncweb.simple_httpclient import connect_resolved
from asyncweb.web import HTTPError, RequestHandler

if TYPE_CHECKING:
    from wsproto.extensions import Extension

__all__ = [
    "BroadcastGroup",
    "TransportConnection",
    "WebSocketClientConnection",
    "WebSocketClosedError",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketHandler",
    "websocket_connect",
]

app_log = logging.getLogger("asyncweb.application")
gen_log = logging.getLogger("asyncweb.general")

# RFC 6455 only: Tornado also takes the 2011 drafts 7 and 8, which no client sends now.
_SUPPORTED_VERSIONS = ("13",)
_running: set[asyncio.Future[Any]] = set()


class WebSocketConnection(Protocol):
    """What a :class:`WebSocketHandler` needs from the connection carrying its messages."""

    selected_subprotocol: str | None

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str | None: ...

    @property
    def is_closing(self) -> bool: ...

    def write_message(self, message: str | bytes) -> Awaitable[None]: ...

    def ping(self, data: bytes) -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    def start_receiving(self) -> None: ...

    def set_nodelay(self, value: bool) -> None: ...

    def buffered_amount(self) -> int: ...


class _ClosingFlag(int):
    """A bool that may also be called: asyncweb reads ``connection.is_closing``, Tornado code
    calls ``ws_connection.is_closing()``; both get the same answer."""

    __slots__ = ()

    def __call__(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return repr(bool(self))


_CLOSING = _ClosingFlag(1)
_OPEN = _ClosingFlag(0)


def _closing(connection: Any) -> bool:
    """``connection.is_closing`` read either way: a flag (asyncweb's carriers) or a method
    (Tornado's; code and tests written for Tornado may put their own object there)."""
    value = connection.is_closing
    return bool(value() if callable(value) else value)


class TransportConnection:
    """:class:`WebSocketConnection` over an asyncio transport, via :class:`WebSocketProtocol`.

    It is also what Tornado code sees as ``handler.ws_connection``: ``stream``,
    ``client_terminated``, ``server_terminated`` and ``is_closing()`` are there for it.
    """

    def __init__(self, protocol: WebSocketProtocol, subprotocol: str | None = None) -> None:
        self.protocol = protocol
        self.selected_subprotocol = subprotocol

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason

    @property
    def is_closing(self) -> bool:
        return cast(bool, _CLOSING if self.protocol.is_closing else _OPEN)

    @property
    def client_terminated(self) -> bool:
        """The client's side is over: its Close frame came, or the connection is gone."""
        return self.protocol.close_sent if self.protocol.client else self.protocol.close_received

    @property
    def server_terminated(self) -> bool:
        """The server's side is over: its Close frame went out, or the connection is gone."""
        return self.protocol.close_received if self.protocol.client else self.protocol.close_sent

    @property
    def stream(self) -> StreamFace:
        """An IOStream-shaped view of the connection (``closed()``, ``socket``,
        ``set_nodelay()``)."""
        return StreamFace(self.protocol.transport)

    def write_message(self, message: str | bytes) -> asyncio.Future[None]:
        return self.protocol.send_message(message)

    def ping(self, data: bytes) -> None:
        self.protocol.ping(data)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.protocol.close(code if code is not None else 1000, reason)

    def start_receiving(self) -> None:
        self.protocol.start_receiving()

    def set_nodelay(self, value: bool) -> None:
        self.protocol.set_nodelay(value)

    def buffered_amount(self) -> int:
        return self.protocol.write_buffer_size()

    def send_prepared(self, frame: bytes) -> bool:
        """Write an already built frame; False when this connection can't take one (it
        compresses, so each message must go through its own compressor)."""
        if self.protocol.compressed:
            return False
        self.protocol.send_frame_bytes(frame)
        return True


def _to_message(message: str | bytes | dict[str, Any], binary: bool) -> str | bytes:
    if isinstance(message, dict):
        message = escape.json_encode(message)
    if binary:
        return message.encode("utf-8") if isinstance(message, str) else bytes(message)
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message).decode("utf-8")  # a text frame must hold UTF-8
    if not isinstance(message, str):
        raise TypeError(f"write_message() takes str, bytes or dict, not {type(message).__name__}")
    return message


def _ping_data(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _comma_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


# -- the server side ----------------------------------------------------------------------------


# Tornado's name for the class of ``WebSocketHandler.ws_connection``.
WebSocketProtocol13 = TransportConnection


class _HandlerEvents:
    """The handler as a :class:`MessageReceiver` (kept apart so the handler's namespace holds
    only Tornado's names)."""

    __slots__ = ("handler",)

    def __init__(self, handler: WebSocketHandler) -> None:
        self.handler = handler

    def message_received(self, message: str | bytes) -> Awaitable[None] | None:
        result = self.handler.on_message(message)
        if result is not None and inspect.isawaitable(result):
            return result
        return None

    def ping_received(self, data: bytes) -> None:
        self.handler.on_ping(data)

    def pong_received(self, data: bytes) -> None:
        self.handler.on_pong(data)

    def connection_closed(self, code: int | None, reason: str | None) -> None:
        self.handler._websocket_closed(code, reason)


class WebSocketHandler(RequestHandler):
    """Subclass and override :meth:`open`, :meth:`on_message`, :meth:`on_close`.

    Settings read from the application: ``websocket_ping_interval``,
    ``websocket_ping_timeout`` and ``websocket_max_message_size`` (10 MiB by default: a
    larger message, or a frame header announcing one, closes the connection with 1009).
    """

    def __init__(self, application: Any, request: httputil.HTTPServerRequest, **kwargs: Any):
        self.ws_connection: WebSocketConnection | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._on_close_called = False
        # open()'s arguments when attach_websocket() is called without them (asgi sets these).
        self._open_args: tuple[Any, ...] = ()
        self._open_kwargs: dict[str, Any] = {}
        super().__init__(application, request, **kwargs)

    # -- the handshake -------------------------------------------------------------------------

    def get(self, *args: Any, **kwargs: Any) -> Awaitable[None]:
        """The handshake. It completes before returning; the result is an awaitable (already
        done) so that ``await super().get(...)`` works in a subclass, as with Tornado's
        coroutine ``get``."""
        self._handshake(*args, **kwargs)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def _handshake(self, *args: Any, **kwargs: Any) -> None:
        refusal = self.websocket_refusal()
        if refusal is not None:
            status, message, headers = refusal
            gen_log.info("refused WebSocket handshake: %s", message)
            self.set_status(status)
            for name, value in headers.items():
                self.set_header(name, value)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish(message + "\n")
            return
        http_connection: Any = self.request.connection
        accept = getattr(http_connection, "accept_websocket", None)
        if accept is not None:
            # Another carrier (ASGI) does the handshake; no HTTP response is written here.
            subprotocol, _ = self.negotiate(offer_compression=False)
            connection: WebSocketConnection = accept(self.websocket_receiver(), subprotocol)
            self.set_status(101)
            self._finished = True
            self._log()
            self.attach_websocket(connection, *args, **kwargs)
            return
        subprotocol, extensions_header, extensions = self._negotiate()
        request_headers = self.request.headers
        self.set_status(101)
        self.clear_header("Content-Type")
        self.set_header("Upgrade", "websocket")
        self.set_header("Connection", "Upgrade")
        self.set_header(
            "Sec-WebSocket-Accept", accept_token(request_headers["Sec-WebSocket-Key"].strip())
        )
        if subprotocol is not None:
            self.set_header("Sec-WebSocket-Protocol", subprotocol)
        if extensions_header is not None:
            self.set_header("Sec-WebSocket-Extensions", extensions_header)
        params = WebSocketParams(
            max_message_size=self.max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
        )
        protocol = WebSocketProtocol(
            self.websocket_receiver(), params, extensions=extensions, receiving=False
        )
        self.finish()
        http_connection.switch_protocol(protocol)
        self.attach_websocket(TransportConnection(protocol, subprotocol), *args, **kwargs)

    def websocket_refusal(self) -> tuple[int, str, dict[str, str]] | None:
        """Why this request can't become a WebSocket: (status, message, extra headers), or
        None when it can."""
        headers = self.request.headers
        if self.request.method != "GET":
            return 405, "WebSocket handshakes must use GET.", {"Allow": "GET"}
        if headers.get("Upgrade", "").strip().lower() != "websocket":
            return 400, 'Can "Upgrade" only to "WebSocket".', {}
        if "upgrade" not in (part.lower() for part in _comma_list(headers.get("Connection"))):
            return 400, '"Connection" must be "Upgrade".', {}
        version = headers.get("Sec-WebSocket-Version", "").strip()
        if version not in _SUPPORTED_VERSIONS:
            return 426, "Unsupported WebSocket version: use 13.", {"Sec-WebSocket-Version": "13"}
        if not valid_key(headers.get("Sec-WebSocket-Key")):
            return 400, "Missing or invalid Sec-WebSocket-Key header.", {}
        origin = headers.get("Origin") or headers.get("Sec-Websocket-Origin")
        if origin is not None and not self.check_origin(origin):
            return 403, "Cross origin websockets not allowed", {}
        return None

    def negotiate(self, offer_compression: bool = True) -> tuple[str | None, list[Extension]]:
        """The subprotocol chosen by :meth:`select_subprotocol` and, when
        ``offer_compression``, the extensions agreed from the request's offer."""
        subprotocol, _, extensions = self._negotiate(offer_compression)
        return subprotocol, extensions

    def _negotiate(
        self, offer_compression: bool = True
    ) -> tuple[str | None, str | None, list[Extension]]:
        offered = _comma_list(self.request.headers.get("Sec-WebSocket-Protocol"))
        subprotocol = None
        if offered:
            subprotocol = self.select_subprotocol(offered)
            if subprotocol is not None and subprotocol not in offered:
                raise HTTPError(500, f"select_subprotocol() chose {subprotocol!r}, not offered")
        extensions_header: str | None = None
        extensions: list[Extension] = []
        if offer_compression:
            extensions_header, extensions = negotiate_server_extensions(
                _comma_list(self.request.headers.get("Sec-WebSocket-Extensions")),
                self.get_compression_options(),
            )
        return subprotocol, extensions_header, extensions

    def websocket_receiver(self) -> MessageReceiver:
        """The callbacks a :class:`WebSocketConnection` delivers this handler's events to."""
        return _HandlerEvents(self)

    def attach_websocket(self, connection: WebSocketConnection, *args: Any, **kwargs: Any) -> None:
        """Start the WebSocket on ``connection``: run ``open(*args, **kwargs)``, then let the
        connection deliver messages."""
        self.ws_connection = connection
        if not args and not kwargs:
            args, kwargs = self._open_args, self._open_kwargs
        try:
            result = self.open(*args, **kwargs)
        except Exception:
            app_log.error("Uncaught exception in open() of %s", self.request.path, exc_info=True)
            connection.close(1011, "internal error")
            connection.start_receiving()  # to hear the peer's Close (messages are dropped)
            return
        if result is None or not inspect.isawaitable(result):
            connection.start_receiving()
            return
        future = asyncio.ensure_future(result)
        _running.add(future)
        future.add_done_callback(lambda done: self._opened(done, connection))

    def _opened(self, future: asyncio.Future[Any], connection: WebSocketConnection) -> None:
        _running.discard(future)
        if not future.cancelled() and future.exception() is not None:
            app_log.error(
                "Uncaught exception in open() of %s",
                self.request.path,
                exc_info=future.exception(),
            )
            connection.close(1011, "internal error")
        connection.start_receiving()

    # -- Tornado's interface -------------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        """A new WebSocket is open; receives the URL's path arguments. May be async: messages
        wait until it returns."""
        return None

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """A message arrived: str for text, bytes for binary. May be async; messages are then
        handled one after another."""
        raise NotImplementedError()

    def on_ping(self, data: bytes) -> None:
        """A ping arrived (it has been answered already)."""

    def on_pong(self, data: bytes) -> None:
        """A pong arrived."""

    def on_close(self) -> None:
        """The WebSocket is closed; ``close_code``/``close_reason`` say what the peer sent."""

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Pick one of the client's ``Sec-WebSocket-Protocol`` offers, or None for none."""
        return None

    @property
    def selected_subprotocol(self) -> str | None:
        return self.ws_connection.selected_subprotocol if self.ws_connection else None

    def check_origin(self, origin: str) -> bool:
        """Whether to accept a handshake from a page at ``origin``. By default only pages of
        the same host may connect (browsers always send Origin; other clients need not)."""
        origin_host = urllib.parse.urlsplit(origin.lower()).netloc
        return origin_host == self.request.headers.get("Host", "").lower()

    def get_compression_options(self) -> dict[str, Any] | None:
        """Return a dict (possibly empty) to offer permessage-deflate: ``compression_level``,
        ``mem_level``, ``no_context_takeover`` (or ``server_no_context_takeover`` /
        ``client_no_context_takeover``). None (the default) disables compression."""
        return None

    @property
    def max_message_size(self) -> int:
        return int(self.settings.get("websocket_max_message_size", DEFAULT_MAX_MESSAGE_SIZE))

    @property
    def ping_interval(self) -> float | None:
        value = self.settings.get("websocket_ping_interval")
        return float(value) if value else None

    @property
    def ping_timeout(self) -> float | None:
        value = self.settings.get("websocket_ping_timeout")
        return float(value) if value else None

    def write_message(
        self, message: str | bytes | dict[str, Any], binary: bool = False
    ) -> Awaitable[None]:
        """Send a message (a dict goes as JSON). The awaitable resolves once the data is
        handed to the socket; await it to slow down for a slow reader."""
        connection = self.ws_connection
        if connection is None or _closing(connection):
            raise WebSocketClosedError()
        return connection.write_message(_to_message(message, binary))

    def ping(self, data: str | bytes = b"") -> None:
        connection = self.ws_connection
        if connection is None or _closing(connection):
            raise WebSocketClosedError()
        connection.ping(_ping_data(data))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the closing handshake (``code``, ``reason`` go in the Close frame).

        As in Tornado, the handler then lets go of the connection: ``ws_connection`` becomes
        None and ``write_message``/``ping`` raise :class:`WebSocketClosedError`; the handshake
        goes on without it and ``on_close`` follows when it ends."""
        connection = self.ws_connection
        if connection is not None:
            connection.close(code, reason)
            self.ws_connection = None

    def set_nodelay(self, value: bool) -> None:
        """Send small messages at once (TCP_NODELAY)."""
        if self.ws_connection is not None:
            self.ws_connection.set_nodelay(value)
            return
        connection: Any = self.request.connection
        transport = getattr(connection, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)

    def get_websocket_protocol(self) -> WebSocketConnection | None:
        return self.ws_connection

    # After the upgrade there is no HTTP response left to write to.
    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        self._http_only("write")
        super().write(chunk)

    def flush(self, include_footers: bool = False) -> asyncio.Future[None]:
        self._http_only("flush")
        return super().flush(include_footers)

    def redirect(self, url: str, permanent: bool = False, status: int | None = None) -> None:
        self._http_only("redirect")
        super().redirect(url, permanent, status)

    def set_cookie(self, name: str, value: str | bytes, *args: Any, **kwargs: Any) -> None:
        self._http_only("set_cookie")
        super().set_cookie(name, value, *args, **kwargs)

    def _http_only(self, method: str) -> None:
        if self.ws_connection is not None:
            raise RuntimeError(f"{method}() is not supported on an open WebSocket")

    def on_connection_close(self) -> None:
        # The client went away during the handshake.
        super().on_connection_close()
        if self.ws_connection is None:
            self._websocket_closed(None, None)

    def _websocket_closed(self, code: int | None, reason: str | None) -> None:
        if self._on_close_called:
            return
        self._on_close_called = True
        self.close_code = code
        self.close_reason = reason
        try:
            self.on_close()
        except Exception:
            app_log.error("Uncaught exception in on_close()", exc_info=True)


# -- the client side ----------------------------------------------------------------------------


_warned_callback = False


def _warn_callback() -> None:
    global _warned_callback
    if not _warned_callback:
        _warned_callback = True
        warnings.warn(
            "callback arguments are deprecated; await the returned future instead",
            DeprecationWarning,
            stacklevel=3,
        )


def _call_with_future(callback: Callable[[Any], None], future: asyncio.Future[Any]) -> None:
    def run(done: asyncio.Future[Any]) -> None:
        try:
            callback(done)
        except Exception:
            app_log.error("Exception in callback %r", callback, exc_info=True)

    future.add_done_callback(run)


class WebSocketClientConnection:
    """A client WebSocket from :func:`websocket_connect`. Messages wait in a short queue for
    :meth:`read_message` (or go to ``on_message_callback``); when the queue is full the
    connection stops reading, so a slow reader slows the server down instead of piling up."""

    # Messages kept for read_message() before the socket stops being read.
    max_queued_messages = 16

    def __init__(
        self,
        on_message_callback: Callable[[str | bytes | None], Any] | None = None,
    ) -> None:
        self._on_message_callback = on_message_callback
        self._queue: deque[str | bytes | None] = deque()
        self._readers: deque[asyncio.Future[str | bytes | None]] = deque()
        self._room: asyncio.Future[None] | None = None
        self.protocol: WebSocketProtocol | None = None
        self.selected_subprotocol: str | None = None
        self.headers: httputil.HTTPHeaders = httputil.HTTPHeaders()
        self.request: httpclient.HTTPRequest | None = None
        # As in Tornado, these stay None once the handshake has succeeded (a refused one
        # raises HTTPClientError with the status instead).
        self.code: int | None = None
        self.reason: str | None = None
        self._closed = False

    # -- MessageReceiver ------------------------------------------------------------------------

    def message_received(self, message: str | bytes) -> Awaitable[None] | None:
        return self.on_message(message)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """A message arrived: it goes to ``on_message_callback`` when one was given, else to
        the queue :meth:`read_message` reads. Override to take messages another way."""
        if self._on_message_callback is not None:
            result = self._on_message_callback(message)
            return result if inspect.isawaitable(result) else None
        if self._readers:
            self._readers.popleft().set_result(message)
            return None
        self._queue.append(message)
        if len(self._queue) >= self.max_queued_messages:
            self._room = asyncio.get_running_loop().create_future()
            return self._room
        return None

    def ping_received(self, data: bytes) -> None:
        self.on_ping(data)

    def pong_received(self, data: bytes) -> None:
        self.on_pong(data)

    def connection_closed(self, code: int | None, reason: str | None) -> None:
        self._closed = True
        if self._on_message_callback is not None:
            try:
                self._on_message_callback(None)
            except Exception:
                app_log.error("Exception in on_message_callback(None)", exc_info=True)
        while self._readers:
            reader = self._readers.popleft()
            if not reader.done():
                reader.set_result(None)
        self._release()

    # -- Tornado's interface -------------------------------------------------------------------

    def on_ping(self, data: bytes) -> None:
        """Override (or assign) to see pings from the server."""

    def on_pong(self, data: bytes) -> None:
        """Override (or assign) to see pongs from the server."""

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code if self.protocol else None

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason if self.protocol else None

    def write_message(self, message: str | bytes | dict[str, Any], binary: bool = False) -> Any:
        if self.protocol is None or self.protocol.is_closing:
            raise WebSocketClosedError()
        return self.protocol.send_message(_to_message(message, binary))

    def read_message(
        self, callback: Callable[[asyncio.Future[str | bytes | None]], None] | None = None
    ) -> asyncio.Future[str | bytes | None]:
        """The next message; resolves to None once the connection is closed."""
        future: asyncio.Future[str | bytes | None] = asyncio.get_running_loop().create_future()
        if self._queue:
            future.set_result(self._queue.popleft())
            if len(self._queue) < self.max_queued_messages:
                self._release()
        elif self._closed:
            future.set_result(None)
        else:
            self._readers.append(future)
        if callback is not None:
            _warn_callback()
            _call_with_future(callback, future)
        return future

    def _release(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    def ping(self, data: str | bytes = b"") -> None:
        if self.protocol is None or self.protocol.is_closing:
            raise WebSocketClosedError()
        self.protocol.ping(_ping_data(data))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.protocol is not None:
            self.protocol.close(code if code is not None else 1000, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed."""
        if self.protocol is not None:
            await self.protocol.closed_future


class _ClientHandshake(asyncio.Protocol):
    """Sends the upgrade request and reads the answer; on 101 the transport moves on to the
    connection's :class:`WebSocketProtocol`."""

    def __init__(self, request_bytes: bytes, h11_conn: h11.Connection) -> None:
        self.request_bytes = request_bytes
        self.h11 = h11_conn
        self.transport: asyncio.Transport | None = None
        self.result: asyncio.Future[tuple[h11.InformationalResponse, bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._response: h11.Response | None = None
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request_bytes)

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        self.h11.receive_data(b"")
        self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection closed during the WebSocket handshake"))

    def _fail(self, error: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def _pump(self) -> None:
        while not self.result.done():
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as err:
                self._fail(WebSocketError(f"bad handshake response: {err}"))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if self.h11.their_state is h11.SWITCHED_PROTOCOL:
                    continue
                return
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self.result.set_result((event, bytes(self.h11.trailing_data[0])))
                    return
                continue  # 100 Continue and the like
            if isinstance(event, h11.Response):
                self._response = event
                continue
            if isinstance(event, h11.Data):
                if sum(map(len, self._body)) < 65536:
                    self._body.append(bytes(event.data))
                continue
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                self._refused()
                return

    def _refused(self) -> None:
        response = self._response
        code = response.status_code if response is not None else 599
        body = b"".join(self._body).decode("utf-8", "replace").strip()
        message = f"WebSocket handshake refused with {code}" + (f": {body}" if body else "")
        self._fail(httpclient.HTTPClientError(code, message))


def websocket_connect(
    url: str | httpclient.HTTPRequest,
    callback: Callable[[asyncio.Future[WebSocketClientConnection]], None] | None = None,
    connect_timeout: float | None = None,
    on_message_callback: Callable[[str | bytes | None], Any] | None = None,
    compression_options: dict[str, Any] | None = None,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    subprotocols: list[str] | None = None,
    resolver: Any = None,
    *,
    headers: dict[str, str] | httputil.HTTPHeaders | None = None,
    ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
) -> asyncio.Future[WebSocketClientConnection]:
    """Open a client WebSocket to a ``ws://`` or ``wss://`` URL (or an
    :class:`~asyncweb.httpclient.HTTPRequest`, whose headers, timeouts and TLS options are
    used). The future resolves to a :class:`WebSocketClientConnection`; a refused handshake
    raises :class:`~asyncweb.httpclient.HTTPClientError` with the response's status."""
    if isinstance(url, httpclient.HTTPRequest):
        request = url
        if headers:
            for name, value in httputil.HTTPHeaders(headers).get_all():
                request.headers.add(name, value)
    else:
        request = httpclient.HTTPRequest(url, headers=headers, connect_timeout=connect_timeout)
    if ssl_options is not None:
        request.ssl_options = ssl_options
    future = asyncio.ensure_future(
        _connect(
            request,
            on_message_callback,
            compression_options,
            WebSocketParams(
                max_message_size=max_message_size,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
            ),
            subprotocols,
            resolver,
        )
    )
    if callback is not None:
        _warn_callback()
        _call_with_future(callback, future)
    return future


def _client_ssl_context(request: httpclient.HTTPRequest) -> ssl.SSLContext:
    if isinstance(request.ssl_options, ssl.SSLContext):
        return request.ssl_options
    if request.ssl_options:
        return ssl_options_to_context(request.ssl_options, server_side=False)
    context = ssl.create_default_context(cafile=request.ca_certs)
    if request.validate_cert is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if request.client_cert:
        context.load_cert_chain(request.client_cert, request.client_key)
    return context


async def _connect(
    request: httpclient.HTTPRequest,
    on_message_callback: Callable[[str | bytes | None], Any] | None,
    compression_options: dict[str, Any] | None,
    params: WebSocketParams,
    subprotocols: list[str] | None,
    resolver: Any,
) -> WebSocketClientConnection:
    parts = urllib.parse.urlsplit(request.url)
    scheme = {"ws": "ws", "http": "ws", "wss": "wss", "https": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(f"not a WebSocket URL: {request.url!r}")
    secure = scheme == "wss"
    host = parts.hostname
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = new_key()
    header_list: list[tuple[str, str]] = [
        ("Host", parts.netloc.rsplit("@", 1)[-1]),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if subprotocols:
        header_list.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    offer, proposed = client_offer(compression_options)
    if offer is not None:
        header_list.append(("Sec-WebSocket-Extensions", offer))
    if request.auth_username is not None:
        header_list.append(
            ("Authorization", _basic_auth(request.auth_username, request.auth_password or ""))
        )
    reserved = {name.lower() for name, _ in header_list}
    header_list += [
        (name, value) for name, value in request.headers.get_all() if name.lower() not in reserved
    ]
    h11_conn = h11.Connection(h11.CLIENT)
    request_bytes = h11_conn.send(h11.Request(method="GET", target=target, headers=header_list)) + (
        h11_conn.send(h11.EndOfMessage()) or b""
    )
    loop = asyncio.get_running_loop()
    timeout = request.connect_timeout or request.request_timeout or 20.0
    ssl_context = _client_ssl_context(request) if secure else None

    async def establish() -> tuple[asyncio.Transport, _ClientHandshake]:
        if resolver is not None:
            # Any address the resolver gives, another host or a Unix socket path.
            transport, handshake = await connect_resolved(
                resolver,
                lambda: _ClientHandshake(request_bytes, h11_conn),
                host,
                port,
                ssl_context=ssl_context,
            )
        else:
            transport, handshake = await loop.create_connection(
                lambda: _ClientHandshake(request_bytes, h11_conn),
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if secure else None,
            )
        try:
            await handshake.result
        except BaseException:
            transport.close()
            raise
        return transport, handshake

    try:
        transport, handshake = await asyncio.wait_for(establish(), timeout)
    except asyncio.TimeoutError:
        raise httpclient.HTTPClientError(599, "Timeout during WebSocket handshake") from None
    response, leftover = handshake.result.result()
    response_headers = httputil.HTTPHeaders()
    for name, value in response.headers:
        response_headers.add(name.decode("latin-1"), value.decode("latin-1"))
    try:
        if response_headers.get("Sec-WebSocket-Accept", "").strip() != accept_token(key):
            raise WebSocketError("invalid Sec-WebSocket-Accept in the handshake response")
        extensions = accept_client_extensions(
            response_headers.get("Sec-WebSocket-Extensions"), proposed
        )
        chosen = response_headers.get("Sec-WebSocket-Protocol")
        if chosen is not None and chosen not in (subprotocols or []):
            raise WebSocketError(f"server chose a subprotocol we did not offer: {chosen!r}")
    except (WebSocketError, ValueError):
        transport.close()
        raise
    connection = WebSocketClientConnection(on_message_callback)
    connection.request = request
    connection.headers = response_headers
    connection.selected_subprotocol = chosen
    protocol = WebSocketProtocol(connection, params, client=True, extensions=extensions)
    connection.protocol = protocol
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    protocol.set_nodelay(True)
    if leftover:
        protocol.data_received(leftover)
    return connection


def _basic_auth(username: str, password: str) -> str:
    import base64

    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


# -- broadcasting -------------------------------------------------------------------------------


class Broker(Protocol):
    """A pub/sub broker: ``asyncweb.pubsub.Broker`` or anything with this shape."""

    def publish(self, channel: str, message: Any) -> Any: ...

    def subscribe(self, channel: str) -> AsyncIterator[Any]: ...


class BroadcastGroup:
    """The chat-room pattern: a set of open WebSockets that a message goes to all of.

    **Slow clients.** :meth:`send` never waits for a socket. A member whose unsent output
    exceeds ``max_buffer`` bytes (it stopped reading) is closed with 1008 when ``slow_policy``
    is ``"close"`` (the default: it can reconnect and catch up), or skipped for this message
    when it is ``"drop"``. Either way one slow client costs the others nothing, and memory per
    member stays under about ``max_buffer`` plus one message. Closed members are removed.

    **Across processes.** Given a ``broker`` (``publish(channel, message)`` and an async
    iterator ``subscribe(channel)``, as ``asyncweb.pubsub.Broker``), :meth:`broadcast`
    publishes and every process's group delivers what it hears on ``channel`` to its own
    members (call :meth:`start` once in each; :meth:`stop` ends it). Without a broker,
    :meth:`broadcast` delivers in this process directly.
    """

    def __init__(
        self,
        *,
        max_buffer: int = 1024 * 1024,
        slow_policy: str = "close",
        broker: Broker | None = None,
        channel: str = "broadcast",
    ) -> None:
        if slow_policy not in ("close", "drop"):
            raise ValueError("slow_policy must be 'close' or 'drop'")
        self.max_buffer = max_buffer
        self.slow_policy = slow_policy
        self.broker = broker
        self.channel = channel
        self._members: dict[Any, None] = {}  # insertion-ordered set
        self._listener: asyncio.Task[None] | None = None

    def add(self, member: WebSocketHandler | WebSocketConnection) -> None:
        self._members[member] = None

    def discard(self, member: WebSocketHandler | WebSocketConnection) -> None:
        self._members.pop(member, None)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._members))

    def send(self, message: str | bytes | dict[str, Any], binary: bool = False) -> int:
        """Deliver to this process's members now; returns how many got the message."""
        payload = _to_message(message, binary)
        frame: bytes | None = None
        delivered = 0
        for member in list(self._members):
            connection = _connection_of(member)
            if connection is None or _closing(connection):
                self._members.pop(member, None)
                continue
            if connection.buffered_amount() > self.max_buffer:
                if self.slow_policy == "close":
                    gen_log.info("closing a WebSocket that stopped reading broadcasts")
                    connection.close(1008, "too slow to keep up")
                    self._members.pop(member, None)
                continue
            try:
                if isinstance(connection, TransportConnection):
                    if frame is None:
                        frame = build_frame(payload)
                    if connection.send_prepared(frame):
                        delivered += 1
                        continue
                _quiet(connection.write_message(payload))
                delivered += 1
            except WebSocketClosedError:
                self._members.pop(member, None)
        return delivered

    async def broadcast(self, message: str | bytes | dict[str, Any], binary: bool = False) -> None:
        """Send to every member of the group, in all processes when there is a broker."""
        if self.broker is None:
            self.send(message, binary)
            return
        if isinstance(message, dict):
            message = json.dumps(message)
        result = self.broker.publish(self.channel, message)
        if inspect.isawaitable(result):
            await result

    def start(self) -> None:
        """Begin relaying what the broker publishes on ``channel`` to the members here."""
        if self.broker is None or self._listener is not None:
            return
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        assert self.broker is not None
        async for message in self.broker.subscribe(self.channel):
            try:
                self.send(message, binary=isinstance(message, bytes))
            except Exception:
                app_log.error("broadcast of a published message failed", exc_info=True)

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def _connection_of(member: Any) -> WebSocketConnection | None:
    if isinstance(member, WebSocketHandler):
        return member.ws_connection
    return cast(WebSocketConnection, member)


def _quiet(written: Awaitable[None]) -> None:
    """A broadcast does not wait for writes; their failures are expected (closed peers)."""
    if isinstance(written, asyncio.Future) and not written.done():
        written.add_done_callback(lambda f: f.cancelled() or f.exception())
