"""The chat demo, run as its own process and used the way people use it: forms, long polls,
WebSockets (the `websockets` library), two browsers (headless Chromium), two languages, and two
processes sharing rooms through a real redis-server."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support.browser import LAUNCH_ARGS as CHROMIUM_ARGS
from tests.support.servers import free_port

CHAT = Path(__file__).resolve().parents[2] / "examples" / "chat" / "app.py"
SECRET = "test-secret-not-for-production"


class ChatServer:
    """``python examples/chat/app.py``, or with ``workers``, ``asyncweb serve --workers N``."""

    def __init__(self, *extra: str, workers: int = 0, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if workers:
            command = [
                sys.executable, "-m", "asyncweb", "serve", "app:application",
                "--app-dir", str(CHAT.parent), f"--port={self.port}", f"--workers={workers}",
            ]  # fmt: skip
        else:
            command = [sys.executable, str(CHAT), f"--port={self.port}", *extra]
            command.append(f"--cookie_secret={SECRET}")
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                _out, err = self.proc.communicate()
                raise AssertionError(f"chat exited with {self.proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("chat did not start")
            time.sleep(0.1)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _out, err = self.proc.communicate()
        return err


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    try:
        yield server
    finally:
        err = server.stop()
        assert server.proc.returncode == 0, err


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browserless:
    """A cookie-keeping HTTP user of the chat, on urllib."""

    def __init__(self, base: str, language: str | None = None) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.language = language

    def request(
        self, path: str, form: dict[str, str] | None = None, timeout: float = 10
    ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data)
        if self.language:
            req.add_header("Accept-Language", self.language)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, dict(e.headers), e.read().decode()

    def xsrf(self, page: str) -> str:
        match = re.search(r'name="_xsrf" value="([^"]+)"', page)
        assert match, "page has no XSRF field"
        return match.group(1)

    def sign_in(self, name: str) -> str:
        status, _h, page = self.request("/auth/login")
        assert status == 200
        status, headers, _ = self.request(
            "/auth/login", {"_xsrf": self.xsrf(page), "name": name, "next": "/room/lobby"}
        )
        assert status == 302 and headers["Location"] == "/room/lobby"
        status, _h, room = self.request("/room/lobby")
        assert status == 200
        return room

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def test_signed_out_users_are_sent_to_sign_in(chat: ChatServer) -> None:
    user = Browserless(chat.url)
    status, headers, _ = user.request("/room/lobby")
    assert status == 302
    assert headers["Location"].startswith("/auth/login?next=%2Froom%2Flobby")


def test_sign_in_post_and_read_by_long_poll(chat: ChatServer) -> None:
    alice = Browserless(chat.url)
    page = alice.sign_in("Alice <b>")
    assert "Signed in as Alice &lt;b&gt;" in page
    token = alice.xsrf(page)
    status, _h, body = alice.request(
        "/a/message/new", {"_xsrf": token, "room": "python", "body": "hello <script>x</script>"}
    )
    assert status == 200, body
    posted = json.loads(body)
    assert posted["from"] == "Alice <b>" and posted["room"] == "python"

    status, _h, body = alice.request("/a/message/updates", {"_xsrf": token, "room": "python"})
    assert status == 200
    assert posted["id"] in [m["id"] for m in json.loads(body)["messages"]]

    # The room page renders history through the Message UI module, escaped.
    status, _h, page = alice.request("/room/python")
    assert status == 200
    assert "hello &lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page

    # A poll at the newest cursor waits until the next message arrives.
    result: dict[str, Any] = {}

    def wait() -> None:
        result["reply"] = alice.request(
            "/a/message/updates", {"_xsrf": token, "room": "python", "cursor": posted["id"]}
        )

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive(), "the poll answered without news"
    bob = Browserless(chat.url)
    bob_token = bob.xsrf(bob.sign_in("Bob"))
    bob.request("/a/message/new", {"_xsrf": bob_token, "room": "python", "body": "hi Alice"})
    waiter.join(10)
    status, _h, body = result["reply"]
    assert status == 200
    assert [m["body"] for m in json.loads(body)["messages"]] == ["hi Alice"]


def test_forms_without_xsrf_or_with_bad_input_are_refused(chat: ChatServer) -> None:
    user = Browserless(chat.url)
    token = user.xsrf(user.sign_in("Carol"))
    status, _h, _ = user.request("/a/message/new", {"room": "lobby", "body": "x"})
    assert status == 403
    status, _h, _ = user.request("/a/message/new", {"_xsrf": token, "room": "lobby", "body": " "})
    assert status == 400
    status, _h, _ = user.request(
        "/a/message/new", {"_xsrf": token, "room": "bad room!", "body": "x"}
    )
    assert status == 400
    _s, _h, page = user.request("/auth/login")
    status, _h, page = user.request("/auth/login", {"_xsrf": user.xsrf(page), "name": "x" * 41})
    assert status == 400 and "1 to 40" in page


def test_tampered_sign_in_cookie_reads_as_signed_out(chat: ChatServer) -> None:
    user = Browserless(chat.url)
    user.sign_in("Mallory")
    cookie = next(c for c in user.jar if c.name == "chatuser")
    cookie.value = cookie.value.replace("TWFsbG9yeQ", "QWRtaW4")  # "Mallory" -> "Admin"
    status, headers, _ = user.request("/room/lobby")
    assert status == 302 and headers["Location"].startswith("/auth/login")


def test_german_from_accept_language_and_from_the_switcher(chat: ChatServer) -> None:
    german = Browserless(chat.url, language="de-DE,de;q=0.9,en;q=0.5")
    _s, _h, page = german.request("/auth/login")
    assert "Anmelden" in page and "Dein Name" in page

    english = Browserless(chat.url, language="en-US")
    page = english.sign_in("Dora")
    assert "Signed in as Dora" in page
    status, headers, _ = english.request(
        "/locale", {"_xsrf": english.xsrf(page), "lang": "de_DE", "next": "/room/lobby"}
    )
    assert status == 302 and headers["Location"] == "/room/lobby"
    _s, _h, page = english.request("/room/lobby")
    assert "Angemeldet als Dora" in page and "Senden" in page
    status, _h, _ = english.request("/locale", {"_xsrf": english.xsrf(page), "lang": "xx_XX"})
    assert status == 400


def test_websocket_clients_and_long_poll_see_the_same_messages(chat: ChatServer) -> None:
    eve = Browserless(chat.url)
    token = eve.xsrf(eve.sign_in("Eve"))
    cookie = eve.cookie_header()
    ws_url = chat.url.replace("http://", "ws://") + "/ws/random"

    async def scenario() -> list[str]:
        headers = {"Cookie": cookie, "Origin": chat.url}
        async with (
            websockets.connect(ws_url, additional_headers=headers) as one,
            websockets.connect(ws_url, additional_headers=headers) as two,
        ):
            await one.send(json.dumps({"body": "over the socket"}))
            got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in (one, two)]
            # A message posted by form reaches the sockets too.
            await asyncio.to_thread(
                eve.request, "/a/message/new", {"_xsrf": token, "room": "random", "body": "by form"}
            )
            got.append(json.loads(await asyncio.wait_for(two.recv(), 10)))
            return [g["message"]["body"] for g in got]

    assert asyncio.run(scenario()) == ["over the socket", "over the socket", "by form"]
    _s, _h, body = eve.request("/a/message/updates", {"_xsrf": token, "room": "random"})
    assert [m["body"] for m in json.loads(body)["messages"]][-2:] == ["over the socket", "by form"]


def test_websocket_without_sign_in_is_closed(chat: ChatServer) -> None:
    async def scenario() -> int | None:
        url = chat.url.replace("http://", "ws://") + "/ws/lobby"
        async with websockets.connect(url, additional_headers={"Origin": chat.url}) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code

    assert asyncio.run(scenario()) == 4001


def test_healthz(chat: ChatServer) -> None:
    with urllib.request.urlopen(chat.url + "/healthz", timeout=10) as resp:
        health = json.loads(resp.read())
    assert health["status"] == "ok" and health["broker"] == "MemoryBroker"
    assert health["rooms"] >= 3


# -- two browsers ----------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium")
def test_two_browsers_chat_in_two_languages(chat: ChatServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            english = browser.new_context(locale="en-US")
            german = browser.new_context(locale="de-DE")
            pages = []
            for context, name in ((english, "Ann"), (german, "Bernd")):
                page = context.new_page()
                page.goto(chat.url + "/room/browsers")
                page.fill("#name", name)
                page.click("#login button[type=submit]")
                page.wait_for_url("**/room/browsers")
                if not pages:  # the room does not exist yet: its page offers to create it
                    page.click("#missing button[type=submit]")
                    page.wait_for_url("**/room/browsers")
                pages.append(page)
            ann, bernd = pages
            expect(ann.locator("#status")).to_have_text("live", timeout=10_000)
            expect(bernd.locator("#status")).to_have_text("verbunden", timeout=10_000)
            assert "Signed in as Ann" in ann.inner_text("#whoami")
            assert "Angemeldet als Bernd" in bernd.inner_text("#whoami")

            ann.fill("#body", "Hello Bernd")
            ann.press("#body", "Enter")
            expect(bernd.locator("#inbox .message").last).to_contain_text("Ann: Hello Bernd")
            bernd.fill("#body", "Hallo Ann <3")
            bernd.click("#messageform button[type=submit]")
            expect(ann.locator("#inbox .message").last).to_contain_text("Bernd: Hallo Ann <3")

            # A third page on long polling only sees and sends messages too.
            poller = english.new_page()
            poller.goto(chat.url + "/room/browsers?transport=poll")
            expect(poller.locator("#status")).to_have_text("polling", timeout=10_000)
            expect(poller.locator("#inbox")).to_contain_text("Hallo Ann <3")
            poller.fill("#body", "from the poller")
            poller.press("#body", "Enter")
            expect(bernd.locator("#inbox .message").last).to_contain_text("from the poller")
            ann.fill("#body", "to the poller")
            ann.press("#body", "Enter")
            expect(poller.locator("#inbox .message").last).to_contain_text("to the poller")
        finally:
            browser.close()


# -- two processes, one redis ----------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("needs redis-server (Debian package redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_two_processes_share_rooms_through_redis(redis_url: str) -> None:
    first, second = ChatServer(f"--broker={redis_url}"), None
    try:
        second = ChatServer(f"--broker={redis_url}")
        users = [Browserless(first.url), Browserless(second.url)]
        tokens = [u.xsrf(u.sign_in(n)) for u, n in zip(users, ("Uno", "Dos"), strict=True)]

        async def scenario() -> list[str]:
            sockets = [
                websockets.connect(
                    s.url.replace("http://", "ws://") + "/ws/lobby",
                    additional_headers={"Cookie": u.cookie_header(), "Origin": s.url},
                )
                for s, u in ((first, users[0]), (second, users[1]))
            ]
            async with sockets[0] as one, sockets[1] as two:
                await one.send(json.dumps({"body": "from process one"}))
                await two.send(json.dumps({"body": "from process two"}))
                seen = []
                for ws in (one, two):
                    for _ in range(2):
                        seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                return sorted({m["message"]["body"] for m in seen})

        assert asyncio.run(scenario()) == ["from process one", "from process two"]
        # History on each process holds the other's message too.
        _s, _h, body = users[1].request("/a/message/updates", {"_xsrf": tokens[1], "room": "lobby"})
        assert "from process one" in [m["body"] for m in json.loads(body)["messages"]]
        with urllib.request.urlopen(second.url + "/healthz", timeout=10) as resp:
            assert json.loads(resp.read())["broker"] == "RedisBroker"
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()


def test_workers_share_rooms_through_redis(redis_url: str) -> None:
    """`asyncweb serve --workers 2` runs the chat; clients land on both workers (SO_REUSEPORT
    or a shared socket) and still see one conversation."""
    server = ChatServer(workers=2, env={"CHAT_BROKER": redis_url, "CHAT_COOKIE_SECRET": SECRET})
    try:
        pids: set[int] = set()
        for _ in range(200):
            with urllib.request.urlopen(server.url + "/healthz", timeout=10) as resp:
                health = json.loads(resp.read())
            assert health["broker"] == "RedisBroker"
            pids.add(health["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, "one worker answered every connection"

        user = Browserless(server.url)
        user.sign_in("Worker Fan")  # the cookie secret is shared: any worker accepts it
        headers = {"Cookie": user.cookie_header(), "Origin": server.url}
        ws_url = server.url.replace("http://", "ws://") + "/ws/lobby"

        async def scenario() -> list[str]:
            sockets = [websockets.connect(ws_url, additional_headers=headers) for _ in range(6)]
            async with sockets[0] as first:
                opened = [await s.__aenter__() for s in sockets[1:]]
                try:
                    await first.send(json.dumps({"body": "to every worker"}))
                    got = [await asyncio.wait_for(ws.recv(), 10) for ws in [first, *opened]]
                finally:
                    for ws in opened:
                        await ws.close()
            return [json.loads(g)["message"]["body"] for g in got]

        assert asyncio.run(scenario()) == ["to every worker"] * 6
    finally:
        server.stop()
    assert server.proc.returncode == 0
