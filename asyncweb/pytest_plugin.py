"""pytest fixtures for testing asyncweb applications over real loopback sockets.

Installed with asyncweb and loaded by pytest through the ``pytest11`` entry point (disable
with ``-p no:asyncweb``). Define an ``app`` fixture returning your ``Application``; then::

    async def test_home(fetch):
        response = await fetch("/")
        assert response.code == 200

Fixtures (all function-scoped; the async ones run on pytest-asyncio's loop):

- ``app``: yours to define; the default fails the test with a message saying so.
- ``http_server_settings``: keyword arguments for ``HTTPServer`` (default ``{}``).
- ``http_server_port``: the loopback port the server listens on (picked free, bound early).
- ``http_server``: the started ``HTTPServer``; stopped, and its connections closed, after.
  The application's start-up hooks run before it serves and its shut-down hooks after.
- ``base_url``: ``http://127.0.0.1:<port>``.
- ``http_client``: a private ``AsyncHTTPClient``, closed after the test.
- ``fetch``: ``await fetch("/path", method=..., body=..., headers=...)``: a path is joined
  to ``base_url``; ``raise_error`` defaults to False, so any status comes back as a
  response (as ``AsyncHTTPTestCase.fetch`` does).
- ``ws_connect``: ``await ws_connect("/ws")``: a client WebSocket to the server; left-open
  connections are closed after the test.

This module imports only pytest at import time, so loading it costs nothing and cannot fail
a test run that doesn't use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(func: _F) -> _F:
    """pytest-asyncio's fixture decorator, so the async fixtures work in its strict mode too."""
    try:
        import pytest_asyncio
    except ImportError:  # without pytest-asyncio the async fixtures can't run anyway
        return cast(_F, pytest.fixture(func))
    return cast(_F, pytest_asyncio.fixture(func))


# How long teardown lets requests still running finish before cutting their connections.
_SHUTDOWN_TIMEOUT = 5.0


@pytest.fixture
def app() -> Any:
    """Override in your conftest or test module: return the Application under test."""
    pytest.fail(
        "asyncweb's http_server/fetch/ws_connect fixtures need an `app` fixture returning "
        "your asyncweb Application (define one in conftest.py or the test module)",
        pytrace=False,
    )


@pytest.fixture
def http_server_settings() -> dict[str, Any]:
    """Keyword arguments for the ``HTTPServer`` (``xheaders``, ``max_body_size``...)."""
    return {}


@pytest.fixture
def _asyncweb_sockets() -> Iterator[list[Any]]:
    from asyncweb.netutil import bind_sockets

    sockets = bind_sockets(0, "127.0.0.1")
    yield sockets
    for sock in sockets:
        sock.close()


@pytest.fixture
def http_server_port(_asyncweb_sockets: list[Any]) -> int:
    """The port ``http_server`` listens on (127.0.0.1)."""
    port: int = _asyncweb_sockets[0].getsockname()[1]
    return port


@pytest.fixture
def base_url(http_server_port: int, http_server_settings: dict[str, Any]) -> str:
    """``http://127.0.0.1:<port>`` (``https`` when the settings have ``ssl_options``)."""
    scheme = "https" if http_server_settings.get("ssl_options") else "http"
    return f"{scheme}://127.0.0.1:{http_server_port}"


@_async_fixture
async def http_server(
    app: Any, _asyncweb_sockets: list[Any], http_server_settings: dict[str, Any]
) -> AsyncIterator[Any]:
    """The ``HTTPServer`` serving ``app`` on ``http_server_port``."""
    from asyncweb.httpserver import HTTPServer

    startup = getattr(app, "startup", None)
    if startup is not None:
        await startup()
    server = HTTPServer(app, **http_server_settings)
    server.add_sockets(_asyncweb_sockets)
    yield server
    server.stop()
    try:
        await asyncio.wait_for(server.close_all_connections(), _SHUTDOWN_TIMEOUT)
    except asyncio.TimeoutError:
        server._abort_connections()
    shutdown = getattr(app, "shutdown", None)
    if shutdown is not None:
        await shutdown()


@_async_fixture
async def http_client() -> AsyncIterator[Any]:
    """A private ``AsyncHTTPClient`` for this test."""
    from asyncweb.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient(force_instance=True)
    yield client
    client.close()
    # Let closed connections' transports finish closing before the loop goes away.
    await asyncio.sleep(0)


def _absolute(base_url: str, url: str, scheme: str | None = None) -> str:
    if "://" not in url:
        url = base_url + ("" if url.startswith("/") else "/") + url
    if scheme is not None:
        url = scheme + url[url.index("://") :]
    return url


@pytest.fixture
def fetch(http_server: Any, http_client: Any, base_url: str) -> Callable[..., Awaitable[Any]]:
    """``await fetch(path_or_url, **HTTPRequest_kwargs)`` -> ``HTTPResponse``."""

    def _fetch(url: str, raise_error: bool = False, **kwargs: Any) -> Awaitable[Any]:
        result: Awaitable[Any] = http_client.fetch(
            _absolute(base_url, url), raise_error=raise_error, **kwargs
        )
        return result

    return _fetch


@_async_fixture
async def ws_connect(
    http_server: Any, base_url: str
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await ws_connect(path_or_url, **websocket_connect_kwargs)`` -> client connection."""
    from asyncweb.websocket import websocket_connect

    opened: list[Any] = []

    async def _connect(url: str, **kwargs: Any) -> Any:
        scheme = "wss" if base_url.startswith("https") else "ws"
        connection = await websocket_connect(_absolute(base_url, url, scheme), **kwargs)
        opened.append(connection)
        return connection

    yield _connect
    for connection in opened:
        with contextlib.suppress(Exception):
            connection.close()
    # Give the closing handshakes a moment so the server side sees them.
    for _ in range(10):
        await asyncio.sleep(0)
