"""The client side: :func:`websocket_connect` and the :class:`WebSocketClientConnection` it
returns, as Tornado's; the handshake is written and read with h11, frames by wsproto."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import urllib.parse
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import h11

from asyncweb import httpclient, httputil
from asyncweb.netutil import ssl_options_to_context
from asyncweb.protocol.websocket import (
    DEFAULT_MAX_MESSAGE_SIZE,
    WebSocketClosedError,
    WebSocketError,
    WebSocketParams,
    WebSocketProtocol,
    accept_client_extensions,
    accept_token,
    client_offer,
    new_key,
)
from asyncweb.simple_httpclient import connect_resolved

if TYPE_CHECKING:
    pass
from asyncweb.websocket._common import _ping_data, _to_message, app_log

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


_log = logging.getLogger("asyncweb.websocket")


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
        # Callback-era code calls read_message() between IOLoop runs, when no loop is running.
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

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

    def message_failed(self, error: BaseException) -> None:
        _log.error("uncaught exception in message callback", exc_info=error)

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
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[str | bytes | None] = loop.create_future()
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
        # After the 101 and until hand_over(): the new protocol's bytes, and the connection's
        # end if it came (a 1-tuple holding connection_lost's argument).
        self._early: list[bytes] = []
        self._lost: tuple[Exception | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request_bytes)

    def data_received(self, data: bytes) -> None:
        if self.result.done():
            # websocket_connect has yet to switch protocols: these are WebSocket frames.
            self._early.append(data)
            return
        self.h11.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        if not self.result.done():
            self.h11.receive_data(b"")
            self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        result = self.result
        if result.done() and not result.cancelled() and result.exception() is None:
            self._lost = (exc,)
            return
        self._fail(exc or ConnectionResetError("connection closed during the WebSocket handshake"))

    def hand_over(self, protocol: asyncio.Protocol) -> None:
        """Make ``protocol`` the transport's, with every byte and event since the 101."""
        assert self.transport is not None and self.result.done()
        _, leftover = self.result.result()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        data = leftover + b"".join(self._early)
        self._early.clear()
        if data:
            protocol.data_received(data)
        if self._lost is not None:
            protocol.connection_lost(self._lost[0])

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
        if 200 <= code < 300:
            # A success that is not a WebSocket; errors and redirects keep their status.
            self._fail(WebSocketError("Non-websocket response"))
            return
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
    response, _ = handshake.result.result()
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
    handshake.hand_over(protocol)
    protocol.set_nodelay(True)
    return connection


def _basic_auth(username: str, password: str) -> str:
    import base64

    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
