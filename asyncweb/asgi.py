"""ASGI both ways (Tornado has neither).

:class:`ASGIAdapter` makes an asyncweb ``Application`` an ASGI application, so any ASGI server
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

:class:`ASGIContainer` goes the other way: an ASGI application (Starlette, FastAPI, Django's
ASGI handler) mounted inside an asyncweb ``Application`` as a rule target::

    starlette_app = Starlette(routes=[...])
    container = ASGIContainer(starlette_app, root_path="/api")
    app = Application([(r"/api/.*", container), (r"/", MainHandler)])

The ASGI app sees the full path in ``path`` and the mount point in ``root_path`` (ASGI 2.x /
Starlette >= 0.33 semantics). Request bodies are streamed to ``receive()`` with back-pressure,
WebSocket upgrades are answered by asyncweb's own WebSocket protocol, and the lifespan protocol
runs before the first request (``await container.startup()`` to run it earlier, and
``await container.shutdown()`` when the server stops).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from asyncweb import httputil
from asyncweb.httputil import HTTPHeaders, HTTPOutputError, RequestStartLine, ResponseStartLine
from asyncweb.protocol.http1 import StreamClosedError

__all__ = ["ASGIAdapter", "ASGIContainer"]

app_log = logging.getLogger("asyncweb.application")
gen_log = logging.getLogger("asyncweb.general")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
_DEFAULT_MAX_BODY_SIZE = 100 * 1024 * 1024
_UNSAFE = ("\r", "\n", "\0")
# The Server header RequestHandler sets by default (one the application set stays).
_OUR_SERVER = "AsyncwebServer/"
_ASGI_VERSIONS = {"HTTP/1.0": "1.0", "HTTP/1.1": "1.1", "HTTP/2.0": "2"}


def _done_future() -> asyncio.Future[None]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def _maybe_await(value: Any) -> None:
    if value is not None and inspect.isawaitable(value):
        await value


# ---------------------------------------------------------------------------------------------
# An asyncweb Application served by an ASGI server
# ---------------------------------------------------------------------------------------------


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
            gen_log.info("refused WebSocket handshake: %s", refusal[1])
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


# ---------------------------------------------------------------------------------------------
# An ASGI application mounted inside asyncweb
# ---------------------------------------------------------------------------------------------


class ASGIContainer(httputil.HTTPServerConnectionDelegate):
    """An ASGI application as a target in asyncweb's routing (see the module docstring).

    ``root_path`` is the mount point reported in the scope; ``lifespan`` False skips the
    lifespan protocol; ``max_message_size`` limits WebSocket messages.
    """

    def __init__(
        self,
        app: ASGIApp,
        root_path: str = "",
        lifespan: bool = True,
        max_message_size: int | None = None,
    ) -> None:
        self.app = app
        self.root_path = root_path.rstrip("/")
        self.lifespan = lifespan
        self.max_message_size = max_message_size
        self.state: dict[str, Any] = {}
        self._startup_lock: asyncio.Lock | None = None
        self._started = False
        self._lifespan_task: asyncio.Task[None] | None = None
        self._lifespan_events: asyncio.Queue[Message] | None = None
        self._lifespan_replies: asyncio.Queue[Message] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return _ContainerRequest(self, request_conn)

    def on_close(self, server_conn: object) -> None:
        pass

    # Lifespan

    async def startup(self) -> None:
        """Run the app's lifespan startup (once). An app that does not speak the lifespan
        protocol (it raises or returns) is served without it, as uvicorn's "auto" does."""
        if self._started or not self.lifespan:
            return
        if self._startup_lock is None:
            self._startup_lock = asyncio.Lock()
        async with self._startup_lock:
            if self._started:
                return
            events: asyncio.Queue[Message] = asyncio.Queue()
            replies: asyncio.Queue[Message] = asyncio.Queue()
            self._lifespan_events, self._lifespan_replies = events, replies
            scope = {"type": "lifespan", "asgi": dict(_ASGI_VERSION), "state": self.state}

            async def send(message: Message) -> None:
                await replies.put(message)

            self._lifespan_task = asyncio.ensure_future(self._run_lifespan(scope, events.get, send))
            await events.put({"type": "lifespan.startup"})
            reply = await replies.get()
            self._started = True
            if reply["type"] == "lifespan.startup.failed":
                raise RuntimeError(f"ASGI lifespan startup failed: {reply.get('message', '')}")

    async def _run_lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            gen_log.debug("ASGI app does not support lifespan", exc_info=True)
        # Unblock whoever waits for a reply the app will never send.
        assert self._lifespan_replies is not None
        await self._lifespan_replies.put({"type": "lifespan.unsupported"})

    async def shutdown(self) -> None:
        """Run the app's lifespan shutdown (if startup ran) and wait for it."""
        task = self._lifespan_task
        if task is None:
            return
        self._lifespan_task = None
        assert self._lifespan_events is not None and self._lifespan_replies is not None
        if not task.done():
            await self._lifespan_events.put({"type": "lifespan.shutdown"})
            reply = await self._lifespan_replies.get()
            if reply["type"] == "lifespan.shutdown.failed":
                app_log.error("ASGI lifespan shutdown failed: %s", reply.get("message", ""))
        with contextlib.suppress(Exception):
            await task
        self._started = False

    # Scopes

    def base_scope(
        self, kind: str, start_line: RequestStartLine, headers: HTTPHeaders, context: Any
    ) -> dict[str, Any]:
        path, _, query = start_line.path.partition("?")
        tls = getattr(context, "protocol", "http") == "https"
        address = getattr(context, "address", None)
        client = tuple(address[:2]) if isinstance(address, tuple) else None
        host, port = httputil.split_host_and_port(headers.get("Host", "127.0.0.1"))
        scheme = ("wss" if tls else "ws") if kind == "websocket" else ("https" if tls else "http")
        scope: dict[str, Any] = {
            "type": kind,
            "asgi": dict(_ASGI_VERSION),
            # The ASGI spec names HTTP/2 "2".
            "http_version": _ASGI_VERSIONS.get(start_line.version, "1.1"),
            "scheme": scheme,
            "path": urllib.parse.unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": self.root_path,
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.get_all()
            ],
            "client": client,
            "server": (host, port or (443 if tls else 80)),
            "state": dict(self.state),
        }
        if kind == "http":
            scope["method"] = start_line.method
        return scope


class _ContainerRequest(httputil.HTTPMessageDelegate):
    """One request handed to a mounted ASGI app: the body streams into ``receive()``."""

    def __init__(self, container: ASGIContainer, request_conn: httputil.HTTPConnection) -> None:
        self.container = container
        self.conn = request_conn
        self.loop = asyncio.get_running_loop()
        self.chunks: collections.deque[tuple[bytes, asyncio.Future[None]]] = collections.deque()
        self.body_done = False
        self.body_sent = False
        self.disconnected = False
        self.wakeup: asyncio.Future[None] | None = None
        self.websocket = False
        self.start_line: RequestStartLine | None = None
        self.headers: HTTPHeaders | None = None
        self.response_started = False
        self.response_done = False
        self.status = 200
        self.response_headers: list[tuple[bytes, bytes]] | None = []

    # HTTPMessageDelegate

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        self.start_line = start_line
        self.headers = headers
        self.websocket = (
            start_line.method == "GET" and headers.get("Upgrade", "").strip().lower() == "websocket"
        )
        if not self.websocket:
            self._spawn(self._run_http())
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        future: asyncio.Future[None] = self.loop.create_future()
        self.chunks.append((chunk, future))
        self._wake()
        return future  # the protocol reads on once the app took the chunk

    def finish(self) -> None:
        self.body_done = True
        if self.websocket:
            self._spawn(self._run_websocket())
        self._wake()

    def on_connection_close(self) -> None:
        self.disconnected = True
        for _, future in self.chunks:
            if not future.done():
                future.set_result(None)
        self.chunks.clear()
        self._wake()

    # Plumbing

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.container._tasks.add(task)
        task.add_done_callback(self.container._tasks.discard)

    def _wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    async def _wait(self) -> None:
        self.wakeup = self.loop.create_future()
        try:
            await self.wakeup
        finally:
            self.wakeup = None

    def _close_callback(self) -> None:
        self.on_connection_close()

    # HTTP

    async def _run_http(self) -> None:
        assert self.start_line is not None and self.headers is not None
        setter = getattr(self.conn, "set_close_callback", None)
        if setter is not None:
            setter(self._close_callback)
        context = getattr(self.conn, "context", None)
        try:
            await self.container.startup()
            scope = self.container.base_scope("http", self.start_line, self.headers, context)
            await self.container.app(scope, self._receive_http, self._send_http)
        except Exception:
            app_log.error("Uncaught exception in ASGI application", exc_info=True)
            if not self.response_started and not self.disconnected:
                self._error_response()
            elif not self.response_done:
                self._close()
            return
        if not self.response_done and not self.disconnected:
            if self.response_started:
                app_log.error("ASGI application returned before finishing its response")
                self._close()
            else:
                app_log.error("ASGI application returned without a response")
                self._error_response()

    async def _receive_http(self) -> Message:
        while True:
            if self.disconnected or self.response_done:
                if self.response_done and not self.disconnected:
                    # Nothing more will come; "disconnect" only once the connection goes.
                    await self._wait()
                    continue
                return {"type": "http.disconnect"}
            if self.chunks:
                chunk, future = self.chunks.popleft()
                if not future.done():
                    future.set_result(None)
                return {"type": "http.request", "body": chunk, "more_body": True}
            if self.body_done and not self.body_sent:
                self.body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._wait()

    async def _send_http(self, message: Message) -> None:
        kind = message["type"]
        if self.disconnected:
            return
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("http.response.start sent twice")
            self.response_started = True
            self.status = int(message["status"])
            self.response_headers = list(message.get("headers", []))
        elif kind == "http.response.body":
            if not self.response_started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.response_done:
                raise RuntimeError("response already finished")
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if self.response_headers is not None:
                headers = HTTPHeaders()
                for name, value in self.response_headers:
                    headers.add(name.decode("latin-1"), value.decode("latin-1"))
                self.response_headers = None
                reason = httputil.responses.get(self.status, "Unknown")
                start = ResponseStartLine("HTTP/1.1", self.status, reason)
                written = self.conn.write_headers(start, headers, body or None)
            else:
                written = self.conn.write(body) if body else _done_future()
            if not more:
                self.response_done = True
                self.conn.finish()
                self._wake()
            with contextlib.suppress(Exception):
                await written
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an HTTP request")

    def _error_response(self) -> None:
        body = b"Internal Server Error\n"
        self.response_done = True
        with contextlib.suppress(Exception):
            self.conn.write_headers(
                ResponseStartLine("HTTP/1.1", 500, "Internal Server Error"),
                HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))}),
                body,
            )
            self.conn.finish()

    def _close(self) -> None:
        close = getattr(self.conn, "close", None)
        if close is not None:
            close()

    # WebSocket

    async def _run_websocket(self) -> None:
        from asyncweb.protocol.websocket import (
            WebSocketParams,
            WebSocketProtocol,
            accept_token,
            valid_key,
        )

        assert self.start_line is not None and self.headers is not None
        headers = self.headers
        context = getattr(self.conn, "context", None)
        bridge = _WebSocketBridge()
        state: dict[str, Any] = {"accepted": False, "closed": False, "protocol": None}

        async def receive() -> Message:
            if not state["accepted"] and not bridge.connect_sent:
                bridge.connect_sent = True
                return {"type": "websocket.connect"}
            return await bridge.get()

        async def send(message: Message) -> None:
            kind = message["type"]
            protocol: WebSocketProtocol | None = state["protocol"]
            if kind == "websocket.accept":
                if state["accepted"] or state["closed"]:
                    raise RuntimeError("websocket.accept after the handshake was answered")
                key = headers.get("Sec-WebSocket-Key")
                if not valid_key(key) or headers.get("Sec-WebSocket-Version") != "13":
                    state["closed"] = True
                    self._plain_response(400, b"Bad WebSocket handshake\n")
                    bridge.put({"type": "websocket.disconnect", "code": 1006})
                    return
                assert key is not None
                response = HTTPHeaders(
                    {
                        "Upgrade": "websocket",
                        "Connection": "Upgrade",
                        "Sec-WebSocket-Accept": accept_token(key.strip()),
                    }
                )
                if message.get("subprotocol"):
                    response["Sec-WebSocket-Protocol"] = message["subprotocol"]
                for name, value in message.get("headers", []):
                    response.add(name.decode("latin-1"), value.decode("latin-1"))
                params = WebSocketParams()
                if self.container.max_message_size is not None:
                    params.max_message_size = self.container.max_message_size
                protocol = WebSocketProtocol(bridge, params)
                state["protocol"] = protocol
                state["accepted"] = True
                self.conn.write_headers(
                    ResponseStartLine("HTTP/1.1", 101, "Switching Protocols"), response
                )
                self.conn.finish()
                cast(Any, self.conn).switch_protocol(protocol)
            elif kind == "websocket.send":
                if protocol is None or protocol.is_closing:
                    return  # the peer is gone; the app learns it from receive()
                text = message.get("text")
                await protocol.send_message(text if text is not None else message["bytes"])
            elif kind == "websocket.close":
                if protocol is None:
                    if not state["closed"]:
                        state["closed"] = True
                        self._plain_response(403, b"WebSocket connection refused\n")
                        bridge.put({"type": "websocket.disconnect", "code": 1006})
                    return
                protocol.close(int(message.get("code", 1000)), message.get("reason") or None)
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} on a WebSocket")

        try:
            await self.container.startup()
            scope = self.container.base_scope("websocket", self.start_line, headers, context)
            offered = headers.get("Sec-WebSocket-Protocol", "")
            scope["subprotocols"] = [p.strip() for p in offered.split(",") if p.strip()]
            await self.container.app(scope, receive, send)
        except Exception:
            app_log.error("Uncaught exception in ASGI WebSocket application", exc_info=True)
            bridge.release_all()
            if state["protocol"] is not None:
                state["protocol"].close(1011, "internal error")
            elif not state["closed"]:
                state["closed"] = True
                self._plain_response(500, b"Internal Server Error\n")
            return
        protocol = state["protocol"]
        bridge.release_all()  # unread messages must not hold up the closing handshake
        if protocol is not None:
            protocol.close(1000)  # the app returned: end the conversation politely
        elif not state["closed"]:
            self._plain_response(403, b"WebSocket connection refused\n")

    def _plain_response(self, code: int, body: bytes) -> None:
        with contextlib.suppress(Exception):
            self.conn.write_headers(
                ResponseStartLine("HTTP/1.1", code, httputil.responses.get(code, "Unknown")),
                HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))}),
                body,
            )
            self.conn.finish()


class _WebSocketBridge:
    """A ``MessageReceiver`` for asyncweb's WebSocket protocol that queues ASGI messages
    for the app's ``receive()``; each message is held back until the app takes it."""

    def __init__(self) -> None:
        self.connect_sent = False
        self._loop = asyncio.get_running_loop()
        self._queue: collections.deque[tuple[Message, asyncio.Future[None] | None]] = (
            collections.deque()
        )
        self._waiter: asyncio.Future[None] | None = None

    def put(self, message: Message, future: asyncio.Future[None] | None = None) -> None:
        self._queue.append((message, future))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Message:
        while not self._queue:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        message, future = self._queue.popleft()
        if future is not None and not future.done():
            future.set_result(None)
        return message

    def release_all(self) -> None:
        for _, future in self._queue:
            if future is not None and not future.done():
                future.set_result(None)

    # MessageReceiver

    def message_received(self, message: str | bytes) -> Awaitable[None] | None:
        key = "text" if isinstance(message, str) else "bytes"
        future: asyncio.Future[None] = self._loop.create_future()
        self.put({"type": "websocket.receive", key: message}, future)
        return future  # back-pressure: the next frame waits until the app took this one

    def ping_received(self, data: bytes) -> None:
        pass

    def pong_received(self, data: bytes) -> None:
        pass

    def connection_closed(self, code: int | None, reason: str | None) -> None:
        self.put({"type": "websocket.disconnect", "code": code or 1005, "reason": reason or ""})
        self.release_all()
