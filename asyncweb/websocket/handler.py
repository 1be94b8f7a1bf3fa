"""The server side: :class:`WebSocketHandler`, which answers the HTTP handshake and calls
``open``/``on_message``/``on_close``, as Tornado's ``tornado.websocket.WebSocketHandler``.

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
import inspect
import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from asyncweb import httputil
from asyncweb.protocol.websocket import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MessageReceiver,
    WebSocketClosedError,
    WebSocketParams,
    WebSocketProtocol,
    accept_token,
    negotiate_server_extensions,
    valid_key,
)
from asyncweb.web import HTTPError, RequestHandler

if TYPE_CHECKING:
    from wsproto.extensions import Extension
from asyncweb.websocket._common import _ping_data, _to_message, app_log, gen_log
from asyncweb.websocket.connection import (
    TransportConnection,
    WebSocketConnection,
    _closing,
)

# RFC 6455 only: Tornado also takes the 2011 drafts 7 and 8, which no client sends now.
_SUPPORTED_VERSIONS = ("13",)
_running: set[asyncio.Future[Any]] = set()


def _comma_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


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

    def message_failed(self, error: BaseException) -> None:
        # As an exception from any handler method: app_log's "Uncaught exception ...".
        self.handler.log_exception(type(error), error, error.__traceback__)

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
            gen_log.debug("refused WebSocket handshake: %s", message)
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
        # Browsers let any page open a WebSocket: a cross-origin handshake needs
        # check_origin()'s consent, whatever the cross_origin_protection setting.
        if self._cross_origin_refusal(self.check_origin) is not None:
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
        """Whether to accept a handshake from a page at ``origin``, another site's (called
        after prepare(), as in Tornado 6.6, only for cross-origin handshakes: not when
        ``Sec-Fetch-Site`` says ``same-origin``, nor, without that header, when ``Origin``
        is this request's scheme and host, nor without ``Origin``). By default the
        ``trusted_origins`` setting decides, through ``check_trusted_origin()``."""
        return self.check_trusted_origin(origin)

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
        return None if value is None else float(value)  # 0: no timeout

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

    def set_header(self, name: str, value: Any) -> None:
        self._http_only("set_header")
        super().set_header(name, value)

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        self._http_only("set_status")
        super().set_status(status_code, reason)

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> asyncio.Future[None]:
        self._http_only("finish")
        return super().finish(chunk)

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
