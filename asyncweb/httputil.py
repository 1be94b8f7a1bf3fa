"""HTTP utilities shared by the server, the client and the framework.

Header maps, the server-side request object, and parsers for request lines, query strings,
form bodies and cookies. Behaviour follows Tornado's ``tornado.httputil``; every parser here runs
in time linear in its input, since all of them see untrusted bytes.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import dataclasses
import datetime
import email.utils
import http.client
import http.cookies
import re
import ssl
import time
import unicodedata
import urllib.parse
from collections.abc import Awaitable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, AnyStr, NamedTuple, TypeVar, overload

from asyncweb.escape import native_str, utf8
from asyncweb.log import gen_log
from asyncweb.protocol.http1 import HTTPOutputError as HTTPOutputError
from asyncweb.util import ObjectDict

if TYPE_CHECKING:
    import asyncio

_T = TypeVar("_T")

# Status code -> reason phrase, e.g. responses[404] == "Not Found".
responses = http.client.responses

# RFC 7230 OWS: only space and tab, not every str.isspace() character.
HTTP_WHITESPACE = " \t"

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters other than tab are never legal in a header value.
_FORBIDDEN_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class HTTPInputError(Exception):
    """The peer sent something that is not valid HTTP."""


class _LazyInputError(HTTPInputError):
    """Bad input found only when a part of the request was first read (its query arguments
    over the limit): the framework answers it with 400 rather than 500."""


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
        """Add a value for ``name``, keeping any existing ones."""
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
        raise HTTPInputError(f"invalid header name {name[:100]!r}")
    value = value.strip(HTTP_WHITESPACE)
    if _FORBIDDEN_VALUE_RE.search(value):
        raise HTTPInputError("invalid character in header value")
    return name, value


class HTTPServerRequest:
    """One HTTP request as the server received it.

    Text attributes hold ``str`` and ``body`` holds ``bytes``. ``arguments``,
    ``query_arguments`` and ``cookies`` are computed lazily, the first time something reads
    them (most handlers never do), and each of them can be overwritten.

    The four argument-like maps:

    * ``query_arguments``: ``{name: [bytes, ...]}`` taken from the URL after ``?``.
    * ``body_arguments``: the same shape, filled from a form body by ``_parse_body``.
    * ``arguments``: both of the above merged, URL values ahead of body values.
    * ``files``: ``{field name: [HTTPFile, ...]}`` for multipart uploads.
    """

    path: str
    query: str
    _host: str
    # Set while the Host header is still to be read off these pairs (see __init__).
    _host_pairs: tuple[tuple[bytes, bytes], ...] | None

    def __init__(
        self,
        method: str | None = None,
        uri: str | None = None,
        version: str = "HTTP/1.0",
        headers: HTTPHeaders | None = None,
        body: bytes | None = None,
        host: str | None = None,
        files: dict[str, list[HTTPFile]] | None = None,
        connection: HTTPConnection | None = None,
        start_line: RequestStartLine | None = None,
        server_connection: object | None = None,
    ) -> None:
        if start_line is not None:
            method, uri, version = start_line
        self.method = method
        self.uri = uri
        self.version = version
        if headers is None:
            headers = HTTPHeaders()
        self.headers = headers
        self.body = body or b""

        context = getattr(connection, "context", None)
        self.remote_ip: str | None = getattr(context, "remote_ip", None)
        self.protocol: str = getattr(context, "protocol", None) or "http"

        if not host and isinstance(headers, HTTPHeaders) and headers._raw is not None:
            # Pairs kept by from_raw never change, so the Host header read off them when first
            # asked for is the one there is now.
            self._host_pairs = headers._raw
        else:
            self._host_pairs = None
            self._host = host or headers.get("Host") or "127.0.0.1"
        self.files: dict[str, list[HTTPFile]] = files or {}
        self.connection = connection
        self.server_connection = server_connection
        self._start_time = time.time()
        self._finish_time: float | None = None

        if uri is not None:
            self.path, _, self.query = uri.partition("?")
        else:
            self.path = self.query = ""
        self.body_arguments: dict[str, list[bytes]] = {}
        self._query_arguments: dict[str, list[bytes]] | None = None
        self._arguments: dict[str, list[bytes]] | None = None
        self._cookies: dict[str, http.cookies.Morsel[Any]] | None = None
        self._host_name: str | None = None

    @property
    def host(self) -> str:
        """The ``host`` argument, else the Host header, else ``"127.0.0.1"``."""
        pairs = self._host_pairs
        if pairs is not None:
            self._host = _raw_get(pairs, "Host") or "127.0.0.1"
            self._host_pairs = None
        return self._host

    @host.setter
    def host(self, value: str) -> None:
        self._host = value
        self._host_pairs = None

    @property
    def host_name(self) -> str:
        """``host`` without its port, lower-cased (computed when first asked for)."""
        name = self._host_name
        if name is None:
            name = self._host_name = split_host_and_port(self.host.lower())[0]
        return name

    @host_name.setter
    def host_name(self, value: str) -> None:
        self._host_name = value

    @property
    def query_arguments(self) -> dict[str, list[bytes]]:
        """The query string's arguments, parsed when first asked for. More than the
        parse-body config's ``urlencoded.max_arguments`` raise HTTPInputError (as in
        Tornado 6.5.9, the body's limit applies to the query too)."""
        if self._query_arguments is None:
            limit = _parse_body_config.urlencoded.max_arguments
            if self.query and self.query.count("&") >= limit:
                raise _LazyInputError(f"more than {limit} query arguments")
            self._query_arguments = parse_qs_bytes(self.query, keep_blank_values=True)
        return self._query_arguments

    @query_arguments.setter
    def query_arguments(self, value: dict[str, list[bytes]]) -> None:
        self._query_arguments = value

    @property
    def arguments(self) -> dict[str, list[bytes]]:
        if self._arguments is None:
            # Own lists, so appending body values never changes query_arguments.
            merged = {name: list(values) for name, values in self.query_arguments.items()}
            for name, values in self.body_arguments.items():
                merged.setdefault(name, []).extend(values)
            self._arguments = merged
        return self._arguments

    @arguments.setter
    def arguments(self, value: dict[str, list[bytes]]) -> None:
        self._arguments = value

    @property
    def cookies(self) -> dict[str, http.cookies.Morsel[Any]]:
        """The request's cookies as ``{name: http.cookies.Morsel}``."""
        if self._cookies is None:
            jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            header = self.headers.get("Cookie")
            if header:
                for name, value in parse_cookie(header).items():
                    # SimpleCookie rejects some names parse_cookie accepts; drop those.
                    with contextlib.suppress(http.cookies.CookieError):
                        jar[name] = value
            self._cookies = jar
        return self._cookies

    @cookies.setter
    def cookies(self, value: dict[str, http.cookies.Morsel[Any]]) -> None:
        self._cookies = value

    def supports_http_1_1(self) -> bool:
        """Whether the request was made with HTTP/1.1."""
        return self.version == "HTTP/1.1"

    def full_url(self) -> str:
        """The whole URL, scheme and host included."""
        return f"{self.protocol}://{self.host}{self.uri}"

    def request_time(self) -> float:
        """Seconds the request has taken so far, or took in total once finished."""
        if self._finish_time is None:
            return time.time() - self._start_time
        return self._finish_time - self._start_time

    def get_ssl_certificate(self, binary_form: bool = False) -> dict[str, Any] | bytes | None:
        """The client's TLS certificate, if the connection is TLS and the client sent one.

        Only available when the server's ssl context requests client certificates
        (``verify_mode`` other than ``CERT_NONE``).
        """
        ssl_object: Any = None
        transport = getattr(self.connection, "transport", None)
        if transport is not None:
            ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            stream = getattr(self.connection, "stream", None)
            ssl_object = getattr(stream, "socket", None)
        if ssl_object is None or not hasattr(ssl_object, "getpeercert"):
            return None
        try:
            return ssl_object.getpeercert(binary_form=binary_form)  # type: ignore[no-any-return]
        except (ssl.SSLError, ValueError):
            return None

    def _parse_body(self) -> None:
        """Fill body_arguments and files from the body, and merge the arguments in.

        A body over a limit of the parse-body config is ignored with a warning; the framework
        calls ``_parse_body_or_refuse`` instead, to answer it with a 400.
        """
        try:
            self._parse_body_or_refuse()
        except HTTPInputError as e:
            gen_log.warning("Form body ignored: %s", e)

    def _parse_body_or_refuse(self) -> None:
        """``_parse_body``, but a body over a limit raises HTTPInputError (nothing is stored)."""
        parse_body_arguments(
            self.headers.get("Content-Type", ""),
            self.body,
            self.body_arguments,
            self.files,
            self.headers,
        )
        if self._arguments is not None:
            for name, values in self.body_arguments.items():
                self._arguments.setdefault(name, []).extend(values)
        # Otherwise the lazy ``arguments`` property merges body_arguments when first read.

    def __repr__(self) -> str:
        attrs = ("protocol", "host", "method", "uri", "version", "remote_ip")
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in attrs)
        return f"{type(self).__name__}({args})"


class RequestStartLine(NamedTuple):
    method: str
    path: str
    version: str


class ResponseStartLine(NamedTuple):
    version: str
    code: int
    reason: str


class HTTPServerConnectionDelegate:
    """What an HTTP server hands each connection's requests to (``Application`` is one)."""

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        raise NotImplementedError()

    def on_close(self, server_conn: object) -> None:
        pass


class HTTPMessageDelegate:
    """Receives one request: head, body chunks, end. May return awaitables for flow control."""

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        pass

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        pass

    def finish(self) -> None:
        pass

    def on_connection_close(self) -> None:
        pass


class HTTPConnection:
    """The response side of one request, as the framework sees it."""

    def write_headers(
        self,
        start_line: RequestStartLine | ResponseStartLine,
        headers: HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        raise NotImplementedError()

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        raise NotImplementedError()

    def finish(self) -> None:
        raise NotImplementedError()


def url_concat(
    url: str,
    args: Mapping[str, str] | list[tuple[str, str]] | tuple[tuple[str, str], ...] | None,
) -> str:
    """Return ``url`` with ``args`` (a mapping or a sequence of pairs) added to its query.

    Parameters already in the URL stay in front; a sequence may repeat a name.

    >>> url_concat("https://api.test/search", {"q": "owl", "lang": "en"})
    'https://api.test/search?q=owl&lang=en'
    >>> url_concat("/items?page=2#top", [("tag", "red"), ("tag", "blue")])
    '/items?page=2&tag=red&tag=blue#top'
    """
    if args is None:
        return url
    if isinstance(args, Mapping):
        extra: Iterable[tuple[str, str]] = args.items()
    elif isinstance(args, (list, tuple)):
        extra = args
    else:
        raise TypeError(f"url_concat() takes a mapping or a list/tuple of pairs, got {type(args)}")
    parts = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.extend(extra)
    return urllib.parse.urlunparse(parts._replace(query=urllib.parse.urlencode(query)))


class HTTPFile(ObjectDict):
    """One uploaded file from a multipart form: ``filename``, ``body`` and ``content_type``.

    Readable both as keys and as attributes (``f["body"]`` or ``f.body``).
    """

    filename: str
    body: bytes
    content_type: str


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


def _content_encoded(headers: HTTPHeaders | None) -> str | None:
    if not headers:
        return None
    encoding = headers.get("Content-Encoding")
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return None
    return encoding


@dataclasses.dataclass
class ParseMultipartConfig:
    """Limits for ``multipart/form-data`` request bodies, which are parsed on the event loop.

    ``enabled=False`` refuses every multipart body. A body with more than ``max_parts`` parts
    is refused as a whole; a part whose headers are longer than ``max_part_header_size`` bytes
    is dropped (with the body's one warning), as any other unusable part is.
    """

    enabled: bool = True
    max_parts: int = 100
    max_part_header_size: int = 10 * 1024


@dataclasses.dataclass
class ParseUrlEncodedConfig:
    """Limits for ``application/x-www-form-urlencoded`` request bodies: a body with more
    than ``max_arguments`` fields (``&``-separated pieces) is refused as a whole."""

    max_arguments: int = 1000


@dataclasses.dataclass
class ParseBodyConfig:
    """Limits for form bodies, one config per format."""

    multipart: ParseMultipartConfig = dataclasses.field(default_factory=ParseMultipartConfig)
    urlencoded: ParseUrlEncodedConfig = dataclasses.field(default_factory=ParseUrlEncodedConfig)


_parse_body_config = ParseBodyConfig()


def set_parse_body_config(config: ParseBodyConfig) -> None:
    """Set the process-wide limits used when ``parse_body_arguments`` gets no ``config``.

    That is every request body the server parses: ``RequestHandler`` answers a body over a
    limit with 400 Bad Request. ``set_parse_body_config(ParseBodyConfig())`` restores the
    defaults (100 multipart parts, 10 KiB of headers per part, 1000 urlencoded arguments).
    """
    global _parse_body_config
    _parse_body_config = config


def parse_body_arguments(
    content_type: str,
    body: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    headers: HTTPHeaders | None = None,
    *,
    config: ParseBodyConfig | None = None,
) -> None:
    """Decode a submitted form, adding its fields to ``arguments`` and uploads to ``files``.

    Only urlencoded and ``multipart/form-data`` bodies are looked at; anything else is left
    untouched. A body that cannot be decoded gets a logged warning instead of an exception.
    A body over a limit of ``config`` (default: the one ``set_parse_body_config`` set)
    raises HTTPInputError and adds nothing.
    """
    if config is None:
        config = _parse_body_config
    kind = content_type[:33].lower()
    if kind.startswith("application/x-www-form-urlencoded"):
        encoding = _content_encoded(headers)
        if encoding is not None:
            gen_log.warning("Form body ignored: cannot decode Content-Encoding %r", encoding)
            return
        limit = config.urlencoded.max_arguments
        # Counted before parsing, the way parse_qs counts fields: one more than the "&"s.
        if body and body.count(b"&") >= limit:
            raise HTTPInputError(f"more than {limit} urlencoded arguments")
        try:
            parsed = parse_qs_bytes(body, keep_blank_values=True)
        except Exception as e:
            gen_log.warning("Form body ignored: bad urlencoded data (%s)", e)
            return
        for name, values in parsed.items():
            if values:
                arguments.setdefault(name, []).extend(values)
    elif kind.startswith("multipart/form-data"):
        encoding = _content_encoded(headers)
        if encoding is not None:
            gen_log.warning("Form body ignored: cannot decode Content-Encoding %r", encoding)
            return
        _, params = _parse_header(content_type)
        boundary = params.get("boundary")
        if not boundary:
            gen_log.warning("Form body ignored: multipart Content-Type has no boundary")
            return
        parse_multipart_form_data(utf8(boundary), body, arguments, files, config=config.multipart)


def parse_multipart_form_data(
    boundary: bytes,
    data: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    *,
    config: ParseMultipartConfig | None = None,
) -> None:
    """Split a ``multipart/form-data`` body on ``boundary`` and file away each part.

    Plain fields go to ``arguments``, parts with a filename to ``files``. ``boundary`` is the
    Content-Type parameter, quoted or not. Broken parts are dropped and reported in a single
    warning per body, so a body with thousands of bad parts still costs one log line. A body
    over the limits of ``config`` raises HTTPInputError before anything is stored.
    """
    if config is None:
        config = _parse_body_config.multipart
    if not config.enabled:
        raise HTTPInputError("multipart/form-data parsing is disabled")
    if len(boundary) >= 2 and boundary.startswith(b'"') and boundary.endswith(b'"'):
        boundary = boundary[1:-1]
    final = data.rfind(b"--" + boundary + b"--")
    if final == -1:
        gen_log.warning("Multipart body ignored: closing boundary missing")
        return
    # Find the delimiters first (at most max_parts + 1 of them), so an over-limit body is
    # refused before any work per part, and parts are sliced straight from ``data``: no
    # copy of the whole body, no list of a million pieces.
    delimiter = b"--" + boundary + b"\r\n"
    starts: list[int] = []
    max_parts = config.max_parts
    position = data.find(delimiter, 0, final)
    while position != -1:
        if len(starts) == max_parts:
            raise HTTPInputError(f"more than {max_parts} multipart parts")
        position += len(delimiter)
        starts.append(position)
        position = data.find(delimiter, position, final)
    if not starts:
        return
    problem: str | None = None
    skipped = 0
    # A part ends where the next delimiter begins; the last one at the closing delimiter.
    ends = [start - len(delimiter) for start in starts[1:]]
    ends.append(final)
    for start, end in zip(starts, ends, strict=True):
        if start == end:
            continue  # nothing between two delimiters
        reason = _parse_multipart_part(
            data, start, end, arguments, files, config.max_part_header_size
        )
        if reason is not None:
            skipped += 1
            problem = problem or reason
    if problem is not None:
        gen_log.warning("Multipart body: dropped %d bad part(s), first: %s", skipped, problem)


def _parse_multipart_part(
    data: bytes,
    start: int,
    end: int,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    max_header_size: int,
) -> str | None:
    """Store the part ``data[start:end]``; on failure store nothing and return a reason."""
    eoh = data.find(b"\r\n\r\n", start, min(end, start + max_header_size + 4))
    if eoh == -1:
        if data.find(b"\r\n\r\n", start, end) == -1:
            return "part is missing headers"
        return f"part headers longer than {max_header_size} bytes"
    if data[end - 2 : end] != b"\r\n":
        return "part does not end with CRLF"
    try:
        headers = HTTPHeaders.parse(data[start:eoh].decode("utf-8"))
    except (UnicodeDecodeError, HTTPInputError) as e:
        return f"bad part headers ({e})"
    disposition, params = _parse_header(headers.get("Content-Disposition", ""))
    if disposition.lower() != "form-data":
        return "part is not form-data"
    name = params.get("name")
    if not name:
        return "part is missing a name"
    value = data[eoh + 4 : end - 2]
    filename = params.get("filename")
    if filename:
        content_type = headers.get("Content-Type", "application/unknown")
        files.setdefault(name, []).append(
            HTTPFile(filename=filename, body=value, content_type=content_type)
        )
    else:
        arguments.setdefault(name, []).append(value)
    return None


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


_HTTP_VERSION_RE = re.compile(r"HTTP/1\.[0-9]")
_RESPONSE_LINE_RE = re.compile(r"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?")


def parse_request_start_line(line: str) -> RequestStartLine:
    """Break a request line such as ``PUT /x HTTP/1.1`` into a RequestStartLine.

    >>> parse_request_start_line("DELETE /carts/17?force=1 HTTP/1.0")
    RequestStartLine(method='DELETE', path='/carts/17?force=1', version='HTTP/1.0')
    """
    try:
        method, path, version = line.split(" ")
    except ValueError:
        raise HTTPInputError("request line is not 'METHOD TARGET VERSION'") from None
    if _TOKEN_RE.fullmatch(method) is None:
        raise HTTPInputError(f"request line has an invalid method {method[:100]!r}")
    if _HTTP_VERSION_RE.fullmatch(version) is None:
        raise HTTPInputError(f"request line has an unsupported version {version[:100]!r}")
    return RequestStartLine(method, path, version)


def parse_response_start_line(line: str | bytes) -> ResponseStartLine:
    """Break a status line such as ``HTTP/1.1 204 No Content`` into a ResponseStartLine.

    >>> parse_response_start_line(b"HTTP/1.0 418 I'm a teapot\\r\\n")
    ResponseStartLine(version='HTTP/1.0', code=418, reason="I'm a teapot")
    """
    text = native_str(line).rstrip("\r\n")
    match = _RESPONSE_LINE_RE.fullmatch(text)
    if match is None:
        raise HTTPInputError("status line is not 'HTTP/1.x NNN reason'")
    return ResponseStartLine(match.group(1), int(match.group(2)), match.group(3) or "")


def encode_username_password(username: str | bytes, password: str | bytes) -> bytes:
    """``username:password`` as bytes for HTTP Basic auth (text is NFC-normalized, UTF-8)."""
    if isinstance(username, str):
        username = unicodedata.normalize("NFC", username)
    if isinstance(password, str):
        password = unicodedata.normalize("NFC", password)
    return utf8(username) + b":" + utf8(password)


def split_host_and_port(netloc: str) -> tuple[str, int | None]:
    """``"example.com:8080"`` -> ``("example.com", 8080)``; no port gives ``None``.

    >>> split_host_and_port("[::1]:80")
    ('[::1]', 80)
    """
    host, sep, port = netloc.rpartition(":")
    if sep and host and port.isascii() and port.isdigit():
        return host, int(port)
    return netloc, None


def qs_to_qsl(qs: Mapping[str, list[AnyStr]]) -> Iterator[tuple[str, AnyStr]]:
    """Flatten ``{name: [values]}`` (as from parse_qs) into ``(name, value)`` pairs."""
    for name, values in qs.items():
        for value in values:
            yield (name, value)


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
    parsed = urllib.parse.parse_qs(
        qs, keep_blank_values, strict_parsing, encoding="latin-1", errors="strict"
    )
    return {name: [value.encode("latin-1") for value in values] for name, values in parsed.items()}


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
            result[name] = _unquote_cookie(value)
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
