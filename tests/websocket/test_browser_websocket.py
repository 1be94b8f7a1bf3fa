"""A real browser: headless Chromium opens a page served by asyncweb and talks WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncweb import web
from asyncweb.websocket import TransportConnection, WebSocketHandler
from tests.support.browser import launch_chromium
from tests.support.servers import Serve

pytest.importorskip("playwright.async_api")

PAGE = """<!doctype html>
<html><head><title>ws test</title></head><body>
<script>
window.log = [];
const ws = new WebSocket(`ws://${location.host}/ws?name=chromium`);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  ws.send("hello from the browser");
  ws.send(new Uint8Array([0, 1, 2, 255]).buffer);
  ws.send("ünïcödé 😀");
  ws.send("x".repeat(200000));
};
ws.onmessage = (event) => {
  if (typeof event.data === "string") {
    window.log.push(event.data.length > 1000 ? "long:" + event.data.length : event.data);
  } else {
    window.log.push("bytes:" + Array.from(new Uint8Array(event.data)).join(","));
  }
  if (window.log.length === 5) ws.close(4000, "browser done");
};
ws.onclose = (event) => {
  window.wsClosed = {code: event.code, reason: event.reason, clean: event.wasClean};
};
</script></body></html>
"""

server_events: list[Any] = []


class PageHandler(web.RequestHandler):
    def get(self) -> None:
        self.write(PAGE)


class BrowserSocket(WebSocketHandler):
    def get_compression_options(self) -> dict[str, Any]:
        return {}

    def open(self) -> None:
        server_events.append(("open", self.get_argument("name"), self.request.headers["Origin"]))
        # Chromium offers permessage-deflate; the handler accepts it.
        assert isinstance(self.ws_connection, TransportConnection)
        server_events.append(("compressed", self.ws_connection.protocol.compressed))
        self.write_message("welcome " + self.get_argument("name"))

    def on_message(self, message: str | bytes) -> None:
        server_events.append(("message", message if len(message) < 1000 else len(message)))
        if isinstance(message, bytes):
            self.write_message(bytes(reversed(message)), binary=True)
        else:
            self.write_message("echo: " + message if len(message) < 1000 else message)

    def on_close(self) -> None:
        server_events.append(("close", self.close_code, self.close_reason))


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with launch_chromium() as instance:
        yield instance


async def test_browser_exchanges_messages(serve: Serve, browser: Any) -> None:
    server_events.clear()
    url = await serve(web.Application([(r"/", PageHandler), (r"/ws", BrowserSocket)]))
    page = await browser.new_page()
    await page.goto(url + "/")
    await page.wait_for_function("window.wsClosed !== undefined", timeout=10000)
    log = await page.evaluate("window.log")
    closed = await page.evaluate("window.wsClosed")
    assert log == [
        "welcome chromium",
        "echo: hello from the browser",
        "bytes:255,2,1,0",
        "echo: ünïcödé 😀",
        "long:200000",
    ]
    assert closed == {"code": 4000, "reason": "browser done", "clean": True}
    assert server_events[0] == ("open", "chromium", url)
    assert server_events[1] == ("compressed", True)
    assert ("message", b"\x00\x01\x02\xff") in server_events
    assert ("message", 200000) in server_events
    assert server_events[-1] == ("close", 4000, "browser done")
    await page.close()
