"""Decompression bombs against the HTTP client: a gzip response is inflated only up to
``max_body_size`` (plus one byte to tell "over" from "exactly at"), never whole first."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest

from asyncweb.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from asyncweb.httputil import HTTPInputError

LIMIT = 1_000_000


def _gzip(chunks: int, chunk: bytes) -> bytes:
    # Compressed piece by piece so the test itself never holds the inflated body.
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [deflate.compress(chunk) for _ in range(chunks)]
    parts.append(deflate.flush())
    return b"".join(parts)


BOMB = _gzip(100, b"\0" * 1_000_000)  # about 100 KB inflating to 100 MB
AT_LIMIT = _gzip(1, b"a" * LIMIT)
OVER_LIMIT = _gzip(1, b"a" * (LIMIT + 1))
SMALL = _gzip(1, b"hello " * 100)
BODIES = {b"/bomb": BOMB, b"/at": AT_LIMIT, b"/over": OVER_LIMIT, b"/small": SMALL}


@pytest.fixture
async def gzip_server() -> AsyncIterator[str]:
    """A raw loopback server answering each path with its gzip body, one request per
    connection, so nothing in our server stack shapes the hostile response."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            body = BODIES[head.split(b" ", 2)[1]]
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture
def client() -> AsyncHTTPClient:
    return AsyncHTTPClient(force_instance=True)


async def _peak_while_fetching(client: AsyncHTTPClient, request: HTTPRequest) -> tuple[int, str]:
    tracemalloc.start()
    try:
        try:
            await client.fetch(request)
            error = ""
        except (HTTPInputError, HTTPClientError) as exc:
            error = str(exc)
        return tracemalloc.get_traced_memory()[1], error
    finally:
        tracemalloc.stop()


async def test_gzip_bomb_is_refused_with_small_peak_memory(
    gzip_server: str, client: AsyncHTTPClient
) -> None:
    try:
        request = HTTPRequest(f"{gzip_server}/bomb", max_body_size=LIMIT)
        peak, error = await _peak_while_fetching(client, request)
        assert "too large" in error
        # Unbounded inflation allocated over 100 MB here; bounded, it is about the limit.
        assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 1 MB max_body_size"
        # The same client keeps working.
        response = await client.fetch(f"{gzip_server}/small")
        assert response.body == b"hello " * 100
        assert response.headers["X-Consumed-Content-Encoding"] == "gzip"
    finally:
        client.close()


async def test_gzip_bomb_through_streaming_callback_is_refused(
    gzip_server: str, client: AsyncHTTPClient
) -> None:
    received: list[int] = []
    try:
        request = HTTPRequest(
            f"{gzip_server}/bomb",
            max_body_size=LIMIT,
            streaming_callback=lambda chunk: received.append(len(chunk)),
        )
        peak, error = await _peak_while_fetching(client, request)
        assert "too large" in error
        assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
        assert sum(received) <= LIMIT
    finally:
        client.close()


async def test_gzip_body_exactly_at_the_limit_passes_and_one_byte_over_fails(
    gzip_server: str, client: AsyncHTTPClient
) -> None:
    try:
        response = await client.fetch(f"{gzip_server}/at", max_body_size=LIMIT)
        assert response.body == b"a" * LIMIT
        with pytest.raises(HTTPInputError, match="too large"):
            await client.fetch(f"{gzip_server}/over", max_body_size=LIMIT)
        # Without decompression the compressed bytes are small and arrive as sent.
        raw = await client.fetch(
            f"{gzip_server}/bomb", max_body_size=LIMIT, decompress_response=False
        )
        assert raw.body == BOMB
    finally:
        client.close()
