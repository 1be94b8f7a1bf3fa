"""Fast paths must answer exactly as the general code they shortcut.

``parse_qs_bytes`` skips ``urllib.parse`` for queries with nothing to unescape, and
``RequestHandler.get_cookie`` reads a plain dict instead of a ``SimpleCookie`` jar. Both are
compared here with the general path on generated input, and the cookie one also over a real
server.
"""

from __future__ import annotations

import http.cookies
import json
import re
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncweb import escape, httputil, web
from asyncweb.httputil.urls import parse_qs_bytes
from asyncweb.routing import _unquote_or_none
from tests.support.servers import Fetch, Serve

# Characters that matter to the parsers, plus some non-ASCII ones (latin-1 and beyond). Half
# the queries have no "%" or "+", so they take the fast path.
_PLAIN = ["a", "b", "=", "&", ";", " ", "\t", "\x00", "\xe9", "\u0100", "==", "20"]
_QUERIES = st.one_of(
    st.lists(st.sampled_from(_PLAIN), max_size=24).map("".join),
    st.lists(st.sampled_from([*_PLAIN, "+", "%", "%41", "%e9"]), max_size=24).map("".join),
)


def _general_parse(qs: str, keep_blank_values: bool) -> dict[str, list[bytes]]:
    """What parse_qs_bytes did before the fast path: urllib, then values to latin-1 bytes."""
    parsed = urllib.parse.parse_qs(qs, keep_blank_values, encoding="latin-1", errors="strict")
    return {name: [value.encode("latin-1") for value in values] for name, values in parsed.items()}


def _outcome(function: object, *args: object) -> object:
    try:
        return ("ok", function(*args))  # type: ignore[operator]
    except (UnicodeError, ValueError) as error:
        return ("error", type(error))


@settings(max_examples=400, deadline=None)
@given(qs=_QUERIES, keep_blank_values=st.booleans())
def test_parse_qs_bytes_matches_the_general_parser(qs: str, keep_blank_values: bool) -> None:
    assert _outcome(parse_qs_bytes, qs, keep_blank_values) == _outcome(
        _general_parse, qs, keep_blank_values
    )
    raw = qs.encode("utf-8")
    assert _outcome(parse_qs_bytes, raw, keep_blank_values) == _outcome(
        _general_parse, raw.decode("latin-1"), keep_blank_values
    )


@pytest.mark.parametrize(
    ("qs", "keep_blank", "expected"),
    [
        ("a=1;b=2", True, {"a": [b"1;b=2"]}),  # ";" is no separator
        ("a=1&a=2&b=", True, {"a": [b"1", b"2"], "b": [b""]}),
        ("a=1&a=2&b=", False, {"a": [b"1", b"2"]}),
        ("flag&&=x", True, {"flag": [b""], "": [b"x"]}),
        ("flag&&=x", False, {"": [b"x"]}),
        ("x=\xe9", True, {"x": [b"\xe9"]}),
        # Names stay str: characters beyond latin-1 are kept, as urllib (and Tornado) keep them.
        ("\u0100+%41=v", True, {"\u0100 A": [b"v"]}),
    ],
)
def test_parse_qs_bytes_examples(
    qs: str, keep_blank: bool, expected: dict[str, list[bytes]]
) -> None:
    assert parse_qs_bytes(qs, keep_blank_values=keep_blank) == expected


def test_parse_qs_bytes_fast_path_keeps_the_field_limit_and_latin1_errors() -> None:
    with pytest.raises(ValueError, match="more than 2 fields"):
        parse_qs_bytes("a=1&b=2&c=3", max_num_fields=2)
    with pytest.raises(UnicodeEncodeError):
        parse_qs_bytes("a=\u0100")
    with pytest.raises(ValueError):
        parse_qs_bytes("a", strict_parsing=True)


# Cookie names: legal ones, reserved attribute names in several cases, illegal characters.
_COOKIE_NAMES = st.sampled_from(
    [
        "a",
        "session",
        "Path",
        "expires",
        "EXPIRES",
        "Max-Age",
        "samesite",
        "a b",
        "n@me",
        "",
        "é",
        "x:y",
    ]
)
_COOKIE_VALUES = st.sampled_from(["1", "", '"quoted value"', "a=b", "é", '"x'])


def _jar_answers(header: str, names: list[str]) -> list[str | None]:
    request = httputil.HTTPServerRequest(
        "GET", "/", headers=httputil.HTTPHeaders({"Cookie": header})
    )
    return [morsel.value if (morsel := request.cookies.get(name)) else None for name in names]


def _handler_answers(header: str, names: list[str]) -> list[str | None]:
    request = httputil.HTTPServerRequest(
        "GET", "/", headers=httputil.HTTPHeaders({"Cookie": header})
    )
    handler = web.RequestHandler(web.Application(), request)
    return [handler.get_cookie(name) for name in names]


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(_COOKIE_NAMES, _COOKIE_VALUES), max_size=6),
    separator=st.sampled_from(["; ", ";", " ; "]),
)
def test_get_cookie_answers_as_the_morsel_jar(pairs: list[tuple[str, str]], separator: str) -> None:
    header = separator.join(f"{name}={value}" for name, value in pairs)
    names = sorted({name for name, _ in pairs} | {"missing", "path"})
    assert _handler_answers(header, names) == _jar_answers(header, names)


def test_get_cookie_uses_a_jar_someone_built_or_set() -> None:
    headers = httputil.HTTPHeaders({"Cookie": "a=from-header"})
    request = httputil.HTTPServerRequest("GET", "/", headers=headers)
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    jar["a"] = "from-jar"
    request.cookies = jar
    handler = web.RequestHandler(web.Application(), request)
    assert handler.get_cookie("a") == "from-jar"
    assert handler.get_cookie("b", "default") == "default"

    # Set after the handler already read the header: the jar still wins.
    request = httputil.HTTPServerRequest("GET", "/", headers=headers)
    handler = web.RequestHandler(web.Application(), request)
    assert handler.get_cookie("a") == "from-header"
    request.cookies = jar
    assert handler.get_cookie("a") == "from-jar"


async def test_get_cookie_over_a_real_server(serve: Serve, fetch: Fetch) -> None:
    class CookieHandler(web.RequestHandler):
        def get(self) -> None:
            self.write(
                {
                    name: self.get_cookie(name, "-")
                    for name in ("session", "path", "Expires", "quoted", "bad name")
                }
            )

    base = await serve(web.Application([("/", CookieHandler)]))
    response = await fetch(
        base + "/",
        headers={"Cookie": 'session=abc; path=/x; Expires=soon; quoted="a b"; bad name=1'},
    )
    assert json.loads(response.body) == {
        "session": "abc",
        "path": "-",
        "Expires": "-",
        "quoted": "a b",
        "bad name": "-",
    }


# -- path arguments, query arguments, JSON ---------------------------------------------------

_PATH_TEXT = st.lists(
    st.sampled_from([*"ab+%/ ~\xe9\u0100", "%41", "%C3%A9", "%zz"]), max_size=12
).map("".join)


@settings(max_examples=300, deadline=None)
@given(segment=_PATH_TEXT)
def test_path_group_unquoting_matches_url_unescape(segment: str) -> None:
    assert _unquote_or_none(segment) == escape.url_unescape(segment, encoding=None, plus=False)


_ARGUMENT_TEXT = st.text(alphabet=st.sampled_from([*"ab \t\n\x00\x1f\x7f\x85\xa0\xe9\u2028"]))


def _handler_for(
    uri: str, body_arguments: dict[str, list[bytes]] | None = None
) -> web.RequestHandler:
    request = httputil.HTTPServerRequest("GET", uri)
    request.body_arguments = body_arguments or {}
    return web.RequestHandler(web.Application(), request)


@settings(max_examples=300, deadline=None)
@given(value=_ARGUMENT_TEXT, strip=st.booleans())
def test_get_argument_replaces_control_characters_as_before(value: str, strip: bool) -> None:
    handler = _handler_for("/?v=" + urllib.parse.quote(value))
    expected = re.sub(r"[\x00-\x08\x0e-\x1f]", " ", value)
    assert handler.get_argument("v", strip=strip) == (expected.strip() if strip else expected)
    assert handler.get_query_argument("v", strip=strip) == handler.get_argument("v", strip=strip)


def test_get_argument_sees_body_values_and_a_replaced_map() -> None:
    handler = _handler_for("/?a=query&b=1", {"a": [b"body"]})
    assert handler.get_argument("a") == "body"
    assert handler.get_arguments("a") == ["query", "body"]
    assert handler.request.query_arguments == {"a": [b"query"], "b": [b"1"]}

    handler = _handler_for("/?a=query")
    handler.request.arguments = {"a": [b"replaced"]}
    assert handler.get_argument("a") == "replaced"
    handler = _handler_for("/?a=query")
    assert handler.get_argument("a") == "query"
    assert handler.get_argument("missing", None) is None
    with pytest.raises(web.MissingArgumentError):
        handler.get_argument("missing")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON_VALUES)
def test_json_encode_matches_json_dumps(value: object) -> None:
    assert escape.json_encode(value) == json.dumps(value).replace("</", "<\\/")


def test_json_encode_errors_are_json_dumps_errors() -> None:
    circular: dict[str, object] = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular reference"):
        escape.json_encode(circular)
    with pytest.raises(TypeError, match="not JSON serializable"):
        escape.json_encode({"a": object()})
    # The encoder is shared: an earlier failure leaves nothing behind.
    assert escape.json_encode({"a": "</script>"}) == '{"a": "<\\/script>"}'


async def test_path_and_query_arguments_over_a_real_server(serve: Serve, fetch: Fetch) -> None:
    class UserHandler(web.RequestHandler):
        def get(self, name: str) -> None:
            self.write({"user": name, "greeting": self.get_argument("greeting", "hello")})

    base = await serve(web.Application([(r"/user/([^/]+)", UserHandler)]))
    for path, expected in [
        ("/user/alice?greeting=hi", {"user": "alice", "greeting": "hi"}),
        ("/user/al%C3%AFce?greeting=h%C3%A9+y", {"user": "al\u00efce", "greeting": "h\u00e9 y"}),
        ("/user/a+b", {"user": "a+b", "greeting": "hello"}),
    ]:
        response = await fetch(base + path)
        assert response.status == 200
        assert json.loads(response.body) == expected
    response = await fetch(base + "/user/%FF")
    assert response.status == 400
