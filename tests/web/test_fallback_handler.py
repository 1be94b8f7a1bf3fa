"""asyncweb.web.FallbackHandler: a Flask app in a WSGIContainer mounted as a handler next to
native handlers, over a real server with urllib, http.client (keep-alive) and our client."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging

import pytest

from asyncweb import httputil, web
from asyncweb.httpclient import AsyncHTTPClient
from asyncweb.web import Application, FallbackHandler, RequestHandler
from asyncweb.wsgi import WSGIContainer
from tests.interop_apps import flask_app
from tests.interop_apps.native_handlers import Native, Release
from tests.support.servers import Fetch, Serve, raw_exchange, wait_until

finished: list[str] = []


class CountingFallback(FallbackHandler):
    def on_finish(self) -> None:
        finished.append(self.request.path)


def make_app(**settings: object) -> Application:
    container = WSGIContainer(flask_app.create_app(prefix="/flask"))
    return Application(
        [
            (r"/native", Native),
            (r"/release", Release),
            (r"/flask/.*", CountingFallback, {"fallback": container}),
        ],
        **settings,
    )


@pytest.fixture
async def base(serve: Serve) -> str:
    return await serve(make_app())


def test_fallback_handler_is_exported() -> None:
    assert web.FallbackHandler is FallbackHandler
    assert "FallbackHandler" in web.__all__
    assert issubclass(FallbackHandler, RequestHandler)


async def test_flask_behind_fallback_next_to_native_handlers(base: str, fetch: Fetch) -> None:
    finished.clear()
    assert (await fetch(base + "/native")).text == "native"
    hello = await fetch(base + "/flask/hello")
    assert hello.status == 200 and hello.text == "Hello from Flask"
    assert hello.headers["Content-Type"] == "text/html; charset=utf-8"
    teapot = await fetch(base + "/flask/teapot")
    assert teapot.status == 418 and teapot.headers["X-Kind"] == "teapot"
    assert (await fetch(base + "/flask/missing")).status == 404  # Flask's own 404
    assert (await fetch(base + "/nowhere")).status == 404  # the application's
    # on_finish ran once for each request the fallback took.
    assert finished == ["/flask/hello", "/flask/teapot", "/flask/missing"]


async def test_fallback_gets_the_whole_request(base: str, fetch: Fetch) -> None:
    form = await fetch(
        base + "/flask/form",
        method="POST",
        body="b=2&a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status == 200 and form.text == "a=1,b=2"
    environ = await fetch(
        base + "/flask/environ?q=1",
        method="POST",
        body="payload",
        headers={"X-Custom": "yes", "Content-Type": "text/plain"},
    )
    env = json.loads(environ.body)
    assert env["PATH_INFO"] == "/flask/environ" and env["QUERY_STRING"] == "q=1"
    assert env["HTTP_X_CUSTOM"] == "yes" and env["body"] == "payload"


async def test_streaming_and_a_blocking_view_through_the_fallback(base: str) -> None:
    flask_app.released.clear()
    client = AsyncHTTPClient(force_instance=True)
    try:
        chunks: list[bytes] = []
        streamed = await client.fetch(base + "/flask/stream", streaming_callback=chunks.append)
        assert streamed.headers["Transfer-Encoding"] == "chunked"
        assert b"".join(chunks) == b"".join(f"chunk{i}\n".encode() for i in range(5))
        # The view blocks its worker thread until a native handler runs on the loop.
        waiting = client.fetch(base + "/flask/wait")
        assert (await client.fetch(base + "/release")).body == b"ok"
        assert (await waiting).body == b"released"
    finally:
        client.close()


async def test_keep_alive_connection_alternates_native_and_fallback(base: str) -> None:
    port = int(base.rsplit(":", 1)[1])

    def exchange() -> list[tuple[int, bytes]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            results = []
            for path in ["/flask/hello", "/native", "/flask/teapot", "/native", "/flask/hello"]:
                conn.request("GET", path)
                resp = conn.getresponse()
                results.append((resp.status, resp.read()))
            return results
        finally:
            conn.close()

    results = await asyncio.to_thread(exchange)
    assert results == [
        (200, b"Hello from Flask"),
        (200, b"native"),
        (418, b"short and stout"),
        (200, b"native"),
        (200, b"Hello from Flask"),
    ]


async def test_flask_failure_is_a_500_and_the_server_goes_on(
    base: str, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await fetch(base + "/flask/fail")
    assert response.status == 500
    assert (await fetch(base + "/native")).text == "native"


async def test_handler_checks_run_before_the_fallback(serve: Serve, fetch: Fetch) -> None:
    # As in Tornado: the body is parsed (and its limits applied) and the XSRF check made
    # before prepare() hands the request over.
    finished.clear()
    base = await serve(make_app(xsrf_cookies=True, cookie_secret="s"))
    refused = await fetch(
        base + "/flask/form",
        method="POST",
        body="a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status == 403
    too_big = await fetch(
        base + "/flask/form",
        method="POST",
        body="&".join(f"a{i}=1" for i in range(1001)),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-XSRFToken": "x"},
    )
    assert too_big.status == 400
    assert (await fetch(base + "/flask/hello")).text == "Hello from Flask"
    # on_finish runs for the refusals too (the handler answered them itself).
    assert finished == ["/flask/form", "/flask/form", "/flask/hello"]


async def test_plain_and_async_callables_as_fallbacks(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    def answer(request: httputil.HTTPServerRequest, body: bytes) -> None:
        conn = request.connection
        assert conn is not None
        conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            httputil.HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        conn.finish()

    def plain(request: httputil.HTTPServerRequest) -> None:
        answer(request, b"plain " + request.path.encode())

    async def later(request: httputil.HTTPServerRequest) -> None:
        await asyncio.sleep(0.01)
        if request.path == "/async/fail":
            raise RuntimeError("fallback failed")
        answer(request, b"async " + request.path.encode())

    base = await serve(
        Application(
            [
                (r"/plain/.*", FallbackHandler, {"fallback": plain}),
                (r"/async/.*", FallbackHandler, {"fallback": later}),
            ]
        )
    )
    assert (await fetch(base + "/plain/x")).text == "plain /plain/x"
    assert (await fetch(base + "/async/y")).text == "async /async/y"
    with caplog.at_level(logging.ERROR):
        # The failing fallback never answers; the connection just stays open.
        response = await raw_exchange(
            base, b"GET /async/fail HTTP/1.1\r\nHost: x\r\n\r\n", read_timeout=1.0
        )
        await wait_until(lambda: "fallback failed" in caplog.text)
    assert response == b""
    assert "Uncaught exception in fallback" in caplog.text
    assert "fallback failed" in caplog.text
