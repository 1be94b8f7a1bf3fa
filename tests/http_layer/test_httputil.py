from __future__ import annotations

import copy
import datetime
import pickle
import re
import time
import types
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.httputil import (
    HTTPFile,
    HTTPHeaders,
    HTTPInputError,
    HTTPServerRequest,
    ParseMultipartConfig,
    RequestStartLine,
    ResponseStartLine,
    _encode_header,
    _get_content_range,
    _parse_header,
    _parse_request_range,
    encode_username_password,
    format_timestamp,
    parse_body_arguments,
    parse_cookie,
    parse_multipart_form_data,
    parse_qs_bytes,
    parse_request_start_line,
    parse_response_start_line,
    qs_to_qsl,
    responses,
    split_host_and_port,
    url_concat,
)
from tests.support.servers import assert_linear

# -- HTTPHeaders ------------------------------------------------------------------------------


def test_headers_case_insensitive_and_normalized() -> None:
    h = HTTPHeaders()
    h["content-TYPE"] = "text/plain"
    assert h["Content-Type"] == "text/plain"
    assert h["CONTENT-TYPE"] == "text/plain"
    assert list(h) == ["Content-Type"]
    assert "content-type" in h
    assert "Content-Length" not in h
    number: Any = 42
    assert number not in h
    h["x-api-key"] = "1"
    assert list(h.keys()) == ["Content-Type", "X-Api-Key"]


def test_headers_multi_value() -> None:
    h = HTTPHeaders()
    h.add("Set-Cookie", "a=1")
    h.add("set-cookie", "b=2")
    h.add("Vary", "Accept")
    assert h["Set-Cookie"] == "a=1,b=2"
    assert h.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert h.get_list("missing") == []
    assert sorted(h.get_all()) == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Vary", "Accept")]
    assert len(h) == 2
    # Assignment replaces all values.
    h["Set-Cookie"] = "c=3"
    assert h.get_list("set-cookie") == ["c=3"]
    del h["set-cookie"]
    assert "Set-Cookie" not in h
    with pytest.raises(KeyError):
        del h["set-cookie"]
    with pytest.raises(KeyError):
        h["set-cookie"]


def test_headers_get_list_is_a_copy() -> None:
    h = HTTPHeaders()
    h.add("A", "1")
    h.get_list("a").append("2")
    assert h.get_list("a") == ["1"]


def test_headers_get_and_mapping_methods() -> None:
    h = HTTPHeaders(a="1")
    assert h.get("A") == "1"
    assert h.get("B") is None
    assert h.get("B", "x") == "x"
    assert h.setdefault("b", "2") == "2"
    assert h.setdefault("B", "3") == "2"
    assert h.pop("b") == "2"
    assert h.pop("b", None) is None
    h.update({"c": "3"}, d="4")
    assert dict(h) == {"A": "1", "C": "3", "D": "4"}
    assert h == HTTPHeaders({"a": "1", "c": "3", "d": "4"})
    assert h == {"A": "1", "C": "3", "D": "4"}
    assert h != HTTPHeaders(a="1")


def test_headers_constructors() -> None:
    assert dict(HTTPHeaders()) == {}
    assert dict(HTTPHeaders({"content-type": "x"})) == {"Content-Type": "x"}
    assert dict(HTTPHeaders([("a", "1"), ("b", "2")])) == {"A": "1", "B": "2"}
    assert dict(HTTPHeaders(a="1")) == {"A": "1"}
    assert dict(HTTPHeaders({"a": "1"}, b="2")) == {"A": "1", "B": "2"}
    src = HTTPHeaders()
    src.add("A", "1")
    src.add("A", "2")
    # Copying from HTTPHeaders keeps every value; other mappings go through __setitem__.
    assert HTTPHeaders(src).get_list("a") == ["1", "2"]


def test_headers_copy_is_deep_enough() -> None:
    h = HTTPHeaders()
    h.add("A", "1")
    for c in (h.copy(), copy.copy(h), copy.deepcopy(h), pickle.loads(pickle.dumps(h))):
        assert isinstance(c, HTTPHeaders)
        assert c.get_list("A") == ["1"]
        c.add("A", "2")
        assert h.get_list("A") == ["1"]


def test_headers_str_round_trips() -> None:
    h = HTTPHeaders()
    h.add("Foo", "1")
    h.add("Foo", "2")
    h.add("Bar", "x y")
    text = str(h)
    assert text == "Foo: 1\nFoo: 2\nBar: x y\n"
    h2 = HTTPHeaders.parse(text)
    assert h2 == h
    assert list(h2.get_all()) == list(h.get_all())
    assert "Foo" in repr(h)


def test_headers_parse_basic() -> None:
    data = "Content-Type: text/html\r\nContent-Length:  42 \r\nX-Empty:\r\n\r\n"
    h = HTTPHeaders.parse(data)
    assert h["Content-Type"] == "text/html"
    assert h["Content-Length"] == "42"
    assert h["X-Empty"] == ""
    assert len(h) == 3
    # LF alone ends lines too, and bytes are accepted (as latin-1).
    assert HTTPHeaders.parse("A: 1\nB: 2\n") == {"A": "1", "B": "2"}
    assert HTTPHeaders.parse(b"A: caf\xe9\r\n")["a"] == "caf\xe9"
    # Only space and tab are trimmed from values.
    assert HTTPHeaders.parse("A: \xa0x\xa0 \t\r\n")["a"] == "\xa0x\xa0"


@pytest.mark.parametrize(
    "data",
    [
        "Foo: bar\r\n baz\r\n",
        "Asdf: qwer\r\n\tzxcv\r\n",
        "Foo: even\n     more\n",
        "A: 1\r\nB: 2\r\n \r\n",  # a whitespace-only continuation is still folding
        " Foo: bar\r\n",
    ],
)
def test_headers_parse_rejects_folding(data: str) -> None:
    # Obsolete line folding (RFC 9112 5.2) is refused, as Tornado 6.6 and our server do.
    with pytest.raises(HTTPInputError, match="obs-fold"):
        HTTPHeaders.parse(data)
    with pytest.raises(HTTPInputError, match="obs-fold"):
        HTTPHeaders.parse(data.encode("latin-1"))


def test_headers_parse_line() -> None:
    h = HTTPHeaders()
    h.parse_line("Foo: bar\r\n")
    h.parse_line("")
    h.parse_line("\r\n")
    h.parse_line("X: 1\n")
    h.parse_line("foo: again")
    assert h.get_list("foo") == ["bar", "again"]
    assert h["x"] == "1"
    for folded in (" baz", "\tbaz\r\n", " "):
        with pytest.raises(HTTPInputError, match="obs-fold"):
            h.parse_line(folded)
    # Refused lines leave the existing values alone.
    assert h.get_list("foo") == ["bar", "again"]
    with pytest.raises(HTTPInputError):
        HTTPHeaders().parse_line(" leading whitespace")
    with pytest.raises(HTTPInputError):
        h.parse_line("no colon")
    with pytest.raises(HTTPInputError):
        h.parse_line("Y: lone CR\r")  # CR counts as a line ending only before LF


@pytest.mark.parametrize(
    "data",
    [
        " Foo: bar\r\n",  # starts with whitespace
        "Foo: bar\r\n baz\r\n",  # folded continuation
        "Foo: bar\r",  # trailing CR without LF
        "Foo bar\r\n",  # no colon
        "Foo : bar\r\n",  # whitespace before the colon
        ": bar\r\n",  # empty name
        "Fo(o): bar\r\n",  # not a token
        "Foo: b\x00ar\r\n",  # control character
        "Foo: b\rar\r\n",  # bare CR
        "Foo: bar\r\n ba\x01z\r\n",  # control character in a folded line
    ],
)
def test_headers_parse_rejects(data: str) -> None:
    with pytest.raises(HTTPInputError):
        HTTPHeaders.parse(data)


def test_headers_unusual_names() -> None:
    h = HTTPHeaders()
    h["x-a-b--c-"] = "1"
    h["WWW-authenticate"] = "2"
    assert list(h) == ["X-A-B--C-", "Www-Authenticate"]


def test_headers_normalization_cache_is_bounded() -> None:
    h = HTTPHeaders()
    for i in range(5000):
        h[f"x-h{i}"] = "v"
    assert len(httputil._normalized) <= httputil._NORMALIZED_CACHE_SIZE
    HTTPHeaders.from_raw([(f"x-r{i}".encode(), b"v") for i in range(5000)])
    assert len(httputil._normalized_raw) <= httputil._NORMALIZED_CACHE_SIZE
    # Still correct after the caches were emptied.
    assert HTTPHeaders.from_raw([(b"content-type", b"x")])["Content-Type"] == "x"
    assert h["X-H0"] == "v"


def test_headers_from_raw() -> None:
    h = HTTPHeaders.from_raw(
        [
            (b"host", b"example.com"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x-forwarded-for", b"5.6.7.8"),
            (b"x-weird-name", b"caf\xe9"),
        ]
    )
    assert isinstance(h, HTTPHeaders)
    assert h["Host"] == "example.com"
    assert h["X-Forwarded-For"] == "1.2.3.4,5.6.7.8"
    assert h.get_list("x-forwarded-for") == ["1.2.3.4", "5.6.7.8"]
    assert h["X-Weird-Name"] == "caf\xe9"
    assert list(h) == ["Host", "X-Forwarded-For", "X-Weird-Name"]
    # Behaves as a normal instance afterwards.
    h.add("Host", "b")
    assert h.copy().get_list("host") == ["example.com", "b"]
    assert dict(HTTPHeaders.from_raw([])) == {}


def test_headers_from_raw_subclass() -> None:
    class MyHeaders(HTTPHeaders):
        def __init__(self, *args: Any, **kwargs: str) -> None:
            super().__init__(*args, **kwargs)
            self.extra = True

    h = MyHeaders.from_raw([(b"a", b"1")])
    assert isinstance(h, MyHeaders) and h.extra and h["A"] == "1"


_RAW_PAIRS = [
    (b"host", b"example.com"),
    (b"x-forwarded-for", b"1.2.3.4"),
    (b"accept", b"*/*"),
    (b"x-forwarded-for", b"5.6.7.8"),
    (b"x-weird-name", b"caf\xe9"),
    (b"ss", b"sharp"),
]


def _eager(pairs: list[tuple[bytes, bytes]]) -> HTTPHeaders:
    h = HTTPHeaders()
    for name, value in pairs:
        h.add(name.decode("latin-1"), value.decode("latin-1"))
    return h


def test_headers_from_raw_lookups_do_not_build() -> None:
    h = HTTPHeaders.from_raw(_RAW_PAIRS)
    eager = _eager(_RAW_PAIRS)
    names = ["host", "HOST", "Host", "X-Forwarded-For", "x-FORWARDED-for", "X-Weird-Name",
             "missing", "", "hos", "hostx", "\xdf", "\u212a", "Ss", "SS", "ss"]  # fmt: skip
    for name in names:
        assert h.get(name) == eager.get(name), name
        assert h.get(name, "dflt") == eager.get(name, "dflt"), name
        assert (name in h) == (name in eager), name
        if name in eager:
            assert h[name] == eager[name]
        else:
            with pytest.raises(KeyError) as lazy_info:
                h[name]
            with pytest.raises(KeyError) as eager_info:
                eager[name]
            assert lazy_info.value.args == eager_info.value.args
    not_a_str: Any = 1
    assert not_a_str not in h and None not in h
    assert h["X-Forwarded-For"] == "1.2.3.4,5.6.7.8"
    assert h["\xdf"] == "sharp"  # "\xdf" and "ss" both normalize to "Ss"
    # None of that needed the full map.
    assert h._raw is not None


@pytest.mark.parametrize(
    "use",
    [
        lambda h: list(h),
        lambda h: len(h),
        lambda h: bool(h),
        lambda h: list(h.get_all()),
        lambda h: h.get_list("X-Forwarded-For"),
        lambda h: dict(h),
        lambda h: sorted(h.items()),
        lambda h: list(h.values()),
        lambda h: str(h),
        lambda h: repr(h),
        lambda h: h.copy().get_list("x-forwarded-for"),
        lambda h: copy.copy(h).get_list("x-forwarded-for"),
        lambda h: copy.deepcopy(h).get_list("x-forwarded-for"),
        lambda h: pickle.loads(pickle.dumps(h)).get_list("x-forwarded-for"),
        lambda h: list(HTTPHeaders(h).get_all()),
        lambda h: h == HTTPHeaders(h),
        lambda h: h.pop("Host"),
        lambda h: h.setdefault("Accept", "x"),
    ],
)
def test_headers_from_raw_reads_match_eager(use: Any) -> None:
    assert use(HTTPHeaders.from_raw(_RAW_PAIRS)) == use(_eager(_RAW_PAIRS))


def test_headers_from_raw_mutation_matches_eager() -> None:
    def mutate(h: HTTPHeaders) -> list[tuple[str, str]]:
        h.add("Accept", "text/html")
        h["Host"] = "other"
        del h["x-weird-name"]
        h.update({"New": "1"})
        return list(h.get_all())

    lazy = HTTPHeaders.from_raw(_RAW_PAIRS)
    assert mutate(lazy) == mutate(_eager(_RAW_PAIRS))
    assert lazy.get_list("accept") == ["*/*", "text/html"]
    # A lookup before and after a write: each sees the headers as they are then.
    lazy = HTTPHeaders.from_raw(_RAW_PAIRS)
    assert lazy["Host"] == "example.com"
    lazy["Host"] = "changed"
    assert lazy["Host"] == "changed" and lazy.get_list("host") == ["changed"]


def test_headers_from_raw_keeps_its_own_pairs() -> None:
    pairs = [(b"host", b"a")]
    h = HTTPHeaders.from_raw(pairs)
    pairs[0] = (b"host", b"b")
    pairs.append((b"accept", b"*/*"))
    assert h["Host"] == "a" and "Accept" not in h
    assert HTTPHeaders.from_raw(iter([(b"host", b"c")]))["host"] == "c"


def test_headers_from_raw_many_pairs_built_at_once() -> None:
    few = HTTPHeaders.from_raw([(f"x-h{i}".encode(), b"v") for i in range(16)])
    assert few._raw is not None and few["X-H15"] == "v"
    many = HTTPHeaders.from_raw([(f"x-h{i}".encode(), b"v") for i in range(17)])
    assert many._raw is None and many["X-H16"] == "v"


def test_headers_raw_key_cache_is_bounded() -> None:
    h = HTTPHeaders.from_raw([(b"host", b"a")])
    for i in range(5000):
        assert h.get(f"x-miss-{i}") is None
    assert len(httputil._raw_keys) <= httputil._NORMALIZED_CACHE_SIZE
    assert h["HOST"] == "a"


def test_headers_many_repeats_linear() -> None:
    # 16 times the repeats may cost about 16 times the CPU, never 256 times.
    n = 100_000
    text = "X-Foo: bar\r\n" * n
    assert_linear(HTTPHeaders.parse, text[: len(text) // 16], text, 16)
    h = HTTPHeaders.parse(text)
    assert len(h.get_list("x-foo")) == n
    joined = h["X-Foo"]
    assert len(joined) == n * 4 - 1
    sixteenth = HTTPHeaders.parse(text[: len(text) // 16])
    assert_linear(lambda h: h["X-Foo"], sixteenth, h, 16, repeat=5)

    def add_many(count: int) -> None:
        h2 = HTTPHeaders()
        for _ in range(count):
            h2.add("X-Foo", "bar")

    assert_linear(add_many, n // 16, n, 16)

    raw = [(b"x-foo", b"bar")] * n
    assert_linear(HTTPHeaders.from_raw, raw[: n // 16], raw, 16)


def test_headers_many_continuations_rejected_fast() -> None:
    # Thousands of folded lines are refused at the first one, not processed.
    def reject(folds: int) -> None:
        with pytest.raises(HTTPInputError, match="obs-fold"):
            HTTPHeaders.parse("X-Foo: start\r\n" + " more\r\n" * folds)

    assert_linear(reject, 12_500, 200_000, 16)


# -- HTTPServerRequest ------------------------------------------------------------------------


def test_request_basic_attributes() -> None:
    req = HTTPServerRequest(
        method="GET", uri="/path/x?a=1&b=2&a=3", version="HTTP/1.1",
        headers=HTTPHeaders({"Host": "Example.COM:8080"}),
    )  # fmt: skip
    assert req.method == "GET"
    assert req.path == "/path/x"
    assert req.query == "a=1&b=2&a=3"
    assert req.host == "Example.COM:8080"
    assert req.host_name == "example.com"
    assert req.protocol == "http"
    assert req.remote_ip is None
    assert req.body == b""
    assert req.files == {}
    assert req.body_arguments == {}
    assert req.supports_http_1_1()
    assert req.full_url() == "http://Example.COM:8080/path/x?a=1&b=2&a=3"
    assert req.connection is None and req.server_connection is None


def test_request_defaults() -> None:
    req = HTTPServerRequest(uri="/")
    assert req.version == "HTTP/1.0"
    assert not req.supports_http_1_1()
    assert req.host == "127.0.0.1"
    assert req.host_name == "127.0.0.1"
    assert isinstance(req.headers, HTTPHeaders)
    assert req.arguments == {}
    assert req.cookies == {}
    assert HTTPServerRequest(uri="/", host="h:1").host == "h:1"
    bare = HTTPServerRequest()
    assert bare.path == "" and bare.query == "" and bare.arguments == {}


def test_request_start_line_and_connection_context() -> None:
    context = types.SimpleNamespace(remote_ip="10.0.0.7", protocol="https")
    conn: Any = types.SimpleNamespace(context=context)
    req = HTTPServerRequest(
        connection=conn,
        start_line=RequestStartLine("POST", "/submit?x=1", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "[::1]:8443"}),
        server_connection="server",
    )
    assert (req.method, req.uri, req.version) == ("POST", "/submit?x=1", "HTTP/1.1")
    assert req.remote_ip == "10.0.0.7"
    assert req.protocol == "https"
    assert req.host_name == "[::1]"
    assert req.full_url() == "https://[::1]:8443/submit?x=1"
    assert req.connection is conn
    assert req.server_connection == "server"
    r = repr(req)
    assert r.startswith("HTTPServerRequest(") and "remote_ip='10.0.0.7'" in r
    assert "method='POST'" in r


def test_request_host_from_raw_headers() -> None:
    def make(pairs: list[tuple[bytes, bytes]], **kwargs: Any) -> HTTPServerRequest:
        return HTTPServerRequest(uri="/", headers=HTTPHeaders.from_raw(pairs), **kwargs)

    assert make([(b"host", b"Shop.Example:81")]).host == "Shop.Example:81"
    assert make([(b"host", b"Shop.Example:81")]).host_name == "shop.example"
    assert make([(b"accept", b"*/*")]).host == "127.0.0.1"
    assert make([(b"host", b"")]).host == "127.0.0.1"
    assert make([(b"host", b"a"), (b"host", b"b")]).host == "a,b"
    assert make([(b"host", b"a")], host="given:1").host == "given:1"
    assert "host='a'" in repr(make([(b"host", b"a")]))

    # Like an attribute set in __init__: later header changes do not move it.
    req = make([(b"host", b"first")])
    req.headers["Host"] = "second"
    assert req.host == "first"
    req = make([(b"host", b"first")])
    req.headers = HTTPHeaders({"Host": "second"})
    assert req.host == "first"

    # Assignable, before or after the first read, to anything.
    req = make([(b"host", b"first")])
    req.host = "set:2"
    assert req.host == "set:2" and req.host_name == "set"
    req = make([(b"host", b"first")])
    assert req.host == "first"
    req.host = None  # type: ignore[assignment]
    assert req.host is None


def test_request_headers_object_kept() -> None:
    h = HTTPHeaders()
    req = HTTPServerRequest(uri="/", headers=h)
    assert req.headers is h


def test_request_arguments_are_lazy() -> None:
    req = HTTPServerRequest(uri="/?a=1&b=&a=2", headers=HTTPHeaders({"Cookie": "c=d"}))
    assert req._arguments is None and req._query_arguments is None and req._cookies is None
    assert req.query_arguments == {"a": [b"1", b"2"], "b": [b""]}
    assert req.arguments == {"a": [b"1", b"2"], "b": [b""]}
    # Separate lists: changing one does not change the other.
    req.arguments["a"].append(b"3")
    assert req.query_arguments["a"] == [b"1", b"2"]


def test_request_arguments_assignable() -> None:
    req = HTTPServerRequest(uri="/?a=1")
    req.arguments = {"x": [b"y"]}
    req.query_arguments = {"q": [b"r"]}
    assert req.arguments == {"x": [b"y"]}
    assert req.query_arguments == {"q": [b"r"]}
    req.cookies = {}
    assert req.cookies == {}


def form_request(body: bytes, content_type: str, uri: str = "/?a=q") -> HTTPServerRequest:
    return HTTPServerRequest(
        method="POST",
        uri=uri,
        headers=HTTPHeaders({"Content-Type": content_type}),
        body=body,
    )


def test_request_parse_body_before_arguments_read() -> None:
    req = form_request(b"a=b1&c=d", "application/x-www-form-urlencoded")
    req._parse_body()
    assert req.body_arguments == {"a": [b"b1"], "c": [b"d"]}
    assert req.query_arguments == {"a": [b"q"]}
    assert req.arguments == {"a": [b"q", b"b1"], "c": [b"d"]}


def test_request_parse_body_after_arguments_read() -> None:
    req = form_request(b"a=b1&c=d", "application/x-www-form-urlencoded")
    assert req.arguments == {"a": [b"q"]}
    req._parse_body()
    assert req.arguments == {"a": [b"q", b"b1"], "c": [b"d"]}
    assert req.query_arguments == {"a": [b"q"]}


def test_request_parse_body_multipart_files() -> None:
    body = (
        b"--B\r\n"
        b'Content-Disposition: form-data; name="upload"; filename="notes.md"\r\n'
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"hello\r\n"
        b"--B\r\n"
        b'Content-Disposition: form-data; name="field"\r\n'
        b"\r\n"
        b"value\r\n"
        b"--B--\r\n"
    )
    req = form_request(body, "multipart/form-data; boundary=B")
    req._parse_body()
    f = req.files["upload"][0]
    assert isinstance(f, HTTPFile)
    assert (f.filename, f.body, f.content_type) == ("notes.md", b"hello", "text/plain")
    assert f["filename"] == "notes.md"
    assert req.body_arguments == {"field": [b"value"]}
    assert req.arguments == {"a": [b"q"], "field": [b"value"]}


def test_request_cookies() -> None:
    req = HTTPServerRequest(
        uri="/",
        headers=HTTPHeaders({"Cookie": 'a=1; b="two words"; bad,name=3; =empty; c=x=y'}),
    )
    cookies = req.cookies
    assert cookies["a"].value == "1"
    assert cookies["b"].value == "two words"
    assert cookies["c"].value == "x=y"
    # Names SimpleCookie refuses are dropped instead of failing the request.
    assert "bad,name" not in cookies
    assert "" not in cookies
    assert req.cookies is cookies


def test_request_time() -> None:
    req = HTTPServerRequest(uri="/")
    assert 0 <= req.request_time() < 5
    assert abs(req._start_time - time.time()) < 60  # epoch seconds, not a loop clock
    req._finish_time = req._start_time + 2.5
    assert req.request_time() == pytest.approx(2.5)


def test_request_ssl_certificate_absent() -> None:
    assert HTTPServerRequest(uri="/").get_ssl_certificate() is None
    conn: Any = types.SimpleNamespace(
        transport=types.SimpleNamespace(get_extra_info=lambda k: None)
    )
    assert HTTPServerRequest(uri="/", connection=conn).get_ssl_certificate() is None


def test_request_ssl_certificate_from_transport() -> None:
    class FakeSSL:
        def getpeercert(self, binary_form: bool = False) -> Any:
            return b"DER" if binary_form else {"subject": ()}

    conn: Any = types.SimpleNamespace(
        transport=types.SimpleNamespace(get_extra_info=lambda k: FakeSSL())
    )
    req = HTTPServerRequest(uri="/", connection=conn)
    assert req.get_ssl_certificate() == {"subject": ()}
    assert req.get_ssl_certificate(binary_form=True) == b"DER"


# -- bodies -----------------------------------------------------------------------------------


def test_parse_body_urlencoded() -> None:
    args: dict[str, list[bytes]] = {"a": [b"0"]}
    files: dict[str, list[HTTPFile]] = {}
    parse_body_arguments(
        "application/x-www-form-urlencoded; charset=UTF-8",
        b"a=1&b=%C3%A9&c=&d=x+y",
        args,
        files,
    )
    assert args == {"a": [b"0", b"1"], "b": ["é".encode()], "c": [b""], "d": [b"x y"]}
    assert files == {}


def test_parse_body_other_content_types_ignored() -> None:
    args: dict[str, list[bytes]] = {}
    parse_body_arguments("application/json", b'{"a": 1}', args, {})
    parse_body_arguments("", b"a=1", args, {})
    assert args == {}


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"]
)
def test_parse_body_content_encoding_refused(
    content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Tornado 6.5+: a form body still content-encoded is an input error, not silently empty.
    args: dict[str, list[bytes]] = {}
    body = b"a=1"
    if "multi" in content_type:
        body = b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B--"
    with pytest.raises(HTTPInputError, match="Unsupported Content-Encoding: gzip"):
        parse_body_arguments(
            content_type, body, args, {}, HTTPHeaders({"Content-Encoding": "gzip"})
        )
    assert args == {}
    parse_body_arguments(
        content_type, body, args, {}, HTTPHeaders({"Content-Encoding": "identity"})
    )
    assert args == {"a": [b"1"]}
    assert caplog.text == ""


def test_parse_body_multipart_needs_boundary() -> None:
    args: dict[str, list[bytes]] = {}
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
        with pytest.raises(HTTPInputError, match="boundary not found"):
            parse_body_arguments(content_type, b"whatever", args, {})
    assert args == {}


def test_parse_body_multipart_quoted_boundary() -> None:
    args: dict[str, list[bytes]] = {}
    body = b'--a;b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--a;b--\r\n'
    parse_body_arguments('multipart/form-data; Boundary="a;b"', body, args, {})
    assert args == {"x": [b"1"]}


Parsed = tuple[dict[str, list[bytes]], dict[str, list[HTTPFile]]]


def multipart(boundary: bytes, data: bytes, config: ParseMultipartConfig | None = None) -> Parsed:
    args: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    parse_multipart_form_data(boundary, data, args, files, config=config)
    return args, files


# The parser must stay linear with the limits lifted too.
UNLIMITED = ParseMultipartConfig(max_parts=10**9, max_part_header_size=10**9)


def test_multipart_file_upload() -> None:
    data = (
        b"--q9z\r\n"
        b'Content-Disposition: form-data; name="upload"; filename="notes.md"\r\n'
        b"\r\n"
        b"hello\r\n"
        b"--q9z--"
    )
    args, files = multipart(b"q9z", data)
    f = files["upload"][0]
    assert f.filename == "notes.md"
    assert f.body == b"hello"
    assert f.content_type == "application/unknown"
    assert args == {}


def test_multipart_unquoted_names_and_preamble() -> None:
    data = (
        b"preamble text that parsers skip\r\n"
        b"--q9z\r\n"
        b"Content-Disposition: form-data; name=upload; filename=notes.md\r\n"
        b"\r\n"
        b"hello\r\n"
        b"--q9z--\r\n"
        b"epilogue"
    )
    _, files = multipart(b"q9z", data)
    assert files["upload"][0].filename == "notes.md"
    assert files["upload"][0].body == b"hello"


@pytest.mark.parametrize(
    "filename",
    [
        "x;y.dat",
        'say"hi.txt',
        'odd";name.csv',
        ';"lead.bin',
        'q";";.md',
        'back\\"q.txt',
        "dir\\f.log",
    ],
)
def test_multipart_special_filenames(filename: str) -> None:
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    data = (
        b"--q9z\r\n"
        b'Content-Disposition: form-data; name="upload"; filename="'
        + quoted.encode()
        + b'"\r\n\r\nhello\r\n--q9z--'
    )
    _, files = multipart(b"q9z", data)
    assert files["upload"][0].filename == filename
    assert files["upload"][0].body == b"hello"


def test_multipart_rfc2231_and_utf8_filenames() -> None:
    data = (
        b"--q9z\r\n"
        b'Content-Disposition: form-data; name="upload"; filename="notes.md"; '
        b"filename*=UTF-8''caf%C3%A9.md\r\n"
        b"\r\n"
        b"hello\r\n"
        b"--q9z\r\n"
        + 'Content-Disposition: form-data; name="other"; filename="año.txt"\r\n'.encode()
        + b"\r\nworld\r\n--q9z--"
    )
    _, files = multipart(b"q9z", data)
    assert files["upload"][0].filename == "café.md"
    assert files["other"][0].filename == "año.txt"


def test_multipart_quoted_boundary_and_binary_body() -> None:
    body = bytes(range(256)) + b"\r\n--not the boundary\r\n"
    data = b'--q9z\r\nContent-Disposition: form-data; name="b"\r\n\r\n' + body + b"\r\n--q9z--"
    args, _ = multipart(b'"q9z"', data)
    assert args == {"b": [body]}


def test_multipart_repeated_fields() -> None:
    part = b'--X\r\nContent-Disposition: form-data; name="a"\r\n\r\n%d\r\n'
    data = b"".join(part % i for i in range(3)) + b"--X--"
    args, _ = multipart(b"X", data)
    assert args == {"a": [b"0", b"1", b"2"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"--q9z\r\nContent-Disposition: form-data; name=a\r\n\r\nhello\r\n", "final boundary"),
        (b"--q9z\r\nContent-Disposition: form-data; name=a\r\nhello\r\n--q9z--", "missing headers"),
        (b"--q9z\r\nContent-Disposition: invalid; name=a\r\n\r\nhello\r\n--q9z--", "not form-data"),
        (b"--q9z\r\nContent-Disposition: form-data; name=a\r\n\r\nhello--q9z--", "end with CRLF"),
        (b"--q9z\r\nContent-Disposition: form-data; x=a\r\n\r\nhello\r\n--q9z--", "missing name"),
        (
            b'--q9z\r\nContent-Disposition: form-data; name=""\r\n\r\nF\r\n--q9z--',
            "missing name",
        ),
        (b"--q9z\r\nContent-Disposition: form-data; name=a\xff\r\n\r\nF\r\n--q9z--", "bad part"),
        (b"--q9z\r\nBad header line\r\n\r\nhello\r\n--q9z--", "bad part headers"),
        (
            b"--q9z\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nF\r\n--q9z--",
            "obs-fold",
        ),
        (b"--q9z\r\n\r\nhello\r\n--q9z--", "missing headers"),
    ],
)
def test_multipart_malformed_bodies_are_refused(data: bytes, message: str) -> None:
    # Tornado 6.5+ raises HTTPInputError for these (the server answers 400).
    with pytest.raises(HTTPInputError, match=re.escape(message)):
        multipart(b"q9z", data)


def test_multipart_bad_part_refuses_the_whole_body() -> None:
    data = (
        b"--B\r\nno headers here\r\n"
        b'--B\r\nContent-Disposition: form-data; name="ok"\r\n\r\nyes\r\n'
        b"--B\r\nContent-Disposition: attachment\r\n\r\nno\r\n"
        b"--B--"
    )
    args: dict[str, list[bytes]] = {"earlier": [b"1"]}
    files: dict[str, list[HTTPFile]] = {}
    with pytest.raises(HTTPInputError, match="missing headers"):
        parse_multipart_form_data(b"B", data, args, files)
    # Nothing from the body is kept, not even the good part before the bad one.
    assert args == {"earlier": [b"1"]} and files == {}
    good_then_bad = (
        b'--B\r\nContent-Disposition: form-data; name="ok"\r\n\r\nyes\r\n'
        b"--B\r\nContent-Disposition: attachment\r\n\r\nno\r\n--B--"
    )
    with pytest.raises(HTTPInputError, match="not form-data"):
        parse_multipart_form_data(b"B", good_then_bad, args, files)
    assert args == {"earlier": [b"1"]} and files == {}


def multipart_or_refused(data: bytes) -> Parsed | None:
    try:
        return multipart(b"boundary", data, UNLIMITED)
    except HTTPInputError:
        return None


def test_multipart_hostile_fragments_linear() -> None:
    shapes: list[Callable[[int], bytes]] = [
        lambda n: b"--boundary" * n + b"--boundary--",
        lambda n: b"--boundary\r\n" * n + b"--boundary--",
        lambda n: b"--boundary\r\nx" * n + b"--boundary--",
        lambda n: b"--boundary\r\n\r\n\r\n" * n + b"--boundary--",
        lambda n: b"-" * (10 * n) + b"--boundary--",
        lambda n: b"\r\n" * (5 * n) + b"--boundary--",
        lambda n: b"--boundary\r\n" + b"Content-Disposition: form-data\r\n" * (n // 3) + b"\r\n",
    ]
    for shape in shapes:
        assert_linear(multipart_or_refused, shape(6_250), shape(100_000), 16)


def test_multipart_many_params_linear() -> None:
    def body(disposition: bytes) -> bytes:
        return b"--B\r\nContent-Disposition: " + disposition + b"\r\n\r\nv\r\n--B--"

    def params(n: int) -> bytes:
        joined = "; ".join(f"p{i}=v{i}" for i in range(n))
        return body(f'form-data; name="n"; {joined}'.encode())

    shapes: list[Callable[[int], bytes]] = [
        params,
        lambda n: body(b'form-data; name="' + b'\\"' * (4 * n) + b'"'),  # quoted escapes
        lambda n: body(b'form-data; name="x; ' + b'"\\' * (4 * n)),  # unterminated
    ]
    for shape in shapes:
        assert_linear(
            lambda data: multipart(b"B", data, UNLIMITED), shape(3_125), shape(50_000), 16
        )
    assert multipart(b"B", params(1_000), UNLIMITED)[0] == {"n": [b"v"]}


# -- _parse_header / _encode_header -------------------------------------------------------------


def test_parse_header() -> None:
    assert _parse_header("text/html; charset=UTF-8") == ("text/html", {"charset": "UTF-8"})
    assert _parse_header("form-data") == ("form-data", {})
    assert _parse_header("") == ("", {})
    key, params = _parse_header('form-data; NAME="a;b"; flag; x = "y" ; empty=')
    assert key == "form-data"
    assert params == {"name": "a;b", "x": "y", "empty": ""}
    assert _parse_header('a; q="x\\"y\\\\z"')[1] == {"q": 'x"y\\z'}
    assert _parse_header('a; q=""twice""')[1] == {"q": "twice"}
    assert _parse_header('a; q="unterminated; r=1')[1] == {"q": '"unterminated; r=1'}


def test_parse_header_rfc2231() -> None:
    _, params = _parse_header(
        "attachment; filename*=UTF-8''%E2%82%AC%20rates.txt; filename=fallback.txt"
    )
    assert params["filename"] == "€ rates.txt"
    _, params = _parse_header("attachment; title*0*=us-ascii'en'This%20is; title*1=\" fun\"")
    assert params["title"] == "This is fun"
    _, params = _parse_header("attachment; title*1=b; title*0=a")
    assert params["title"] == "ab"
    _, params = _parse_header("attachment; f*=unknown-charset''abc")
    assert params["f"] == "abc"
    _, params = _parse_header("attachment; f*=''%E2")
    assert params["f"] == "\ufffd"


def test_encode_header() -> None:
    assert _encode_header("text/html", {}) == "text/html"
    assert (
        _encode_header("x-codec", {"level": "9", "fast": None, "dict": "none"})
        == "x-codec; dict=none; fast; level=9"
    )


# -- cookies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("flavor=mint; size=large", {"flavor": "mint", "size": "large"}),
        # Every semicolon separates, even inside quotes.
        (
            'token="A=1; B=\\"x\\"; c=\\011;"',
            {"token": '"A=1', "B": '\\"x\\"', "c": "\\011", "": '"'},
        ),
        ("expr=x=y+1", {"expr": "x=y+1"}),
        ("ns:key=v:1", {"ns:key": "v:1"}),
        ("p=q; r=]; s={; t=u", {"p": "q", "r": "]", "s": "{", "t": "u"}),
        ("city=São Paulo", {"city": "São Paulo"}),
        (" =  z ;;  = ;  w =  ; ", {"": "z", "w": ""}),
        ("novalue", {"": "novalue"}),
        ('q="a\\"b\\\\c\\101\\x"', {"q": 'a"b\\cAx'}),
        ('q="', {"q": '"'}),
        ('q=""', {"q": ""}),
        ("a=1; a=2", {"a": "2"}),
        ("", {}),
    ],
)
def test_parse_cookie(header: str, expected: dict[str, str]) -> None:
    assert parse_cookie(header) == expected


def test_parse_cookie_pathological_linear() -> None:
    shapes: list[Callable[[int], str]] = [
        lambda n: ";" * n,
        lambda n: "a=" + '"' + "\\" * n + '"',
        lambda n: '"' + "\\\\" * (n // 2) + '"',
        lambda n: "=" * n,
        lambda n: "a=b;" * (n // 5),
        lambda n: " " * n,
    ]
    for shape in shapes:
        # 16 times the header costs about 16 times the CPU, never 256 times.
        assert_linear(parse_cookie, shape(62_500), shape(1_000_000), 16)
    assert parse_cookie("a=" + '"' + "\\\\" * 10 + '"') == {"a": "\\" * 10}


def test_request_cookies_many() -> None:
    def cookies(n: int) -> HTTPServerRequest:
        header = "; ".join(f"c{i}=v{i}" for i in range(n))
        return HTTPServerRequest(uri="/", headers=HTTPHeaders({"Cookie": header}))

    assert len(cookies(20_000).cookies) == 20_000
    # A fresh request per run: cookies are parsed once and kept.
    assert_linear(lambda n: cookies(n).cookies, 1_250, 20_000, 16)


# -- small helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "args", "expected"),
    [
        ("http://cdn.test/img", [("w", "64"), ("h", "32")], "http://cdn.test/img?w=64&h=32"),
        ("http://cdn.test/img?flag", [("w", "64")], "http://cdn.test/img?flag=&w=64"),
        ("http://cdn.test/img?v=3&fmt=png", {"w": "8"}, "http://cdn.test/img?v=3&fmt=png&w=8"),
        ("http://cdn.test/img?", {"w": "8", "h": "9"}, "http://cdn.test/img?w=8&h=9"),
        ("http://cdn.test/img?v=3", [("v", "4")], "http://cdn.test/img?v=3&v=4"),
        ("http://cdn.test/img?v=3", (("alt", "red car"),), "http://cdn.test/img?v=3&alt=red+car"),
        ("http://cdn.test/img?v=3&fmt=png", [], "http://cdn.test/img?v=3&fmt=png"),
        ("http://cdn.test/img?v=3", None, "http://cdn.test/img?v=3"),
        ("/p#frag", {"a": "1"}, "/p?a=1#frag"),
    ],
)
def test_url_concat(url: str, args: Any, expected: str) -> None:
    assert url_concat(url, args) == expected


def test_url_concat_bad_args() -> None:
    with pytest.raises(TypeError):
        url_concat("/search", "q=owls")  # type: ignore[arg-type]


def test_format_timestamp() -> None:
    expected = "Tue, 14 Nov 2023 22:13:20 GMT"
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    ts = 1700000000.734
    for value in [
        ts,
        int(ts),
        time.gmtime(ts),
        tuple(time.gmtime(ts)),
        datetime.datetime.fromtimestamp(ts, datetime.timezone.utc),
        datetime.datetime(2023, 11, 14, 22, 13, 20),
        datetime.datetime(2023, 11, 14, 23, 13, 20, tzinfo=plus_one),
    ]:
        assert format_timestamp(value) == expected  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_timestamp("yesterday")  # type: ignore[arg-type]


def test_parse_request_start_line() -> None:
    assert parse_request_start_line("GET /foo?x=1 HTTP/1.1") == RequestStartLine(
        "GET", "/foo?x=1", "HTTP/1.1"
    )
    assert parse_request_start_line("OPTIONS * HTTP/1.0").path == "*"
    for bad in ["GET /foo", "GET /foo HTTP/1.1 x", "GET  /foo HTTP/1.1", "GET /foo HTTP/2.0",
                "GET /foo http/1.1", "G(T /foo HTTP/1.1", "", "GET /foo HTTP/1.1\r"]:  # fmt: skip
        with pytest.raises(HTTPInputError):
            parse_request_start_line(bad)


def test_parse_response_start_line() -> None:
    assert parse_response_start_line("HTTP/1.1 200 OK") == ResponseStartLine("HTTP/1.1", 200, "OK")
    assert parse_response_start_line(b"HTTP/1.0 404 Not Found\r\n") == ResponseStartLine(
        "HTTP/1.0", 404, "Not Found"
    )
    assert parse_response_start_line("HTTP/1.1 599 ") == ResponseStartLine("HTTP/1.1", 599, "")
    assert parse_response_start_line("HTTP/1.1 204") == ResponseStartLine("HTTP/1.1", 204, "")
    for bad in ["HTTP/1.1", "HTTP/1.1 2000 OK", "HTTP/2 200 OK", "garbage", "HTTP/1.1 abc OK"]:
        with pytest.raises(HTTPInputError):
            parse_response_start_line(bad)


def test_encode_username_password() -> None:
    assert encode_username_password("user", "pass") == b"user:pass"
    assert encode_username_password(b"u\xff", b"p") == b"u\xff:p"
    decomposed = unicodedata.normalize("NFD", "é")
    assert encode_username_password(decomposed, decomposed) == "é:é".encode()


@pytest.mark.parametrize(
    ("netloc", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:8080", ("example.com", 8080)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:443", ("[::1]", 443)),
        ("[::1]", ("[::1]", None)),
        ("example.com:", ("example.com:", None)),
        ("example.com:http", ("example.com:http", None)),
        (":80", (":80", None)),
        ("", ("", None)),
        ("h:\u0661", ("h:\u0661", None)),  # non-ASCII digits are not a port
    ],
)
def test_split_host_and_port(netloc: str, expected: tuple[str, int | None]) -> None:
    assert split_host_and_port(netloc) == expected


def test_qs_to_qsl() -> None:
    assert list(qs_to_qsl({"a": ["1", "2"], "b": []})) == [("a", "1"), ("a", "2")]
    assert list(qs_to_qsl({"a": [b"x"]})) == [("a", b"x")]


def test_parse_qs_bytes() -> None:
    assert parse_qs_bytes("a=1&b=2&a=3") == {"a": [b"1", b"3"], "b": [b"2"]}
    assert parse_qs_bytes(b"a=&b") == {}
    assert parse_qs_bytes(b"a=&b", keep_blank_values=True) == {"a": [b""], "b": [b""]}
    # Values keep their raw bytes, whatever the charset.
    assert parse_qs_bytes("x=%C3%A9%FF+y") == {"x": [b"\xc3\xa9\xff y"]}
    assert parse_qs_bytes(b"x=\xe9") == {"x": [b"\xe9"]}
    # Names are latin-1 decoded, as in Tornado.
    assert parse_qs_bytes("%C3%A9=1") == {"\xc3\xa9": [b"1"]}
    with pytest.raises(ValueError):
        parse_qs_bytes("a", strict_parsing=True)


def test_parse_qs_bytes_large_linear() -> None:
    qs = "&".join(f"k{i}=v{i}" for i in range(100_000))
    assert_linear(parse_qs_bytes, qs[: len(qs) // 16], qs, 16)
    assert_linear(parse_qs_bytes, "&" * 62_500, "&" * 1_000_000, 16)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=40-59", (40, 60)),
        ("bytes=0-0", (0, 1)),
        ("bytes=300-", (300, None)),
        ("bytes=-75", (-75, None)),
        ("bytes=-00", (None, 0)),
        ("bytes=", (None, None)),
        ("bytes = 0 - 9", (0, 10)),
        ("pages=3", None),
        ("bytes=0-9,20-29", None),
        ("bytes=x-1", None),
        ("bytes", (None, None)),
    ],
)
def test_parse_request_range(header: str, expected: Any) -> None:
    assert _parse_request_range(header) == expected


def test_get_content_range() -> None:
    assert _get_content_range(None, 10, 50) == "bytes 0-9/50"
    assert _get_content_range(40, 60, 100) == "bytes 40-59/100"
    assert _get_content_range(None, None, 7) == "bytes 0-6/7"
    assert _get_content_range(90, None, 100) == "bytes 90-99/100"


def test_responses_and_errors() -> None:
    assert responses[404] == "Not Found"
    assert issubclass(HTTPInputError, Exception)
    assert issubclass(httputil.HTTPOutputError, Exception)
