"""asyncweb.asgi.ASGIAdapter: an asyncweb Application served by real uvicorn and hypercorn
processes over loopback, talked to with asyncweb's HTTP client and the websockets library."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from asyncweb.httpclient import AsyncHTTPClient, HTTPClientError
from asyncweb.simple_httpclient import HTTPTimeoutError
from tests.support.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.interop_apps.asgi_app:asgi_app"


def _command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
        ]
    return [sys.executable, "-m", "hypercorn", APP, "-b", f"127.0.0.1:{port}"]


class ServerProcess:
    def __init__(self, server: str, lifespan_file: Path) -> None:
        self.events = lifespan_file
        self.port = free_port()
        env = dict(os.environ, ASGI_TEST_LIFESPAN_FILE=str(lifespan_file))
        self.process = subprocess.Popen(
            _command(server, self.port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{server} exited: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{server} did not start")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn"])
def server(request: Any, tmp_path_factory: Any) -> Iterator[ServerProcess]:
    lifespan_file = tmp_path_factory.mktemp("lifespan") / "events"
    process = ServerProcess(request.param, lifespan_file)
    yield process
    process.stop()


@pytest.fixture
async def client() -> Any:
    c = AsyncHTTPClient(force_instance=True)
    yield c
    c.close()


async def test_plain_requests(server: ServerProcess, client: AsyncHTTPClient) -> None:
    response = await client.fetch(server.base + "/hello?x=1")
    # The startup callback ran in the server process before the first request.
    assert response.body == b"Hello http /hello?x=1 ['up']"
    assert response.headers["X-Remote"] == "127.0.0.1"
    response = await client.fetch(server.base + "/echo?a=q", method="POST", body="payload")
    assert json.loads(response.body) == {"body": "payload", "arg": "q"}
    response = await client.fetch(server.base + "/args/bob")
    assert response.code == 201 and json.loads(response.body) == {"name": "bob"}
    assert response.headers["Set-Cookie"].startswith("seen=bob")
    for path, code in (("/fail", 500), ("/missing", 404)):
        with pytest.raises(HTTPClientError) as info:
            await client.fetch(server.base + path)
        assert info.value.code == code


async def test_streaming_both_ways(server: ServerProcess, client: AsyncHTTPClient) -> None:
    chunks: list[bytes] = []
    response = await client.fetch(server.base + "/stream", streaming_callback=chunks.append)
    assert response.code == 200
    assert b"".join(chunks) == b"tick0\ntick1\ntick2\ntick3\n"
    assert response.headers.get("Transfer-Encoding") == "chunked"

    async def producer(write: Any) -> None:
        for _ in range(10):
            await write(b"z" * 50_000)

    response = await client.fetch(server.base + "/upload", method="PUT", body_producer=producer)
    assert json.loads(response.body) == {"total": 500_000}


async def test_websocket_handler(server: ServerProcess) -> None:
    url = server.base.replace("http://", "ws://") + "/ws/lobby"
    async with websockets.connect(url, subprotocols=["chat"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat"
        assert await ws.recv() == "welcome to lobby"
        await ws.send("hi")
        assert await ws.recv() == "lobby: hi"
        await ws.send(b"\x01\x02\x03")
        assert await ws.recv() == b"\x03\x02\x01"
        await ws.send("close")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4001
        assert info.value.rcvd.reason == "asked"


async def test_websocket_prepare_guards_the_handshake(server: ServerProcess) -> None:
    url = server.base.replace("http://", "ws://") + "/guarded"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 403
    async with websockets.connect(url + "?token=s3cret") as ws:
        assert await ws.recv() == "let in"


async def test_websocket_to_a_plain_handler_is_refused(server: ServerProcess) -> None:
    url = server.base.replace("http://", "ws://") + "/hello"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 403


async def test_client_leaving_reaches_on_connection_close(
    server: ServerProcess, client: AsyncHTTPClient
) -> None:
    with pytest.raises(HTTPTimeoutError):
        # Long enough for a busy server process to take the request in before it goes.
        await client.fetch(server.base + "/longpoll", request_timeout=1.0)
    await wait_until(lambda: server.events.exists() and "client gone" in server.events.read_text())


@pytest.mark.parametrize("kind", ["uvicorn", "hypercorn"])
def test_lifespan_startup_and_shutdown(kind: str, tmp_path: Path) -> None:
    events = tmp_path / "events"
    process = ServerProcess(kind, events)
    process.stop()
    assert events.read_text().split() == ["startup", "shutdown"]
