"""asyncweb.asgi.ASGIContainer: a real Starlette app (and bare ASGI apps) mounted inside an
asyncweb Application, served by asyncweb's server over loopback."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from asyncweb.asgi import ASGIContainer, Message, Receive, Scope, Send
from asyncweb.httpclient import AsyncHTTPClient, HTTPClientError
from asyncweb.simple_httpclient import HTTPStreamClosedError
from asyncweb.web import Application, RequestHandler
from tests.interop_apps import starlette_app
from tests.support.servers import Serve


class Native(RequestHandler):
    def get(self) -> None:
        self.write("native")


@pytest.fixture
async def mounted(serve: Serve) -> Any:
    starlette_app.events.clear()
    container = ASGIContainer(starlette_app.app, root_path="/star")
    app = Application([(r"/native", Native), (r"/star/.*", container)])
    base = await serve(app)
    yield base, container
    await container.shutdown()


@pytest.fixture
async def client() -> Any:
    c = AsyncHTTPClient(force_instance=True)
    yield c
    c.close()


async def test_starlette_http_next_to_native(mounted: Any, client: AsyncHTTPClient) -> None:
    base, container = mounted
    assert (await client.fetch(base + "/native")).body == b"native"
    response = await client.fetch(base + "/star/")
    assert response.body == b"/star|/star/|from lifespan"
    assert starlette_app.events == ["startup"]
    response = await client.fetch(base + "/star/items/42?q=z", headers={"X-Test": "t"})
    assert json.loads(response.body) == {
        "id": 42,
        "q": "z",
        "client": "127.0.0.1",
        "header": "t",
        "url_for": base + "/star/items/7",
    }
    response = await client.fetch(base + "/star/echo", method="POST", body="abc")
    assert response.code == 201 and response.body == b"cba"
    assert response.headers["X-Echo"] == "yes"
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/star/nowhere")
    assert info.value.code == 404
    await container.shutdown()
    assert starlette_app.events == ["startup", "shutdown"]


async def test_streaming_both_ways(mounted: Any, client: AsyncHTTPClient) -> None:
    base, _ = mounted
    chunks: list[bytes] = []
    response = await client.fetch(base + "/star/stream", streaming_callback=chunks.append)
    assert b"".join(chunks) == b"n0\nn1\nn2\nn3\nn4\n"
    assert response.headers["Transfer-Encoding"] == "chunked"

    async def producer(write: Any) -> None:
        for _ in range(8):
            await write(b"u" * 65536)

    response = await client.fetch(base + "/star/upload", method="POST", body_producer=producer)
    data = json.loads(response.body)
    assert data["total"] == 8 * 65536 and data["chunks"] >= 2  # streamed, not one blob


async def test_starlette_error_is_500(
    mounted: Any, client: AsyncHTTPClient, caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = mounted
    with caplog.at_level(logging.ERROR), pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/star/fail")
    assert info.value.code == 500
    assert "starlette view failed" in caplog.text
    assert (await client.fetch(base + "/native")).body == b"native"


async def test_starlette_websocket(mounted: Any) -> None:
    base, _ = mounted
    url = base.replace("http://", "ws://") + "/star/ws/ann"
    async with websockets.connect(url, subprotocols=["echo"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "echo"
        assert await ws.recv() == "hello ann"
        await ws.send("shout")
        assert await ws.recv() == "SHOUT"
        await ws.send(b"ab")
        assert await ws.recv() == b"abab"
        await ws.send("bye")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4002
    # The client closing first reaches the app as a disconnect.
    async with websockets.connect(url) as ws:
        assert await ws.recv() == "hello ann"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(base.replace("http://", "ws://") + "/star/refuse"):
            pass
    assert refused.value.response.status_code == 403


# -- bare ASGI apps: broken responses, no lifespan support ------------------------------------


async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")  # served without lifespan, as uvicorn's auto


async def half_response(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    message: Message = await receive()
    assert message["type"] == "http.request"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


async def raw_echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    meta = json.dumps(
        {k: scope[k] for k in ("path", "root_path", "query_string", "method", "scheme")}
        | {"raw_path": scope["raw_path"].decode(), "query_string": scope["query_string"].decode()}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(meta + body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": meta + body})


async def test_bare_asgi_apps(
    serve: Serve, client: AsyncHTTPClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = Application(
        [
            (r"/none", ASGIContainer(no_response)),
            (r"/half", ASGIContainer(half_response, lifespan=False)),
            (r"/raw/.*", ASGIContainer(raw_echo, root_path="/raw")),
        ]
    )
    base = await serve(app)
    with caplog.at_level(logging.ERROR):
        with pytest.raises(HTTPClientError) as info:
            await client.fetch(base + "/none")
        assert info.value.code == 500
        with pytest.raises(HTTPStreamClosedError):
            await client.fetch(base + "/half")  # cut off mid-body: the connection closes
    assert "without a response" in caplog.text and "before finishing" in caplog.text
    response = await client.fetch(base + "/raw/a%20b?x=%41", method="PUT", body="data")
    meta_end = response.body.index(b"}") + 1
    assert json.loads(response.body[:meta_end]) == {
        "path": "/raw/a b",
        "raw_path": "/raw/a%20b",
        "root_path": "/raw",
        "query_string": "x=%41",
        "method": "PUT",
        "scheme": "http",
    }
    assert response.body[meta_end:] == b"data"
