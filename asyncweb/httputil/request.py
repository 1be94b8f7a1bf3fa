"""The server side of one HTTP exchange: HTTPServerRequest, the request and status lines, and
the delegate interfaces between a connection and the application."""

from __future__ import annotations

import contextlib
import http.client
import http.cookies
import re
import ssl
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, NamedTuple

from asyncweb.escape import native_str
from asyncweb.httputil import forms
from asyncweb.httputil.errors import HTTPInputError, _LazyInputError
from asyncweb.httputil.forms import HTTPFile, parse_body_arguments
from asyncweb.httputil.header_values import parse_cookie
from asyncweb.httputil.headers import HTTPHeaders, _raw_get
from asyncweb.httputil.urls import parse_qs_bytes, split_host_and_port
from asyncweb.log import gen_log
from asyncweb.protocol.response_head import HEADER_NAME_TOKEN as _TOKEN_RE

if TYPE_CHECKING:
    import asyncio


_new_object = object.__new__
_time = time.time

# Status code -> reason phrase, e.g. responses[404] == "Not Found".
responses = http.client.responses


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

    @classmethod
    def _from_head(
        cls,
        connection: Any,
        start_line: RequestStartLine,
        headers: HTTPHeaders,
    ) -> HTTPServerRequest:
        """What ``HTTPServerRequest(connection=connection, server_connection=connection,
        start_line=start_line, headers=headers)`` builds, for headers made by
        ``HTTPHeaders.from_raw``: the server's constructor, without the keyword binding and the
        tests for arguments it never passes (a test compares the two)."""
        if cls is not HTTPServerRequest:
            return cls(
                connection=connection,
                server_connection=connection,
                start_line=start_line,
                headers=headers,
            )
        self = _new_object(cls)
        self.method, uri, self.version = start_line
        self.uri = uri
        self.headers = headers
        self.body = b""
        context = getattr(connection, "context", None)
        if context is None:
            self.remote_ip = None
            self.protocol = "http"
        else:
            self.remote_ip = getattr(context, "remote_ip", None)
            self.protocol = getattr(context, "protocol", None) or "http"
        raw = headers._raw
        self._host_pairs = raw
        if raw is None:
            self._host = headers.get("Host") or "127.0.0.1"
        self.files = {}
        self.connection = connection
        self.server_connection = connection
        self._start_time = _time()
        self._finish_time = None
        self.path, _, self.query = uri.partition("?")
        self.body_arguments = {}
        self._query_arguments = None
        self._arguments = None
        self._cookies = None
        self._host_name = None
        return self

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
            limit = forms._parse_body_config.urlencoded.max_arguments
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
