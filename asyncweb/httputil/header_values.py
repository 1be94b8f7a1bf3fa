"""Parsers and formatters for single header values: HTTP dates, Basic credentials, byte
ranges (Range, Content-Range), cookies (Cookie), and values with parameters (Content-Type,
Content-Disposition, RFC 2231 included). Every parser runs in time linear in its input."""

from __future__ import annotations

import calendar
import codecs
import datetime
import email.utils
import re
import time
import unicodedata
import urllib.parse
from collections.abc import Mapping

from asyncweb.escape import utf8


def format_timestamp(
    ts: int | float | tuple[int, ...] | time.struct_time | datetime.datetime,
) -> str:
    """Render a moment in the IMF-fixdate form HTTP uses for Date, Expires and friends.

    ``ts`` may be seconds since the epoch, a UTC ``time.struct_time`` / 9-tuple such as
    ``time.gmtime()`` returns, or a ``datetime`` (a naive one counts as UTC).

    >>> format_timestamp(1700000000)
    'Tue, 14 Nov 2023 22:13:20 GMT'
    >>> format_timestamp(datetime.datetime(1999, 12, 31, 23, 59, 59))
    'Fri, 31 Dec 1999 23:59:59 GMT'
    """
    if isinstance(ts, (int, float)):
        seconds: float = ts
    elif isinstance(ts, (tuple, time.struct_time)):
        seconds = calendar.timegm(ts)
    elif isinstance(ts, datetime.datetime):
        seconds = calendar.timegm(ts.utctimetuple())
    else:
        raise TypeError(f"cannot format {ts!r} as an HTTP date")
    return email.utils.formatdate(seconds, usegmt=True)


def encode_username_password(username: str | bytes, password: str | bytes) -> bytes:
    """``username:password`` as bytes for HTTP Basic auth (text is NFC-normalized, UTF-8)."""
    if isinstance(username, str):
        username = unicodedata.normalize("NFC", username)
    if isinstance(password, str):
        password = unicodedata.normalize("NFC", password)
    return utf8(username) + b":" + utf8(password)


def _int_or_none(value: str) -> int | None:
    value = value.strip()
    if value == "":
        return None
    return int(value)


def _parse_request_range(range_header: str) -> tuple[int | None, int | None] | None:
    """Turn a one-range ``Range`` value into bounds usable as ``data[start:end]``.

    The result is None when the value is not a single byte range (another unit, a list of
    ranges, garbage); the caller then serves the whole entity.

    >>> _parse_request_range("bytes=100-199")  # last byte inclusive -> exclusive end
    (100, 200)
    >>> _parse_request_range("bytes=512-")
    (512, None)
    >>> _parse_request_range("bytes=-25")  # the final 25 bytes
    (-25, None)
    >>> _parse_request_range("bytes=-000")  # a zero-length suffix, which nothing satisfies
    (None, 0)
    >>> print(_parse_request_range("items=0-9"))
    None
    """
    unit, _, spec = range_header.partition("=")
    if unit.strip() != "bytes":
        return None
    first, _, last = spec.strip().partition("-")
    try:
        start = _int_or_none(first)
        end = _int_or_none(last)
    except ValueError:
        return None
    if end is not None:
        if start is None:
            # "-N" is a suffix: the last N bytes. "-0" is unsatisfiable and kept as (None, 0).
            if end != 0:
                start, end = -end, None
        else:
            end += 1  # HTTP ranges are inclusive, slices are not.
    return (start, end)


def _get_content_range(start: int | None, end: int | None, total: int) -> str:
    """Describe the slice ``[start:end]`` of a ``total``-byte entity as a Content-Range value.

    >>> _get_content_range(100, 200, 1000)
    'bytes 100-199/1000'
    >>> _get_content_range(None, None, 16)
    'bytes 0-15/16'
    """
    first = start or 0
    last = (end or total) - 1
    return f"bytes {first}-{last}/{total}"


_COOKIE_ESCAPE_RE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _cookie_unescape(match: re.Match[str]) -> str:
    octal = match.group(1)
    if octal:
        return chr(int(octal, 8))
    return match.group(2)


def _unquote_cookie(value: str) -> str:
    """Strip the quotes from a quoted cookie value and undo its backslash escapes.

    Same result as the standard library's cookie unquoting, in one regex pass (linear time).
    """
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _COOKIE_ESCAPE_RE.sub(_cookie_unescape, value[1:-1])


def parse_cookie(cookie: str) -> dict[str, str]:
    """Map each cookie in a ``Cookie`` header value to its (unquoted) value.

    Lenient the way browsers are rather than strict RFC 6265: a piece without ``=`` becomes a
    value under the empty name, double-quoted values lose their quotes, and when a name
    repeats the last occurrence is kept.

    >>> parse_cookie('theme=dark; cart="7 items"; orphan; theme=light')
    {'theme': 'light', 'cart': '7 items', '': 'orphan'}
    """
    result: dict[str, str] = {}
    for chunk in cookie.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep:
            name, value = "", chunk
        name = name.strip()
        value = value.strip()
        if name or value:
            # Most values are unquoted: skip the call for those.
            result[name] = _unquote_cookie(value) if value[:1] == '"' else value
    return result


# A quoted string (which always matches, even unterminated), a run of ordinary characters, or a
# separator. Every position matches exactly one alternative, so splitting is a single pass.
_PARAM_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\[\s\S]?)*(?:"|$)|[^;"]+|;')
# RFC 2231 parameter names: ``name*`` (encoded), ``name*0`` / ``name*1*`` (continuations).
_RFC2231_NAME_RE = re.compile(r"(\w+)\*(?:([0-9]{1,6})\*?)?", re.ASCII)
_QUOTED_PAIR_RE = re.compile(r'\\([\\"])')


def _split_params(line: str) -> list[str]:
    """Split on ``;`` except inside double quotes."""
    segments: list[str] = []
    current: list[str] = []
    for match in _PARAM_TOKEN_RE.finditer(line):
        token = match.group()
        if token == ";":
            segments.append("".join(current))
            current = []
        else:
            current.append(token)
    segments.append("".join(current))
    return segments


def _unquote_param(value: str) -> str:
    if len(value) >= 2:
        if value[0] == '"' and value[-1] == '"':
            return _QUOTED_PAIR_RE.sub(r"\1", value[1:-1])
        if value[0] == "<" and value[-1] == ">":
            return value[1:-1]
    return value


# Python codecs that are no character sets: they read backslash escapes (and warn about some).
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape"})


def _decode_rfc2231(pieces: list[tuple[int, str, bool]]) -> str:
    pieces.sort(key=lambda piece: piece[0])
    texts = []
    encoded = False
    for _, text, is_encoded in pieces:
        if is_encoded:
            text = urllib.parse.unquote(text, encoding="latin-1")
            encoded = True
        texts.append(text)
    value = "".join(texts)
    if not encoded:
        return value
    fields = value.split("'", 2)
    if len(fields) < 3:
        return value
    charset, _language, text = fields
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return text  # not percent-decoded bytes after all; keep it as sent
    try:
        codec = codecs.lookup(charset or "us-ascii")
        if codec.name in _NOT_CHARSETS:
            return text
        return raw.decode(codec.name, "replace")  # bytes.decode refuses non-text codecs
    except (LookupError, ValueError):
        # Unknown or unusable: a NUL in the name, or a codec without "replace" (idna).
        return text


def _parse_header(line: str) -> tuple[str, dict[str, str]]:
    """Parse a header like Content-Type or Content-Disposition into its value and parameters.

    Parameter names are lowercased; values are unquoted, and RFC 2231 extended values
    (``filename*=UTF-8''...``, continuations) are decoded and take precedence.

    >>> _parse_header("form-data; name=upload; filename*=utf-8''na%C3%AFve.txt")
    ('form-data', {'name': 'upload', 'filename': 'na\u00efve.txt'})
    """
    segments = _split_params(line)
    key = segments[0].strip()
    params: dict[str, str] = {}
    extended: dict[str, list[tuple[int, str, bool]]] = {}
    for segment in segments[1:]:
        name, sep, value = segment.partition("=")
        if not sep:
            continue
        name = name.strip().lower()
        value = _unquote_param(value.strip())
        match = _RFC2231_NAME_RE.fullmatch(name)
        if match is not None:
            number = int(match.group(2)) if match.group(2) else 0
            extended.setdefault(match.group(1), []).append((number, value, name.endswith("*")))
        else:
            params[name] = value
    for name, pieces in extended.items():
        params[name] = _decode_rfc2231(pieces)
    for name, value in params.items():
        # Tornado strips one more level of quotes, e.g. from ""doubly quoted"".
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            params[name] = value[1:-1]
    return key, params


def _encode_header(key: str, pdict: Mapping[str, str | None]) -> str:
    """Build ``key; name=value; flag`` from a value and its parameters (sorted by name).

    A parameter whose value is None is written as a bare name; nothing is quoted.

    >>> _encode_header("text/plain", {"format": "flowed", "charset": "utf-8", "delsp": None})
    'text/plain; charset=utf-8; delsp; format=flowed'
    """
    if not pdict:
        return key
    out = [key]
    for name, value in sorted(pdict.items()):
        out.append(name if value is None else f"{name}={value}")
    return "; ".join(out)
