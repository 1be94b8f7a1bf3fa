""":class:`ASGIAdapter` makes an asyncweb ``Application`` an ASGI application, so any ASGI server
(uvicorn, hypercorn, granian, daphne) can serve it::

    app = Application([(r"/", MainHandler), (r"/ws", ChatSocket)])
    asgi_app = ASGIAdapter(app)          # uvicorn mymodule:asgi_app

Requests go through the application's normal routing and handlers; streamed responses
(``flush()``) become ``http.response.body`` messages with ``more_body``, sent one at a time so
the server's flow control reaches ``await self.flush()``. ``WebSocketHandler``\\ s run over the
server's ``websocket.*`` messages (``prepare()`` guards the handshake; ``get()`` is not called;
pings and compression are the server's business there).
Lifespan: the application's own start-up and shut-down hooks (``Application(on_startup=...)``,
``add_startup_hook``) and the adapter's ``on_startup``/``on_shutdown`` callables (plain or
async) run at ``lifespan.startup``/``lifespan.shutdown``. The ASGI server names itself and dates
its responses, so the handler's default ``Server`` and ``Date`` headers are left out, and it
writes the access log, so asyncweb's access lines are off (``access_log=True`` keeps them, e.g.
under hypercorn, which logs no requests unless told to).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, cast

from asyncweb import httputil
from asyncweb.asgi._common import (
    Message,
    Receive,
    Scope,
    Send,
    _done_future,
    _maybe_await,
    app_log,
    gen_log,
)
from asyncweb.httputil import HTTPHeaders, HTTPOutputError, RequestStartLine, ResponseStartLine
from asyncweb.protocol.http1 import StreamClosedError

_DEFAULT_MAX_BODY_SIZE = 100 * 1024 * 1024
_UNSAFE = ("\r", "\n", "\0")
# The Server header RequestHandler sets by default (one the application set stays).
_OUR_SERVER = "AsyncwebServer/"


class _ASGIContext:
    """What a request knows of its connection, from the ASGI scope."""

    def __init__(self, scope: Scope) -> None:
        client = scope.get("client")
        self.address = tuple(client) if client else None
        self.remote_ip: str = str(client[0]) if client else "0.0.0.0"
        scheme = scope.get("scheme", "http")
        self.protocol = {"ws": "http", "wss": "https"}.get(scheme, scheme)

    def __str__(self) -> str:
        return self.remote_ip


class _OrderedSender:
    """Sends ASGI messages one ``await send`` at a time, in order, from one task; the future
    ``_enqueue`` returns resolves once the message went (or was dropped): flow control."""

    def _init_sender(self, send: Send) -> None:
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque[tuple[Message, asyncio.Future[None]]] = collections.deque()
        self._pump: asyncio.Task[None] | None = None

    def _dropping(self) -> bool:
        return False

    def _after_send(self, message: Message, error: Exception | None) -> None:
        """Called once per message, after its future resolved; ``error`` is what send raised."""

    def _enqueue(self, message: Message) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        self._pending.append((message, future))
        if self._pump is None:
            self._pump = self._loop.create_task(self._run_pump())
        return future

    async def _run_pump(self) -> None:
        while self._pending:
            message, future = self._pending.popleft()
            error = None
            if not self._dropping():
                try:
                    await self._send(message)
                except Exception as e:
                    error = e
            future.set_result(None)
            self._after_send(message, error)
        self._pump = None


class _ASGIResponseConnection(_OrderedSender, httputil.HTTPConnection):
    """The response side of a request that arrived through ASGI: ``write_headers``/``write``/
    ``finish`` become ``http.response.*`` messages, sent in order, one ``await send`` at a time
    (the futures returned resolve when the server took the message: flow control)."""

    # Read by Application.log_request: the ASGI server writes the access line itself.
    server_logs_requests = True

    def __init__(self, send: Send, context: _ASGIContext) -> None:
        self.context = context
        self._init_sender(send)
        self._close_callback: Callable[[], None] | None = None
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.max_body_size: int | None = None
        self.started = False
        self.finished = False
        self.aborted = False
        self.closed = False

    # HTTPConnection

    def write_headers(
        self,
        start_line: RequestStartLine | ResponseStartLine,
        headers: HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        assert isinstance(start_line, ResponseStartLine)
        if self.started:
            raise RuntimeError("response headers already written")
        if self.closed:
            return _done_future()
        raw: list[tuple[bytes, bytes]] = []
        for name, value in headers.get_all():
            if any(c in name or c in value for c in _UNSAFE) or not name:
                raise HTTPOutputError(f"unsafe response header {name!r}: {value!r}")
            lower = name.lower()
            if lower == "date" or (lower == "server" and value.startswith(_OUR_SERVER)):
                continue  # ASGI servers add their own; two of each would go out
            raw.append((lower.encode("latin-1"), value.encode("latin-1")))
        self.started = True
        future = self._enqueue(
            {"type": "http.response.start", "status": start_line.code, "headers": raw}
        )
        if chunk:
            future = self._enqueue({"type": "http.response.body", "body": chunk, "more_body": True})
        return future

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        if not self.started:
            raise RuntimeError("write() before write_headers()")
        if self.closed or not chunk:
            return _done_future()
        return self._enqueue({"type": "http.response.body", "body": chunk, "more_body": True})

    def finish(self) -> None:
        if self.finished or self.closed:
            return
        if not self.started:
            raise RuntimeError("finish() before write_headers()")
        self.finished = True
        self._enqueue({"type": "http.response.body", "body": b"", "more_body": False})

    # What the web layer also uses on a connection

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def set_max_body_size(self, max_body_size: int) -> None:
        self.max_body_size = max_body_size

    def set_body_timeout(self, timeout: float | None) -> None:
        pass  # the ASGI server owns timeouts

    def close(self) -> None:
        if not self.finished:
            self.aborted = True  # the server closes the connection when the app raises
        self._lost()

    # Internals

    def _dropping(self) -> bool:
        return self.closed

    def _after_send(self, message: Message, error: Exception | None) -> None:
        if error is not None:
            gen_log.debug("ASGI send failed: %r", error)
            self._lost()
            return
        final = message["type"] == "http.response.body" and not message["more_body"]
        if final and not self.done.done():  # done already when the connection had closed
            self.done.set_result(None)

    def _lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            try:
                callback()
            except Exception:
                app_log.error("Exception in connection close callback", exc_info=True)
        if not self.done.done():
            self.done.set_result(None)

    async def wait_sent(self) -> None:
        while self._pump is not None:
            await asyncio.shield(self._pump)


class _HandshakeConnection(_ASGIResponseConnection):
    """The connection of a WebSocket handshake under ASGI: an HTTP answer (from prepare())
    can't be sent on a websocket scope, so it is only noted, and becomes a refusal."""

    def __init__(self, context: _ASGIContext) -> None:
        async def nowhere(message: Message) -> None:
            pass

        super().__init__(nowhere, context)

    def _enqueue(self, message: Message) -> asyncio.Future[None]:
        return _done_future()


class _ASGIWebSocket(_OrderedSender):
    """A ``WebSocketConnection`` (see :mod:`asyncweb.websocket`) carried by ASGI
    ``websocket.*`` messages."""

    def __init__(
        self, receive: Receive, send: Send, receiver: Any, subprotocol: str | None
    ) -> None:
        self._receive = receive
        self._init_sender(send)
        self._receiver = receiver
        self.selected_subprotocol = subprotocol
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._closing = False
        self._reader: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    @property
    def is_closing(self) -> bool:
        return self._closing or self.closed.done()

    def write_message(self, message: str | bytes) -> Awaitable[None]:
        from asyncweb.websocket import WebSocketClosedError

        if self.is_closing:
            raise WebSocketClosedError()
        key = "text" if isinstance(message, str) else "bytes"
        return self._enqueue({"type": "websocket.send", key: message})

    def ping(self, data: bytes) -> None:
        pass  # ASGI has no ping message: keepalive is the server's job

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.is_closing:
            return
        self._closing = True
        self._enqueue({"type": "websocket.close", "code": code or 1000, "reason": reason or ""})
        if self._reader is None:
            # Nobody reads the disconnect that will follow: report the close ourselves.
            self._loop.call_soon(self._closed_by_us, code or 1000, reason)

    def start_receiving(self) -> None:
        if self._reader is None and not self.closed.done():
            self._reader = self._loop.create_task(self._read())

    def set_nodelay(self, value: bool) -> None:
        pass

    def buffered_amount(self) -> int:
        return 0

    def _closed_by_us(self, code: int, reason: str | None) -> None:
        if not self.closed.done():
            self._finish(code, reason)

    def _finish(self, code: int | None, reason: str | None) -> None:
        self.close_code = code
        self.close_reason = reason
        if not self.closed.done():
            self.closed.set_result(None)
        try:
            self._receiver.connection_closed(code, reason)
        except Exception:
            app_log.error("Exception in WebSocket close handling", exc_info=True)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    text = message.get("text")
                    data: str | bytes = text if text is not None else message.get("bytes") or b""
                    await _maybe_await(self._receiver.message_received(data))
                elif kind == "websocket.disconnect":
                    self._finish(message.get("code", 1005), message.get("reason") or None)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            app_log.error("Error reading ASGI WebSocket messages", exc_info=True)
            self._finish(1011, None)

    def _after_send(self, message: Message, error: Exception | None) -> None:
        if error is not None:
            gen_log.debug("ASGI WebSocket send failed: %r", error)
            self._closing = True


class ASGIAdapter:
    """Serve an asyncweb ``Application`` (or any ``HTTPServerConnectionDelegate``) from an
    ASGI server. See the module docstring."""

    def __init__(
        self,
        application: httputil.HTTPServerConnectionDelegate,
        on_startup: list[Callable[[], Any]] | None = None,
        on_shutdown: list[Callable[[], Any]] | None = None,
        max_body_size: int | None = None,
        access_log: bool = False,
    ) -> None:
        self.application = application
        self.on_startup = list(on_startup or [])
        self.on_shutdown = list(on_shutdown or [])
        self.access_log = access_log
        settings = getattr(application, "settings", {})
        self.max_body_size = (
            max_body_size or settings.get("max_body_size") or _DEFAULT_MAX_BODY_SIZE
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            # The application's own hooks (Application.startup/shutdown) run first at
            # start-up and last at shut-down, around the adapter's.
            app_startup = getattr(self.application, "startup", None)
            app_shutdown = getattr(self.application, "shutdown", None)
            if message["type"] == "lifespan.startup":
                step = "startup"
                callbacks = [*([app_startup] if app_startup else []), *self.on_startup]
            elif message["type"] == "lifespan.shutdown":
                step = "shutdown"
                callbacks = [*self.on_shutdown, *([app_shutdown] if app_shutdown else [])]
            else:
                continue
            try:
                for callback in callbacks:
                    await _maybe_await(callback())
            except Exception as e:
                app_log.error("Error during ASGI %s", step, exc_info=True)
                await send({"type": f"lifespan.{step}.failed", "message": repr(e)})
                if step == "startup":
                    return
            else:
                await send({"type": f"lifespan.{step}.complete"})
            if step == "shutdown":
                return

    @staticmethod
    def _request_parts(scope: Scope) -> tuple[str, HTTPHeaders]:
        raw_path = scope.get("raw_path")
        if raw_path:
            path = raw_path.decode("latin-1")
        else:
            path = urllib.parse.quote(scope.get("root_path", "") + scope["path"])
        query = scope.get("query_string", b"")
        uri = path + ("?" + query.decode("latin-1") if query else "")
        headers = HTTPHeaders()
        for name, value in scope.get("headers", ()):
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        return uri, headers

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = _ASGIResponseConnection(send, _ASGIContext(scope))
        if self.access_log:
            conn.server_logs_requests = False
        uri, headers = self._request_parts(scope)
        version = "HTTP/" + scope.get("http_version", "1.1")
        delegate = self.application.start_request(None, conn)
        start_line = RequestStartLine(scope["method"], uri, version)
        await _maybe_await(delegate.headers_received(start_line, headers))
        received = 0
        while not conn.started:
            message = await receive()
            if message["type"] == "http.disconnect":
                conn._lost()
                delegate.on_connection_close()
                return
            body = message.get("body", b"")
            if body:
                received += len(body)
                if received > (conn.max_body_size or self.max_body_size):
                    await self._too_large(conn)
                    return
                await _maybe_await(delegate.data_received(body))
            if not message.get("more_body", False):
                delegate.finish()
                break
        if not conn.done.done():
            watcher = asyncio.ensure_future(self._wait_disconnect(receive))
            try:
                await asyncio.wait({conn.done, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                watcher.cancel()
            if not conn.done.done():
                conn._lost()  # the client left while a long-running handler was pending
        await conn.wait_sent()
        if conn.aborted:
            raise StreamClosedError()  # makes the server drop the connection mid-response

    @staticmethod
    async def _wait_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    @staticmethod
    async def _too_large(conn: _ASGIResponseConnection) -> None:
        if not conn.started:
            body = b"Request body too large\n"
            conn.write_headers(
                ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
                HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))}),
                body,
            )
            conn.finish()
        await conn.wait_sent()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        from asyncweb.web import HTTPError, _HandlerDelegate
        from asyncweb.websocket import WebSocketHandler

        message = await receive()
        if message["type"] != "websocket.connect":
            return
        uri, headers = self._request_parts(scope)
        # The ASGI server already validated the handshake; fill in what it may have dropped.
        headers.setdefault("Upgrade", "websocket")
        headers.setdefault("Connection", "Upgrade")
        headers.setdefault("Sec-WebSocket-Version", "13")
        headers.setdefault("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")
        conn = _HandshakeConnection(_ASGIContext(scope))
        request = httputil.HTTPServerRequest(
            method="GET", uri=uri, version="HTTP/1.1", headers=headers, connection=conn
        )
        router = cast(Any, self.application)
        delegate = router.find_handler(request)
        if not (
            isinstance(delegate, _HandlerDelegate)
            and issubclass(delegate.handler_class, WebSocketHandler)
        ):
            await send({"type": "websocket.close", "code": 1000})  # the server answers 403
            return
        handler = delegate.handler_class(
            delegate.application, request, **(delegate.handler_kwargs or {})
        )
        assert isinstance(handler, WebSocketHandler)
        open_args = [
            handler.decode_argument(arg) if arg is not None else None
            for arg in (delegate.path_args or ())
        ]
        open_kwargs = {
            name: handler.decode_argument(value, name) if value is not None else None
            for name, value in (delegate.path_kwargs or {}).items()
        }
        # prepare() runs as before get() under asyncweb's server (authentication, ...); if it
        # answered the request itself (an error, a redirect), the WebSocket is refused.
        try:
            await _maybe_await(handler.prepare())
        except Exception as e:
            if not isinstance(e, HTTPError):
                app_log.error("Uncaught exception in prepare() of %s", uri, exc_info=True)
            await send({"type": "websocket.close", "code": 1008})
            return
        if handler._finished or conn.started:
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = handler.websocket_refusal()
        if refusal is not None:
            gen_log.debug("refused WebSocket handshake: %s", refusal[1])
            await send({"type": "websocket.close", "code": 1008})
            return
        subprotocol, _ = handler.negotiate(offer_compression=False)
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        connection = _ASGIWebSocket(receive, send, handler.websocket_receiver(), subprotocol)
        handler.attach_websocket(connection, *open_args, **open_kwargs)
        try:
            await connection.closed
        finally:
            if connection._reader is not None:
                connection._reader.cancel()
            if connection._pump is not None:
                with contextlib.suppress(Exception):
                    await connection._pump
