"""Escaping and unescaping for HTML, URLs and JSON, and str/bytes conversion.

Behaviour follows Tornado's ``tornado.escape``; the implementation is our own.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from typing import Any, overload

# The single quote is written &#x27;, as Tornado 6.4+ (and html.escape) write it.
_XHTML_ESCAPE = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
)


def xhtml_escape(value: str | bytes) -> str:
    """Escape ``& < > " '`` so the result is safe in HTML text and quoted attributes."""
    return to_unicode(value).translate(_XHTML_ESCAPE)


def xhtml_unescape(value: str | bytes) -> str:
    """Reverse of :func:`xhtml_escape`, also decoding any named or numeric entity."""
    return html.unescape(to_unicode(value))


def json_encode(value: Any) -> str:
    """JSON-encode ``value``, writing ``</`` as ``<\\/`` so it is safe inside ``<script>``."""
    return json.dumps(value).replace("</", "<\\/")


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
        return urllib.parse.unquote_to_bytes(raw)
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
