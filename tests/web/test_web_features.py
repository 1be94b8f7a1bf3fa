"""asyncweb.web: cookies, etags, streaming bodies, gzip, Application features, the hot path."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import urllib.parse
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.web import (
    Application,
    GZipContentEncoding,
    RequestHandler,
    stream_request_body,
    url,
)
from tests.support.servers import Fetch, Serve, free_port, raw_exchange

# -- cookies ---------------------------------------------------------------------------------


class Cookies(RequestHandler):
    def get(self, action: str) -> None:
        if action == "read":
            self.write(
                {
                    "a": self.get_cookie("a"),
                    "missing": self.get_cookie("missing", "dflt"),
                    "names": sorted(self.cookies),
                }
            )
        elif action == "set":
            self.set_cookie("plain", "v")
            self.set_cookie(
                "full",
                "x",
                domain="example.com",
                path="/p",
                expires_days=1,
                max_age=60,
                httponly=True,
                secure=True,
                samesite="Lax",
            )
            self.set_cookie("twice", "1")
            self.set_cookie("twice", "2")
        elif action == "clear":
            self.clear_cookie("a", path="/p")
        elif action == "clear-all":
            self.clear_all_cookies()
        elif action == "bad":
            for value in ("a b", "a;\r\nb"):
                try:
                    self.set_cookie("n", value)
                except ValueError:
                    self.write("refused;")
            try:
                self.clear_cookie("n", expires=1)
            except TypeError:
                self.write("typeerror")


async def test_read_cookies(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(\w[\w-]*)", Cookies)]))
    resp = await fetch(base + "/read", headers={"Cookie": "a=1; b=2"})
    assert json.loads(resp.body) == {"a": "1", "missing": "dflt", "names": ["a", "b"]}


async def test_set_cookies(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(\w[\w-]*)", Cookies)]))
    resp = await fetch(base + "/set")
    cookies = resp.headers.get_all("Set-Cookie")
    assert cookies is not None
    assert "plain=v; Path=/" in cookies
    assert "twice=2; Path=/" in cookies
    assert not any(c.startswith("twice=1") for c in cookies)
    full = next(c for c in cookies if c.startswith("full="))
    for part in (
        "Domain=example.com",
        "Path=/p",
        "Max-Age=60",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "expires=",
    ):
        assert part in full
    assert full.endswith("GMT") or "GMT;" in full


async def test_clear_cookies(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(\w[\w-]*)", Cookies)]))
    resp = await fetch(base + "/clear")
    (cookie,) = resp.headers.get_all("Set-Cookie") or []
    assert cookie.startswith('a=""; expires=') and "Path=/p" in cookie
    resp = await fetch(base + "/clear-all", headers={"Cookie": "a=1; b=2"})
    cookies = resp.headers.get_all("Set-Cookie") or []
    assert sorted(c.split("=")[0] for c in cookies) == ["a", "b"]
    assert (await fetch(base + "/bad")).body == b"refused;refused;typeerror"


# -- etags -------------------------------------------------------------------------------------


class Etagged(RequestHandler):
    def get(self) -> None:
        self.write("cacheable body")


class NoEtag(RequestHandler):
    def compute_etag(self) -> str | None:
        return None

    def get(self) -> None:
        self.write("x")


class ExplicitEtag(RequestHandler):
    def get(self) -> None:
        self.set_header("Etag", '"fixed"')
        self.write("x")


async def test_etag_and_304(serve: Serve, fetch: Fetch) -> None:
    base = await serve(
        Application([("/", Etagged), ("/none", NoEtag), ("/explicit", ExplicitEtag)])
    )
    resp = await fetch(base + "/")
    etag = resp.headers["Etag"]
    assert etag.startswith('"') and len(etag) == 42  # a quoted SHA-1
    for inm in (etag, "W/" + etag, f'"other", {etag}', "*"):
        resp = await fetch(base + "/", headers={"If-None-Match": inm})
        assert resp.status == 304, inm
        assert resp.body == b""
        assert "Content-Type" not in resp.headers
        assert "Content-Length" not in resp.headers
    resp = await fetch(base + "/", headers={"If-None-Match": '"other"'})
    assert (resp.status, resp.body) == (200, b"cacheable body")
    resp = await fetch(base + "/", method="POST", body=b"", headers={"If-None-Match": "*"})
    assert resp.status == 405
    resp = await fetch(base + "/none", headers={"If-None-Match": "*"})
    assert resp.status == 200 and "Etag" not in resp.headers
    resp = await fetch(base + "/explicit", headers={"If-None-Match": '"fixed"'})
    assert resp.status == 200  # an explicit Etag is the handler's business, as in Tornado


# -- streaming request bodies ----------------------------------------------------------------


@stream_request_body
class Upload(RequestHandler):
    def prepare(self) -> None:
        self.chunks: list[bytes] = []
        self.request.connection.set_max_body_size(10_000_000)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        assert isinstance(chunk, bytes)
        self.chunks.append(chunk)

    def put(self) -> None:
        body = b"".join(self.chunks)
        self.write(
            {"len": len(body), "chunks": len(self.chunks) > 0, "body": self.request.body.decode()}
        )


@stream_request_body
class SlowUpload(RequestHandler):
    async def prepare(self) -> None:
        await asyncio.sleep(0.01)
        self.total = 0

    async def data_received(self, chunk: bytes) -> None:
        await asyncio.sleep(0)
        self.total += len(chunk)

    async def post(self) -> None:
        self.write(str(self.total))


@stream_request_body
class RejectingUpload(RequestHandler):
    def prepare(self) -> None:
        self.send_error(403)

    def post(self) -> None:
        raise AssertionError("not reached")


@stream_request_body
class FailingUpload(RequestHandler):
    def data_received(self, chunk: bytes) -> None:
        raise ValueError("bad chunk")

    def post(self) -> None:
        raise AssertionError("not reached")


async def test_stream_request_body(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            ("/up", Upload),
            ("/slow", SlowUpload),
            ("/reject", RejectingUpload),
            ("/fail", FailingUpload),
        ]
    )
    base = await serve(app, max_body_size=1000)
    data = b"x" * 300_000
    resp = await fetch(base + "/up", method="PUT", body=data)
    assert json.loads(resp.body) == {"len": 300_000, "chunks": True, "body": ""}
    assert (await fetch(base + "/slow", method="POST", body=b"y" * 900)).body == b"900"
    assert (await fetch(base + "/reject", method="POST", body=b"z" * 100)).status == 403
    assert (await fetch(base + "/fail", method="POST", body=b"z" * 100)).status == 500


async def test_stream_request_body_chunked(serve: Serve) -> None:
    base = await serve(Application([("/up", Upload)]))
    out = await raw_exchange(
        base,
        b"PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b'"len": 5' in out


def test_stream_request_body_requires_handler() -> None:
    with pytest.raises(TypeError):
        stream_request_body(int)  # type: ignore[type-var]


# -- gzip ------------------------------------------------------------------------------------


class Big(RequestHandler):
    def get(self, kind: str) -> None:
        if kind == "json":
            self.write({"data": "y" * 3000})
        elif kind == "png":
            self.set_header("Content-Type", "image/png")
            self.write(b"z" * 3000)
        elif kind == "small":
            self.write("tiny")
        elif kind == "vary":
            self.set_header("Vary", "Cookie")
            self.write("v" * 3000)
        else:
            self.write("x" * 3000)


class BigStream(RequestHandler):
    async def get(self) -> None:
        self.write("a" * 100)
        await self.flush()
        self.write("b" * 100)
        await self.flush()
        self.finish("c" * 10)


async def test_gzip(serve: Serve, fetch: Fetch) -> None:
    app = Application([("/stream", BigStream), (r"/(\w*)", Big)], compress_response=True)
    assert GZipContentEncoding in app.transforms
    base = await serve(app)
    gz = {"Accept-Encoding": "gzip"}
    resp = await fetch(base + "/text", headers=gz)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert int(resp.headers["Content-Length"]) == len(resp.body) < 3000
    assert gzip.decompress(resp.body) == b"x" * 3000
    resp = await fetch(base + "/json", headers=gz)
    assert json.loads(gzip.decompress(resp.body)) == {"data": "y" * 3000}
    for kind in ("png", "small"):
        resp = await fetch(base + "/" + kind, headers=gz)
        assert "Content-Encoding" not in resp.headers, kind
        assert resp.headers["Vary"] == "Accept-Encoding"
    resp = await fetch(base + "/vary", headers=gz)
    assert resp.headers["Vary"] == "Cookie, Accept-Encoding"
    resp = await fetch(base + "/text")
    assert "Content-Encoding" not in resp.headers and resp.body == b"x" * 3000
    resp = await fetch(base + "/stream", headers=gz)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in resp.headers
    assert gzip.decompress(resp.body) == b"a" * 100 + b"b" * 100 + b"c" * 10


async def test_gzip_setting_alias_and_explicit_transforms() -> None:
    assert Application(gzip=True).transforms == [GZipContentEncoding]
    assert Application().transforms == []
    assert Application(transforms=[], compress_response=True).transforms == []


# -- Application -----------------------------------------------------------------------------


class Named(RequestHandler):
    def get(self, *args: str) -> None:
        self.write(self.reverse_url("item", 5, "a b"))


class HostA(RequestHandler):
    def get(self) -> None:
        self.write("host-a")


class Everyone(RequestHandler):
    def get(self) -> None:
        self.write("everyone")


async def test_reverse_url(serve: Serve, fetch: Fetch) -> None:
    app = Application([url(r"/item/(\d+)/(.*)", Named, name="item")])
    assert app.reverse_url("item", 1, "x") == "/item/1/x"
    with pytest.raises(KeyError):
        app.reverse_url("nope")
    base = await serve(app)
    assert (await fetch(base + "/item/1/2")).body == b"/item/5/a%20b"


async def test_add_handlers_by_host(serve: Serve, fetch: Fetch) -> None:
    app = Application([("/", Everyone)])
    app.add_handlers(r"a\.example", [("/", HostA), url("/named", HostA, name="a-named")])
    base = await serve(app)
    assert (await fetch(base + "/", headers={"Host": "a.example"})).body == b"host-a"
    assert (await fetch(base + "/", headers={"Host": "b.example"})).body == b"everyone"
    assert (await fetch(base + "/named", headers={"Host": "b.example"})).status == 404
    assert app.reverse_url("a-named") == "/named"


async def test_default_host(serve: Serve, fetch: Fetch) -> None:
    app = Application([("/", Everyone)], default_host="a.example")
    app.add_handlers(r"a\.example", [("/only-a", HostA)])
    base = await serve(app)
    # An unknown host falls back to the default host's handlers...
    assert (await fetch(base + "/only-a", headers={"Host": "zzz"})).body == b"host-a"
    # ...unless the request came through a proxy.
    resp = await fetch(base + "/only-a", headers={"Host": "zzz", "X-Real-Ip": "1.2.3.4"})
    assert resp.status == 404


async def test_nested_rule_list_and_rule_targets(serve: Serve, fetch: Fetch) -> None:
    from asyncweb.routing import HostMatches, PathMatches, Rule

    def plain_callable(request: httputil.HTTPServerRequest) -> None:
        conn: Any = request.connection
        body = b"callable:" + request.body
        conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            httputil.HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        conn.finish()

    inner = Application([("/inner", Everyone)])
    app = Application(
        [
            Rule(HostMatches("nested.example"), [("/", HostA)]),
            Rule(PathMatches("/call"), plain_callable),
            Rule(PathMatches("/inner"), inner),
            ("/", Everyone),
        ]
    )
    base = await serve(app)
    assert (await fetch(base + "/", headers={"Host": "nested.example"})).body == b"host-a"
    assert (await fetch(base + "/call", method="POST", body=b"zz")).body == b"callable:zz"
    assert (await fetch(base + "/inner")).body == b"everyone"


async def test_listen_returns_server(fetch: Fetch) -> None:
    app = Application([("/", Everyone)])
    port = free_port()
    server = app.listen(port, "127.0.0.1", max_body_size=1234)
    try:
        assert server.params.max_body_size == 1234
        for _ in range(50):
            try:
                resp = await fetch(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                await asyncio.sleep(0.02)
        assert resp.body == b"everyone"
    finally:
        server.stop()
        await server.close_all_connections()


async def test_bare_router_404(serve: Serve, fetch: Fetch) -> None:
    from asyncweb.routing import RuleRouter

    base = await serve(RuleRouter([("/app", Application([("/app", Everyone)]))]))
    assert (await fetch(base + "/app")).body == b"everyone"
    resp = await fetch(base + "/missing")
    assert (resp.status, resp.body) == (404, b"")


# -- the hot path ------------------------------------------------------------------------------


class RecordingConnection(httputil.HTTPConnection):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.close_callback: Any = None
        self.context = None

    def write_headers(self, start_line: Any, headers: Any, chunk: bytes | None = None) -> Any:
        self.calls.append(("write_headers", start_line.code, list(headers.get_all()), chunk))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def write(self, chunk: bytes) -> Any:
        self.calls.append(("write", chunk))
        return self.write_headers.__call__  # pragma: no cover - must not be called

    def finish(self) -> None:
        self.calls.append(("finish",))

    def set_close_callback(self, callback: Any) -> None:
        self.close_callback = callback


class PlainHello(RequestHandler):
    def get(self) -> None:
        self.write("hi")


async def test_plain_handler_one_write_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[Any] = []
    real = asyncio.ensure_future

    def spy(*args: Any, **kwargs: Any) -> Any:
        created.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "ensure_future", spy)
    logging.getLogger("asyncweb.access").setLevel(logging.WARNING)
    app = Application([("/", PlainHello)])
    conn = RecordingConnection()
    delegate = app.start_request(None, conn)
    headers = httputil.HTTPHeaders({"Host": "x"})
    assert (
        delegate.headers_received(httputil.RequestStartLine("GET", "/", "HTTP/1.1"), headers)
        is None
    )
    delegate.finish()
    assert created == []
    assert [c[0] for c in conn.calls] == ["write_headers", "finish"]
    _, code, sent_headers, chunk = conn.calls[0]
    assert (code, chunk) == (200, b"hi")
    assert ("Content-Length", "2") in sent_headers
    assert conn.close_callback is None  # released at finish


async def test_async_handler_uses_task(monkeypatch: pytest.MonkeyPatch) -> None:
    class AsyncHello(RequestHandler):
        async def get(self) -> None:
            self.write("hi")

    app = Application([("/", AsyncHello)])
    conn = RecordingConnection()
    delegate = app.start_request(None, conn)
    delegate.headers_received(
        httputil.RequestStartLine("GET", "/", "HTTP/1.1"), httputil.HTTPHeaders()
    )
    delegate.finish()
    assert conn.calls == []  # not yet: the coroutine runs in a Task
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [c[0] for c in conn.calls] == ["write_headers", "finish"]


def test_date_header_cache() -> None:
    from asyncweb.web import handler

    first = handler._http_date()
    assert handler._http_date() is first  # same second: the cached string itself
    assert first.endswith(" GMT")


class _StartLineConnection(RecordingConnection):
    def __init__(self) -> None:
        super().__init__()
        self.start_lines: list[httputil.ResponseStartLine] = []

    def write_headers(self, start_line: Any, headers: Any, chunk: bytes | None = None) -> Any:
        self.start_lines.append(start_line)
        return super().write_headers(start_line, headers, chunk)


class Reasoned(RequestHandler):
    def get(self) -> None:
        self.set_status(299, self.get_argument("reason"))


async def test_response_start_lines_shared_but_bounded() -> None:
    from asyncweb.web import handler

    logging.getLogger("asyncweb.access").setLevel(logging.WARNING)
    handler._start_lines.clear()
    app = Application([("/", Reasoned)])
    conn = _StartLineConnection()
    reasons = [f"Reason {i}" for i in range(handler._START_LINES_CACHED + 20)]
    for reason in [*reasons, reasons[0]]:
        delegate = app.start_request(None, conn)
        uri = "/?" + urllib.parse.urlencode({"reason": reason})
        delegate.headers_received(
            httputil.RequestStartLine("GET", uri, "HTTP/1.1"), httputil.HTTPHeaders()
        )
        delegate.finish()
    assert [(s.code, s.reason) for s in conn.start_lines] == [
        (299, r) for r in [*reasons, reasons[0]]
    ]
    assert conn.start_lines[0] is conn.start_lines[-1]  # the same (immutable) line, reused
    assert len(handler._start_lines) <= handler._START_LINES_CACHED


def test_header_value_check() -> None:
    request = httputil.HTTPServerRequest("GET", "/")
    h = RequestHandler(Application(), request)
    # Only C0 controls but tab, and DEL, are refused; the rest passes unchanged.
    for fine in ("plain", "a\tb", "caf\xe9", "\x85", "\u20ac", "\u2028", ""):
        assert h._convert_header_value(fine) == fine
    for bad in ("a\rb", "a\nb", "\x00", "\x1b[0m", "\x7f", "caf\xe9\x01"):
        with pytest.raises(ValueError):
            h._convert_header_value(bad)
