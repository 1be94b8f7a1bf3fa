"""asyncweb.wsgi.WSGIContainer: a real Flask app (and bare WSGI apps) on asyncweb's server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asyncweb.httpclient import AsyncHTTPClient
from asyncweb.web import Application
from asyncweb.wsgi import WSGIContainer
from tests.interop_apps import flask_app
from tests.interop_apps.native_handlers import Native, Release
from tests.support.servers import Fetch, Serve, raw_exchange, wait_until


@pytest.fixture
async def base(serve: Serve) -> str:
    container = WSGIContainer(flask_app.create_app(prefix="/flask"))
    app = Application([(r"/native", Native), (r"/release", Release), (r"/flask/.*", container)])
    return await serve(app)


async def test_flask_next_to_native_handlers(base: str, fetch: Fetch) -> None:
    assert (await fetch(base + "/native")).text == "native"
    response = await fetch(base + "/flask/hello")
    assert response.status == 200 and response.text == "Hello from Flask"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    teapot = await fetch(base + "/flask/teapot")
    assert teapot.status == 418 and teapot.headers["X-Kind"] == "teapot"
    assert (await fetch(base + "/flask/missing")).status == 404


async def test_environ_follows_pep_3333(base: str, fetch: Fetch) -> None:
    port = base.rsplit(":", 1)[1]
    response = await fetch(
        base + "/flask/environ?a=1&b=%20x",
        method="POST",
        body="payload",
        headers={"X-Custom": "yes", "Content-Type": "text/plain"},
    )
    env = json.loads(response.body)
    assert env == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/flask/environ",
        "QUERY_STRING": "a=1&b=%20x",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "7",
        "HTTP_X_CUSTOM": "yes",
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.version": [1, 0],
        "body": "payload",
    }
    # PATH_INFO is unquoted (bytes as latin-1, per PEP 3333).
    quoted = await raw_exchange(
        base, b"GET /flask/%68ello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert quoted.endswith(b"Hello from Flask")


async def test_form_post(base: str, fetch: Fetch) -> None:
    response = await fetch(
        base + "/flask/form",
        method="POST",
        body="b=2&a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.text == "a=1,b=2"


async def test_streaming_response_is_chunked(base: str) -> None:
    client = AsyncHTTPClient(force_instance=True)
    try:
        chunks: list[bytes] = []
        response = await client.fetch(base + "/flask/stream", streaming_callback=chunks.append)
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert b"".join(chunks) == b"".join(f"chunk{i}\n".encode() for i in range(5))
    finally:
        client.close()


async def test_blocking_view_does_not_block_the_loop(base: str) -> None:
    flask_app.released.clear()
    client = AsyncHTTPClient(force_instance=True)
    try:
        waiting = client.fetch(base + "/flask/wait")
        # The view blocks its worker thread until this native request runs on the loop.
        assert (await client.fetch(base + "/release")).body == b"ok"
        assert (await waiting).body == b"released"
    finally:
        client.close()


async def test_flask_error_is_500(base: str, fetch: Fetch) -> None:
    response = await fetch(base + "/flask/fail")
    assert response.status == 500
    assert (await fetch(base + "/native")).text == "native"


# -- bare WSGI applications: write(), errors before and after the headers ------------------


def legacy_write_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written;")
    return [b"", b"returned"]


def raising_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise ValueError("before start_response")


def failing_iterator_app(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first;"
    raise ValueError("mid-body")


class ClosingBody:
    closed = False

    def __init__(self) -> None:
        self.parts = iter([b"a", b"b"])

    def __iter__(self) -> ClosingBody:
        return self

    def __next__(self) -> bytes:
        return next(self.parts)

    def close(self) -> None:
        ClosingBody.closed = True


def closing_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> ClosingBody:
    start_response("201 Created", [("Content-Length", "2")])
    return ClosingBody()


async def test_bare_wsgi_apps(serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture) -> None:
    base = await serve(WSGIContainer(legacy_write_app))
    assert (await fetch(base + "/")).text == "written;returned"

    base = await serve(WSGIContainer(closing_app))
    response = await fetch(base + "/")
    assert response.status == 201 and response.body == b"ab"
    # With a Content-Length the client has it all before close() runs in the pool.
    await wait_until(lambda: ClosingBody.closed)

    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        base = await serve(WSGIContainer(raising_app))
        assert (await fetch(base + "/")).status == 500
        base = await serve(WSGIContainer(failing_iterator_app))
        raw = await raw_exchange(base, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # Headers and the first chunk went out; then the connection closed without the last chunk.
    assert raw.startswith(b"HTTP/1.1 200 OK") and b"first;" in raw
    assert not raw.endswith(b"0\r\n\r\n")
    assert "mid-body" in caplog.text and "before start_response" in caplog.text
