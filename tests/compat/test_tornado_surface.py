"""Pieces of Tornado's surface that real software imports: tornado.http1connection,
tornado.platform.asyncio, the util/escape helpers, TCPServer._sockets, HTTPRequest."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
from typing import Any

import pytest

from asyncweb import escape, httputil, util, web
from asyncweb.http1connection import (
    HTTP1Connection,
    HTTP1ConnectionParameters,
    HTTP1ServerConnection,
)
from asyncweb.httpserver import HTTPRequest, HTTPServer
from asyncweb.ioloop import IOLoop
from asyncweb.iostream import IOStream
from asyncweb.platform.asyncio import (
    AsyncIOLoop,
    AsyncIOMainLoop,
    to_asyncio_future,
    to_tornado_future,
)
from asyncweb.tcpserver import TCPServer
from asyncweb.testing import AsyncHTTPTestCase


class Collect(httputil.HTTPMessageDelegate):
    def __init__(self) -> None:
        self.start_line: Any = None
        self.headers: httputil.HTTPHeaders | None = None
        self.chunks: list[bytes] = []
        self.finished = 0
        self.closed = 0

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> None:
        self.start_line, self.headers = start_line, headers

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        self.finished += 1

    def on_connection_close(self) -> None:
        self.closed += 1


async def connected_pair() -> tuple[IOStream, IOStream]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = IOStream(socket.socket())
    await client.connect(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    return client, IOStream(accepted)


async def test_http1connection_client_skips_1xx_and_reads_a_close_delimited_body() -> None:
    client, server = await connected_pair()
    conn = HTTP1Connection(client, is_client=True)
    await conn.write_headers(
        httputil.RequestStartLine("GET", "/x", "HTTP/1.1"),
        httputil.HTTPHeaders({"Host": "example"}),
    )
    conn.finish()
    head = await server.read_until(b"\r\n\r\n")
    assert head.startswith(b"GET /x HTTP/1.1\r\n") and b"host: example" in head.lower()
    server.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    server.write(b"HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nhello ")
    server.write(b"world")
    await asyncio.sleep(0.01)
    server.close()
    delegate = Collect()
    keep_alive = await conn.read_response(delegate)
    assert keep_alive is False
    assert delegate.start_line == httputil.ResponseStartLine("HTTP/1.0", 200, "OK")
    assert delegate.headers is not None and delegate.headers["X-A"] == "1"
    assert b"".join(delegate.chunks) == b"hello world"
    assert (delegate.finished, delegate.closed) == (1, 0)
    client.close()


@pytest.mark.parametrize("failing", ["headers_received", "data_received", "finish"])
async def test_http1connection_delegate_errors_are_logged_and_close_the_connection(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    # As in Tornado: read_response() returns False instead of raising, the delegate hears
    # that the connection closed, and the error is app_log's.
    class Failing(Collect):
        def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> None:
            if failing == "headers_received":
                raise ValueError(failing)

        def data_received(self, chunk: bytes) -> None:
            if failing == "data_received":
                raise ValueError(failing)

        def finish(self) -> None:
            if failing == "finish":
                raise ValueError(failing)

    client, server = await connected_pair()
    conn = HTTP1Connection(client, is_client=True)
    server.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    delegate = Failing()
    assert await conn.read_response(delegate) is False
    assert delegate.closed == 1
    assert client.closed()
    errors = [r for r in caplog.records if r.name == "asyncweb.application"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == failing
    server.close()


async def test_http1serverconnection_serves_an_application_on_a_stream() -> None:
    class Hello(web.RequestHandler):
        def get(self) -> None:
            self.write("hi " + self.get_argument("n"))

    app = web.Application([("/", Hello)])
    client, server = await connected_pair()
    # Bytes the stream has read already go to the protocol too.
    client.write(b"GET /?n=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert await server.read_bytes(4) == b"GET "
    server._read_buffer[:0] = b"GET "  # put them back, as if only peeked
    served = HTTP1ServerConnection(server, HTTP1ConnectionParameters())
    served.start_serving(app)
    response = await client.read_until(b"hi 1")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    client.write(b"GET /?n=2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (await client.read_until(b"hi 2")).startswith(b"HTTP/1.1 200 OK\r\n")
    await served.close()
    client.close()


def test_platform_asyncio_loops_and_futures() -> None:
    loop = AsyncIOLoop()
    try:
        assert isinstance(loop, IOLoop)

        async def work() -> int:
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(future.set_result, 7)
            assert to_tornado_future(future) is future
            return await to_asyncio_future(future)

        assert loop.run_sync(work) == 7
    finally:
        loop.close()
    main = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(main)
        wrapped = AsyncIOMainLoop()
        assert wrapped.asyncio_loop is main
    finally:
        asyncio.set_event_loop(None)
        main.close()


async def test_tcpserver_sockets_are_a_dict_by_fd() -> None:
    class Nothing(TCPServer):
        async def handle_stream(self, stream: IOStream, address: Any) -> None:
            stream.close()

    server = Nothing()
    server.listen(0, "127.0.0.1")
    try:
        assert [fd for fd, sock in server._sockets.items() if sock.fileno() == fd]
        (sock,) = server._sockets.values()
        assert sock.getsockname()[0] == "127.0.0.1"
        http = HTTPServer(lambda request: None)
        http.listen(0, "127.0.0.1")
        assert list(http._sockets) == [s.fileno() for s in http._sockets.values()]
        http.stop()
    finally:
        server.stop()
    assert HTTPRequest is httputil.HTTPServerRequest


def test_util_helpers() -> None:
    def function(x: int, y: int, callback: Any = None, z: Any = None) -> None:
        pass

    replacer = util.ArgReplacer(function, "callback")
    assert replacer.get_old_value((1, 2, "pos"), {}) == "pos"
    assert replacer.replace("new", (1, 2, "old"), {}) == ("old", [1, 2, "new"], {})
    assert replacer.replace("new", (1, 2), {"callback": "kw"}) == (
        "kw",
        (1, 2),
        {"callback": "new"},
    )
    assert replacer.replace("new", (1, 2), {}) == (None, (1, 2), {"callback": "new"})

    # exec_in compiles without this module's __future__ flags: real annotations.
    namespace: dict[str, Any] = {}
    util.exec_in("def f(x: int) -> int: return x\nout = f.__annotations__", namespace)
    assert namespace["out"] == {"x": int, "return": int}

    class TwoArgs(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(a, b)

    try:
        raise TwoArgs(1, 2)
    except TwoArgs:
        info = sys.exc_info()
    with pytest.raises(TwoArgs) as raised:
        util.raise_exc_info(info)
    assert raised.value is info[1]

    mask = b"\x01\x02\x03\x04"
    data = bytes(range(11))
    masked = util._websocket_mask_python(mask, data)
    assert masked == bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert util._websocket_mask_python(mask, masked) == data


def test_escape_helpers() -> None:
    assert escape._unquote_to_bytes(b"%41%3d+%%") == b"A=+%%"
    parse_qs_bytes = escape.parse_qs_bytes  # its home, as in Tornado; httputil re-exports it
    assert parse_qs_bytes is httputil.parse_qs_bytes
    assert parse_qs_bytes(b"a=1&a=%41") == {"a": [b"1", b"A"]}


async def test_tcpclient_with_a_resolver_races_its_answers() -> None:
    from asyncweb import gen
    from asyncweb.netutil import Resolver
    from asyncweb.tcpclient import TCPClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused
    refused_port = refused.getsockname()[1]

    class Answers(Resolver):
        def __init__(self, answers: list[tuple[int, Any]]) -> None:
            self.answers = answers

        async def resolve(self, host: str, port: int, family: int = 0) -> list[tuple[int, Any]]:
            return self.answers

    try:
        # An IPv6 answer that cannot be reached, then the working IPv4 one: the v4 attempt
        # starts as soon as the first fails, and wins.
        answers = [
            (socket.AF_INET6, ("::1", refused_port, 0, 0)),
            (socket.AF_INET, ("127.0.0.1", port)),
        ]
        stream = await TCPClient(resolver=Answers(answers)).connect("example", port)
        assert stream.socket is not None and stream.socket.family == socket.AF_INET
        stream.close()
        # Nothing answers: the last error is raised.
        with pytest.raises(OSError):
            await TCPClient(
                resolver=Answers([(socket.AF_INET, ("127.0.0.1", refused_port))])
            ).connect("example", refused_port)

        # A resolver that never answers: the timeout names the phase.
        class Silent(Resolver):
            def resolve(self, host: str, port: int, family: int = 0) -> Any:
                return asyncio.get_running_loop().create_future()

        with pytest.raises(gen.TimeoutError, match="Timeout while resolving example"):
            await TCPClient(resolver=Silent()).connect("example", 1, timeout=0.05)
    finally:
        listener.close()
        refused.close()


class TemplateLoaderCacheTest(AsyncHTTPTestCase):
    """``RequestHandler._template_loaders.clear()`` (Tornado's idiom) makes every application
    read its templates afresh."""

    def get_app(self) -> web.Application:
        self.template_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.template_dir)
        with open(os.path.join(self.template_dir, "page.html"), "w") as f:
            f.write("one {{ 1 + 1 }}")

        class Page(web.RequestHandler):
            def get(self) -> None:
                self.render("page.html")

        return web.Application([("/", Page)], template_path=self.template_dir)

    def test_clearing_the_class_cache_rereads_templates(self) -> None:
        self.assertEqual(self.fetch("/").body, b"one 2")
        with open(os.path.join(self.template_dir, "page.html"), "w") as f:
            f.write("two {{ 2 + 2 }}")
        self.assertEqual(self.fetch("/").body, b"one 2")  # compiled templates are cached
        self.assertGreaterEqual(len(web.RequestHandler._template_loaders), 1)
        web.RequestHandler._template_loaders.clear()
        self.assertEqual(self.fetch("/").body, b"two 4")
