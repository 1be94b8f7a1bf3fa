""":class:`ASGIContainer`: an ASGI application (Starlette, FastAPI, Django's
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
import urllib.parse
from collections.abc import Awaitable
from typing import Any, cast

from asyncweb import httputil
from asyncweb.asgi._common import (
    _ASGI_VERSION,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    _done_future,
    app_log,
    gen_log,
)
from asyncweb.httputil import HTTPHeaders, RequestStartLine, ResponseStartLine

_ASGI_VERSIONS = {"HTTP/1.0": "1.0", "HTTP/1.1": "1.1", "HTTP/2.0": "2"}


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

    def message_failed(self, error: BaseException) -> None:
        gen_log.error("uncaught exception delivering a WebSocket message", exc_info=error)

    def ping_received(self, data: bytes) -> None:
        pass

    def pong_received(self, data: bytes) -> None:
        pass

    def connection_closed(self, code: int | None, reason: str | None) -> None:
        self.put({"type": "websocket.disconnect", "code": code or 1005, "reason": reason or ""})
        self.release_all()
