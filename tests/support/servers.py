"""Shared helpers and fixtures: real servers on loopback ports and real clients talking to them.

Test modules import the helpers from here; tests/conftest.py registers the fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import gc
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

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


# -- load-independent timing --------------------------------------------------------------------
# Tests never bound wall-clock time: another process on the machine can stretch it without
# limit. They wait for the event itself (wait_until, with a deadline that only guards a hang),
# and bound work by the ratio of CPU time over two input sizes (assert_linear).


async def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, message: str = ""
) -> None:
    """Poll ``predicate`` on this loop until it is true; fail after ``timeout`` (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


async def wait_until_stable(
    read: Callable[[], object], turns: int = 50, timeout: float = 20.0
) -> object:
    """Wait until ``read()`` is the same across ``turns`` loop iterations in a row (each one
    polls the sockets), and return it: a stall told from progress by turns, not seconds."""
    deadline = time.monotonic() + timeout
    value, same = read(), 0
    while same < turns:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout} s: {value!r}")
        await asyncio.sleep(0)
        current = read()
        same = same + 1 if current == value else 0
        value = current
    return value


def cpu_cost(run: Callable[[], object], repeat: int = 5) -> float:
    """Least CPU time of this thread over ``repeat`` runs of ``run``, with gc paused: time spent
    waiting for a CPU while other processes run is not counted."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(repeat):
            start = time.thread_time()
            run()
            best = min(best, time.thread_time() - start)
        return best
    finally:
        if enabled:
            gc.enable()


T = TypeVar("T")


def assert_linear(
    run: Callable[[T], object], small: T, large: T, factor: float, repeat: int = 3
) -> None:
    """With ``large`` ``factor`` times the size of ``small``, ``run(large)`` costs less than
    ``factor ** 1.5`` times ``run(small)``: halfway, on a log scale, between linear (``factor``)
    and quadratic (``factor ** 2``), so caches and allocators pass and quadratic work fails."""
    small_cost = cpu_cost(lambda: run(small), repeat)
    large_cost = cpu_cost(lambda: run(large), repeat)
    _assert_ratio(small_cost, large_cost, factor)


def _assert_ratio(small_cost: float, large_cost: float, factor: float) -> None:
    ratio = large_cost / max(small_cost, 1e-6)
    assert ratio < factor**1.5, f"{factor}x the input cost {ratio:.1f}x the CPU time"


async def assert_linear_async(
    run: Callable[[T], Awaitable[object]], small: T, large: T, factor: float, repeat: int = 3
) -> None:
    """assert_linear for work done on this loop (a server and its client in this thread)."""

    async def cost(arg: T) -> float:
        best = float("inf")
        for _ in range(repeat):
            gc.collect()
            start = time.thread_time()
            await run(arg)
            best = min(best, time.thread_time() - start)
        return best

    _assert_ratio(await cost(small), await cost(large), factor)
