"""HTTP/1.0 keep-alive, which asyncweb's own response writer supports as Tornado does (h11's
send path, the pure-h11 reference, closes every HTTP/1.0 connection)."""

from __future__ import annotations

import asyncio

from asyncweb.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from tests.support.servers import Serve


def hello(request: HTTPServerRequest) -> None:
    conn = request.connection
    assert conn is not None
    body = f"hello {request.path}".encode()
    if request.path == "/unknown-length":
        conn.write_headers(ResponseStartLine("", 200, "OK"), HTTPHeaders(), body)
    else:
        headers = HTTPHeaders({"Content-Length": str(len(body))})
        conn.write_headers(ResponseStartLine("", 200, "OK"), headers, body)
    conn.finish()


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, keep_alive: bool
) -> bytes:
    extra = b"Connection: keep-alive\r\n" if keep_alive else b""
    writer.write(b"GET " + path.encode() + b" HTTP/1.0\r\n" + extra + b"\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    return head


async def test_http10_keep_alive_is_honoured(serve: Serve) -> None:
    url = await serve(hello)
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    for path in ("/one", "/two"):
        head = await _request(reader, writer, path, keep_alive=True)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"connection: keep-alive" in head.lower()
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        assert await reader.readexactly(length) == b"hello " + path.encode()
    # Without a length the body ends with the connection, keep-alive or not.
    head = await _request(reader, writer, "/unknown-length", keep_alive=True)
    assert b"connection: close" in head.lower()
    assert await asyncio.wait_for(reader.read(), 20) == b"hello /unknown-length"
    writer.close()
    await writer.wait_closed()


async def test_http10_without_keep_alive_closes(serve: Serve) -> None:
    url = await serve(hello)
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = await _request(reader, writer, "/once", keep_alive=False)
    assert b"connection: close" in head.lower()
    assert await asyncio.wait_for(reader.read(), 20) == b"hello /once"
    writer.close()
    await writer.wait_closed()


async def test_no_keep_alive_setting_wins_over_http10_keep_alive(serve: Serve) -> None:
    url = await serve(hello, no_keep_alive=True)
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = await _request(reader, writer, "/x", keep_alive=True)
    assert b"connection: close" in head.lower()
    assert await asyncio.wait_for(reader.read(), 20) == b"hello /x"
    writer.close()
    await writer.wait_closed()
