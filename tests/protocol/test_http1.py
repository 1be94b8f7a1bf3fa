"""The HTTP/1.1 server and protocol layer, over real loopback sockets.

Requests are served by plain callables (no framework) so these tests pin the protocol layer:
keep-alive, HTTP/1.0, pipelining, 100-continue, bodies, limits, malformed input, shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import ssl
import subprocess
import sys
from typing import Any

import pytest
import trustme

from asyncweb.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from tests.support.servers import Fetch, Serve, raw_exchange, wait_until


@pytest.fixture
def serve(protocol_settings: dict[str, Any], serve: Serve) -> Serve:
    """Every protocol test runs against each protocol variant (see tests/support/servers.py)."""

    async def _serve(target: Any, **settings: Any) -> str:
        return await serve(target, **protocol_settings, **settings)

    return _serve


def respond(
    request: HTTPServerRequest,
    body: bytes = b"",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    head = HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))})
    for name, value in (headers or {}).items():
        head[name] = value
    assert request.connection is not None
    request.connection.write_headers(ResponseStartLine("HTTP/1.1", status, "OK"), head, body)
    request.connection.finish()


def echo(request: HTTPServerRequest) -> None:
    info = f"{request.method} {request.uri} {request.version} {len(request.body)}\n".encode()
    respond(request, info + request.body)


async def open_conn(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base_url.rsplit("//", 1)[1].split(":")
    return await asyncio.open_connection(host, int(port))


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """Read one Content-Length- or chunked-framed response."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 20)
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    else:
        body = b""
    return lines[0].encode(), headers, body


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


# -- keep-alive, versions, pipelining ---------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_connection(serve: Serve) -> None:
    url = await serve(echo)
    reader, writer = await open_conn(url)
    for i in range(3):
        writer.write(f"GET /n{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert body == f"GET /n{i} HTTP/1.1 0\n".encode()
        assert "close" not in headers.get("connection", "")
    await close(writer)


async def test_http10_is_answered_then_closed(serve: Serve) -> None:
    url = await serve(echo)
    data = await raw_exchange(url, b"GET /old HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in data.lower()
    assert data.endswith(b"GET /old HTTP/1.0 0\n")


async def test_pipelined_requests_are_answered_in_order(serve: Serve) -> None:
    async def slow_first(request: HTTPServerRequest) -> None:
        if request.path == "/slow":
            await asyncio.sleep(0.2)
        respond(request, request.path.encode())

    url = await serve(slow_first)
    reader, writer = await open_conn(url)
    writer.write(
        b"".join(f"GET /{p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in ("slow", "a", "b"))
    )
    bodies = [(await read_response(reader))[2] for _ in range(3)]
    assert bodies == [b"/slow", b"/a", b"/b"]
    await close(writer)


async def test_pipelined_requests_split_at_every_byte(serve: Serve) -> None:
    url = await serve(echo)
    payload = (
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /g HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    reader, writer = await open_conn(url)
    for i in range(len(payload)):
        writer.write(payload[i : i + 1])
        await writer.drain()
    first, second = await read_response(reader), await read_response(reader)
    assert first[2] == b"POST /p HTTP/1.1 3\nabc"
    assert second[2] == b"GET /g HTTP/1.1 0\n"
    await close(writer)


async def test_connection_close_from_client_is_honoured(serve: Serve) -> None:
    url = await serve(echo)
    data = await raw_exchange(url, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in data.lower()


async def test_no_keep_alive_setting_closes_after_each_response(serve: Serve) -> None:
    url = await serve(echo, no_keep_alive=True)
    data = await raw_exchange(url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in data.lower()


async def test_head_response_has_headers_but_no_body(serve: Serve) -> None:
    url = await serve(lambda request: respond(request, b"twelve bytes"))
    reader, writer = await open_conn(url)
    writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert b"content-length: 12" in head.lower()
    # The next bytes are the second response, not a body for the HEAD.
    status, _, body = await read_response(reader)
    assert status == b"HTTP/1.1 200 OK" and body == b"twelve bytes"
    await close(writer)


# -- request bodies -----------------------------------------------------------------------


async def test_chunked_request_body(serve: Serve) -> None:
    url = await serve(echo)
    data = await raw_exchange(
        url,
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    assert data.endswith(b"POST /c HTTP/1.1 11\nhello world")


async def test_expect_100_continue(serve: Serve) -> None:
    url = await serve(echo)
    reader, writer = await open_conn(url)
    writer.write(
        b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(b"data")
    status, _, body = await read_response(reader)
    assert status == b"HTTP/1.1 200 OK" and body == b"PUT /up HTTP/1.1 4\ndata"
    await close(writer)


async def test_form_body_is_parsed_for_callables(serve: Serve, fetch: Fetch) -> None:
    def form(request: HTTPServerRequest) -> None:
        respond(request, repr(sorted(request.body_arguments.items())).encode())

    url = await serve(form)
    resp = await fetch(
        url + "/",
        method="POST",
        body="a=1&b=two",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.text == "[('a', [b'1']), ('b', [b'two'])]"


async def test_decompress_request(serve: Serve, fetch: Fetch) -> None:
    def show(request: HTTPServerRequest) -> None:
        consumed = request.headers.get("X-Consumed-Content-Encoding", "-")
        respond(request, consumed.encode() + b":" + request.body)

    url = await serve(show, decompress_request=True)
    resp = await fetch(
        url, method="POST", body=gzip.compress(b"squeezed"), headers={"Content-Encoding": "gzip"}
    )
    assert resp.body == b"gzip:squeezed"
    resp = await fetch(
        url, method="POST", body=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    assert resp.status == 400


async def test_gzip_bomb_is_limited_by_max_body_size(serve: Serve) -> None:
    url = await serve(echo, decompress_request=True, max_body_size=1000)
    bomb = gzip.compress(b"\0" * 1_000_000)
    data = await raw_exchange(
        url,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: "
        + str(len(bomb)).encode()
        + b"\r\n\r\n"
        + bomb,
    )
    assert data.startswith(b"HTTP/1.1 413 ")


# -- limits ---------------------------------------------------------------------------------


async def test_oversized_head_gets_431(serve: Serve, fetch: Fetch) -> None:
    url = await serve(echo, max_header_size=1024)
    data = await raw_exchange(
        url, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in data.lower()
    assert (await fetch(url + "/still-fine")).status == 200


async def test_oversized_content_length_gets_413_before_the_body(serve: Serve) -> None:
    url = await serve(echo, max_body_size=100)
    # No body is sent at all: the answer must come from the head alone.
    data = await raw_exchange(url, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in data.lower()


async def test_oversized_chunked_body_gets_413(serve: Serve) -> None:
    url = await serve(echo, max_body_size=100)
    chunk = b"40\r\n" + b"x" * 64 + b"\r\n"
    data = await raw_exchange(
        url, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3
    )
    assert data.startswith(b"HTTP/1.1 413 ")


async def test_idle_connection_timeout_closes_idle_connections(serve: Serve) -> None:
    url = await serve(echo, idle_connection_timeout=0.3)
    reader, writer = await open_conn(url)
    loop = asyncio.get_running_loop()
    started = loop.time()  # before the request: the server's idle clock starts after it
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_response(reader)
    # Closed by the server (the wait is a hang guard), and not before it was idle 0.3 s.
    assert await asyncio.wait_for(reader.read(), 20) == b""
    assert loop.time() - started > 0.25
    await close(writer)


async def test_slowloris_head_is_dropped(serve: Serve, fetch: Fetch) -> None:
    url = await serve(echo, idle_connection_timeout=0.5)
    reader, writer = await open_conn(url)
    closed = False
    sent = 0
    drip = b"GET / HTTP/1.1\r\nX-Slow: " + b"z" * 100
    # One byte every 0.1 s (at least: a busy machine only stretches it) keeps the connection
    # "active" but never finishes the head; all of it would take over 12 s.
    for byte in drip:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except (ConnectionError, OSError):
            closed = True
            break
        if reader.at_eof():
            closed = True
            break
        sent += 1
        await asyncio.sleep(0.1)
    # Dropped while bytes were still trickling in, not kept alive by them.
    assert closed, f"still open after all {sent} bytes"
    try:
        data = await asyncio.wait_for(reader.read(), 20)
    except ConnectionError:  # our write after the server hung up broke the pipe: dropped too
        data = b""
    assert data == b"" or data.startswith(b"HTTP/1.1 408")
    await close(writer)
    assert (await fetch(url)).status == 200


async def test_body_timeout(serve: Serve) -> None:
    url = await serve(echo, body_timeout=0.3)
    reader, writer = await open_conn(url)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
    # The server closes (the wait only guards a hang): silently or with a 408.
    data = await asyncio.wait_for(reader.read(), 20)
    assert data == b"" or data.startswith(b"HTTP/1.1 408")
    await close(writer)


# -- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires Host
    ],
)
async def test_malformed_requests_get_a_clear_error(
    serve: Serve, fetch: Fetch, request_bytes: bytes, status: int, caplog: Any
) -> None:
    url = await serve(echo)
    bystander, writer = await open_conn(url)  # another client, mid-conversation
    data = await raw_exchange(url, request_bytes)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), data
    assert b"connection: close" in head.lower()
    assert body  # a short reason for humans
    assert "Traceback" not in caplog.text
    writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_response(bystander))[0] == b"HTTP/1.1 200 OK"
    await close(writer)


async def test_bad_request_is_logged_without_traceback(serve: Serve, caplog: Any) -> None:
    caplog.set_level("DEBUG", logger="asyncweb")
    url = await serve(echo)
    await raw_exchange(url, b"NOT HTTP AT ALL\r\n\r\n")
    records = [r for r in caplog.records if r.name == "asyncweb.general"]
    assert records and all(r.exc_info is None for r in records)


# -- responses and flow control --------------------------------------------------------------


async def test_streamed_response_uses_chunked_encoding(serve: Serve, fetch: Fetch) -> None:
    async def stream(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert conn is not None
        await conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders())
        for i in range(3):
            await conn.write(f"part{i};".encode())
            await asyncio.sleep(0.01)
        conn.finish()

    url = await serve(stream)
    resp = await fetch(url)
    assert resp.body == b"part0;part1;part2;"
    assert resp.headers["Transfer-Encoding"] == "chunked"


async def test_writes_wait_for_a_slow_reader(serve: Serve) -> None:
    """A response far bigger than socket buffers never piles up in memory."""
    peak = 0

    async def big(request: HTTPServerRequest) -> None:
        nonlocal peak
        conn: Any = request.connection
        await conn.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": str(64 * 2**20)}),
        )
        for _ in range(64):
            written = conn.write(b"x" * 2**20)  # buffered now; the future waits for a drain
            peak = max(peak, conn.transport.get_write_buffer_size())
            await written
        conn.finish()

    url = await serve(big)
    reader, writer = await open_conn(url)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # Not reading yet: once the kernel's buffers are full the server must wait, not buffer.
    await wait_until(lambda: peak > 0)
    assert peak < 3 * 2**20
    total = 0
    while total < 64 * 2**20:
        chunk = await asyncio.wait_for(reader.read(2**20), 20)
        assert chunk
        total += len(chunk)
    assert peak < 3 * 2**20
    await close(writer)


async def test_handler_errors_do_not_disturb_other_connections(serve: Serve, fetch: Fetch) -> None:
    def flaky(request: HTTPServerRequest) -> None:
        if request.path == "/boom":
            raise RuntimeError("boom")
        respond(request, b"fine")

    url = await serve(flaky)
    data = await raw_exchange(url, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"connection: close" in data.lower()
    assert (await fetch(url + "/")).body == b"fine"


async def test_response_header_with_newline_is_refused(serve: Serve) -> None:
    errors: list[Exception] = []

    def injector(request: HTTPServerRequest) -> None:
        conn: Any = request.connection
        try:
            conn.write_headers(
                ResponseStartLine("HTTP/1.1", 200, "OK"),
                HTTPHeaders({"X-Evil": "a\r\nSet-Cookie: pwned=1"}),
                b"",
            )
        except ValueError as err:
            errors.append(err)
        respond(request, b"safe")

    url = await serve(injector)
    data = await raw_exchange(url, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert errors and b"pwned" not in data and data.endswith(b"safe")


# -- xheaders and TLS --------------------------------------------------------------------------


def show_origin(request: HTTPServerRequest) -> None:
    respond(request, f"{request.remote_ip} {request.protocol}".encode())


async def test_xheaders(serve: Serve, fetch: Fetch) -> None:
    url = await serve(show_origin, xheaders=True)
    resp = await fetch(url, headers={"X-Real-Ip": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert resp.text == "203.0.113.7 https"
    resp = await fetch(url, headers={"X-Forwarded-For": "198.51.100.1, 192.0.2.44"})
    assert resp.text == "192.0.2.44 http"
    resp = await fetch(url, headers={"X-Real-Ip": "not-an-ip", "X-Scheme": "gopher"})
    assert resp.text == "127.0.0.1 http"


async def test_xheaders_off_by_default(serve: Serve, fetch: Fetch) -> None:
    url = await serve(show_origin)
    resp = await fetch(url, headers={"X-Real-Ip": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert resp.text == "127.0.0.1 http"


async def test_tls(serve: Serve, tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    url = await serve(show_origin, ssl_options=server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=client_ctx)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_response(reader))[2] == b"127.0.0.1 https"
    await close(writer)


# -- graceful shutdown ------------------------------------------------------------------------


async def test_graceful_shutdown(serve: Serve) -> None:
    from asyncweb.httpserver import HTTPServer
    from asyncweb.netutil import bind_sockets

    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(request: HTTPServerRequest) -> None:
        arrived.set()
        await release.wait()
        respond(request, b"finished")

    server = HTTPServer(slow)
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server.add_sockets(sockets)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
    busy_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(arrived.wait(), 20)  # in flight when the server stops

    server.stop()
    closing = asyncio.ensure_future(server.close_all_connections())
    assert await asyncio.wait_for(idle_reader.read(), 20) == b""  # idle: closed at once
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
    await asyncio.sleep(0.1)
    assert not closing.done()  # the in-flight request is still running
    release.set()
    _status, headers, body = await read_response(busy_reader)
    assert body == b"finished" and headers.get("connection") == "close"
    await asyncio.wait_for(closing, 20)
    await close(idle_writer)
    await close(busy_writer)


# -- third-party clients and the loop --------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl(serve: Serve) -> None:
    url = await serve(echo)

    def run(*args: str) -> bytes:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "5", *args], check=True, capture_output=True
        ).stdout

    assert await asyncio.to_thread(run, url + "/x") == b"GET /x HTTP/1.1 0\n"
    assert await asyncio.to_thread(run, "--http1.0", url + "/y") == b"GET /y HTTP/1.0 0\n"
    out = await asyncio.to_thread(
        run, "-H", "Transfer-Encoding: chunked", "--data-binary", "hello", url + "/z"
    )
    assert out == b"POST /z HTTP/1.1 5\nhello"
    # Two URLs on one curl: the second reuses the connection.
    out = await asyncio.to_thread(run, "-v", url + "/1", url + "/2")
    assert out == b"GET /1 HTTP/1.1 0\nGET /2 HTTP/1.1 0\n"


def test_uvloop_is_used_when_installed() -> None:
    pytest.importorskip("uvloop")
    code = (
        "from asyncweb.ioloop import IOLoop; print(type(IOLoop.current().asyncio_loop).__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("uvloop")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"ASYNCWEB_UVLOOP": "0", "PATH": ""},
    )
    assert out.stdout.strip().startswith("asyncio")


async def test_obs_fold_in_a_pipelined_head_is_rejected_after_the_good_request(
    serve: Serve,
) -> None:
    url = await serve(echo)
    data = await raw_exchange(
        url,
        b"GET /good HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /bad HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n",
    )
    first, _, rest = data.partition(b"GET /good HTTP/1.1 0\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 400 ") and b"folding" in rest


async def test_obs_fold_split_across_packets_is_rejected(serve: Serve) -> None:
    url = await serve(echo)
    reader, writer = await open_conn(url)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b" folded\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 20)
    assert data.startswith(b"HTTP/1.1 400 ")
    await close(writer)


async def test_body_bytes_that_look_like_folding_are_just_body(serve: Serve) -> None:
    url = await serve(echo)
    reader, writer = await open_conn(url)
    body = b"line one\r\n indented\r\n\tand tabbed"
    writer.write(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r" % len(body))
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"\n" + body)  # the head's last byte and the body in one packet
    status, _, echoed = await read_response(reader)
    assert status == b"HTTP/1.1 200 OK" and echoed.endswith(body)
    await close(writer)


async def test_framing_headers_appear_once(serve: Serve) -> None:
    url = await serve(echo)
    reader, writer = await open_conn(url)
    writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)).lower()
    assert head.count(b"content-length:") == 1
    assert b"transfer-encoding" not in head
    await close(writer)


async def test_async_head_handling_may_raise_the_body_limit(serve: Serve) -> None:
    """Like a streaming handler's async prepare() calling set_max_body_size()."""
    from asyncweb import httputil

    class Raiser(httputil.HTTPMessageDelegate):
        def __init__(self, conn: Any) -> None:
            self.conn = conn
            self.size = 0

        async def _prepare(self) -> None:
            await asyncio.sleep(0.05)
            self.conn.set_max_body_size(10_000)

        def headers_received(self, start_line: Any, headers: Any) -> Any:
            return self._prepare()

        def data_received(self, chunk: bytes) -> None:
            self.size += len(chunk)

        def finish(self) -> None:
            body = str(self.size).encode()
            self.conn.write_headers(
                ResponseStartLine("HTTP/1.1", 200, "OK"),
                HTTPHeaders({"Content-Length": str(len(body))}),
                body,
            )
            self.conn.finish()

    class App(httputil.HTTPServerConnectionDelegate):
        def start_request(self, server_conn: object, request_conn: Any) -> Any:
            return Raiser(request_conn)

    url = await serve(App(), max_body_size=100)
    reader, writer = await open_conn(url)
    writer.write(
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    )
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(b"z" * 5000)
    assert (await read_response(reader))[2] == b"5000"
    await close(writer)


async def test_body_not_matching_content_length_raises_http_output_error(serve: Serve) -> None:
    from asyncweb.httputil import HTTPOutputError

    errors: list[str] = []

    def mismatch(request: HTTPServerRequest) -> None:
        conn: Any = request.connection
        declared = 10 if request.path == "/short" else 3
        conn.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": str(declared)}),
        )
        try:
            conn.write(b"12345")
            conn.finish()
        except HTTPOutputError as err:
            errors.append(str(err))
            conn.close()

    url = await serve(mismatch)
    short = await raw_exchange(url, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert short.endswith(b"12345")  # what was written went out; then the connection closed
    long = await raw_exchange(url, b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"12345" not in long
    assert len(errors) == 2  # one each: too short at finish(), too long at write()


# -- protocol switches (101) -------------------------------------------------------------------


class LineEcho(asyncio.Protocol):
    """What takes over after the 101: echoes bytes upper-cased; a successor for switch_protocol."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost_callbacks: list[Any] = []
        self.asked_to_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data.upper())

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        for callback in self.lost_callbacks:
            callback()

    def set_lost_callback(self, callback: Any) -> None:
        self.lost_callbacks.append(callback)

    def close_when_idle(self) -> None:
        self.asked_to_close = True
        assert self.transport is not None
        self.transport.write(b"BYE")
        self.transport.close()


SWITCH_REQUEST = b"GET /switch HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n"


def switching_head(request: HTTPServerRequest) -> None:
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 101, "Switching Protocols"),
        HTTPHeaders({"Upgrade": "shout", "Connection": "Upgrade"}),
    )
    request.connection.finish()


async def test_detach_hands_over_transport_and_leftover_bytes(serve: Serve) -> None:
    detached: list[Any] = []

    def handler(request: HTTPServerRequest) -> None:
        switching_head(request)
        connection: Any = request.connection
        transport, leftover = connection.detach()
        successor = LineEcho()
        transport.set_protocol(successor)
        successor.connection_made(transport)
        if leftover:
            successor.data_received(leftover)
        detached.append(successor)

    url = await serve(handler)
    reader, writer = await open_conn(url)
    try:
        writer.write(SWITCH_REQUEST + b"early bytes;")  # sent before the 101 arrives
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nConnection: Upgrade\r\n" in head or b"\r\nconnection: Upgrade\r\n" in head
        assert b"content-length" not in head.lower()
        assert b"transfer-encoding" not in head.lower()
        assert await asyncio.wait_for(reader.readexactly(12), 20) == b"EARLY BYTES;"
        writer.write(b"later")
        assert await asyncio.wait_for(reader.readexactly(5), 20) == b"LATER"
    finally:
        writer.close()
        await writer.wait_closed()
    assert len(detached) == 1


async def test_switch_protocol_is_tracked_until_the_successor_is_done(
    protocol_settings: dict[str, Any],
) -> None:
    from asyncweb.httpserver import HTTPServer
    from asyncweb.netutil import bind_sockets

    successors: list[LineEcho] = []

    def handler(request: HTTPServerRequest) -> None:
        switching_head(request)
        successor = LineEcho()
        successors.append(successor)
        connection: Any = request.connection
        connection.switch_protocol(successor)

    server = HTTPServer(handler, **protocol_settings)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    reader, writer = await open_conn(url)
    try:
        writer.write(SWITCH_REQUEST + b"hi")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert await asyncio.wait_for(reader.readexactly(2), 20) == b"HI"
        server.stop()
        # A graceful shutdown reaches the successor and waits for it to close.
        await asyncio.wait_for(server.close_all_connections(), 20)
        assert successors[0].asked_to_close
        assert await asyncio.wait_for(reader.read(), 20) == b"BYE"
    finally:
        writer.close()
        await writer.wait_closed()
