"""Escaping and unescaping for HTML, URLs and JSON, str/bytes conversion, and query strings
parsed with their values kept as bytes.

Behaviour follows Tornado's ``tornado.escape``; the implementation is our own. A leaf module:
it imports nothing of asyncweb, so every layer may use it.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any, overload


# The single quote is written &#x27;, as Tornado 6.4+ (and html.escape) write it. Five chained
# str.replace calls measured 2-4x faster than str.translate with a mapping on typical text.
def xhtml_escape_str(value: str) -> str:
    """:func:`xhtml_escape` for a value already known to be ``str`` (the template fast path)."""
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def xhtml_escape(value: str | bytes) -> str:
    """Escape ``& < > " '`` so the result is safe in HTML text and quoted attributes."""
    if value.__class__ is not str:
        value = to_unicode(value)
    return xhtml_escape_str(value)


def xhtml_unescape(value: str | bytes) -> str:
    """Reverse of :func:`xhtml_escape`, also decoding any named or numeric entity."""
    return html.unescape(to_unicode(value))


# json.dumps(value) with no options is this encoder's encode(); calling it directly skips
# dumps' option checks.
_json_encoder = json.JSONEncoder()


def json_encode(value: Any) -> str:
    """JSON-encode ``value``, writing ``</`` as ``<\\/`` so it is safe inside ``<script>``."""
    return _json_encoder.encode(value).replace("</", "<\\/")


def json_decode(value: str | bytes) -> Any:
    return json.loads(value)


_SPACES = re.compile(r"[\x00-\x20]+")


def squeeze(value: str) -> str:
    """Collapse each run of whitespace and control characters to one space, and strip the ends."""
    return _SPACES.sub(" ", value).strip()


def url_escape(value: str | bytes, plus: bool = True) -> str:
    """Percent-encode ``value`` for a URL; ``plus=True`` writes spaces as ``+`` (query style)."""
    quote = urllib.parse.quote_plus if plus else urllib.parse.quote
    return quote(utf8(value))


@overload
def url_unescape(value: str | bytes, encoding: None, plus: bool = True) -> bytes: ...


@overload
def url_unescape(value: str | bytes, encoding: str = "utf-8", plus: bool = True) -> str: ...


def url_unescape(
    value: str | bytes, encoding: str | None = "utf-8", plus: bool = True
) -> str | bytes:
    """Decode a percent-encoded string; ``encoding=None`` returns bytes.

    With ``plus=True`` a ``+`` means a space (query strings); in paths pass ``plus=False``.
    """
    if encoding is None:
        raw = utf8(value)
        if plus:
            raw = raw.replace(b"+", b" ")
        return _unquote_to_bytes(raw)
    unquote = urllib.parse.unquote_plus if plus else urllib.parse.unquote
    return unquote(to_unicode(value), encoding=encoding)


_UTF8_TYPES = (bytes, type(None))
_UNICODE_TYPES = (str, type(None))


@overload
def utf8(value: bytes) -> bytes: ...
@overload
def utf8(value: str) -> bytes: ...
@overload
def utf8(value: None) -> None: ...


def utf8(value: str | bytes | None) -> bytes | None:
    """Return ``value`` as UTF-8 bytes; bytes and None pass through unchanged."""
    if isinstance(value, _UTF8_TYPES):
        return value
    if not isinstance(value, str):
        raise TypeError(f"Expected bytes, unicode, or None; got {type(value)!r}")
    return value.encode("utf-8")


@overload
def to_unicode(value: str) -> str: ...
@overload
def to_unicode(value: bytes) -> str: ...
@overload
def to_unicode(value: None) -> None: ...


def to_unicode(value: str | bytes | None) -> str | None:
    """Return ``value`` as str, decoding bytes as UTF-8; str and None pass through unchanged."""
    if isinstance(value, _UNICODE_TYPES):
        return value
    if not isinstance(value, bytes):
        raise TypeError(f"Expected bytes, unicode, or None; got {type(value)!r}")
    return value.decode("utf-8")


# On Python 3 the native string type is str.
native_str = to_unicode
to_basestring = to_unicode
_unicode = to_unicode


def recursive_unicode(obj: Any) -> Any:
    """Decode bytes to str throughout nested dicts, lists and tuples."""
    if isinstance(obj, dict):
        return {recursive_unicode(k): recursive_unicode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [recursive_unicode(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(recursive_unicode(item) for item in obj)
    if isinstance(obj, bytes):
        return to_unicode(obj)
    return obj


# A URL starts with "scheme:/", "scheme://", "scheme:///" or "www.", runs over non-space
# characters (parenthesised runs may hold anything but space, so "(x)" in a Wikipedia URL is kept)
# and never ends on punctuation, so "see http://x.com." links "http://x.com". The text is already
# HTML-escaped when matched, so "&amp;" and "&quot;" count as one character each and a bare "&"
# (the start of another entity such as &lt; or &#x27;) ends the URL.
_URL_CHAR = r"(?:[^\s&()]|&amp;|&quot;)"
_URL_END_CHAR = r"""[^!"#$%&'()*+,.:;<=>?@\[\]^`{|}~\s]"""
_URL_RE = re.compile(
    r"\b("
    r"(?:([\w-]+):(/{1,3})|www[.])"
    rf"(?:(?:{_URL_CHAR}*{_URL_END_CHAR})|(?:\({_URL_CHAR}*\)))+"
    r")"
)
_SHORTEN_TO = 30


def linkify(
    text: str | bytes,
    shorten: bool = False,
    extra_params: str | Callable[[str], str] = "",
    require_protocol: bool = False,
    permitted_protocols: Iterable[str] = ("http", "https"),
) -> str:
    """HTML-escape ``text`` and turn the URLs in it into ``<a href>`` links.

    ``shorten`` abbreviates long link texts (the full URL goes into ``title``);
    ``extra_params`` is added inside each ``<a>`` tag, either a string such as
    ``'rel="nofollow"'`` or a callable taking the URL and returning one;
    ``require_protocol`` leaves ``www.example.com`` without a scheme unlinked;
    URLs whose scheme is not in ``permitted_protocols`` are never linked (so no
    ``javascript:`` links).
    """
    permitted = set(permitted_protocols)
    fixed_params = ""
    if extra_params and not callable(extra_params):
        fixed_params = " " + extra_params.strip()

    def make_link(match: re.Match[str]) -> str:
        url = match.group(1)
        proto = match.group(2)
        if proto is None:
            if require_protocol:
                return url
            href = "http://" + url
        else:
            if proto not in permitted:
                return url
            href = url
        params = fixed_params
        if callable(extra_params):
            params = extra_params(href).strip()
            if params:
                params = " " + params
        if shorten:
            url = _shorten_link_text(url, proto, match.group(3))
            if url != match.group(1):
                params += f' title="{href}"'
        return f'<a href="{href}"{params}>{url}</a>'

    return _URL_RE.sub(make_link, xhtml_escape(text))


def _shorten_link_text(url: str, proto: str | None, slashes: str | None) -> str:
    """Tornado's shortening: scheme + host + a stub of the first path part, clipped with "..."."""
    original = url
    prefix_len = len(proto) + 1 + len(slashes or "") if proto else 0
    parts = url[prefix_len:].split("/")
    if len(parts) > 1:
        # Keep the host and the first path segment up to 8 chars, cut at "?" or ".".
        stub = parts[1][:8].split("?")[0].split(".")[0]
        url = url[:prefix_len] + parts[0] + "/" + stub
    if len(url) > _SHORTEN_TO * 1.5:
        url = url[:_SHORTEN_TO]
    if url != original:
        # Never cut an entity such as &amp; in half.
        amp = url.rfind("&")
        if amp > _SHORTEN_TO - 5:
            url = url[:amp]
        url += "..."
        if len(url) >= len(original):
            url = original
    return url


_UNQUOTE_CHUNK = 8192


def _unquote_to_bytes(value: str | bytes) -> bytes:
    """Percent-decoding to bytes (``+`` stays ``+``); the decoder of ``url_unescape``.

    urllib's decoder splits its whole input at every ``%`` first, which costs tens of bytes
    of memory per input byte; long input is decoded a slice at a time instead (never cutting
    an escape in two), so a hostile query string costs about its own size.
    """
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(data) <= _UNQUOTE_CHUNK or b"%" not in data:
        return urllib.parse.unquote_to_bytes(data)
    out = bytearray()
    start, size = 0, len(data)
    while start < size:
        end = min(start + _UNQUOTE_CHUNK, size)
        if end < size:
            cut = data.rfind(b"%", end - 2, end)
            if cut != -1:
                end = cut  # the escape starts the next slice
        out += urllib.parse.unquote_to_bytes(data[start:end])
        start = end
    return bytes(out)


# Runs of characters beyond latin-1: they can hold no escape, so they pass through verbatim.
_BEYOND_LATIN1 = re.compile("([^\x00-\xff]+)")


def _unquote_name(name: str) -> str:
    """A field name decoded as urllib.parse.unquote(name, encoding="latin-1") does (names
    stay str, so characters beyond latin-1 are kept, as in Tornado), with our decoder."""
    try:
        return _unquote_to_bytes(name.encode("latin-1")).decode("latin-1")
    except UnicodeEncodeError:
        pieces = _BEYOND_LATIN1.split(name)
        # Even indexes are latin-1 text between the runs (an escape is ASCII: never split).
        for index in range(0, len(pieces), 2):
            pieces[index] = _unquote_to_bytes(pieces[index].encode("latin-1")).decode("latin-1")
        return "".join(pieces)


def parse_qs_bytes(
    qs: str | bytes,
    keep_blank_values: bool = False,
    strict_parsing: bool = False,
    *,
    max_num_fields: int | None = None,
) -> dict[str, list[bytes]]:
    """Like :func:`urllib.parse.parse_qs`, but values stay bytes.

    Percent-escapes are decoded to raw bytes (the charset is the application's business, see
    ``RequestHandler.decode_argument``). Names are ``str`` decoded as latin-1, as in Tornado,
    so a non-ASCII name appears as its UTF-8 bytes read as latin-1. More than
    ``max_num_fields`` fields (one more than the ``&`` separators) raise ValueError.
    """
    if isinstance(qs, bytes):
        qs = qs.decode("latin-1")
    if max_num_fields is not None and qs and qs.count("&") >= max_num_fields:
        raise ValueError(f"more than {max_num_fields} fields")
    if not strict_parsing and "%" not in qs and "+" not in qs:
        # Nothing to unescape (the common query): the same answer as below without the
        # per-field unquote and the second pass over the pairs. ";" is no separator in either.
        arguments: dict[str, list[bytes]] = {}
        for field in qs.split("&"):
            name, _, value = field.partition("=")
            if not value and (not field or not keep_blank_values):
                continue
            values = arguments.get(name)
            if values is None:
                arguments[name] = [value.encode("latin-1")]
            else:
                values.append(value.encode("latin-1"))
        return arguments
    # urllib.parse.parse_qs's rules, but decoding with _unquote_to_bytes: urllib's decoder
    # costs tens of bytes of memory per byte of a %-heavy value.
    parsed: dict[str, list[bytes]] = {}
    for field in qs.split("&"):
        if not field and not strict_parsing:
            continue
        name, equals, value = field.partition("=")
        if not equals:
            if strict_parsing:
                raise ValueError(f"bad query field: {field!r}")
            if not keep_blank_values:
                continue
        if not value and not keep_blank_values:
            continue
        key = _unquote_name(name.replace("+", " "))
        raw = _unquote_to_bytes(value.replace("+", " ").encode("latin-1"))
        parsed.setdefault(key, []).append(raw)
    return parsed
