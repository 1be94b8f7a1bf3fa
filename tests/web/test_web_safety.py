"""asyncweb.web over a real server: responses that must never hang, and redirects and cookies
that must never be turned against the site."""

from __future__ import annotations

import asyncio
import http.cookies
import logging
from typing import Any

import pytest

from asyncweb.web import (
    Application,
    Finish,
    HTTPError,
    RedirectHandler,
    RequestHandler,
    addslash,
    removeslash,
    stream_request_body,
)
from tests.support.servers import Fetch, Serve, raw_exchange, wait_until


def get(path: str, *, close: bool = True) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + connection + b"\r\n"


# -- bodiless error statuses -------------------------------------------------------------------


class Bodiless(RequestHandler):
    write_error_calls: list[int] = []

    def get(self, kind: str) -> None:
        if kind == "raise-304":
            raise HTTPError(304)
        if kind == "send-304":
            self.write("dropped")
            self.send_error(304)
        elif kind == "raise-204":
            raise HTTPError(204)
        elif kind == "ok":
            self.write("ok")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        Bodiless.write_error_calls.append(status_code)
        self.finish(f"page for {status_code}")


@pytest.mark.parametrize(
    ("kind", "status_line"),
    [
        ("raise-304", b"HTTP/1.1 304 Not Modified\r\n"),
        ("send-304", b"HTTP/1.1 304 Not Modified\r\n"),
        ("raise-204", b"HTTP/1.1 204 No Content\r\n"),
    ],
)
async def test_bodiless_error_status_is_answered(
    serve: Serve, kind: str, status_line: bytes
) -> None:
    Bodiless.write_error_calls.clear()
    base = await serve(Application([("/(.*)", Bodiless)]))
    # Pipelined: the connection must stay usable after the bodiless answer.
    out = await raw_exchange(base, get("/" + kind, close=False) + get("/ok"), read_timeout=20)
    assert out.startswith(status_line), out
    first, second = out.split(b"\r\n\r\n", 1)
    assert b"Content-Length" not in first and b"Content-Type" not in first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"\r\n\r\nok")
    assert Bodiless.write_error_calls == []  # no page for a status that can't carry one


# -- cookies ---------------------------------------------------------------------------------


class BadCookies(RequestHandler):
    def get(self) -> None:
        refused = []
        attempts: list[dict[str, Any]] = [
            {"path": "/\r\nX-Injected: 1"},
            {"domain": "x.com\r\nX-Injected: 1"},
            {"domain": "x.com; secure"},
            {"samesite": "Lax\nX-Injected: 1"},
            {"comment": "a\r\nX-Injected: 1"},
            {"max_age": "1\r\nX-Injected: 1"},
        ]
        for attempt in attempts:
            try:
                self.set_cookie("c", "v", **attempt)
            except ValueError as e:
                # Refused right here, and catchable as the cookie module's error too.
                assert isinstance(e, http.cookies.CookieError)
                refused.append(next(iter(attempt)))
        self.set_cookie("good", "v", domain="x.com", path="/p", samesite="Strict")
        self.write(",".join(refused))


class UncaughtBadCookie(RequestHandler):
    def get(self) -> None:
        self.set_cookie("c", "v", path="/\r\nX-Injected: 1")


async def test_cookie_attributes_with_line_breaks_refused(serve: Serve) -> None:
    base = await serve(Application([("/", BadCookies), ("/uncaught", UncaughtBadCookie)]))
    out = await raw_exchange(base, get("/"), read_timeout=20)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"\r\n\r\npath,domain,domain,samesite,comment,max_age")
    assert b"X-Injected" not in out
    head = out.split(b"\r\n\r\n")[0]
    assert b"Set-Cookie: good=v; Domain=x.com; Path=/p; SameSite=Strict" in head
    assert b"Set-Cookie: c=" not in head
    out = await raw_exchange(base, get("/uncaught"), read_timeout=20)
    assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"X-Injected" not in out


# -- heads the protocol refuses --------------------------------------------------------------


class UnsendableHead(RequestHandler):
    def get(self, kind: str) -> None:
        if kind == "length":
            self.set_header("Content-Length", "many")  # no control character, still invalid
        elif kind == "value":
            self._headers["X-Bad"] = "a\r\nX-Injected: 1"  # bypasses set_header's check
        elif kind == "name":
            self._headers.add("Bad Name", "v")
        self.write("body")

    async def post(self, kind: str) -> None:
        self._headers["X-Bad"] = "a\nb"
        self.write("streamed")
        await self.flush()  # raises: the head is refused


class FinishWithBadHead(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Length", "x")
        raise Finish("never")


class BrokenErrorPath(RequestHandler):
    broken = False

    def set_default_headers(self) -> None:
        if self.broken:
            raise RuntimeError("set_default_headers fails from now on")

    async def get(self) -> None:
        self.broken = True
        raise ValueError("first failure")  # send_error's clear() then fails too


class UnsendableDefaults(RequestHandler):
    """Even the error page inherits the broken header: only a bare 500 can go out."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Length", "zz")

    def get(self) -> None:
        self.write("body")


class NothingSendable(RequestHandler):
    def prepare(self) -> None:
        def refuse(*args: Any, **kwargs: Any) -> None:
            raise ValueError("this connection can't send a head")

        connection: Any = self.request.connection
        connection.write_headers = refuse  # instance attribute: this connection only

    def get(self) -> None:
        self.write("never sent")


async def test_refused_head_becomes_500(
    serve: Serve, protocol_settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(
        Application(
            [
                ("/defaults", UnsendableDefaults),
                ("/finish", FinishWithBadHead),
                ("/broken", BrokenErrorPath),
                ("/(.*)", UnsendableHead),
            ]
        ),
        **protocol_settings,
    )
    with caplog.at_level(logging.CRITICAL):
        for request in (
            get("/length", close=False),
            get("/value", close=False),
            get("/name", close=False),
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        ):
            out = await raw_exchange(base, request + get("/ok"), read_timeout=20)
            assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), (request, out)
            assert b"X-Injected" not in out and b"X-Bad" not in out
            # The 500 is well framed: the next request on the connection is answered too.
            assert out.count(b"HTTP/1.1 ") == 2 and out.endswith(b"\r\n\r\nbody"), out
        out = await raw_exchange(base, get("/defaults"), read_timeout=20)
        assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert out.endswith(b"<body>500</body></html>")
        out = await raw_exchange(base, get("/finish"), read_timeout=20)
        assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        out = await raw_exchange(base, get("/broken"), read_timeout=20)
        assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
        assert out.endswith(b"<body>500</body></html>")


async def test_nothing_sendable_closes_connection(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(Application([("/", NothingSendable)]))
    with caplog.at_level(logging.CRITICAL):
        # Closed by the server: a keep-alive connection left open would hit the hang guard.
        exchange = raw_exchange(base, get("/", close=False), read_timeout=60)
        out = await asyncio.wait_for(exchange, 20)
    assert out == b""


# -- redirects built from the request path -----------------------------------------------------


class Slashed(RequestHandler):
    @addslash
    def get(self) -> None:
        self.write("added")

    @removeslash
    def head(self) -> None:
        pass


class Unslashed(RequestHandler):
    @removeslash
    def get(self) -> None:
        self.write("removed")


async def test_redirect_decorators_never_leave_the_site(serve: Serve) -> None:
    base = await serve(Application([("/rm/.*", Unslashed), ("/.*", Slashed)]))
    for path in ("//evil.com", "/\\evil.com", "/\\/evil.com"):
        out = await raw_exchange(base, get(path), read_timeout=20)
        assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n"), (path, out)
        assert b"Location" not in out
    # removeslash: "//evil.com//" would shrink to "//evil.com".
    out = await raw_exchange(
        base, b"HEAD //evil.com// HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"Location" not in out
    # Ordinary paths still redirect, doubled slashes inside the path included.
    out = await raw_exchange(base, get("/a//b?q=1"))
    assert out.startswith(b"HTTP/1.1 301 ") and b"\r\nLocation: /a//b/?q=1\r\n" in out
    out = await raw_exchange(base, get("/rm//evil.com/"))
    assert out.startswith(b"HTTP/1.1 301 ") and b"\r\nLocation: /rm//evil.com\r\n" in out


async def test_redirect_handler_keeps_scheme_and_host(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            ("/r/(.*)", RedirectHandler, {"url": "/{0}"}),
            ("/in/(.*)", RedirectHandler, {"url": "/inner/{0}/end"}),
            ("/abs(.*)", RedirectHandler, {"url": "https://example.com{0}"}),
            ("/host/(.*)", RedirectHandler, {"url": "https://{0}/x"}),
            ("/any/(.*)", RedirectHandler, {"url": "{0}"}),
        ]
    )
    base = await serve(app)
    for path in (
        "/r//evil.com",
        "/r/%2F%2Fevil.com",
        "/r/%5Cevil.com",
        "/r/%09/evil.com",
        "/abs@evil.com",
        "/abs.evil.com",
        "/host/anything.com",
        "/any/https://evil.com",
        "/any/javascript:alert(1)",
        "/any///evil.com",
    ):
        resp = await fetch(base + path)
        assert resp.status == 400, path
        assert "Location" not in resp.headers
    resp = await fetch(base + "/r/%0D%0AX-Injected:%201")
    assert resp.status == 400 and "X-Injected" not in resp.headers
    for path, location in (
        ("/r/page?a=1", "/page?a=1"),
        ("/r/a//b", "/a//b"),
        ("/r/https://evil.com", "/https://evil.com"),  # a path on this site
        ("/in//evil.com", "/inner//evil.com/end"),
        ("/abs/p/q", "https://example.com/p/q"),
        ("/any/elsewhere", "elsewhere"),
    ):
        resp = await fetch(base + path)
        assert (resp.status, resp.headers["Location"]) == (301, location), path


# -- streaming bodies: close notification ------------------------------------------------------


@stream_request_body
class StreamingUpload(RequestHandler):
    events: list[str] = []

    def data_received(self, chunk: bytes) -> None:
        StreamingUpload.events.append("data")

    def put(self) -> None:
        self.write("done")

    def on_connection_close(self) -> None:
        StreamingUpload.events.append("close")
        super().on_connection_close()


async def test_stream_handler_hears_of_close_once(serve: Serve) -> None:
    StreamingUpload.events.clear()
    base = await serve(Application([("/up", StreamingUpload)]))
    host, port = base.rsplit("//", 1)[1].split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    await writer.drain()
    await wait_until(lambda: "data" in StreamingUpload.events)
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: "close" in StreamingUpload.events)
    await asyncio.sleep(0.1)  # room for a second, wrong notification
    assert StreamingUpload.events == ["data", "close"]
