"""HTTPHeaders, the case-insensitive multi-valued header map, and what it runs on: canonical
header names (in bounded caches), lookups in the raw pairs h11 hands over, and the validation
of ``Name: value`` lines."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, TypeVar, overload

from asyncweb.httputil.errors import HTTPInputError
from asyncweb.protocol.response_head import HEADER_NAME_TOKEN as _TOKEN_RE

_T = TypeVar("_T")


# RFC 7230 OWS: only space and tab, not every str.isspace() character.
HTTP_WHITESPACE = " \t"

# Control characters other than tab are never legal in a header value.
_FORBIDDEN_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


_FOLDING_MESSAGE = "folded (obs-fold) header lines are rejected"


# name -> canonical form. Bounded so hostile clients sending random header names cannot grow it
# without limit; when full it is simply emptied and refills with whatever is common.
_NORMALIZED_CACHE_SIZE = 1000
_normalized: dict[str, str] = {}
_normalized_raw: dict[bytes, str] = {}


def _normalize_header(name: str) -> str:
    """``content-type`` -> ``Content-Type``.

    Hot callers look in ``_normalized`` themselves first, saving the call when it is cached.
    """
    norm = _normalized.get(name)
    if norm is None:
        norm = "-".join([word.capitalize() for word in name.split("-")])
        if len(_normalized) >= _NORMALIZED_CACHE_SIZE:
            _normalized.clear()
        _normalized[name] = norm
    return norm


def _normalize_raw(name: bytes) -> str:
    norm = _normalize_header(name.decode("latin-1"))
    if len(_normalized_raw) >= _NORMALIZED_CACHE_SIZE:
        _normalized_raw.clear()
    _normalized_raw[name] = norm
    return norm


# fmt: off
_COMMON_HEADERS = (
    b"host", b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"connection",
    b"content-length", b"content-type", b"cookie", b"referer", b"origin", b"authorization",
    b"cache-control", b"pragma", b"upgrade", b"if-modified-since", b"if-none-match", b"range",
    b"transfer-encoding", b"content-encoding", b"expect", b"x-forwarded-for", b"x-forwarded-proto",
    b"x-real-ip", b"x-scheme", b"x-requested-with", b"x-xsrftoken", b"x-csrftoken",
    b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
    b"sec-websocket-protocol", b"sec-fetch-site", b"sec-fetch-mode", b"sec-fetch-dest", b"etag",
    b"location", b"date", b"server", b"set-cookie", b"vary", b"last-modified", b"expires",
    b"content-disposition",
)
# fmt: on
for _common in _COMMON_HEADERS:
    _normalize_raw(_common)
del _common


# from_raw keeps at most this many pairs unbuilt.
_LAZY_MAX_PAIRS = 16
# Header name as looked up -> the raw name it matches (see _raw_key).
_raw_keys: dict[str, bytes] = {}


def _raw_key(name: str) -> bytes | None:
    """The one lowercase ASCII name that normalizes as ``name`` does (``b"content-type"`` for
    ``CONTENT-type``), or None if no such name does."""
    norm = _normalize_header(name)
    if not norm.isascii():
        return None
    key = norm.lower().encode("ascii")
    if len(_raw_keys) >= _NORMALIZED_CACHE_SIZE:
        _raw_keys.clear()
    _raw_keys[name] = key
    return key


def _raw_get(pairs: tuple[tuple[bytes, bytes], ...], name: str) -> str | None:
    """What ``HTTPHeaders.get(name)`` returns for headers made by from_raw(pairs)."""
    # Comparing bytes is enough because from_raw only takes lowercase ASCII names.
    key = _raw_keys.get(name) or _raw_key(name)
    found: bytes | None = None
    for raw_name, value in pairs:
        if raw_name == key:
            found = value if found is None else found + b"," + value
    return None if found is None else found.decode("latin-1")


def _as_list_from_raw(pairs: tuple[tuple[bytes, bytes], ...]) -> dict[str, list[str]]:
    as_list: dict[str, list[str]] = {}
    cache = _normalized_raw
    for name, value in pairs:
        norm = cache.get(name)
        if norm is None:
            norm = _normalize_raw(name)
        text = value.decode("latin-1")
        values = as_list.get(norm)
        if values is None:
            as_list[norm] = [text]
        else:
            values.append(text)
    return as_list


class HTTPHeaders(MutableMapping[str, str]):
    """A case-insensitive, multi-valued map of HTTP headers.

    Item access folds repeated fields into one comma-separated string, while :meth:`get_list`
    and :meth:`get_all` keep each field line apart. ``h[name] = v`` drops earlier values;
    :meth:`add` keeps them.

    >>> via = HTTPHeaders(server="edge-7")
    >>> via.add("VIA", "1.1 proxy-a")
    >>> via.add("via", "1.0 proxy-b")
    >>> via["Via"]
    '1.1 proxy-a,1.0 proxy-b'
    >>> via.get_list("VIA")
    ['1.1 proxy-a', '1.0 proxy-b']
    >>> via["SERVER"]
    'edge-7'
    """

    _as_list: dict[str, list[str]]
    # Pairs kept by from_raw, not yet turned into _as_list. While they are, lookups by name
    # scan them and every other method calls _build() first. Set on every instance, since
    # reading it from the class is slower.
    _raw: tuple[tuple[bytes, bytes], ...] | None = None

    def __init__(self, *args: Any, **kwargs: str) -> None:
        self._as_list = {}
        self._raw = None
        if len(args) == 1 and not kwargs and isinstance(args[0], HTTPHeaders):
            # Copying another HTTPHeaders keeps every value, not just the joined ones.
            if args[0]._raw is not None:
                args[0]._build()
            for name, values in args[0]._as_list.items():
                self._as_list[name] = list(values)
        else:
            self.update(*args, **kwargs)

    @classmethod
    def from_raw(cls, pairs: Iterable[tuple[bytes, bytes]]) -> HTTPHeaders:
        """Build from already-validated pairs of name bytes and latin-1 value bytes, the names
        lowercase ASCII tokens (as h11 hands them over once per request).

        Most requests only ever look up a header or two, so a few pairs are kept as they are
        and the map is built when something needs more than a lookup by name.
        """
        raw = tuple(pairs)
        # Skipping __init__ saves a call per request; subclasses get their own __init__ run.
        self = object.__new__(cls) if cls is HTTPHeaders else cls()
        if len(raw) <= _LAZY_MAX_PAIRS:
            self._raw = raw
        else:
            self._raw = None
            # Every lookup scans the pairs: with many of them, building once keeps it linear.
            self._as_list = _as_list_from_raw(raw)
        return self

    def _build(self) -> None:
        """Turn the pairs kept by from_raw into the normal representation."""
        assert self._raw is not None
        self._as_list = _as_list_from_raw(self._raw)
        self._raw = None

    # -- multi-value API ----------------------------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Add a value for ``name``, keeping any existing ones.

        A name that is not an HTTP token (empty, with spaces, controls or non-ASCII) raises
        HTTPInputError, as in Tornado 6.5+.
        """
        if _TOKEN_RE.fullmatch(name) is None:
            raise HTTPInputError(f"Invalid header name {name[:100]!r}")
        if self._raw is not None:
            self._build()
        norm = _normalized.get(name) or _normalize_header(name)
        values = self._as_list.get(norm)
        if values is None:
            self._as_list[norm] = [value]
        else:
            values.append(value)

    def get_list(self, name: str) -> list[str]:
        """Each value stored under ``name``, oldest first; ``[]`` for a missing name."""
        if self._raw is not None:
            self._build()
        norm = _normalized.get(name) or _normalize_header(name)
        return list(self._as_list.get(norm, ()))

    def get_all(self) -> Iterator[tuple[str, str]]:
        """Every ``(name, value)`` pair; a name with several values appears several times."""
        if self._raw is not None:
            self._build()
        # A list built at once (and by a plain loop, not a comprehension) is cheapest for the
        # few headers of a response.
        pairs = []
        for name, values in self._as_list.items():
            for value in values:
                pairs.append((name, value))
        return iter(pairs)

    def parse_line(self, line: str) -> None:
        """Add the field from one ``Name: value`` line, which may still carry its CRLF or LF.

        Blank lines are ignored. A line that begins with a space or tab would be an obsolete
        folded continuation (RFC 9112 section 5.2); that is refused with HTTPInputError, as is
        a line that is not a valid field.

        >>> hdrs = HTTPHeaders()
        >>> hdrs.parse_line("Retry-After: 120\\r\\n")
        >>> hdrs.parse_line("accept-ranges:   bytes")
        >>> hdrs["retry-after"], hdrs["Accept-Ranges"]
        ('120', 'bytes')
        >>> hdrs.parse_line("  continued")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
          ...
        asyncweb.httputil.HTTPInputError: folded (obs-fold) header lines are rejected
        """
        if line.endswith("\n"):
            # A CR is only part of the line ending when an LF follows it.
            line = line[:-2] if line.endswith("\r\n") else line[:-1]
        if not line:
            return
        if line[0] in HTTP_WHITESPACE:
            raise HTTPInputError(_FOLDING_MESSAGE)
        name, value = _split_header_line(line)
        self.add(name, value)

    @classmethod
    def parse(cls, headers: str | bytes) -> HTTPHeaders:
        """Build an HTTPHeaders from a whole header block (``bytes`` are read as latin-1).

        Lines may end in CRLF or a bare LF. Any malformed line, including an obs-fold
        continuation line, raises HTTPInputError.

        >>> block = HTTPHeaders.parse("Accept: */*\\r\\nWarning: 110 a\\r\\nwarning: 199 b\\r\\n")
        >>> block.get_list("WARNING")
        ['110 a', '199 b']
        >>> list(block)
        ['Accept', 'Warning']
        """
        if isinstance(headers, bytes):
            headers = headers.decode("latin-1")
        h = cls()
        as_list = h._as_list
        lines = headers.split("\n")
        # Every piece but the last was followed by an LF, so a trailing CR there is the CRLF's.
        # A CR at the very end is left in place and fails the value check, like a stray CR.
        last = lines.pop()
        for index, line in enumerate(lines):
            if line.endswith("\r"):
                lines[index] = line[:-1]
        lines.append(last)
        for line in lines:
            if not line:
                continue
            if line[0] in HTTP_WHITESPACE:
                raise HTTPInputError(_FOLDING_MESSAGE)
            name, value = _split_header_line(line)
            norm = _normalize_header(name)
            values = as_list.get(norm)
            if values is None:
                as_list[norm] = [value]
            else:
                values.append(value)
        return h

    # -- MutableMapping -----------------------------------------------------------------------

    def __getitem__(self, name: str) -> str:
        if self._raw is not None:
            value = _raw_get(self._raw, name)
            if value is None:
                raise KeyError(_normalize_header(name))
            return value
        values = self._as_list[_normalized.get(name) or _normalize_header(name)]
        if len(values) == 1:
            return values[0]
        return ",".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        if self._raw is not None:
            self._build()
        norm = _normalized.get(name) or _normalize_header(name)
        self._as_list[norm] = [value]

    def __delitem__(self, name: str) -> None:
        if self._raw is not None:
            self._build()
        del self._as_list[_normalized.get(name) or _normalize_header(name)]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._raw is not None:
            return _raw_get(self._raw, name) is not None
        norm = _normalized.get(name) or _normalize_header(name)
        return norm in self._as_list

    def __len__(self) -> int:
        if self._raw is not None:
            self._build()
        return len(self._as_list)

    def __iter__(self) -> Iterator[str]:
        if self._raw is not None:
            self._build()
        return iter(self._as_list)

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...

    def get(self, name: str, default: object = None, /) -> object:
        # Overridden because the inherited version goes through KeyError on a miss.
        if self._raw is not None:
            value = _raw_get(self._raw, name)
            return default if value is None else value
        values = self._as_list.get(_normalized.get(name) or _normalize_header(name))
        if values is None:
            return default
        if len(values) == 1:
            return values[0]
        return ",".join(values)

    def copy(self) -> HTTPHeaders:
        # Runs per request (handlers start from a copy of the default headers): skip __init__.
        if self._raw is not None:
            self._build()
        new = object.__new__(type(self)) if type(self) is HTTPHeaders else type(self)()
        # A plain loop: cheaper than a comprehension for a handful of names.
        as_list = new._as_list = {}
        for name, values in self._as_list.items():
            as_list[name] = values.copy()
        new._raw = None
        return new

    # copy.copy() should copy the value lists too, as copy() does.
    __copy__ = copy

    def __str__(self) -> str:
        return "".join([f"{name}: {value}\n" for name, value in self.get_all()])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.get_all())!r})"


def _split_header_line(line: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    if not sep:
        raise HTTPInputError("header line has no ':' separator")
    if _TOKEN_RE.fullmatch(name) is None:
        raise HTTPInputError(f"Invalid header name {name[:100]!r}")
    value = value.strip(HTTP_WHITESPACE)
    if _FORBIDDEN_VALUE_RE.search(value):
        raise HTTPInputError(f"Invalid header value {value[:100]!r}")
    return name, value
