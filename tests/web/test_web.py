"""asyncweb.web: handlers, arguments, headers and output, over a real server on loopback."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.web import (
    Application,
    HTTPError,
    MissingArgumentError,
    RequestHandler,
    url,
)
from tests.support.servers import Fetch, Serve, raw_exchange


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class TaskProbe(RequestHandler):
    def get(self) -> None:
        # A plain get runs straight from the protocol callback: no Task around it.
        self.write({"task": asyncio.current_task() is not None})


class AsyncTaskProbe(RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(0)
        self.write({"task": asyncio.current_task() is not None})


class PathArgs(RequestHandler):
    def get(self, *args: str, **kwargs: str) -> None:
        self.write({"args": list(args), "kwargs": kwargs})


async def test_hello(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Hello)]))
    resp = await fetch(base + "/")
    assert resp.status == 200
    assert resp.body == b"Hello, world"
    assert resp.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert resp.headers["Content-Length"] == "12"
    assert resp.headers["Server"]
    # An HTTP date, from the per-second cache.
    assert resp.headers["Date"].endswith(" GMT")


async def test_plain_get_runs_without_task_async_get_in_task(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/plain", TaskProbe), ("/async", AsyncTaskProbe)]))
    assert json.loads((await fetch(base + "/plain")).body) == {"task": False}
    assert json.loads((await fetch(base + "/async")).body) == {"task": True}


async def test_path_arguments_are_decoded(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            (r"/pos/(\w+)/(.*)", PathArgs),
            (r"/kw/(?P<year>\d+)/(?P<slug>.*)", PathArgs),
            (r"/opt/?(\d+)?", PathArgs),
        ]
    )
    base = await serve(app)
    body = json.loads((await fetch(base + "/pos/a/h%C3%A9llo%20w")).body)
    assert body == {"args": ["a", "héllo w"], "kwargs": {}}
    body = json.loads((await fetch(base + "/kw/2024/x%2Fy")).body)
    assert body == {"args": [], "kwargs": {"year": "2024", "slug": "x/y"}}
    body = json.loads((await fetch(base + "/opt")).body)
    assert body == {"args": [None], "kwargs": {}}


async def test_invalid_utf8_in_path_is_400(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/pos/(.*)", PathArgs)]))
    assert (await fetch(base + "/pos/%FF")).status == 400


class Initialized(RequestHandler):
    def initialize(self, word: str, times: int = 1) -> None:
        self.word = word
        self.times = times

    def get(self) -> None:
        self.write(self.word * self.times)


async def test_initialize_receives_rule_kwargs(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [("/a", Initialized, {"word": "ab", "times": 2}), url("/b", Initialized, {"word": "c"})]
    )
    base = await serve(app)
    assert (await fetch(base + "/a")).body == b"abab"
    assert (await fetch(base + "/b")).body == b"c"


class AllMethods(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def _echo(self) -> None:
        self.write(f"{self.request.method}:{self.request.body.decode()}")

    def get(self) -> None:
        self._echo()

    def head(self) -> None:
        self._echo()

    def post(self) -> None:
        self._echo()

    def delete(self) -> None:
        self._echo()

    def patch(self) -> None:
        self._echo()

    def put(self) -> None:
        self._echo()

    def options(self) -> None:
        self.set_status(204)


async def test_every_method(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", AllMethods)]))
    for method in ("GET", "POST", "DELETE", "PATCH", "PUT"):
        body = b"x" if method in ("POST", "PATCH", "PUT") else None
        resp = await fetch(base + "/", method=method, body=body)
        assert resp.status == 200
        assert resp.text == f"{method}:{'x' if body else ''}"
    resp = await fetch(base + "/", method="HEAD")
    assert resp.status == 200 and resp.body == b""
    assert resp.headers["Content-Length"] == "5"  # the length GET would have had
    resp = await fetch(base + "/", method="OPTIONS")
    assert resp.status == 204
    assert "Content-Type" not in resp.headers


class GetOnly(RequestHandler):
    def get(self) -> None:
        self.write("ok")

    async def put(self) -> None:
        self.write("put")


async def test_unimplemented_method_is_405_with_allow(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", GetOnly)]))
    resp = await fetch(base + "/", method="POST", body=b"")
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET, PUT"
    resp = await fetch(base + "/", method="HEAD")
    assert resp.status == 405
    out = await raw_exchange(base, b"BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 405 ")
    assert b"allow: GET, PUT" in out.lower().replace(b"allow: get, put", b"allow: GET, PUT")


# -- status and headers ----------------------------------------------------------------------


class Status(RequestHandler):
    def get(self) -> None:
        code = int(self.get_argument("code"))
        reason = self.get_argument("reason", None)
        self.set_status(code, reason)
        self.write(f"{self.get_status()}")


async def test_set_status(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Status)]))
    resp = await fetch(base + "/?code=201")
    assert (resp.status, resp.reason, resp.body) == (201, "Created", b"201")
    resp = await fetch(base + "/?code=299&reason=Custom+Thing")
    assert (resp.status, resp.reason) == (299, "Custom Thing")
    # Tornado 5+: a code without a standard phrase gets "Unknown" rather than an error.
    resp = await fetch(base + "/?code=299")
    assert (resp.status, resp.reason) == (299, "Unknown")


class BadReason(RequestHandler):
    def get(self, kind: str) -> None:
        reason = {
            "crlf": "ok\r\nX-Injected: 1",
            "nul": "a\x00b",
            "markup": "<script>x</script>",
            "open-tag": "a<b",
            "empty": "",
            "wide": "caf\u20ac",
            "fine": "Fine > & Dandy\xe9",
        }[kind]
        self.set_status(299, reason)
        self.write(self._reason)


async def test_unsafe_reason_becomes_unknown(serve: Serve) -> None:
    # Tornado 6.6: a reason that can't go in a status line, or holds "<", becomes "Unknown".
    base = await serve(Application([("/(.*)", BadReason)]))
    for kind in ("crlf", "nul", "markup", "open-tag", "empty", "wide"):
        out = await raw_exchange(
            base, f"GET /{kind} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert out.startswith(b"HTTP/1.1 299 Unknown\r\n"), (kind, out)
        assert out.endswith(b"\r\n\r\nUnknown"), (kind, out)
        assert b"X-Injected" not in out
    out = await raw_exchange(base, b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 299 Fine > & Dandy\xe9\r\n")


class Headers(RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("X-Default", "d")
        self.set_header("X-Removed", "r")

    def get(self) -> None:
        self.set_header("X-Int", 42)
        self.set_header("X-Bytes", b"b\xe9")
        self.set_header(
            "X-Date", datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        )
        self.set_header("X-Str", "first")
        self.set_header("X-Str", "replaced")
        self.add_header("X-Multi", "1")
        self.add_header("X-Multi", "2")
        self.clear_header("X-Removed")
        self.clear_header("X-Never-Set")
        refused = []
        for bad in ("a\r\nX-Evil: 1", "a\nb", "a\x00b", b"x\r\ny"):
            try:
                self.set_header("X-Bad", bad)
            except ValueError:
                refused.append(True)
            try:
                self.add_header("X-Bad", bad)
            except ValueError:
                refused.append(True)
        for bad_name in ("X-Evil\r\nY", "A:B", ""):
            try:
                self.set_header(bad_name, "v")
            except ValueError:
                refused.append(True)
        try:
            self.set_header("X-Obj", object())
        except TypeError:
            refused.append(True)
        self.write(str(len(refused)))


async def test_header_values(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Headers)]))
    resp = await fetch(base + "/")
    assert resp.body == b"12"
    assert resp.headers["X-Default"] == "d"
    assert "X-Removed" not in resp.headers
    assert resp.headers["X-Int"] == "42"
    assert resp.headers["X-Bytes"] == "b\xe9"
    assert resp.headers["X-Date"] == "Thu, 02 Jan 2020 03:04:05 GMT"
    assert resp.headers["X-Str"] == "replaced"
    assert resp.headers.get_all("X-Multi") == ["1", "2"]
    assert "X-Bad" not in resp.headers and "X-Evil" not in resp.headers


class Clearing(RequestHandler):
    def get(self) -> None:
        self.set_status(404)
        self.set_header("X-Gone", "1")
        self.write("discarded")
        self.clear()
        self.write("kept")


async def test_clear_resets_response(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Clearing)]))
    resp = await fetch(base + "/")
    assert (resp.status, resp.body) == (200, b"kept")
    assert "X-Gone" not in resp.headers


# -- arguments ---------------------------------------------------------------------------------


class Args(RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "a": self.get_argument("a"),
                "default": self.get_argument("missing", "dflt"),
                "none": self.get_argument("missing", None),
                "all": self.get_arguments("a"),
                "nostrip": self.get_argument("s", strip=False),
                "strip": self.get_argument("s"),
                "ctrl": self.get_argument("c", ""),
                "query": self.get_query_arguments("a"),
            }
        )

    def post(self) -> None:
        self.write(
            {
                "arg": self.get_arguments("a"),
                "query": self.get_query_argument("a"),
                "body": self.get_body_argument("a"),
                "bodies": self.get_body_arguments("a"),
                "body_default": self.get_body_argument("zzz", "d"),
                "query_default": self.get_query_argument("zzz", "q"),
            }
        )


class Required(RequestHandler):
    def get(self) -> None:
        try:
            self.get_argument("needed")
        except MissingArgumentError as e:
            assert e.arg_name == "needed"
            assert e.status_code == 400
            raise
        self.write("unreachable")

    def post(self) -> None:
        self.get_body_argument("needed")


async def test_arguments(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Args), ("/req", Required)]))
    resp = await fetch(base + "/?a=1&a=%C3%A9&s=+x+&c=a%01b")
    assert json.loads(resp.body) == {
        "a": "é",
        "default": "dflt",
        "none": None,
        "all": ["1", "é"],
        "nostrip": " x ",
        "strip": "x",
        "ctrl": "a b",
        "query": ["1", "é"],
    }
    resp = await fetch(
        base + "/?a=q",
        method="POST",
        body="a=b1&a=b2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert json.loads(resp.body) == {
        "arg": ["q", "b1", "b2"],
        "query": "q",
        "body": "b2",
        "bodies": ["b1", "b2"],
        "body_default": "d",
        "query_default": "q",
    }
    resp = await fetch(base + "/req")
    assert resp.status == 400
    assert b"400: Bad Request" in resp.body
    resp = await fetch(base + "/req?needed=1", method="POST", body=b"")
    assert resp.status == 400
    assert (await fetch(base + "/?a=%FF")).status == 400


async def test_multipart_files(serve: Serve, fetch: Fetch) -> None:
    class Upload(RequestHandler):
        def post(self) -> None:
            f = self.request.files["file"][0]
            self.write(
                {"name": f.filename, "body": f.body.decode(), "field": self.get_argument("f")}
            )

    base = await serve(Application([("/", Upload)]))
    body = (
        b'--B\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\ncontent\r\n--B--\r\n"
    )
    resp = await fetch(
        base + "/",
        method="POST",
        body=body,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    assert json.loads(resp.body) == {"name": "a.txt", "body": "content", "field": "v"}


# -- output ------------------------------------------------------------------------------------


class Output(RequestHandler):
    late_errors: list[str] = []

    def get(self, kind: str) -> None:
        if kind == "dict":
            self.write({"k": [1, 2], "html": "</script>"})
        elif kind == "list":
            self.write([1, 2])  # type: ignore[arg-type]
        elif kind == "after":
            self.finish("done")
            for late in (lambda: self.write("more"), self.finish):
                try:
                    late()
                except RuntimeError as e:
                    Output.late_errors.append(str(e))
        elif kind == "bytes":
            self.write(b"\x00\x01")
            self.write("é")


async def test_write_types(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(\w+)", Output)]))
    resp = await fetch(base + "/dict")
    assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(resp.body) == {"k": [1, 2], "html": "</script>"}
    assert b"<\\/script>" in resp.body
    assert (await fetch(base + "/list")).status == 500
    resp = await fetch(base + "/after")
    assert (resp.status, resp.body) == (200, b"done")
    assert Output.late_errors == [
        "write() after finish(): the response is complete",
        "finish() was already called",
    ]
    assert (await fetch(base + "/bytes")).body == b"\x00\x01\xc3\xa9"


class Streaming(RequestHandler):
    async def get(self) -> None:
        for i in range(3):
            self.write(f"part{i};")
            await self.flush()
            await asyncio.sleep(0.01)
        await self.finish("end")


async def test_flush_streams_chunked(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Streaming)]))
    out = await raw_exchange(base, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"content-length" not in head.lower()
    assert b"6\r\npart0;\r\n" in body and body.endswith(b"3\r\nend\r\n0\r\n\r\n")
    resp = await fetch(base + "/")
    assert resp.body == b"part0;part1;part2;end"


async def test_http10_streaming_is_close_delimited(serve: Serve) -> None:
    base = await serve(Application([("/", Streaming)]))
    out = await raw_exchange(base, b"GET / HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower()
    assert body == b"part0;part1;part2;end"


class Prepared(RequestHandler):
    def prepare(self) -> None:
        if self.get_argument("stop", None):
            self.finish("stopped in prepare")

    def get(self) -> None:
        self.write("from get")


class AsyncPrepared(RequestHandler):
    async def prepare(self) -> None:
        await asyncio.sleep(0.001)
        self.prepared = True

    def get(self) -> None:
        self.write({"prepared": self.prepared, "task": asyncio.current_task() is not None})


async def test_prepare(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Prepared), ("/async", AsyncPrepared)]))
    assert (await fetch(base + "/")).body == b"from get"
    assert (await fetch(base + "/?stop=1")).body == b"stopped in prepare"
    assert json.loads((await fetch(base + "/async")).body) == {"prepared": True, "task": True}


class Finishing(RequestHandler):
    on_finish_calls: list[str] = []

    def get(self) -> None:
        self.finish("x")

    def on_finish(self) -> None:
        Finishing.on_finish_calls.append(self.request.path)


async def test_on_finish_called(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Finishing)]))
    await fetch(base + "/")
    assert Finishing.on_finish_calls == ["/"]


async def test_keep_alive_two_requests_one_connection(serve: Serve) -> None:
    base = await serve(Application([("/", Hello)]))
    out = await raw_exchange(
        base,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.count(b"Hello, world") == 2


class Properties(RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "settings": self.settings["flag"],
                "app": self.application.settings is self.settings,
                "summary": self._request_summary(),
                "url": self.reverse_url("props"),
            }
        )


async def test_handler_properties(serve: Serve, fetch: Fetch) -> None:
    app = Application([url("/p", Properties, name="props")], flag="on")
    base = await serve(app)
    body = json.loads((await fetch(base + "/p?x=1")).body)
    assert body == {"settings": "on", "app": True, "summary": "GET /p?x=1 (127.0.0.1)", "url": "/p"}


def test_http_error_str() -> None:
    assert str(HTTPError(404)) == "HTTP 404: Not Found"
    assert str(HTTPError(599, reason="Odd")) == "HTTP 599: Odd"
    assert str(HTTPError(500, "bad %s", "thing")) == "HTTP 500: Internal Server Error (bad thing)"
    assert str(HTTPError(500, "100%")) == "HTTP 500: Internal Server Error (100%)"
    assert str(HTTPError(799)) == "HTTP 799: Unknown"
    err: Any = MissingArgumentError("x")
    assert (err.status_code, err.arg_name) == (400, "x")
    assert isinstance(err, HTTPError)


def test_start_line_types_are_shared() -> None:
    # The web package builds these from httputil, the same types the server uses.
    assert httputil.ResponseStartLine("", 200, "OK").code == 200


@pytest.mark.parametrize("path", ["/", "/a/b"])
async def test_call_application_directly(path: str) -> None:
    """``Application(request)``: Tornado's callable interface (used by wrappers)."""

    class Conn(httputil.HTTPConnection):
        def __init__(self) -> None:
            self.calls: list[Any] = []

        def write_headers(self, start_line: Any, headers: Any, chunk: bytes | None = None) -> Any:
            self.calls.append(("head", start_line.code, chunk))
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut

        def finish(self) -> None:
            self.calls.append("finish")

        def set_close_callback(self, cb: Any) -> None:
            pass

    conn = Conn()
    app = Application([("/", Hello)])
    request = httputil.HTTPServerRequest("GET", path, "HTTP/1.1", connection=conn)
    assert app(request) is None
    code = 200 if path == "/" else 404
    assert conn.calls[0][:2] == ("head", code)
    assert conn.calls[-1] == "finish"
