"""The chat's rooms (created by POST under a cap, expired when unused, one list in every worker
through Redis) and its WebSocket catch-up from a client's cursor, over real HTTP and WebSocket
connections; and the broker's shared sets that keep the room list, on memory and real Redis."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from asyncweb.pubsub import Broker, RedisBroker
from tests.cli_apps.redis_process import REDIS_SERVER, RedisProcess
from tests.operations.test_chat import SECRET, Browserless, ChatServer
from tests.support.brokers import needs_redis


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    server = ChatServer("--max_rooms=3")
    try:
        yield server
    finally:
        err = server.stop()
        assert server.proc.returncode == 0, err


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisProcess]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def create(user: Browserless, token: str, name: str, with_xsrf: bool = True) -> int:
    form = {"name": name, **({"_xsrf": token} if with_xsrf else {})}
    status, headers, _ = user.request("/room", form)
    if status == 302:
        assert headers["Location"] == f"/room/{name}"
    return status


def wait_until(condition: Any, what: str, deadline: float = 30) -> None:
    """Wait for an event (the deadline only guards against a hang)."""
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- 4. rooms ----------------------------------------------------------------------------------


def test_visiting_a_room_creates_nothing(chat: ChatServer) -> None:
    user = Browserless(chat.url)
    user.sign_in("Visitor")
    before = health(chat.url)["room_names"]
    for n in range(20):
        status, _h, page = user.request(f"/room/visited{n}")
        assert status == 404 and 'action="/room"' in page  # offers the form that creates it
    assert health(chat.url)["room_names"] == before
    token = user.xsrf(user.request("/room/lobby")[2])
    status, _h, _ = user.request(
        "/a/message/new", {"_xsrf": token, "room": "visited1", "body": "x"}
    )
    assert status == 404


def test_rooms_are_created_by_post_with_xsrf_up_to_the_cap(chat: ChatServer) -> None:
    user = Browserless(chat.url)
    token = user.xsrf(user.sign_in("Creator"))
    assert create(user, token, "made-one", with_xsrf=False) == 403
    assert create(user, token, "bad name!") == 400
    assert create(user, token, "made-one") == 302
    status, _h, page = user.request("/room/made-one")
    assert status == 200 and 'href="/room/made-one"' in page
    # Others see it in their list.
    other = Browserless(chat.url)
    assert 'href="/room/made-one"' in other.sign_in("Other")
    assert create(user, token, "made-two") == 302
    assert create(user, token, "made-three") == 302
    status, _h, page = user.request("/room", {"_xsrf": token, "name": "made-four"})
    assert status == 403 and "too many rooms" in page
    assert create(user, token, "made-one") == 302  # an existing room is simply shown
    assert create(user, token, "lobby") == 302  # and so is a default room, outside the cap
    names = health(chat.url)["room_names"]
    assert names == ["lobby", "python", "random", "made-one", "made-three", "made-two"]


def test_unused_rooms_expire_and_occupied_ones_stay() -> None:
    server = ChatServer("--room_expiry=3")
    try:
        user = Browserless(server.url)
        token = user.xsrf(user.sign_in("Keeper"))
        assert create(user, token, "idle") == 302
        assert create(user, token, "busy") == 302
        ws_url = server.url.replace("http://", "ws://") + "/ws/busy"
        headers = {"Cookie": user.cookie_header(), "Origin": server.url}

        async def scenario() -> list[str]:
            async with websockets.connect(ws_url, additional_headers=headers):
                await asyncio.to_thread(
                    wait_until,
                    lambda: "idle" not in health(server.url)["room_names"],
                    "the idle room to expire",
                )
                names: list[str] = health(server.url)["room_names"]
                return names

        names = asyncio.run(scenario())
        assert "busy" in names and "idle" not in names
        status, _h, _ = user.request(
            "/a/message/new", {"_xsrf": token, "room": "idle", "body": "x"}
        )
        assert status == 404
        # Once its last client leaves, the busy room expires too.
        wait_until(lambda: "busy" not in health(server.url)["room_names"], "busy to expire")
    finally:
        server.stop()


@needs_redis
def test_workers_list_the_same_rooms_and_share_the_cap(redis_server: RedisProcess) -> None:
    env = {"CHAT_BROKER": redis_server.url, "CHAT_COOKIE_SECRET": SECRET, "CHAT_MAX_ROOMS": "4"}
    server = ChatServer(workers=2, env=env)
    try:
        user = Browserless(server.url)
        token = user.xsrf(user.sign_in("Many"))
        # Ten rooms asked for at once, on many connections (so on both workers): four made.
        results: dict[str, int] = {}

        def ask(name: str) -> None:
            asker = Browserless(server.url)
            for cookie in user.jar:
                asker.jar.set_cookie(cookie)
            results[name] = create(asker, token, name)

        threads = [threading.Thread(target=ask, args=(f"shared{n}",)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        made = sorted(name for name, status in results.items() if status == 302)
        assert len(made) == 4 and sorted(results.values()) == [302] * 4 + [403] * 6
        seen: dict[int, list[str]] = {}
        for _ in range(200):
            answer = health(server.url)
            seen[answer["pid"]] = answer["room_names"]
            if len(seen) == 2:
                break
        assert len(seen) == 2, "one worker answered every connection"
        for names in seen.values():
            assert names == ["lobby", "python", "random", *made]
    finally:
        server.stop()
    assert server.proc.returncode == 0


# -- 2. catching up after a reconnect ----------------------------------------------------------


def test_websocket_sends_what_came_after_the_cursor_then_live(chat: ChatServer) -> None:
    user = Browserless(chat.url)
    token = user.xsrf(user.sign_in("Cursor"))
    posted = []
    for n in range(4):
        status, _h, body = user.request(
            "/a/message/new", {"_xsrf": token, "room": "python", "body": f"m{n}"}
        )
        assert status == 200
        posted.append(json.loads(body))
    ws_url = chat.url.replace("http://", "ws://") + f"/ws/python?cursor={posted[1]['id']}"
    headers = {"Cookie": user.cookie_header(), "Origin": chat.url}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            missed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send(json.dumps({"body": "live one"}))
            live = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return missed, live

    missed, live = asyncio.run(scenario())
    assert missed["type"] == "messages"
    assert [m["body"] for m in missed["messages"]] == ["m2", "m3"]
    assert all('class="message"' in m["html"] for m in missed["messages"])
    assert live["type"] == "message" and live["message"]["body"] == "live one"


# -- the broker's shared sets ------------------------------------------------------------------


async def test_shared_sets_cap_stamp_and_expire(broker: Broker) -> None:
    assert await broker.members("rooms") == {}
    assert await broker.touch("rooms", "a", 10.0, limit=2)
    assert await broker.touch("rooms", "b", 20.0, limit=2)
    assert not await broker.touch("rooms", "c", 30.0, limit=2)  # full
    assert await broker.touch("rooms", "a", 40.0, limit=2)  # members are always stamped
    assert not await broker.touch("rooms", "d", 50.0, create=False)
    assert await broker.touch("rooms", "a", 5.0)  # never stamped back in time
    assert await broker.members("rooms") == {"a": 40.0, "b": 20.0}
    assert await broker.expire("rooms", 30.0) == ["b"]
    assert await broker.members("rooms") == {"a": 40.0}
    assert await broker.members("other") == {}


@needs_redis
async def test_shared_sets_are_one_across_brokers(redis_server: RedisProcess) -> None:
    brokers = [RedisBroker(redis_server.url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(b.touch("capped", f"m{i}", float(i), limit=5) for i, b in enumerate(brokers * 3))
        )
        assert sum(results) == 5
        views = [await b.members("capped") for b in brokers]
        assert all(view == views[0] for view in views) and len(views[0]) == 5
    finally:
        for b in brokers:
            await b.close()
