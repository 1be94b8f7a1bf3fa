"""Two ``asyncweb serve`` processes share a RedisBroker: a message posted to one reaches a
WebSocket client of the other."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from asyncweb.websocket import WebSocketClientConnection, websocket_connect
from tests.cli_apps.redis_process import RedisProcess
from tests.cli_apps.runner import Server, kill_all

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


def post(url: str, message: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=20) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


async def next_message(ws: WebSocketClientConnection, servers: list[Server]) -> Any:
    """The next message as JSON; on a timeout, the failure shows what the servers logged."""
    try:
        return json.loads(await asyncio.wait_for(ws.read_message(), 10) or "")
    except asyncio.TimeoutError:
        logs = "\n".join(server.text for server in servers)
        raise AssertionError(f"no message within 10 s; the servers logged:\n{logs}") from None


async def test_message_crosses_processes(redis_server: RedisProcess) -> None:
    env = {"ASYNCWEB_TEST_REDIS": redis_server.url}
    servers = [
        Server("cli_apps.pubsub_app:app", "--port", "0", env=env),
        Server("cli_apps.pubsub_app:app", "--port", "0", env=env),
    ]
    try:
        first, second = (server.url() for server in servers)
        pids = [server.proc.pid for server in servers]
        sockets = [
            await websocket_connect(first.replace("http", "ws") + "/ws/room"),
            await websocket_connect(second.replace("http", "ws") + "/ws/room"),
        ]
        for ws, pid in zip(sockets, pids, strict=True):
            assert await next_message(ws, servers) == {"ready": pid}
        # Posted to the first process, heard by both processes' WebSocket clients.
        assert await asyncio.to_thread(post, first + "/publish/room", {"text": "from one"}) == {
            "published": True
        }
        for ws in sockets:
            message = await next_message(ws, servers)
            assert message == {"text": "from one", "via": pids[0]}
        await asyncio.to_thread(post, second + "/publish/room", {"text": "from two"})
        for ws in sockets:
            message = await next_message(ws, servers)
            assert message == {"text": "from two", "via": pids[1]}
        # Another channel stays separate.
        await asyncio.to_thread(post, second + "/publish/other", {"text": "elsewhere"})
        await asyncio.to_thread(post, first + "/publish/room", {"text": "last"})
        for ws in sockets:
            message = await next_message(ws, servers)
            assert message["text"] == "last"
            ws.close()
        for server in servers:
            assert server.stop() == 0
    finally:
        kill_all(servers)
