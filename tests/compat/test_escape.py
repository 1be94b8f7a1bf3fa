"""asyncweb.escape against Tornado 6's documented behaviour (outputs checked with Tornado 6.6)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncweb import escape
from asyncweb.escape import (
    json_decode,
    json_encode,
    recursive_unicode,
    squeeze,
    to_unicode,
    url_escape,
    url_unescape,
    utf8,
    xhtml_escape,
    xhtml_unescape,
)

# -- HTML ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<foo>", "&lt;foo&gt;"),
        ("<a href=\"x\">'&'</a>", "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"),
        ("plain text", "plain text"),
        ("é ü 日本", "é ü 日本"),
        (b"<b>\xc3\xa9</b>", "&lt;b&gt;é&lt;/b&gt;"),
        ("&amp;", "&amp;amp;"),
        ("", ""),
    ],
)
def test_xhtml_escape(raw: str | bytes, escaped: str) -> None:
    assert xhtml_escape(raw) == escaped
    assert xhtml_unescape(escaped) == to_unicode(raw)


def test_xhtml_escape_matches_html_escape() -> None:
    # Tornado 6.4+ documents xhtml_escape as html.escape that always returns str.
    for text in ("'\"<>&", "x'y", "a & b < c > d"):
        assert xhtml_escape(text) == html.escape(text)
        assert isinstance(xhtml_escape(text.encode()), str)


@pytest.mark.parametrize(
    ("escaped", "text"),
    [
        ("&amp;&lt;&gt;&quot;&#39;&#x27;", "&<>\"''"),
        ("&eacute;&#233;&#xe9;&#XE9;", "éééé"),
        ("&nbsp;", "\xa0"),
        ("&#x1F600;", "\U0001f600"),
        ("&bogus; & &amp", "&bogus; & &"),
        ("&#150;", "\u2013"),  # HTML5: numeric references in 0x80-0x9f mean windows-1252
        (b"&lt;b&gt;", "<b>"),
    ],
)
def test_xhtml_unescape(escaped: str | bytes, text: str) -> None:
    assert xhtml_unescape(escaped) == text


@given(st.text())
def test_xhtml_round_trip(text: str) -> None:
    escaped = xhtml_escape(text)
    assert not set("<>\"'") & set(escaped)
    assert xhtml_unescape(escaped) == text


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plus", "escaped"),
    [
        ("a b/c?d=e&f+g", True, "a+b%2Fc%3Fd%3De%26f%2Bg"),
        ("a b/c?d=e&f+g", False, "a%20b/c%3Fd%3De%26f%2Bg"),
        ("é", True, "%C3%A9"),
        (b"\xff\x00 +", True, "%FF%00+%2B"),
        (b"\xff\x00 +", False, "%FF%00%20%2B"),
        ("~-._!*'()", True, "~-._%21%2A%27%28%29"),
        ("%", False, "%25"),
    ],
)
def test_url_escape(raw: str | bytes, plus: bool, escaped: str) -> None:
    assert url_escape(raw, plus=plus) == escaped


def test_url_escape_default_is_plus() -> None:
    assert url_escape("a b/") == "a+b%2F"


@pytest.mark.parametrize(
    ("escaped", "plus", "text"),
    [
        ("a+b%20c%2B", True, "a b c+"),
        ("a+b%20c%2B", False, "a+b c+"),
        ("%E9t%C3%A9", True, "\ufffdté"),  # invalid UTF-8 is replaced, as in urllib
        (b"%C3%A9+x", True, "é x"),
        ("%zz%", True, "%zz%"),
    ],
)
def test_url_unescape_text(escaped: str | bytes, plus: bool, text: str) -> None:
    assert url_unescape(escaped, plus=plus) == text


@pytest.mark.parametrize(
    ("escaped", "plus", "raw"),
    [
        ("a+b%20c%2B", True, b"a b c+"),
        ("a+b%20c%2B", False, b"a+b c+"),
        (b"a+b%ff", True, b"a b\xff"),
        ("%E9t%C3%A9", False, b"\xe9t\xc3\xa9"),
        ("%zz%", False, b"%zz%"),
    ],
)
def test_url_unescape_bytes(escaped: str | bytes, plus: bool, raw: bytes) -> None:
    result = url_unescape(escaped, encoding=None, plus=plus)
    assert isinstance(result, bytes)
    assert result == raw


def test_url_unescape_other_encoding() -> None:
    assert url_unescape("%E9t%E9", encoding="latin-1") == "été"
    assert url_unescape("%E9+t", encoding="latin-1", plus=False) == "é+t"


@given(st.text(), st.booleans())
def test_url_round_trip(text: str, plus: bool) -> None:
    assert url_unescape(url_escape(text, plus=plus), plus=plus) == text
    assert url_unescape(url_escape(text, plus=plus), encoding=None, plus=plus) == text.encode()


@given(st.binary(), st.booleans())
def test_url_round_trip_bytes(raw: bytes, plus: bool) -> None:
    assert url_unescape(url_escape(raw, plus=plus), encoding=None, plus=plus) == raw


# -- JSON ------------------------------------------------------------------------------------


def test_json_encode_is_safe_in_script_tags() -> None:
    encoded = json_encode({"a": "</script><script>alert(1)</script>"})
    assert "</" not in encoded
    assert encoded == '{"a": "<\\/script><script>alert(1)<\\/script>"}'
    assert json_decode(encoded) == {"a": "</script><script>alert(1)</script>"}


@pytest.mark.parametrize(
    "value",
    [["</", "<\\/", "</</"], "\u2028 é", 1.5, None, {"nested": [1, {"x": "</b>"}]}, ""],
)
def test_json_encode_round_trip(value: Any) -> None:
    encoded = json_encode(value)
    assert "</" not in encoded
    assert json.loads(encoded) == value
    assert json_decode(encoded) == value


def test_json_encode_equals_json_dumps_otherwise() -> None:
    value = {"b": [1, 2.5, True, None], "a": "é"}
    assert json_encode(value) == json.dumps(value)


def test_json_decode_accepts_bytes_and_str() -> None:
    assert json_decode(b'{"a": 1}') == {"a": 1}
    assert json_decode('["\\u00e9"]') == ["é"]
    assert json_decode('{"a": "\xe9"}'.encode()) == {"a": "é"}
    with pytest.raises(ValueError):
        json_decode("{not json")


# -- other helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "squeezed"),
    [
        ("  a \t\n b  \x00c ", "a b c"),
        ("", ""),
        ("one", "one"),
        ("\r\n\r\nx\x1fy\n", "x y"),
        ("x\xa0\xa0y  z", "x\xa0\xa0y z"),  # only ASCII whitespace and controls are squeezed
    ],
)
def test_squeeze(raw: str, squeezed: str) -> None:
    assert squeeze(raw) == squeezed


def test_utf8() -> None:
    assert utf8("é") == b"\xc3\xa9"
    data = b"\xff"
    assert utf8(data) is data
    assert utf8(None) is None


def test_to_unicode() -> None:
    assert to_unicode(b"\xc3\xa9") == "é"
    text = "é"
    assert to_unicode(text) is text
    assert to_unicode(None) is None
    with pytest.raises(UnicodeDecodeError):
        to_unicode(b"\xff")


@pytest.mark.parametrize("value", [1, 1.5, [], bytearray(b"x"), memoryview(b"x"), object()])
def test_conversions_reject_other_types(value: Any) -> None:
    with pytest.raises(TypeError):
        utf8(value)
    with pytest.raises(TypeError):
        to_unicode(value)


def test_native_string_aliases() -> None:
    assert escape.native_str(b"x") == "x"
    assert escape.to_basestring(b"x") == "x"


def test_recursive_unicode() -> None:
    value = {b"k": [b"v", (b"t", 1)], "s": {b"x": b"y"}, b"n": None}
    result = recursive_unicode(value)
    assert result == {"k": ["v", ("t", 1)], "s": {"x": "y"}, "n": None}
    assert isinstance(result["k"][1], tuple)
    # Other containers are left alone, as in Tornado.
    frozen = frozenset([b"a"])
    assert recursive_unicode(frozen) is frozen
    with pytest.raises(UnicodeDecodeError):
        recursive_unicode([b"\xff"])


# -- linkify (expected outputs produced by Tornado 6.6.1's linkify) ---------------------------


def _internal_or_external(href: str) -> str:
    if href.startswith("http://www.internal-link.com"):
        return 'class="internal"'
    return 'rel="nofollow" class="external"'


@pytest.mark.parametrize(
    ("text", "kwargs", "html"),
    [
        (
            "hello http://world.com/!",
            {},
            'hello <a href="http://world.com/">http://world.com/</a>!',
        ),
        (
            "hello http://world.com/with?param=true&stuff=yes",
            {},
            'hello <a href="http://world.com/with?param=true&amp;stuff=yes">'
            "http://world.com/with?param=true&amp;stuff=yes</a>",
        ),
        (
            "http://url.com/w(aaa)bbb",
            {},
            '<a href="http://url.com/w(aaa)bbb">http://url.com/w(aaa)bbb</a>',
        ),
        (
            "(Just http://example.com/(bar)). and http://x.com/a,b",
            {},
            '(Just <a href="http://example.com/(bar)">http://example.com/(bar)</a>). and '
            '<a href="http://x.com/a,b">http://x.com/a,b</a>',
        ),
        (
            "http://www.example.com/wpstyle/?p=364.",
            {},
            '<a href="http://www.example.com/wpstyle/?p=364">'
            "http://www.example.com/wpstyle/?p=364</a>.",
        ),
        (
            "Go to www.example.com now",
            {},
            'Go to <a href="http://www.example.com">www.example.com</a> now',
        ),
        ("Go to www.example.com now", {"require_protocol": True}, "Go to www.example.com now"),
        ("javascript:alert(1) and javascript://x", {}, "javascript:alert(1) and javascript://x"),
        (
            "javascript://alert(1)",
            {"permitted_protocols": ["http", "javascript"]},
            '<a href="javascript://alert(1)">javascript://alert(1)</a>',
        ),
        (
            "<script>http://x.com/?a=\"b\"&c='d'</script>",
            {},
            '&lt;script&gt;<a href="http://x.com/?a=&quot;b&quot;&amp;c">'
            "http://x.com/?a=&quot;b&quot;&amp;c</a>=&#x27;d&#x27;&lt;/script&gt;",
        ),
        (
            "www.external-link.com",
            {"extra_params": 'rel="nofollow" class="external"'},
            '<a href="http://www.external-link.com" rel="nofollow" class="external">'
            "www.external-link.com</a>",
        ),
        (
            "www.external-link.com and www.internal-link.com/blogs extra",
            {"extra_params": _internal_or_external},
            '<a href="http://www.external-link.com" rel="nofollow" class="external">'
            'www.external-link.com</a> and <a href="http://www.internal-link.com/blogs" '
            'class="internal">www.internal-link.com/blogs</a> extra',
        ),
        (
            "http://www.example.com/this/is/a/very/long/url/that/goes/on/and/on?and=query&x=1",
            {"shorten": True},
            '<a href="http://www.example.com/this/is/a/very/long/url/that/goes/on/and/on?and=query'
            '&amp;x=1" title="http://www.example.com/this/is/a/very/long/url/that/goes/on/and/on'
            '?and=query&amp;x=1">http://www.example.com/this...</a>',
        ),
        (
            "http://1.2.3.4:8080/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s?x=1&y=2&z=3&aaaaaaaa=bbbbbbbbb",
            {"shorten": True},
            '<a href="http://1.2.3.4:8080/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s?x=1&amp;y=2&amp;'
            'z=3&amp;aaaaaaaa=bbbbbbbbb" title="http://1.2.3.4:8080/a/b/c/d/e/f/g/h/i/j/k/l/m/n/'
            'o/p/q/r/s?x=1&amp;y=2&amp;z=3&amp;aaaaaaaa=bbbbbbbbb">http://1.2.3.4:8080/a...</a>',
        ),
        (
            "http://example.com/abcdefghijklmnop.html?q=1",
            {"shorten": True},
            '<a href="http://example.com/abcdefghijklmnop.html?q=1" '
            'title="http://example.com/abcdefghijklmnop.html?q=1">http://example.com/abcdefgh...</a>',
        ),
        ("http://a.com", {"shorten": True}, '<a href="http://a.com">http://a.com</a>'),
        (
            "file:///etc/passwd http:/one.com ftp://x.y",
            {"permitted_protocols": ["http", "ftp", "file"]},
            '<a href="file:///etc/passwd">file:///etc/passwd</a> '
            '<a href="http:/one.com">http:/one.com</a> <a href="ftp://x.y">ftp://x.y</a>',
        ),
        (
            "A link: http://example.com/ünïcode/日本 ok",
            {},
            'A link: <a href="http://example.com/ünïcode/日本">'
            "http://example.com/ünïcode/日本</a> ok",
        ),
        (b"bytes http://b.com", {}, 'bytes <a href="http://b.com">http://b.com</a>'),
        ("no links here <b>", {}, "no links here &lt;b&gt;"),
        ("", {}, ""),
    ],
)
def test_linkify(text: str | bytes, kwargs: dict[str, Any], html: str) -> None:
    assert escape.linkify(text, **kwargs) == html


@given(st.text())
def test_linkify_never_leaves_markup_unescaped(text: str) -> None:
    result = escape.linkify(text)
    # Only our own <a ...> and </a> tags may appear unescaped.
    stripped = re.sub(r'<a href="[^"<>]*">|</a>', "", result)
    assert "<" not in stripped and ">" not in stripped


def test_xhtml_escape_str_fast_path() -> None:
    assert escape.xhtml_escape_str("<'&\">") == "&lt;&#x27;&amp;&quot;&gt;"
    assert escape.xhtml_escape("<") == escape.xhtml_escape(b"<") == "&lt;"


def test_unquote_to_bytes_in_slices_matches_urllib() -> None:
    import urllib.parse

    from asyncweb.escape import _UNQUOTE_CHUNK, _unquote_to_bytes

    # Escapes land on every position around the slice boundaries, lone and broken ones too.
    for shift in range(4):
        data = b"x" * shift + b"%41%e9%%4%zz+" * (3 * _UNQUOTE_CHUNK // 13)
        assert _unquote_to_bytes(data) == urllib.parse.unquote_to_bytes(data)
        assert _unquote_to_bytes(data.decode()) == urllib.parse.unquote_to_bytes(data)
