"""The HTTP client against scripted raw servers: malformed, truncated and unusual responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from asyncweb.httpclient import AsyncHTTPClient
from asyncweb.httputil import HTTPInputError
from asyncweb.simple_httpclient import HTTPStreamClosedError

Script = Callable[[bytes], bytes]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Any]]:
    """``url = await raw_server(reply, close=True)``: answers every request head with
    ``reply`` (bytes) and then closes the connection, or keeps it open."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(reply: bytes, close: bool = True) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    if b"content-length:" in head.lower():
                        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                        await reader.readexactly(length)
                    writer.write(reply)
                    await writer.drain()
                    if close:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def client() -> Any:
    c = AsyncHTTPClient(force_instance=True)
    yield c
    c.close()


async def test_garbage_status_line(raw_server: Any, client: AsyncHTTPClient) -> None:
    url = await raw_server(b"HELLO THERE\r\n\r\n")
    with pytest.raises(HTTPInputError):
        await client.fetch(url)


async def test_truncated_bodies(raw_server: Any, client: AsyncHTTPClient) -> None:
    url = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde")
    with pytest.raises(HTTPStreamClosedError) as info:
        await client.fetch(url)
    assert info.value.code == 599 and str(info.value) == "Connection closed"
    url = await raw_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc")
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url)


async def test_close_delimited_body_and_connection_close(
    raw_server: Any, client: AsyncHTTPClient
) -> None:
    url = await raw_server(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    response = await client.fetch(url)
    assert response.body == b"until the end"
    keep = await raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", close=False
    )
    for _ in range(2):
        assert (await client.fetch(keep)).body == b"ok"
    # Neither the HTTP/1.0 nor the Connection: close connection was pooled.
    assert client.connections_opened == 3  # type: ignore[attr-defined]
    assert not client._idle  # type: ignore[attr-defined]


async def test_informational_responses_are_skipped(
    raw_server: Any, client: AsyncHTTPClient
) -> None:
    url = await raw_server(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone",
        close=False,
    )
    response = await client.fetch(url, method="POST", body="x")
    assert response.code == 201 and response.body == b"done"
    assert "Link" not in response.headers
    # The connection is reusable afterwards.
    assert (await client.fetch(url, method="POST", body="y")).code == 201
    assert client.connections_opened == 1  # type: ignore[attr-defined]


async def test_oversized_head_and_bad_gzip(raw_server: Any, client: AsyncHTTPClient) -> None:
    url = await raw_server(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    with pytest.raises(HTTPInputError):
        await client.fetch(url, max_header_size=1024)
    url = await raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
    )
    with pytest.raises(HTTPInputError, match="gzip"):
        await client.fetch(url)
    assert (await client.fetch(url, decompress_response=False)).body == b"not gzip!"
