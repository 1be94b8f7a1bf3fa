"""Headless Chromium over TLS + ALPN: a page and its 50 static assets over one HTTP/2
connection."""

from __future__ import annotations

from pathlib import Path

from asyncweb import web
from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets
from asyncweb.protocol.h2_select import HTTPVersionSelector
from asyncweb.protocol.http2 import HTTP2ServerProtocol
from tests.protocol.test_http2 import tls_contexts
from tests.support.browser import launch_chromium

ASSETS = 50


class Page(web.RequestHandler):
    def get(self) -> None:
        images = "".join(f'<img src="{self.static_url(f"img{i}.svg")}">' for i in range(ASSETS))
        self.write(f"<!doctype html><title>h2</title><body>{images}</body>")


async def test_chromium_loads_50_assets_over_one_h2_connection(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    for i in range(ASSETS):
        (static / f"img{i}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><text>{i}</text></svg>'
        )
    ctx, _ = tls_contexts(tmp_path)
    app = web.Application([(r"/", Page)], static_path=str(static))
    server = HTTPServer(app, http2=True, ssl_options=ctx)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    url = f"https://localhost:{sockets[0].getsockname()[1]}/"
    try:
        async with launch_chromium() as browser:
            # The CA is the test's own: the context ignores certificate errors.
            context = await browser.new_context(ignore_https_errors=True)
            page = await context.new_page()
            await page.goto(url.replace("localhost", "127.0.0.1"), wait_until="load")
            entries = await page.evaluate(
                """() => performance.getEntriesByType('resource').map(
                    e => [e.name, e.nextHopProtocol, e.responseStatus ?? 200])"""
            )
            navigation = await page.evaluate(
                "() => performance.getEntriesByType('navigation')[0].nextHopProtocol"
            )
            loaded = await page.evaluate(
                "() => Array.from(document.images).filter(i => i.naturalWidth > 0).length"
            )
            # Connections that got as far as a protocol (Chromium may open a spare socket that
            # never finishes its TLS handshake).
            chosen = [
                conn.chosen
                for conn in server._connections
                if isinstance(conn, HTTPVersionSelector) and conn.chosen is not None
            ]
            await context.close()
        assert navigation == "h2"
        assets = [entry for entry in entries if "/static/img" in entry[0]]
        assert len(assets) == ASSETS
        # Every resource the page fetched (assets, and the favicon where it is one) came by h2.
        assert {protocol for _, protocol, _ in entries} == {"h2"}
        assert loaded == ASSETS
        assert len(chosen) == 1 and isinstance(chosen[0], HTTP2ServerProtocol)
    finally:
        server.stop()
        await server.close_all_connections()
