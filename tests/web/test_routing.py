"""asyncweb.routing: matchers, rule routers, the exact-path table, URL reversing."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.routing import (
    AnyMatches,
    DefaultHostMatches,
    HostMatches,
    Matcher,
    PathMatches,
    ReversibleRouter,
    ReversibleRuleRouter,
    Router,
    Rule,
    RuleRouter,
    URLSpec,
    _CallableAdapter,
    _unquote_or_none,
    url,
)


def make_request(uri: str, host: str = "example.com", **headers: str) -> httputil.HTTPServerRequest:
    h = httputil.HTTPHeaders({"Host": host})
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return httputil.HTTPServerRequest("GET", uri, "HTTP/1.1", h)


class T:
    """A rule target that compares equal to its name (a str target would be imported)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return other == self.name if isinstance(other, str) else other is self

    __hash__ = object.__hash__


class Found(httputil.HTTPMessageDelegate):
    def __init__(self, target: Any, params: dict[str, Any]) -> None:
        self.target = target
        self.params = params


class RecordingRouter(RuleRouter):
    """Resolves targets to a record of (target, params); a target of None declines."""

    def get_target_delegate(
        self, target: Any, request: httputil.HTTPServerRequest, **target_params: Any
    ) -> httputil.HTTPMessageDelegate | None:
        if target is None:
            return None
        if isinstance(target, Router):
            return target.find_handler(request, **target_params)
        return Found(target, target_params)


class ReversibleRecordingRouter(ReversibleRuleRouter, RecordingRouter):
    pass


def route(router: Router, uri: str, **kw: Any) -> Found | None:
    found = router.find_handler(make_request(uri, **kw))
    assert found is None or isinstance(found, Found)
    return found


# -- PathMatches -------------------------------------------------------------------------------


def test_path_matches_is_anchored_at_end() -> None:
    m = PathMatches("/foo")
    assert m.regex.pattern == "/foo$"
    assert m.match(make_request("/foo")) == {}
    assert m.match(make_request("/foo/bar")) is None
    assert m.match(make_request("/foo?x=1")) is not None  # the query is not part of the path
    assert PathMatches("/foo$").regex.pattern == "/foo$"


def test_path_matches_accepts_compiled_pattern() -> None:
    m = PathMatches(re.compile("/x/(.*)"))
    assert m.match(make_request("/x/abc")) == {"path_args": [b"abc"], "path_kwargs": {}}


def test_positional_groups_are_unquoted_bytes() -> None:
    m = PathMatches(r"/(\w+)/(.*)")
    params = m.match(make_request("/a/b%20c%2Fd+e"))
    assert params == {"path_args": [b"a", b"b c/d+e"], "path_kwargs": {}}


def test_named_groups_become_kwargs() -> None:
    m = PathMatches(r"/(?P<year>\d+)/(?P<slug>[^/]+)")
    params = m.match(make_request("/2024/h%C3%A9llo"))
    assert params == {"path_args": [], "path_kwargs": {"year": b"2024", "slug": "héllo".encode()}}


def test_optional_group_that_did_not_match_is_none() -> None:
    m = PathMatches(r"/opt(/\d+)?")
    assert m.match(make_request("/opt")) == {"path_args": [None], "path_kwargs": {}}


def test_mixed_named_and_positional_groups_refused() -> None:
    with pytest.raises(AssertionError):
        PathMatches(r"/(?P<a>\w+)/(\w+)")


def test_unquote_or_none() -> None:
    assert _unquote_or_none(None) is None
    assert _unquote_or_none("a%2Bb+c") == b"a+b+c"
    assert _unquote_or_none("%E2%9C%93") == "✓".encode()


# -- reversing -------------------------------------------------------------------------------


def test_reverse_literal_and_groups() -> None:
    assert PathMatches("/plain").reverse() == "/plain"
    assert PathMatches(r"^/a/(\d+)/b/([^/]+)$").reverse(12, "x y") == "/a/12/b/x%20y"
    assert PathMatches(r"/f/(.*)").reverse("a/b?c") == "/f/a/b%3Fc"
    assert PathMatches(r"/f/(.*)").reverse(b"bytes") == "/f/bytes"
    assert PathMatches(r"/file\.txt").reverse() == "/file.txt"
    assert PathMatches(r"/100%/(\d+)").reverse(5) == "/100%/5"
    assert PathMatches(r"/(?P<id>\d+)").reverse(3) == "/3"


def test_reverse_wrong_argument_count() -> None:
    with pytest.raises(AssertionError):
        PathMatches(r"/(\d+)").reverse()


@pytest.mark.parametrize("pattern", [r"/a(?:b)", r"/(a(b))", r"/\d+", r"/a.*", r"/x|y", r"/[ab]"])
def test_unreversible_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        PathMatches(pattern).reverse()


def test_matcher_base_reverse_is_none() -> None:
    assert Matcher().reverse() is None
    assert AnyMatches().reverse("x") is None


def test_urlspec() -> None:
    spec = url(r"/u/(\d+)", "asyncweb.routing.Rule", {"k": 1}, name="user")
    assert isinstance(spec, URLSpec)
    assert spec.handler_class is Rule  # string targets are imported
    assert spec.kwargs == {"k": 1}
    assert spec.target_kwargs == {"k": 1}
    assert spec.regex.pattern == r"/u/(\d+)$"
    assert spec.reverse(7) == "/u/7"
    assert "user" in repr(spec)
    assert URLSpec("/x", Rule).target_kwargs == {}


# -- host matchers -----------------------------------------------------------------------------


def test_any_and_host_matches() -> None:
    assert AnyMatches().match(make_request("/")) == {}
    m = HostMatches(r"(www\.)?example\.com")
    assert m.match(make_request("/", host="example.com")) == {}
    assert m.match(make_request("/", host="WWW.Example.com:8080")) == {}
    assert m.match(make_request("/", host="example.com.evil")) is None
    assert HostMatches(re.compile("a$")).match(make_request("/", host="a")) == {}


def test_default_host_matches() -> None:
    class App:
        default_host = "main.example"

    m = DefaultHostMatches(App(), re.compile(r"main\.example$"))
    assert m.match(make_request("/", host="other")) == {}
    assert m.match(make_request("/", host="other", X_Real_Ip="1.2.3.4")) is None
    App.default_host = "else"
    assert m.match(make_request("/", host="other")) is None


# -- RuleRouter ----------------------------------------------------------------------------------


def test_rule_tuples_and_objects() -> None:
    router = RecordingRouter(
        [
            ("/a", T("target-a")),
            (PathMatches(r"/b/(\d+)"), T("target-b"), {"opt": 1}),
            Rule(PathMatches("/c"), T("target-c"), name="c"),
        ]
    )
    found = route(router, "/a")
    assert found is not None and found.target == "target-a"
    found = route(router, "/b/42")
    assert found is not None
    assert found.params == {"path_args": [b"42"], "path_kwargs": {}, "target_kwargs": {"opt": 1}}
    found = route(router, "/c")
    assert found is not None and found.target == "target-c"
    assert route(router, "/d") is None


def test_bad_rule_tuple() -> None:
    with pytest.raises(ValueError):
        RecordingRouter([("/a",)])


def test_first_match_wins_regex_before_literal() -> None:
    router = RecordingRouter([(r"/.*", T("catch-all")), ("/exact", T("exact"))])
    found = route(router, "/exact")
    assert found is not None and found.target == "catch-all"


def test_first_match_wins_literal_before_regex() -> None:
    router = RecordingRouter([("/exact", T("exact")), (r"/.*", T("catch-all"))])
    found = route(router, "/exact")
    assert found is not None and found.target == "exact"
    found = route(router, "/other")
    assert found is not None and found.target == "catch-all"


def test_literal_table_skips_regex_but_keeps_semantics_for_dots() -> None:
    # An unescaped dot is a regex: it also matches /faviconXico, as in Tornado.
    router = RecordingRouter([("/favicon.ico", T("dot")), (r"/robots\.txt", T("escaped"))])
    assert route(router, "/faviconXico") is not None
    assert route(router, "/robots.txt") is not None
    assert route(router, "/robotsXtxt") is None


def test_declining_target_falls_through_in_order() -> None:
    router = RecordingRouter(
        [(r"/x", None), (r"/(x)", T("regex-after")), ("/x", T("literal-dup")), ("/y", T("y"))]
    )
    found = route(router, "/x")
    assert found is not None and found.target == "regex-after"
    router2 = RecordingRouter([("/x", None), ("/x", T("second"))])
    found = route(router2, "/x")
    assert found is not None and found.target == "second"


def test_literal_rule_params() -> None:
    # A rule matched through the table gets exactly what its matcher would have given.
    router = RecordingRouter([("/plain", T("plain")), ("/kw", T("kw"), {"opt": 1})])
    found = route(router, "/plain")
    assert found is not None and found.params == {}
    found = route(router, "/kw")
    assert found is not None and found.params == {"target_kwargs": {"opt": 1}}


def test_table_rebuilt_after_mutation() -> None:
    router = RecordingRouter([("/a", T("a"))])
    assert route(router, "/b") is None
    router.add_rules([("/b", T("b"))])
    found = route(router, "/b")
    assert found is not None and found.target == "b"
    router.rules.insert(0, Rule(PathMatches("/b"), T("b0")))
    found = route(router, "/b")
    assert found is not None and found.target == "b0"
    del router.rules[0]
    found = route(router, "/b")
    assert found is not None and found.target == "b"
    router.rules = [Rule(PathMatches("/z"), T("z"))]
    assert route(router, "/b") is None
    assert route(router, "/z") is not None


def test_case_insensitive_pattern_not_in_exact_table() -> None:
    router = RecordingRouter([(re.compile("/abc$", re.IGNORECASE), T("ci"))])
    assert route(router, "/ABC") is not None


def test_custom_matcher_subclass_is_not_indexed() -> None:
    class Shouting(PathMatches):
        def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
            return {"shout": True} if request.path == "/loud" else None

    router = RecordingRouter([Rule(Shouting("/quiet"), T("t"))])
    assert route(router, "/quiet") is None
    found = route(router, "/loud")
    assert found is not None and found.params == {"shout": True}


def test_nested_routers_and_host_rules() -> None:
    inner = RecordingRouter([("/page", T("inner-page"))])
    router = RecordingRouter(
        [
            Rule(HostMatches("admin.example"), inner),
            Rule(AnyMatches(), RecordingRouter([("/page", T("public-page"))])),
        ]
    )
    found = route(router, "/page", host="admin.example")
    assert found is not None and found.target == "inner-page"
    found = route(router, "/page", host="www.example")
    assert found is not None and found.target == "public-page"


def test_get_target_delegate_kinds() -> None:
    class Conn(httputil.HTTPConnection):
        pass

    class Delegate(httputil.HTTPServerConnectionDelegate):
        def start_request(
            self, server_conn: object, request_conn: httputil.HTTPConnection
        ) -> httputil.HTTPMessageDelegate:
            started.append((server_conn, request_conn))
            return httputil.HTTPMessageDelegate()

    started: list[tuple[object, object]] = []
    conn = Conn()
    request = httputil.HTTPServerRequest("GET", "/", connection=conn, server_connection="server")
    router = RuleRouter()
    assert router.get_target_delegate(Delegate(), request) is not None
    assert started == [("server", conn)]
    called: list[Any] = []
    delegate = router.get_target_delegate(lambda req, **kw: called.append((req, kw)), request)
    assert isinstance(delegate, _CallableAdapter)
    assert router.get_target_delegate(42, request) is None
    nested = RecordingRouter([("/", T("t"))])
    found = router.get_target_delegate(nested, request)
    assert isinstance(found, Found)


def test_callable_delegate_collects_body() -> None:
    class Conn(httputil.HTTPConnection):
        pass

    seen: list[httputil.HTTPServerRequest] = []
    delegate = _CallableAdapter(seen.append, Conn())
    headers = httputil.HTTPHeaders({"Content-Type": "application/x-www-form-urlencoded"})
    delegate.headers_received(httputil.RequestStartLine("POST", "/p?q=1", "HTTP/1.1"), headers)
    delegate.data_received(b"a=1&")
    delegate.data_received(b"b=2")
    delegate.finish()
    assert len(seen) == 1
    assert seen[0].body == b"a=1&b=2"
    assert seen[0].body_arguments == {"a": [b"1"], "b": [b"2"]}


# -- ReversibleRuleRouter ------------------------------------------------------------------------


def test_reverse_url_named_and_nested() -> None:
    inner = ReversibleRecordingRouter([url(r"/inner/(\d+)", T("t"), name="inner")])
    router = ReversibleRecordingRouter(
        [url(r"/top/([a-z]+)", T("t"), name="top"), Rule(AnyMatches(), inner)]
    )
    assert router.reverse_url("top", "abc") == "/top/abc"
    assert router.reverse_url("inner", 5) == "/inner/5"
    assert router.reverse_url("missing") is None
    assert isinstance(router, ReversibleRouter)


def test_duplicate_names_warn_and_replace(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncweb.application"):
        router = ReversibleRuleRouter(
            [url("/one", T("t"), name="n"), url("/two", T("t"), name="n")]
        )
    assert router.reverse_url("n") == "/two"
    assert "Two rules are named n; the later one wins" in caplog.text


def test_base_router_interfaces() -> None:
    with pytest.raises(NotImplementedError):
        Router().find_handler(make_request("/"))
    with pytest.raises(NotImplementedError):
        ReversibleRouter().reverse_url("x")
    with pytest.raises(NotImplementedError):
        Matcher().match(make_request("/"))
