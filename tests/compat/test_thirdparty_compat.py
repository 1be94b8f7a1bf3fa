"""The parts of Tornado's surface that real third-party software (Jupyter Server,
sockjs-tornado, terminado, ipykernel) reaches for, each against a real server over loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asyncweb import ioloop as ioloop_module
from asyncweb import web
from asyncweb.httpclient import AsyncHTTPClient, HTTPRequest
from asyncweb.httpserver import HTTPServer
from asyncweb.ioloop import IOLoop
from asyncweb.netutil import Resolver, bind_unix_socket
from asyncweb.simple_httpclient import SimpleAsyncHTTPClient
from asyncweb.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    websocket_connect,
)
from tests.support.servers import Fetch, Serve

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is part of the "speed" extra
    uvloop = None  # type: ignore[assignment]

# -- RequestHandler._unimplemented_method ---------------------------------------------------


def test_unimplemented_method_marks_the_methods_a_handler_leaves_out() -> None:
    class OnlyGet(web.RequestHandler):
        def get(self) -> None:
            self.write("ok")

    stub = web.RequestHandler._unimplemented_method
    # Jupyter's check: which of SUPPORTED_METHODS a handler really implements.
    implemented = [m for m in OnlyGet.SUPPORTED_METHODS if getattr(OnlyGet, m.lower()) is not stub]
    assert implemented == ["GET"]


async def test_unimplemented_method_answers_405(serve: Serve, fetch: Fetch) -> None:
    class OnlyGet(web.RequestHandler):
        def get(self) -> None:
            self.write("ok")

    url = await serve(web.Application([(r"/", OnlyGet)]))
    assert (await fetch(url + "/", method="POST", body=b"")).status == 405


# -- request.connection.stream -------------------------------------------------------------


async def test_request_connection_stream_is_stream_shaped(serve: Serve, fetch: Fetch) -> None:
    seen: dict[str, Any] = {}

    class Probe(web.RequestHandler):
        def get(self) -> None:
            stream = self.request.connection.stream  # type: ignore[union-attr]
            seen["closed"] = stream.closed()
            sock = stream.socket
            seen["family"] = sock.family
            seen["fileno"] = stream.fileno() == sock.fileno()
            stream.set_nodelay(True)
            seen["nodelay_on"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            stream.set_nodelay(False)
            seen["nodelay_off"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.write("ok")

    url = await serve(web.Application([(r"/", Probe)]))
    response = await fetch(url + "/")
    assert response.status == 200
    assert seen == {
        "closed": False,
        "family": socket.AF_INET,
        "fileno": True,
        "nodelay_on": 1,
        "nodelay_off": 0,
    }


async def test_request_connection_stream_reports_a_closed_connection(serve: Serve) -> None:
    gone = asyncio.get_running_loop().create_future()

    class Waits(web.RequestHandler):
        async def get(self) -> None:
            stream = self.request.connection.stream  # type: ignore[union-attr]
            assert not stream.closed()
            while not stream.closed():
                await asyncio.sleep(0.01)
            gone.set_result(stream.socket)

    url = await serve(web.Application([(r"/", Waits)]))
    port = int(url.rsplit(":", 1)[1])
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    assert await asyncio.wait_for(gone, 10) is None  # no socket once closed


# -- the WebSocket connection as Tornado code sees it ----------------------------------------


class _Probing(WebSocketHandler):
    """Records what Tornado code reads off ``ws_connection`` at each stage."""

    seen: dict[str, Any]
    closed: asyncio.Future[None]
    conn: Any

    def open(self) -> None:
        conn: Any = self.ws_connection
        self.conn = conn  # close() lets go of ws_connection, as Tornado's does
        # sockjs-tornado's open(): Nagle off through the connection's stream.
        conn.stream.set_nodelay(True)
        sock = conn.stream.socket
        self.seen["nodelay"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        self.seen["open"] = (
            conn.client_terminated,
            conn.server_terminated,
            conn.is_closing(),
            conn.stream.closed(),
        )

    def on_message(self, message: str | bytes) -> None:
        conn: Any = self.ws_connection
        if message == "close yourself":
            self.close(4001, "asked")
            self.seen["after_server_close"] = (
                conn.client_terminated,
                conn.server_terminated,
                conn.is_closing(),
                self.ws_connection,
            )
            # Like Tornado's: writing after close() raises.
            try:
                self.write_message("too late")
            except WebSocketClosedError:
                self.seen["write_after_close"] = "WebSocketClosedError"
        else:
            self.write_message(message)

    def on_close(self) -> None:
        conn: Any = self.conn
        self.seen["on_close"] = (conn.client_terminated, conn.server_terminated, conn.is_closing())
        self.closed.set_result(None)


def _probing_app() -> tuple[web.Application, dict[str, Any], asyncio.Future[None]]:
    seen: dict[str, Any] = {}
    closed = asyncio.get_running_loop().create_future()

    class Handler(_Probing):
        pass

    Handler.seen = seen
    Handler.closed = closed
    return web.Application([(r"/ws", Handler)]), seen, closed


async def test_ws_connection_terminated_flags_when_the_client_closes(serve: Serve) -> None:
    app, seen, closed = _probing_app()
    url = (await serve(app)).replace("http", "ws") + "/ws"
    client = await websocket_connect(url)
    client.write_message("ping")
    assert await client.read_message() == "ping"
    client.close(1000, "bye")
    await asyncio.wait_for(closed, 10)
    assert seen["nodelay"] == 1
    assert seen["open"] == (False, False, False, False)
    assert seen["on_close"] == (True, True, True)


async def test_ws_connection_terminated_flags_when_the_server_closes(serve: Serve) -> None:
    app, seen, closed = _probing_app()
    url = (await serve(app)).replace("http", "ws") + "/ws"
    client = await websocket_connect(url)
    client.write_message("close yourself")
    assert await client.read_message() is None
    await asyncio.wait_for(closed, 10)
    # Right after close(): our Close frame is out, the client's not yet in.
    assert seen["after_server_close"] == (False, True, True, None)
    assert seen["write_after_close"] == "WebSocketClosedError"
    assert client.close_code == 4001 and client.close_reason == "asked"


async def test_is_closing_reads_as_a_flag_and_calls_as_a_method(serve: Serve) -> None:
    seen: list[Any] = []
    closed = asyncio.get_running_loop().create_future()

    class Both(WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            conn: Any = self.ws_connection
            seen.append((bool(conn.is_closing), conn.is_closing(), repr(conn.is_closing)))
            conn.close()
            seen.append((bool(conn.is_closing), conn.is_closing(), repr(conn.is_closing)))
            closed.set_result(None)

    url = (await serve(web.Application([(r"/", Both)]))).replace("http", "ws") + "/"
    client = await websocket_connect(url)
    client.write_message("go")
    await asyncio.wait_for(closed, 10)
    assert seen == [(False, False, "False"), (True, True, "True")]
    assert await client.read_message() is None


async def test_write_message_calls_a_connections_is_closing_method(serve: Serve) -> None:
    # Jupyter's tests put their own object in ws_connection, with is_closing as a method.
    class TornadoStyle:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def is_closing(self) -> bool:
            return bool(self.inner.is_closing())

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    class Wrapped(WebSocketHandler):
        def open(self) -> None:
            self.ws_connection = TornadoStyle(self.ws_connection)  # type: ignore[assignment]

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message)

    url = (await serve(web.Application([(r"/", Wrapped)]))).replace("http", "ws") + "/"
    client = await websocket_connect(url)
    client.write_message("through the wrapper")
    assert await client.read_message() == "through the wrapper"
    client.close()


async def test_await_super_get_in_a_websocket_subclass(serve: Serve) -> None:
    # Jupyter's kernel WebSocket: an async get() that does its checks, then awaits the base.
    class Checked(WebSocketHandler):
        async def get(self, *args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(0)
            await super().get(*args, **kwargs)

        def open(self, name: str) -> None:
            self.write_message(f"hello {name}")

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message)

    url = (await serve(web.Application([(r"/ws/(\w+)", Checked)]))).replace("http", "ws")
    client = await websocket_connect(url + "/ws/kernel")
    assert await client.read_message() == "hello kernel"
    client.write_message("again")
    assert await client.read_message() == "again"
    client.close()


# -- the client connection: code, reason, on_message ------------------------------------------


class _Echo(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


async def test_client_connection_code_reason_and_on_message(serve: Serve) -> None:
    url = (await serve(web.Application([(r"/", _Echo)]))).replace("http", "ws") + "/"
    client = await websocket_connect(url)
    # pytest-jupyter's send_request: "websockets don't return a code".
    assert (client.code, client.reason) == (None, None)
    # Jupyter's tests feed a message in by hand: it queues like one from the server.
    client.on_message("injected")
    client.write_message("from the server")
    assert await client.read_message() == "injected"
    assert await client.read_message() == "from the server"
    client.close()


async def test_client_on_message_callback_gets_messages_then_none(serve: Serve) -> None:
    url = (await serve(web.Application([(r"/", _Echo)]))).replace("http", "ws") + "/"
    got: list[str | bytes | None] = []
    done = asyncio.get_running_loop().create_future()

    def on_message(message: str | bytes | None) -> None:
        got.append(message)
        if message is None:
            done.set_result(None)
        elif message == "two":
            client.close()

    client = await websocket_connect(url, on_message_callback=on_message)
    client.write_message("one")
    client.write_message("two")
    await asyncio.wait_for(done, 10)
    assert got == ["one", "two", None]


async def test_client_on_message_can_be_overridden(serve: Serve) -> None:
    url = (await serve(web.Application([(r"/", _Echo)]))).replace("http", "ws") + "/"
    client = await websocket_connect(url)
    got: list[Any] = []

    def on_message(message: str | bytes) -> None:
        got.append(message.upper() if isinstance(message, str) else message)
        return WebSocketClientConnection.on_message(client, message)  # type: ignore[return-value]

    client.on_message = on_message  # type: ignore[method-assign]
    client.write_message("shout")
    assert await client.read_message() == "shout"
    assert got == ["SHOUT"]
    client.close()


# -- resolvers: SimpleAsyncHTTPClient and websocket_connect ------------------------------------


class _UnixSocketResolver(Resolver):
    """Jupyter's way to talk HTTP over a Unix socket: every host names the socket's path."""

    def initialize(self, path: str) -> None:  # type: ignore[override]
        self.path = path
        self.asked: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.asked.append((host, port))
        return [(socket.AF_UNIX, self.path)]


class _Hello(web.RequestHandler):
    def get(self) -> None:
        self.write(f"hello over {self.request.host}")


async def _unix_server(tmp_path: Path, app: web.Application) -> tuple[HTTPServer, str]:
    path = str(tmp_path / "s.sock")
    server = HTTPServer(app)
    server.add_socket(bind_unix_socket(path))
    return server, path


async def test_simple_client_uses_its_resolver_for_a_unix_socket(tmp_path: Path) -> None:
    server, path = await _unix_server(tmp_path, web.Application([(r"/", _Hello), (r"/ws", _Echo)]))
    resolver = _UnixSocketResolver(path=path)
    client = SimpleAsyncHTTPClient(force_instance=True, resolver=resolver)
    try:
        response = await client.fetch(HTTPRequest("http://jupyter.invalid:8888/"))
        assert response.body == b"hello over jupyter.invalid:8888"
        assert resolver.asked == [("jupyter.invalid", 8888)]
        # The WebSocket client takes a resolver too.
        ws = await websocket_connect(
            HTTPRequest("ws://jupyter.invalid/ws"), resolver=_UnixSocketResolver(path=path)
        )
        ws.write_message("over unix")
        assert await ws.read_message() == "over unix"
        ws.close()
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


async def test_configured_resolver_reaches_new_clients(tmp_path: Path) -> None:
    # Jupyter's utils.fetch: AsyncHTTPClient.configure(None, resolver=...), then a new client.
    server, path = await _unix_server(tmp_path, web.Application([(r"/", _Hello)]))
    saved = AsyncHTTPClient._save_configuration()
    AsyncHTTPClient.configure(None, resolver=_UnixSocketResolver(path=path))
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch("http://localhost.invalid/")
        assert response.body == b"hello over localhost.invalid"
    finally:
        client.close()
        AsyncHTTPClient._restore_configuration(saved)
        server.stop()
        await server.close_all_connections()


async def test_resolver_addresses_are_tried_in_order(serve: Serve) -> None:
    url = await serve(web.Application([(r"/", _Hello)]))
    port = int(url.rsplit(":", 1)[1])
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
    dead_port = dead.getsockname()[1]

    class TwoAddresses(Resolver):
        async def resolve(self, host: str, port_: int, *args: Any, **kwargs: Any) -> Any:
            return [
                (socket.AF_INET, ("127.0.0.1", dead_port)),
                (socket.AF_INET, ("127.0.0.1", port)),
            ]

    client = SimpleAsyncHTTPClient(force_instance=True, resolver=TwoAddresses())
    try:
        response = await client.fetch(f"http://example.invalid:{port}/")
        assert response.body == f"hello over example.invalid:{port}".encode()
    finally:
        client.close()
        dead.close()


# -- IOLoop(make_current=...) and add_handler's blocking mode ----------------------------------


def _in_thread(body: Callable[[], Any]) -> Any:
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(body())
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    return result[0]


def test_ioloop_make_current_keyword() -> None:
    def body() -> tuple[bool, bool, bool]:
        first = IOLoop(make_current=False)
        not_current = IOLoop.current(instance=False) is not first
        second = IOLoop(make_current=True)
        current = IOLoop.current() is second
        # As ipykernel's threads do: a loop of its own, started in the thread.
        third = IOLoop(make_current=False, asyncio_loop=asyncio.SelectorEventLoop())
        third.add_callback(third.stop)
        third.start()
        started_current = IOLoop.current() is third
        for loop in (first, second, third):
            loop.close()
        return not_current, current, started_current

    assert _in_thread(body) == (True, True, True)


LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.SelectorEventLoop()


@pytest.mark.parametrize("kind", LOOPS)
def test_add_handler_keeps_the_fds_blocking_mode(kind: str) -> None:
    """terminado watches a pty for reading and writes to it with blocking writes."""

    def body() -> list[Any]:
        io_loop = IOLoop(_new_loop(kind))
        read_end, write_end = os.pipe()
        nonblocking_r, nonblocking_w = os.pipe()
        os.set_blocking(nonblocking_r, False)
        seen: list[Any] = []
        drained = bytearray()
        payload = b"x" * (1 << 18)  # several times a pipe's buffer

        def drain() -> None:
            while len(drained) < len(payload):
                drained.extend(os.read(read_end, 65536))

        async def main() -> None:
            io_loop.add_handler(write_end, lambda fd, events: None, IOLoop.READ)
            io_loop.add_handler(nonblocking_r, lambda fd, ev: seen.append(ev), IOLoop.READ)
            seen.append(("after add", os.get_blocking(write_end), os.get_blocking(nonblocking_r)))
            io_loop.update_handler(write_end, IOLoop.READ | IOLoop.ERROR)
            seen.append(("after update", os.get_blocking(write_end)))
            reader = threading.Thread(target=drain)
            reader.start()
            # A blocking write of more than the pipe holds: waits for the reader, no
            # BlockingIOError.
            written = await asyncio.to_thread(os.write, write_end, payload)
            reader.join(10)
            seen.append(("written", written, len(drained)))
            os.write(nonblocking_w, b"!")
            for _ in range(200):
                if IOLoop.READ in seen:
                    break
                await asyncio.sleep(0.01)
            io_loop.remove_handler(write_end)
            io_loop.remove_handler(nonblocking_r)

        try:
            io_loop.run_sync(main)
        finally:
            io_loop.close()
            for fd in (read_end, write_end, nonblocking_r, nonblocking_w):
                os.close(fd)
        return seen

    seen = _in_thread(body)
    assert seen[0] == ("after add", True, False)
    assert seen[1] == ("after update", True)
    assert seen[2] == ("written", 1 << 18, 1 << 18)
    assert IOLoop.READ in seen[3:]


def test_new_event_loop_default_is_still_used_by_ioloop() -> None:
    # make_current's default keeps IOLoop() from changing this thread's current loop.
    def body() -> bool:
        io_loop = IOLoop()
        try:
            return IOLoop.current(instance=False) is not io_loop
        finally:
            io_loop.close()

    assert _in_thread(body)
    assert ioloop_module.new_event_loop is not None


# -- templates see the builtins, as with exec() ---------------------------------------------


async def test_template_code_imports_and_the_error_page_uses_the_same_layout(
    serve: Serve, fetch: Fetch, tmp_path: Path
) -> None:
    (tmp_path / "layout.html").write_text(
        "<title>{% block title %}{% end %}</title>{% block body %}{% end %}"
        "<footer>(c) {{ datetime.date.today().year }}</footer>"
    )
    (tmp_path / "page.html").write_text(
        '{% extends "layout.html" %}{% block title %}page{% end %}'
        "{% block body %}{% import json %}{{ json.dumps({'a': 1}) }}"
        "{{ __import__('decimal').Decimal('1.5') * 2 }}{% end %}"
    )
    (tmp_path / "error.html").write_text(
        '{% extends "layout.html" %}{% block title %}{{ status_code }}{% end %}'
        "{% block body %}sorry{% end %}"
    )

    class Page(web.RequestHandler):
        def get(self) -> None:
            if self.get_argument("fail", None):
                raise web.HTTPError(404)
            self.render("page.html")

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.render("error.html", status_code=status_code)

    import datetime

    year = str(datetime.date.today().year)
    url = await serve(web.Application([(r"/", Page)], template_path=str(tmp_path)))
    page = await fetch(url + "/")
    assert page.status == 200
    assert "{&quot;a&quot;: 1}" in page.text and "3.0" in page.text
    assert f"<footer>(c) {year}</footer>" in page.text
    error = await fetch(url + "/?fail=1")
    assert error.status == 404
    assert error.text.startswith("<title>404</title>sorry<footer>(c) ")
    assert year in error.text


# -- StaticFileHandler.allowed_symlink_directory (Tornado 6.5.9+) ----------------------------


async def test_static_symlinks_may_point_only_into_allowed_directories(
    serve: Serve, fetch: Fetch, tmp_path: Path
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "ext").mkdir(parents=True)
    root.mkdir()
    (outside / "ext" / "index.js").write_text("linked in")
    (outside / "secret.txt").write_text("secret")
    (root / "ext").symlink_to(outside / "ext")
    (outside / "ext" / "escape.txt").symlink_to(outside / "secret.txt")

    class PerRequest(web.StaticFileHandler):
        # Jupyter's FileFindHandler decides per request, by setting the attribute.
        def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
            if self.get_argument("follow", None):
                self.allowed_symlink_directory = str(outside / "ext")
            return super().validate_absolute_path(root, absolute_path)

    url = await serve(
        web.Application(
            [
                (r"/plain/(.*)", web.StaticFileHandler, {"path": str(root)}),
                (
                    r"/allowed/(.*)",
                    web.StaticFileHandler,
                    {"path": str(root), "allowed_symlink_directory": [str(outside / "ext")]},
                ),
                (r"/per/(.*)", PerRequest, {"path": str(root)}),
            ]
        )
    )
    assert (await fetch(url + "/plain/ext/index.js")).status == 403
    allowed = await fetch(url + "/allowed/ext/index.js")
    assert (allowed.status, allowed.text) == (200, "linked in")
    # A link below the allowed directory still cannot leave it.
    assert (await fetch(url + "/allowed/ext/escape.txt")).status == 403
    assert (await fetch(url + "/per/ext/index.js")).status == 403
    assert (await fetch(url + "/per/ext/index.js?follow=1")).status == 200
    assert (await fetch(url + "/per/ext/escape.txt?follow=1")).status == 403


# -- static_url with a handler class that takes several static roots -----------------------


async def test_static_url_passes_a_list_static_path_to_get_absolute_path(
    serve: Serve, fetch: Fetch, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "app.css").write_text("body {}")

    class SearchPath(web.StaticFileHandler):
        # Jupyter's FileFindHandler: static_path is a list, searched in order.
        @classmethod
        def get_absolute_path(cls, root: Any, path: str) -> str:
            for directory in root:
                candidate = os.path.join(directory, path)
                if os.path.isfile(candidate):
                    return os.path.abspath(candidate)
            return ""

    class Page(web.RequestHandler):
        def get(self) -> None:
            self.write(self.static_url("app.css"))

    url = await serve(
        web.Application(
            [(r"/page", Page)],
            static_path=[str(first), str(second)],
            static_handler_class=SearchPath,
        )
    )
    response = await fetch(url + "/page")
    assert response.status == 200
    assert response.text.startswith("/static/app.css?v=")
