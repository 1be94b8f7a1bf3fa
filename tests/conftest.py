"""Shared fixtures: real servers on loopback ports and real clients talking to them."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets


@dataclass
class Response:
    status: int
    reason: str
    headers: email.message.Message
    body: bytes
    header_pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def _urllib_fetch(
    url: str, method: str, body: bytes | None, headers: dict[str, str], follow: bool
) -> Response:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    handlers: list[Any] = [] if follow else [NoRedirect()]
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with opener.open(request, timeout=10) as resp:
            return Response(
                resp.status, resp.reason, resp.headers, resp.read(), list(resp.headers.items())
            )
    except urllib.error.HTTPError as err:
        with err:
            return Response(
                err.code, err.reason, err.headers, err.read(), list(err.headers.items())
            )


Fetch = Callable[..., Awaitable[Response]]


@pytest.fixture
def fetch() -> Fetch:
    """``await fetch(url, method=, body=, headers=, follow_redirects=)`` with urllib in a thread,
    so the server under test keeps running on this test's loop."""

    async def _fetch(
        url: str,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = False,
    ) -> Response:
        data = body.encode() if isinstance(body, str) else body
        return await asyncio.to_thread(
            _urllib_fetch, url, method, data, headers or {}, follow_redirects
        )

    return _fetch


Serve = Callable[..., Awaitable[str]]

# The server protocol variants protocol-level tests run against, as HTTPServer settings: the
# default (h11's head reader, our response writer), the reference (one h11.Connection per
# connection, responses through it too), and llhttp reading heads (httptools, h11 judging).
PROTOCOL_VARIANTS: dict[str, dict[str, Any]] = {
    "own-writer": {},
    "pure-h11": {"pure_h11": True},
    "httptools": {"http_parser": "httptools"},
}


@pytest.fixture(params=list(PROTOCOL_VARIANTS))
def protocol_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """HTTPServer settings for each protocol variant in turn."""
    return PROTOCOL_VARIANTS[request.param]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(app_or_callback, **HTTPServer_settings)``: 127.0.0.1, a free port."""
    servers: list[HTTPServer] = []

    async def _serve(target: Any, **settings: Any) -> str:
        server = HTTPServer(target, **settings)
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        servers.append(server)
        port = sockets[0].getsockname()[1]
        scheme = "https" if settings.get("ssl_options") else "http"
        return f"{scheme}://127.0.0.1:{port}"

    yield _serve
    for server in servers:
        server.stop()
        await server.close_all_connections()


async def raw_exchange(
    base_url: str, data: bytes, *, read_timeout: float = 5.0, until_close: bool = True
) -> bytes:
    """Send raw bytes, return everything the server sends back until it closes (or times out)."""
    host, port = base_url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), read_timeout)
            except asyncio.TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not until_close:
                break
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
