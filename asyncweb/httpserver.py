"""``HTTPServer``: listening sockets, TLS, limits, and the bridge from the protocol layer to
Tornado's ``HTTPServerConnectionDelegate`` interface (``Application`` is one).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from asyncweb import httputil
from asyncweb.httputil.body import BodySpool
from asyncweb.listening import _ListeningServer, is_valid_ip, ssl_options_to_context
from asyncweb.log import app_log
from asyncweb.protocol import H11ReferenceProtocol, HTTP1Params, HTTP1ServerProtocol

if TYPE_CHECKING:
    from asyncweb.protocol.http2 import HTTP2Params

RequestCallback = (
    httputil.HTTPServerConnectionDelegate | Callable[[httputil.HTTPServerRequest], Any]
)

_VERSIONS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}
_request_from_head = httputil.HTTPServerRequest._from_head
_new_tuple = tuple.__new__


class HTTPServer(_ListeningServer, httputil.HTTPServerConnectionDelegate):
    """A non-blocking HTTP/1.1 server.

    ``request_callback`` is an ``HTTPServerConnectionDelegate`` (such as an ``Application``)
    or a plain callable taking an ``HTTPServerRequest`` once its body has been read.
    """

    def __init__(
        self,
        request_callback: RequestCallback,
        no_keep_alive: bool = False,
        xheaders: bool = False,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        protocol: str | None = None,
        decompress_request: bool = False,
        chunk_size: int | None = None,
        max_header_size: int | None = None,
        idle_connection_timeout: float | None = None,
        body_timeout: float | None = None,
        max_body_size: int | None = None,
        max_buffer_size: int | None = None,
        trusted_downstream: Iterable[str] | None = None,
        header_timeout: float | None = None,
        pure_h11: bool = False,
        http_parser: str = "h11",
        max_connections_per_address: int | None = None,
        http2: bool | HTTP2Params = False,
    ) -> None:
        self.request_callback = request_callback
        self.xheaders = xheaders
        self.ssl_options = ssl_options
        self._ssl_context = ssl_options_to_context(ssl_options) if ssl_options is not None else None
        self.protocol = protocol
        self.trusted_downstream = set(trusted_downstream or ())
        defaults = HTTP1Params()
        if max_body_size is None and max_buffer_size is not None:
            max_body_size = max_buffer_size
        self.params = HTTP1Params(
            max_header_size=max_header_size or defaults.max_header_size,
            max_body_size=max_body_size if max_body_size is not None else defaults.max_body_size,
            idle_connection_timeout=(
                idle_connection_timeout
                if idle_connection_timeout is not None
                else defaults.idle_connection_timeout
            ),
            header_timeout=header_timeout
            if header_timeout is not None
            else defaults.header_timeout,
            body_timeout=body_timeout,
            no_keep_alive=no_keep_alive,
            decompress=decompress_request,
            pure_h11=pure_h11,
            http_parser=http_parser,
            max_connections_per_address=max_connections_per_address,
        )
        self._protocol_class: Callable[..., HTTP1ServerProtocol] = (
            H11ReferenceProtocol if pure_h11 else HTTP1ServerProtocol
        )
        if http2:
            # HTTP/2 by ALPN (h2 preferred) or the h2c preface; HTTP/1 on the same port.
            from asyncweb.protocol.h2_select import HTTPVersionSelector
            from asyncweb.protocol.http2 import HTTP2Params

            h2_params = http2 if isinstance(http2, HTTP2Params) else HTTP2Params()
            # The selector has the part of HTTP1ServerProtocol the server uses (transport,
            # close_when_idle) and hands the connection to one of the two protocols.
            self._protocol_class = cast(
                Callable[..., HTTP1ServerProtocol],
                functools.partial(HTTPVersionSelector, self._protocol_class, h2_params),
            )
            if self._ssl_context is not None:
                self._ssl_context.set_alpn_protocols(["h2", "http/1.1"])
        self._connections: set[HTTP1ServerProtocol] = set()
        self._init_listening()
        self._all_closed: asyncio.Future[None] | None = None
        self._is_delegate = hasattr(request_callback, "start_request")
        # A Router that starts requests the base way (Application is one) is routed by the
        # request adapter itself, without a _RoutingDelegate in between (see _start_request).
        # asyncweb.routing is a layer above this one: Router names its start_request itself.
        self._router_start_request = getattr(type(request_callback), "_routing_start_request", None)

    # -- sockets -------------------------------------------------------------------------------

    def start(self, num_processes: int | None = 1, max_restarts: int | None = None) -> None:
        """Serve on the sockets from :meth:`bind`.

        With ``num_processes`` other than 1, first fork that many processes (``None`` or
        <= 0: one per CPU) with ``prefork.fork_processes``; each serves the shared sockets
        on its own loop. Call it before any loop has been created in this process.
        """
        if num_processes != 1:
            from asyncweb import prefork

            prefork.fork_processes(num_processes, max_restarts)
        self._start_pending()

    def stop(self) -> None:
        """Stop accepting connections; open ones carry on (see :meth:`close_all_connections`)."""
        self._stop_listening()

    async def close_all_connections(self) -> None:
        """Let in-flight requests finish, close idle keep-alive connections, wait until all are
        closed. Call :meth:`stop` first so no new ones arrive."""
        if not self._connections:
            return
        loop = asyncio.get_running_loop()
        if self._all_closed is None or self._all_closed.done():
            self._all_closed = loop.create_future()
        waiter = self._all_closed
        for conn in list(self._connections):
            conn.close_when_idle()
        if self._connections:
            await waiter

    def _abort_connections(self) -> None:
        """Cut every open connection now (after a graceful shutdown ran out of time)."""
        for conn in list(self._connections):
            if conn.transport is not None:
                conn.transport.abort()

    # -- connections -------------------------------------------------------------------------

    def _make_protocol(self) -> HTTP1ServerProtocol:
        conn = self._protocol_class(self._start_request, self.params, on_closed=self._closed)
        self._connections.add(conn)
        return conn

    def _closed(self, conn: HTTP1ServerProtocol) -> None:
        self._connections.discard(conn)
        if self._is_delegate:
            self.request_callback.on_close(conn)  # type: ignore[union-attr]
        if not self._connections and self._all_closed is not None and not self._all_closed.done():
            self._all_closed.set_result(None)

    def _start_request(self, conn: HTTP1ServerProtocol) -> _RequestAdapter:
        context = conn.context
        if context is None:
            context = conn.context = _HTTPRequestContext(
                conn.transport,
                self._ssl_context is not None,
                self.protocol,
                self.trusted_downstream,
            )
        xheaders_context = context if self.xheaders else None
        callback = self.request_callback
        delegate: httputil.HTTPMessageDelegate
        if self._is_delegate:
            routing = self._router_start_request
            if routing is not None and type(callback).start_request is routing:  # type: ignore
                return _RequestAdapter(None, xheaders_context, callback, conn)
            delegate = callback.start_request(conn, conn)  # type: ignore
        else:
            delegate = _CallableAdapter(callback, conn)  # type: ignore[arg-type]
        return _RequestAdapter(delegate, xheaders_context, None, conn)

    # HTTPServerConnectionDelegate, so an HTTPServer can be nested as a router target.
    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        if self._is_delegate:
            return self.request_callback.start_request(server_conn, request_conn)  # type: ignore
        return _CallableAdapter(self.request_callback, request_conn)  # type: ignore[arg-type]

    def on_close(self, server_conn: object) -> None:
        pass


# Tornado's old name for the request class, still importable from tornado.httpserver.
HTTPRequest = httputil.HTTPServerRequest


class _HTTPRequestContext:
    """What a request knows of its connection: peer address, IP and scheme (xheaders may
    override the last two for the duration of one request)."""

    def __init__(
        self,
        transport: asyncio.BaseTransport | None,
        tls: bool,
        protocol: str | None,
        trusted_downstream: set[str],
    ) -> None:
        address = transport.get_extra_info("peername") if transport is not None else None
        self.address = address
        if isinstance(address, tuple) and address:
            self.remote_ip: str = address[0]
        else:
            # Unix sockets have no IP; any valid address keeps code that parses it working.
            self.remote_ip = "0.0.0.0"
        if protocol:
            self.protocol = protocol
        else:
            self.protocol = "https" if tls else "http"
        self._orig_remote_ip = self.remote_ip
        self._orig_protocol = self.protocol
        self.trusted_downstream = trusted_downstream

    def __str__(self) -> str:
        if isinstance(self.address, tuple):
            return str(self.address[0])
        return str(self.address)

    def apply_xheaders(self, headers: httputil.HTTPHeaders) -> None:
        forwarded = headers.get("X-Forwarded-For", "")
        ip = self.remote_ip
        # The last hop not in trusted_downstream is the one that connected to our proxy.
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            ip = hop
            if hop not in self.trusted_downstream:
                break
        ip = headers.get("X-Real-Ip", ip).strip()
        if is_valid_ip(ip):
            self.remote_ip = ip
        scheme = headers.get("X-Scheme") or headers.get("X-Forwarded-Proto") or ""
        scheme = scheme.split(",")[-1].strip().lower()
        if scheme in ("http", "https"):
            self.protocol = scheme

    def unapply_xheaders(self) -> None:
        self.remote_ip = self._orig_remote_ip
        self.protocol = self._orig_protocol


class _RequestAdapter:
    """Protocol-layer callbacks (bytes) to a Tornado ``HTTPMessageDelegate`` (str, HTTPHeaders).

    With a ``router`` (one whose ``start_request`` is the base's), the adapter does what that
    method's ``_RoutingDelegate`` would: builds the request, asks the router for its delegate
    and talks to that one directly.
    """

    __slots__ = ("connection", "context", "delegate", "router")

    def __init__(
        self,
        delegate: httputil.HTTPMessageDelegate | None,
        xheaders_context: _HTTPRequestContext | None,
        router: Any,  # an asyncweb.routing.Router, or None
        connection: Any,  # the protocol's connection: an HTTPConnection in all but type
    ) -> None:
        self.delegate = delegate
        self.context = xheaders_context
        self.router = router
        self.connection = connection

    def head_received(
        self, method: bytes, target: bytes, http_version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Awaitable[None] | None:
        version = _VERSIONS.get(http_version) or "HTTP/" + http_version.decode("latin-1")
        # NamedTuple's generated __new__ is Python code; tuple.__new__ builds the same object.
        start_line = _new_tuple(
            httputil.RequestStartLine,
            (method.decode("latin-1"), target.decode("latin-1"), version),
        )
        parsed = httputil.HTTPHeaders.from_raw(headers)
        if self.context is not None:
            self.context.apply_xheaders(parsed)
        router = self.router
        if router is None:
            return self.delegate.headers_received(start_line, parsed)  # type: ignore[union-attr]
        connection = self.connection
        request = _request_from_head(connection, start_line, parsed)
        delegate: httputil.HTTPMessageDelegate | None = router.find_handler(request)
        if delegate is None:
            delegate = _no_route(connection, start_line)
        self.delegate = delegate
        if type(delegate).headers_received is _IGNORES_HEAD:
            return None  # handler delegates start on finish(): skip the no-op call
        return delegate.headers_received(start_line, parsed)

    def body_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)  # type: ignore[union-attr]

    def message_done(self) -> None:
        try:
            self.delegate.finish()  # type: ignore[union-attr]
        finally:
            if self.context is not None:
                self.context.unapply_xheaders()

    def connection_lost(self) -> None:
        if self.context is not None:
            self.context.unapply_xheaders()
        # None when the connection went before the head did (a router not asked yet).
        if self.delegate is not None:
            self.delegate.on_connection_close()


_IGNORES_HEAD = httputil.HTTPMessageDelegate.headers_received


def _no_route(
    connection: httputil.HTTPConnection, start_line: httputil.RequestStartLine
) -> httputil.HTTPMessageDelegate:
    app_log.debug("No route for %s %s", start_line.method, start_line.path)
    return _DefaultMessageDelegate(connection)


class _DefaultMessageDelegate(httputil.HTTPMessageDelegate):
    """Answers 404 when no rule matched (a bare router has no error handler class)."""

    def __init__(self, connection: httputil.HTTPConnection) -> None:
        self.connection = connection

    def finish(self) -> None:
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 404, "Not Found"),
            httputil.HTTPHeaders({"Content-Length": "0"}),
        )
        self.connection.finish()


class _CallableAdapter(httputil.HTTPMessageDelegate):
    """Collects a whole request for a plain ``callback(request)`` request handler (the server's
    ``request_callback``, or a router's callable target)."""

    def __init__(
        self,
        callback: Callable[[httputil.HTTPServerRequest], Any],
        request_conn: httputil.HTTPConnection,
    ) -> None:
        self.callback = callback
        self.connection = request_conn
        self.request: httputil.HTTPServerRequest | None = None
        self._chunks = BodySpool()

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.request = httputil.HTTPServerRequest(
            connection=self.connection, start_line=start_line, headers=headers
        )
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self._chunks.append(chunk)
        return None

    def finish(self) -> None:
        assert self.request is not None
        self.request.body = self._chunks.getvalue()
        self.request._parse_body()
        result = self.callback(self.request)
        if isinstance(result, Awaitable):
            # The loop keeps only weak references to tasks: hold this one until it is done.
            task = asyncio.ensure_future(result)
            _callback_tasks.add(task)
            task.add_done_callback(_callback_task_done)

    def on_connection_close(self) -> None:
        self._chunks.close()


_callback_tasks: set[asyncio.Future[Any]] = set()


def _callback_task_done(task: asyncio.Future[Any]) -> None:
    _callback_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        app_log.error("Uncaught exception in request callback", exc_info=task.exception())
