"""Routing through a real server: matchers, host rules, reversal, rule targets other than
handler classes, the exact-path table's limits, default handlers, etags."""

from __future__ import annotations

import re
from typing import Any

from asyncweb import httputil
from asyncweb.routing import (
    AnyMatches,
    HostMatches,
    PathMatches,
    ReversibleRuleRouter,
    Router,
    Rule,
    RuleRouter,
    URLSpec,
    _literal_path,
    url,
)
from asyncweb.web import Application, RequestHandler
from tests.support.servers import Fetch, Serve


class Echo(RequestHandler):
    def initialize(self, name: str = "echo") -> None:
        self.name = name

    def get(self, *args: str, **kwargs: str) -> None:
        self.write(f"{self.name}:{list(args)}:{sorted(kwargs.items())}")


# -- the exact-path table must not change what matches ----------------------------------------


async def test_compiled_pattern_matches_as_prefix(serve: Serve, fetch: Fetch) -> None:
    # A compiled pattern is used as given: no "$" is added, so it matches a prefix (Tornado).
    app = Application(
        [
            url(re.compile("/pre"), Echo, {"name": "compiled"}),
            url(re.compile("/sp ace", re.VERBOSE), Echo, {"name": "verbose"}),
            url(re.compile("/ci$", re.IGNORECASE), Echo, {"name": "ci"}),
            (r"/price\$", Echo, {"name": "dollar"}),
            ("/exact", Echo, {"name": "exact"}),
        ]
    )
    base = await serve(app)
    for path, body in (
        ("/pre", "compiled"),
        ("/prefix", "compiled"),
        ("/pre/x", "compiled"),
        ("/space", "verbose"),  # VERBOSE ignores the space in the pattern
        ("/spacebar", "verbose"),
        ("/CI", "ci"),
        ("/price$", "dollar"),  # "\$" is a literal dollar: the pattern is not anchored
        ("/price$tag", "dollar"),
        ("/exact", "exact"),
    ):
        resp = await fetch(base + path)
        assert (resp.status, resp.text) == (200, f"{body}:[]:[]"), path
    for path in ("/exactly", "/sp%20ace", "/price"):
        assert (await fetch(base + path)).status == 404, path


def test_only_anchored_string_literals_are_indexed() -> None:
    assert _literal_path(PathMatches("/a/b")) == "/a/b"
    assert _literal_path(PathMatches("/a/b$")) == "/a/b"
    assert _literal_path(PathMatches(r"/100\%")) == "/100%"
    assert _literal_path(PathMatches(re.compile("/a/b"))) is None
    assert _literal_path(PathMatches(re.compile("/a/b$"))) is None
    assert _literal_path(PathMatches(r"/a\$")) is None
    assert _literal_path(PathMatches("(?x)/a b")) is None
    assert _literal_path(PathMatches("(?i)/a")) is None


# -- matchers and host routing ---------------------------------------------------------------


async def test_any_matches_and_path_matches_rules(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            Rule(PathMatches("/first"), Echo, {"name": "first"}),
            Rule(AnyMatches(), Echo, {"name": "anything"}),
        ]
    )
    base = await serve(app)
    assert (await fetch(base + "/first")).text == "first:[]:[]"
    for path in ("/", "/other", "/deep/path?q=1"):
        assert (await fetch(base + path)).text == "anything:[]:[]"


async def test_host_routing_with_add_handlers(serve: Serve, fetch: Fetch) -> None:
    app = Application([("/page", Echo, {"name": "any-host"})])
    app.add_handlers(r"api\.example\.com", [("/page", Echo, {"name": "api"})])
    app.add_handlers(r".*\.example\.org", [("/(.*)", Echo, {"name": "org"})])
    base = await serve(app)
    resp = await fetch(base + "/page", headers={"Host": "api.example.com"})
    assert resp.text == "api:[]:[]"
    resp = await fetch(base + "/page", headers={"Host": "api.example.com:8080"})
    assert resp.text == "api:[]:[]"  # the port is not part of the host name
    resp = await fetch(base + "/x", headers={"Host": "www.example.org"})
    assert resp.text == "org:['x']:[]"
    resp = await fetch(base + "/page", headers={"Host": "other.com"})
    assert resp.text == "any-host:[]:[]"
    # A host group that has no matching path falls through to the host-independent rules.
    resp = await fetch(base + "/missing", headers={"Host": "api.example.com"})
    assert resp.status == 404


async def test_host_matches_rule_with_nested_rules(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            Rule(HostMatches("admin.local"), [("/", Echo, {"name": "admin"})]),
            ("/", Echo, {"name": "public"}),
        ]
    )
    base = await serve(app)
    assert (await fetch(base + "/", headers={"Host": "admin.local"})).text == "admin:[]:[]"
    assert (await fetch(base + "/", headers={"Host": "www.local"})).text == "public:[]:[]"


# -- reversal from inside a handler ----------------------------------------------------------


class Links(RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "user": self.reverse_url("user", 42),
                "file": self.reverse_url("file", "a b/c"),
                "nested": self.reverse_url("nested", "x"),
                "host": self.reverse_url("host-only"),
            }
        )


class Stub(RequestHandler):
    def get(self, *args: str) -> None:
        self.write("stub")


async def test_reverse_url_from_handler(serve: Serve, fetch: Fetch) -> None:
    inner = ReversibleRuleRouter([URLSpec(r"/in/(\w+)", Stub, name="nested")])
    app = Application(
        [
            ("/links", Links),
            url(r"/user/(\d+)", Stub, name="user"),
            url(r"/file/(.*)", Stub, name="file"),
            Rule(PathMatches("/in/.*"), inner),
        ]
    )
    app.add_handlers("example.com", [url("/host", Stub, name="host-only")])
    base = await serve(app)
    resp = await fetch(base + "/links")
    assert resp.status == 200
    assert resp.body == (
        b'{"user": "/user/42", "file": "/file/a%20b/c", "nested": "/in/x", "host": "/host"}'
    )
    resp = await fetch(base + "/user/42")
    assert resp.text == "stub"


# -- targets that are not handler classes ----------------------------------------------------


class _Answer(httputil.HTTPMessageDelegate):
    def __init__(self, request: httputil.HTTPServerRequest, text: str) -> None:
        self.request = request
        self.text = text

    def finish(self) -> None:
        body = f"{self.text} {self.request.method} {self.request.path}".encode()
        connection = self.request.connection
        assert connection is not None
        connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            httputil.HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        connection.finish()


class VersionRouter(Router):
    """Routes on a header: a ``Router`` subclass of our own as a rule target."""

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate | None:
        version = request.headers.get("X-Version")
        if version is None:
            return None  # decline: the next rule gets the request
        return _Answer(request, f"v{version}")


def plain_callable(request: httputil.HTTPServerRequest) -> None:
    body = b"callable got " + request.body
    connection = request.connection
    assert connection is not None
    connection.write_headers(
        httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
        httputil.HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    connection.finish()


async def test_router_subclass_and_callable_targets(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            Rule(PathMatches("/api/.*"), VersionRouter()),
            Rule(PathMatches("/api/.*"), Echo, {"name": "unversioned"}),
            ("/fn", plain_callable),
        ]
    )
    base = await serve(app)
    resp = await fetch(base + "/api/items", headers={"X-Version": "2"})
    assert resp.text == "v2 GET /api/items"
    assert (await fetch(base + "/api/items")).text == "unversioned:[]:[]"
    resp = await fetch(base + "/fn", method="POST", body=b"a body")
    assert (resp.status, resp.text) == (200, "callable got a body")


async def test_rule_router_served_directly(serve: Serve, fetch: Fetch) -> None:
    router = RuleRouter([("/fn", plain_callable), ("/api/.*", VersionRouter())])
    base = await serve(router)
    assert (await fetch(base + "/fn")).text == "callable got "
    assert (await fetch(base + "/api/x", headers={"X-Version": "9"})).text == "v9 GET /api/x"
    assert (await fetch(base + "/api/x")).status == 404  # declined, nothing else: bare 404
    assert (await fetch(base + "/nowhere")).status == 404


# -- default_handler_class ---------------------------------------------------------------------


class NotHere(RequestHandler):
    def initialize(self, message: str) -> None:
        self.message = message

    def prepare(self) -> None:
        self.set_status(404)
        self.finish(f"{self.message}: {self.request.path}")


async def test_default_handler_class_with_args(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [("/", Echo)],
        default_handler_class=NotHere,
        default_handler_args={"message": "no such page"},
    )
    app.add_handlers("example.com", [("/host-page", Echo)])
    base = await serve(app)
    assert (await fetch(base + "/")).status == 200
    for path, host in (("/missing", "x"), ("/missing", "example.com")):
        resp = await fetch(base + path, headers={"Host": host})
        assert (resp.status, resp.text) == (404, "no such page: /missing")


# -- etags -------------------------------------------------------------------------------------


class VersionedEtag(RequestHandler):
    def compute_etag(self) -> str | None:
        version = self.get_argument("v", None)
        if version is None:
            return None  # no Etag at all, so never a 304
        return f'W/"v{version}"'

    def get(self) -> None:
        self.write("content")


class ManualEtag(RequestHandler):
    def get(self) -> None:
        self.set_header("Etag", '"manual"')
        if self.check_etag_header():
            self.set_status(304)
            return
        self.write("fresh")


async def test_compute_etag_override_and_if_none_match(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/v", VersionedEtag), ("/m", ManualEtag)]))
    resp = await fetch(base + "/v")
    assert (resp.status, resp.body) == (200, b"content") and "Etag" not in resp.headers
    resp = await fetch(base + "/v", headers={"If-None-Match": "*"})
    assert resp.status == 200  # without an Etag there is nothing to match
    resp = await fetch(base + "/v?v=1")
    assert resp.headers["Etag"] == 'W/"v1"'
    for header in ('"v1"', 'W/"v1"', '"a", W/"v1"', 'W/"a",W/"v1" , "b"', "*"):
        resp = await fetch(base + "/v?v=1", headers={"If-None-Match": header})
        assert (resp.status, resp.body) == (304, b""), header
        assert resp.headers["Etag"] == 'W/"v1"'
    for header in ('"v2"', 'W/"v2", "v11"', "v1", '"a" "b"'):
        resp = await fetch(base + "/v?v=1", headers={"If-None-Match": header})
        assert resp.status == 200, header
    resp = await fetch(base + "/m", headers={"If-None-Match": 'W/"x", W/"manual"'})
    assert (resp.status, resp.body) == (304, b"")
    resp = await fetch(base + "/m", headers={"If-None-Match": '"other"'})
    assert (resp.status, resp.body) == (200, b"fresh")
