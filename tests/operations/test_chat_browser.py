"""The chat in headless Chromium: layout with long words on a desktop and a phone, one rendering
for live and reloaded messages, reconnection through a proxy the test cuts, favicon and error
pages. Each test fails on the chat as it was before issue 18."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.operations.test_chat import Browserless, ChatServer
from tests.support.browser import CHROMIUM, LAUNCH_ARGS

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")

LONG_URL = "https://example.com/" + "a" * 250 + "?q=1"  # 270 characters, no break opportunity
LONG_WORD = "W" * 300


@pytest.fixture(scope="module")
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    try:
        yield server
    finally:
        err = server.stop()
        assert server.proc.returncode == 0, err


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def enter(browser: Any, base: str, room: str, name: str, **context: Any) -> Any:
    """A new browser context signed in as ``name`` on ``room``'s page (created if needed)."""
    page = browser.new_context(**context).new_page()
    page.goto(f"{base}/room/{room}")
    page.fill("#name", name)
    page.click("#login button[type=submit]")
    page.wait_for_url(f"**/room/{room}")
    if page.locator("#missing").count():
        page.click("#missing button[type=submit]")
        page.wait_for_url(f"**/room/{room}")
    return page


def say(page: Any, text: str) -> None:
    from playwright.sync_api import expect

    before = page.locator("#inbox .message").count()
    page.fill("#body", text)
    page.press("#body", "Enter")
    expect(page.locator("#inbox .message")).to_have_count(before + 1, timeout=10_000)


# -- 1. layout ---------------------------------------------------------------------------------

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const right = (sel) => document.querySelector(sel).getBoundingClientRect().right;
  const aside = document.querySelector("aside").getBoundingClientRect();
  const room = document.querySelector("#room").getBoundingClientRect();
  return {width, scroll: document.documentElement.scrollWidth,
          send: right("#messageform button"), header: right("header nav"),
          stacked: aside.bottom <= room.top + 1};
}"""


@pytest.mark.parametrize("viewport", [(1100, 800), (390, 844)], ids=["desktop", "phone"])
def test_long_words_and_urls_wrap_instead_of_widening_the_page(
    chat: ChatServer, browser: Any, viewport: tuple[int, int]
) -> None:
    width, height = viewport
    room = f"wide{width}"
    page = enter(browser, chat.url, room, "Wrapper", viewport={"width": width, "height": height})
    say(page, f"look {LONG_URL} here")
    say(page, LONG_WORD)
    for state in ("live", "reloaded"):
        if state == "reloaded":
            page.reload()
        box = page.evaluate(OVERFLOW)
        assert box["scroll"] <= box["width"], (state, box)  # no horizontal scrolling
        assert box["send"] <= box["width"] and box["header"] <= box["width"], (state, box)
        assert box["stacked"] == (width < 640), (state, box)  # the room list stacks on phones
    page.context.close()


# -- 3. one rendering --------------------------------------------------------------------------

MESSAGE_VIEW = """(id) => {
  const li = document.getElementById("m" + id);
  const links = Array.from(li.querySelectorAll("a"));
  return {html: li.outerHTML,
          weight: getComputedStyle(li.querySelector(".from")).fontWeight,
          body: li.querySelector(".body").textContent,
          time: li.querySelector("time[datetime]") ? li.querySelector("time").textContent : "",
          links: links.map((a) => ({href: a.getAttribute("href"), rel: a.rel})),
          images: li.querySelectorAll("img").length,
          count: document.getElementById("count").textContent,
          shown: document.querySelectorAll("#inbox .message").length};
}"""


def test_live_and_reloaded_messages_are_rendered_alike(chat: ChatServer, browser: Any) -> None:
    # An empty room: nothing rendered at load, so every style must come from the stylesheet.
    reader = enter(browser, chat.url, "rendering", "Reader")
    writer = enter(browser, chat.url, "rendering", "Writer")
    text = (
        "see https://example.com/a?b=1&c=2 and http://x.test/<b>, not javascript:alert(1) "
        'nor <img src=x onerror="alert(1)"> www.example.org'
    )
    say(writer, text)
    say(writer, "second")
    from playwright.sync_api import expect

    expect(reader.locator("#inbox .message")).to_have_count(2, timeout=10_000)
    first_id = reader.locator("#inbox .message").first.get_attribute("id")[1:]
    live = reader.evaluate(MESSAGE_VIEW, first_id)
    reader.reload()
    reloaded = reader.evaluate(MESSAGE_VIEW, first_id)
    assert live == reloaded
    assert live["count"] == "2 messages" and live["shown"] == 2
    assert int(live["weight"]) >= 600
    assert live["body"] == text and live["images"] == 0
    assert live["time"].strip() != ""
    hrefs = [link["href"] for link in live["links"]]
    assert hrefs == ["https://example.com/a?b=1&c=2", "http://x.test/"]
    assert all("noopener" in link["rel"] for link in live["links"])


# -- 2. reconnection ---------------------------------------------------------------------------


class CuttableProxy:
    """A loopback TCP proxy in front of the chat. ``cut()`` drops every open connection;
    in ``hold`` mode new connections wait (accepted, not forwarded) until ``mode`` changes;
    in ``refuse`` mode they are closed at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._mode = "pass"
        self._changed = threading.Condition()
        self._open: list[socket.socket] = []
        self._all: list[socket.socket] = []  # closed by close(), so none is left to the GC
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        with self._changed:
            self._mode = value
            self._changed.notify_all()

    def cut(self) -> None:
        with self._changed:
            sockets, self._open = self._open, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
        self.mode = "refuse"
        self.cut()
        for sock in self._all:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._all.append(client)
            if self._mode == "refuse":
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._mode != "hold")
            if self._mode == "refuse":
                client.close()
                return
            self._open.append(client)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        with self._changed:
            self._open.append(upstream)
            self._all.append(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(chat: ChatServer) -> Iterator[CuttableProxy]:
    made = CuttableProxy(chat.port)
    yield made
    made.close()


def post_directly(chat: ChatServer, user: Browserless, token: str, room: str, body: str) -> str:
    status, _h, reply = user.request("/a/message/new", {"_xsrf": token, "room": room, "body": body})
    assert status == 200, reply
    message_id: str = json.loads(reply)["id"]
    return message_id


def test_websocket_reconnect_catches_up_on_missed_messages(
    chat: ChatServer, browser: Any, proxy: CuttableProxy
) -> None:
    from playwright.sync_api import expect

    page = enter(browser, proxy.url, "resume", "Resumer")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "live", timeout=10_000)
    say(page, "before the cut")

    poster = Browserless(chat.url)  # straight to the server, not through the proxy
    token = poster.xsrf(poster.sign_in("Poster"))
    proxy.mode = "hold"
    proxy.cut()
    expect(status).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    expect(status).to_contain_text("reconnecting")
    missed = [post_directly(chat, poster, token, "resume", f"missed {n}") for n in range(3)]
    proxy.mode = "pass"

    expect(status).to_have_attribute("data-state", "live", timeout=20_000)
    for message_id in missed:
        expect(page.locator(f"#m{message_id}")).to_have_count(1, timeout=10_000)
    expect(page.locator("#count")).to_have_text("4 messages")
    # And the socket it came back on carries new messages as before.
    fresh = post_directly(chat, poster, token, "resume", "after the reconnect")
    expect(page.locator(f"#m{fresh}")).to_have_count(1, timeout=10_000)
    page.context.close()


RECORD_STATES = """() => {
  window.seenStates = [];
  const status = document.getElementById("status");
  new MutationObserver(() => window.seenStates.push([status.dataset.state, status.dataset.retry]))
    .observe(status, {attributes: true, attributeFilter: ["data-retry"]});
}"""


def test_reconnect_backs_off_and_shows_its_state(
    chat: ChatServer, browser: Any, proxy: CuttableProxy
) -> None:
    from playwright.sync_api import expect

    page = enter(browser, proxy.url, "lobby", "Patient")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "live", timeout=10_000)
    # Every state the status element goes through, recorded in the page as it happens.
    page.evaluate(RECORD_STATES)
    proxy.mode = "refuse"
    accepted = proxy.accepted
    proxy.cut()
    page.wait_for_function("window.seenStates.length >= 3", timeout=30_000)
    seen = page.evaluate("window.seenStates")
    assert seen[:3] == [["reconnecting", "500"], ["reconnecting", "1000"], ["reconnecting", "2000"]]
    assert proxy.accepted - accepted >= 2  # refused twice before the 2000 ms wait
    assert page.evaluate("[asyncwebChat.backoff(3), asyncwebChat.backoff(40)]") == [4000, 15000]
    proxy.mode = "pass"
    expect(status).to_have_attribute("data-state", "live", timeout=30_000)
    assert status.get_attribute("data-retry") is None
    page.context.close()


# -- 5. favicon and error pages ----------------------------------------------------------------


def test_pages_load_without_errors_and_have_an_icon(chat: ChatServer, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    failures: list[str] = []
    page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
    page.goto(chat.url + "/auth/login?next=/room/lobby")
    page.fill("#name", "Iconic")
    page.click("#login button[type=submit]")
    page.wait_for_url("**/room/lobby")
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=10_000)
    assert failures == []
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    with urllib.request.urlopen(chat.url + icon, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("image/svg+xml")
        assert resp.read().startswith(b"<svg")
    context.close()


ERROR_VIEW = """() => ({font: getComputedStyle(document.body).fontFamily,
  header: document.querySelector("header h1") && document.querySelector("header h1").textContent,
  title: document.querySelector("#error h2") && document.querySelector("#error h2").textContent})"""


@pytest.mark.parametrize(
    "path, status, title",
    [("/no/such/page", 404, "404 Not Found"), ("/room/no-such-room", 404, "There is no room")],
)
def test_error_pages_use_the_chat_layout(
    chat: ChatServer, browser: Any, path: str, status: int, title: str
) -> None:
    page = enter(browser, chat.url, "lobby", "Lost")
    response = page.goto(chat.url + path)
    assert response.status == status
    view = page.evaluate(ERROR_VIEW)
    assert "system-ui" in view["font"] and view["header"] == "asyncweb chat"
    assert title in page.inner_text("main")
    page.context.close()
