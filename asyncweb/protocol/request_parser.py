"""Request parsing for the server protocol: a request head read on a short path, everything
unusual read by a real ``h11.Connection``.

``HTTP1ServerProtocol`` drives its parser through the part of ``h11.Connection`` it uses:
``receive_data``, ``next_event``, ``trailing_data`` and ``they_are_waiting_for_100_continue``.
:class:`HeadFirstConnection` offers that part for one exchange. Most of what a full
``h11.Connection`` costs per request is its state machine, which the protocol does not need: it
decides keep-alive and framing itself and starts each exchange on a fresh parser. So the head is
read by a *head reader*, the one thing that differs between the two parsers a server may choose:

- ``"h11"`` (the default): the head's lines matched by h11's own request-line and field
  grammars and made into an ``h11.Request`` by h11, so it is h11's in every byte and every
  check (a head whose lines h11 would split differently goes to the Connection);
- ``"httptools"`` (optional, faster): llhttp splits the head into request line and fields, and
  the ``h11.Request`` is still built by h11, which checks the Host header, Content-Length,
  Transfer-Encoding, the method and the target as for its own reader.

A Content-Length body is counted out of the buffer. Anything else goes to a real
``h11.Connection`` fed the exchange from its first byte: a head either reader refuses or
doubts, bare-LF line ends, a chunked body, a head that outgrows the limit, input ending
mid-head. So every rejection carries h11's own status and reason, and ``pure_h11`` (one
``h11.Connection`` per connection, responses through it too, read through
:class:`ScreenedH11Connection`) stays the reference all of them are tested against.

Both parsers also keep a head's hygiene: empty lines before a request line are dropped (RFC 9112
2.2; old clients send a CRLF after a POST body), obsolete line folding is refused with a 400
(h11 would unfold it; proxies that disagree about folding are a smuggling vector), and the
headers are scanned once, into the :data:`HeadFacts` the server protocol reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import h11

try:  # h11's own grammars and header checks; absent, every head goes to a Connection
    from h11._events import method_re, request_target_re
    from h11._headers import normalize_and_validate
    from h11._readers import header_field_re, request_line_re
except ImportError:  # pragma: no cover - a future h11 may move them
    header_field_re = request_line_re = None  # type: ignore[assignment]

try:
    import httptools
except ImportError:  # pragma: no cover - the default parser needs nothing extra
    httptools = None  # type: ignore[assignment]

# A complete head (bytes up to and including its blank line) -> the request, or None: "let a
# real h11.Connection read this exchange".
HeadReader = Callable[[bytes], "h11.Request | None"]

# What the server protocol needs of a request's headers, read in one pass (see scan_head):
# (lowercase name, value) pairs, Content-Length, chunked, Connection (lowercase), gzipped,
# Expect: 100-continue.
HeadFacts = tuple[list[tuple[bytes, bytes]], "int | None", bool, bytes, bool, bool]

# What may start an empty line, which is ignored where a request line is expected.
EMPTY_LINE_STARTS = (b"\r", b"\n")
_FOLDED = "obsolete line folding is not allowed"

# What ends a head for h11: a blank line after a CRLF or a bare LF.
_BLANK_LINE = re.compile(b"\n\r?\n")
_OWS = b" \t"
_VERSIONS = {"1.1": b"1.1", "1.0": b"1.0"}

_HEAD, _BODY, _DONE = range(3)

# Control characters h11 lets through in a field value (it refuses NUL, CR, LF and the other
# whitespace controls): refused, as some proxies and log readers act on them. In a whole head
# CR and LF are line ends; h11 itself refuses them anywhere else.
_VALUE_CONTROL = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
# For bytes.translate's delete argument: four times faster than a regex on a browser's head.
_HEAD_CONTROLS = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def refuse_control_characters(request: h11.Request) -> None:
    """Raise h11's error (400) for a header value holding a control character other than
    HTAB; for requests read by an ``h11.Connection``."""
    for _, value in request.headers.raw_items():
        if _VALUE_CONTROL.search(value):
            raise h11.RemoteProtocolError(
                "control character in a header value", error_status_hint=400
            )


def scan_head(request: h11.Request) -> HeadFacts:
    """Everything the server protocol reads from a request's headers, in one pass."""
    pairs = []
    declared: int | None = None
    gzipped = chunked = expect_continue = False
    connection = b""
    for _, name, value in request.headers._full_items:
        pairs.append((name, value))
        if name == b"content-length":
            declared = int(value)
        elif name == b"connection":
            connection = value.lower()
        elif name == b"content-encoding":
            gzipped = value.strip().lower() == b"gzip"
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"expect":
            expect_continue = expect_continue or any(
                item.strip().lower() == b"100-continue" for item in value.split(b",")
            )
    return pairs, declared, chunked, connection, gzipped, expect_continue


def head_size(request: h11.Request) -> int:
    """The bytes a request head took on the wire, give or take its line ends' spelling."""
    size = len(request.method) + len(request.target) + len(b" HTTP/1.1\r\n\r\n")
    for name, value in request.headers.raw_items():
        size += len(name) + len(value) + 4
    return size


def _folded(buffer: bytes, start: int, end: int) -> bool:
    """A line of buffer[start:end] starts with SP or HTAB (obsolete line folding)."""
    return buffer.find(b"\n ", start, end) >= 0 or buffer.find(b"\n\t", start, end) >= 0


def read_head_h11(head: bytes) -> h11.Request | None:
    """h11's reading of a request head: the lines its reader would extract, matched by its
    own grammars and made into a ``h11.Request`` by h11. The head ends with its first blank
    line, CRLF; h11's reader would search it again, copy it into a buffer and split it there.
    A bare LF or a folded line inside goes to the Connection, which reads it as h11 does."""
    if request_line_re is None:
        return None
    lines = head[:-4].split(b"\r\n")
    if head.count(b"\n") != len(lines) + 1:
        return None  # a bare LF ends a line in h11: not split the same way here
    request_line = request_line_re.fullmatch(lines[0])
    if request_line is None:
        return None  # the Connection raises it again, as the error h11 reports
    fields: list[tuple[bytes, bytes]] = []
    match_field = header_field_re.fullmatch
    for line in lines[1:]:
        field = match_field(line)
        if field is None:
            return None
        fields.append(field.group(1, 2))  # type: ignore[arg-type]
    method, target, version = request_line.group(1, 2, 3)
    return _request(method, target, version, fields)


_new = object.__new__
_set = object.__setattr__


def _request(
    method: bytes, target: bytes, version: bytes, fields: list[tuple[bytes, bytes]]
) -> h11.Request | None:
    """``h11.Request(..., _parsed=True)`` with the checks its constructor makes (h11's header
    normalization, one Host header, or none before HTTP/1.1), the method and target already
    matched by h11's grammar; the constructor would walk the headers through a Sequence ABC.
    None where h11 refuses."""
    try:
        headers = normalize_and_validate(fields, _parsed=True)
    except h11.ProtocolError:
        return None
    hosts = [item[1] for item in headers._full_items].count(b"host")
    if hosts > 1 or (not hosts and version == b"1.1"):
        return None
    request: h11.Request = _new(h11.Request)
    _set(request, "method", method)
    _set(request, "target", target)
    _set(request, "headers", headers)
    _set(request, "http_version", version)
    return request


class _Fields:
    """What llhttp reports of one head."""

    __slots__ = ("complete", "fields", "url")

    def __init__(self) -> None:
        self.url = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp keeps trailing whitespace in a value; h11 (RFC 9110 5.5) drops it.
        self.fields.append((name, value.rstrip(_OWS)))

    def on_headers_complete(self) -> None:
        self.complete = True


def read_head_llhttp(head: bytes) -> h11.Request | None:
    """llhttp's split of a request head, made into an ``h11.Request`` by h11."""
    assert httptools is not None
    seen = _Fields()
    parser = httptools.HttpRequestParser(seen)
    try:
        parser.feed_data(head)
    except httptools.HttpParserUpgrade:
        pass  # the whole head was read; the protocol decides about the upgrade
    except httptools.HttpParserError:
        return None
    version = _VERSIONS.get(parser.get_http_version())
    if not seen.complete or version is None:
        return None  # other versions are rare, and llhttp reads some differently
    method = parser.get_method()
    # llhttp tolerates extra spaces in the request line; h11 (RFC 9112 3) takes exactly one.
    if not head.startswith(b"%s %s HTTP/%s\r\n" % (method, seen.url, version)):
        return None
    if method_re.fullmatch(method) is None or request_target_re.fullmatch(seen.url) is None:
        return None  # what llhttp lets through and h11's grammar does not
    return _request(method, seen.url, version, seen.fields)


HEAD_READERS: dict[str, HeadReader] = {"h11": read_head_h11, "httptools": read_head_llhttp}


def httptools_missing() -> str | None:
    """Why the httptools head reader can't be used here, or None when it can."""
    if httptools is None:
        return "http_parser='httptools' needs httptools: pip install 'asyncweb[speed]'"
    return None


class HeadFirstConnection:
    """One exchange's request parser, with h11's interface (see the module docstring)."""

    __slots__ = (
        "_buffer",
        "_eof",
        "_expect_continue",
        "_fallback",
        "_max_head",
        "_read_head",
        "_received",
        "_remaining",
        "_scanned",
        "_state",
        "facts",
    )

    def __init__(self, read_head: HeadReader, max_incomplete_event_size: int) -> None:
        self._read_head = read_head
        self._max_head = max_incomplete_event_size
        self._buffer = b""
        self._eof = False
        self._scanned = 0
        self._state = _HEAD
        self._remaining = 0
        self._received = 0
        self._expect_continue = False
        self._fallback: h11.Connection | None = None
        # The headers of the request last returned by next_event.
        self.facts: HeadFacts | None = None

    # -- the part of h11.Connection's interface the protocol uses ----------------------------

    def receive_data(self, data: bytes) -> None:
        if self._fallback is not None:
            self._fallback.receive_data(data)
        elif not data:
            self._eof = True
        elif self._buffer:
            self._buffer += data
        elif data[:1] in EMPTY_LINE_STARTS and self._state == _HEAD:
            self._buffer = data.lstrip(b"\r\n")  # empty lines before the request line
        else:
            self._buffer = data

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        if self._fallback is not None:
            return self._fallback.trailing_data
        return self._buffer, self._eof

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        if self._fallback is not None:
            return self._fallback.they_are_waiting_for_100_continue
        return self._expect_continue

    @property
    def connection(self) -> h11.Connection | None:
        """The ``h11.Connection`` reading this exchange, once it was handed over."""
        return self._fallback

    def next_event(self) -> Any:
        if self._fallback is not None:
            event = self._fallback.next_event()
            if type(event) is h11.Request:
                refuse_control_characters(event)
                self.facts = scan_head(event)
            return event
        if self._state == _HEAD:
            return self._next_head()
        if self._state == _BODY:
            return self._next_body()
        if self._buffer:
            return h11.PAUSED  # the next request waits for the next exchange, as in h11
        return h11.ConnectionClosed() if self._eof else h11.NEED_DATA

    # -- reading -------------------------------------------------------------------------------

    def _next_head(self) -> Any:
        buffer = self._buffer
        if buffer and buffer[0] < 0x21:
            # Not a request line (a TLS hello on a plain port, say): h11 says so at once.
            return self._fall_back()
        scanned = self._scanned
        blank = _BLANK_LINE.search(buffer, scanned)
        end = len(buffer) if blank is None else blank.end()
        if _folded(buffer, scanned, end):
            raise h11.RemoteProtocolError(_FOLDED, error_status_hint=400)
        if blank is None:
            self._scanned = max(0, len(buffer) - 2)
            if len(buffer) > self._max_head or self._eof:
                return self._fall_back()  # h11 answers 431, or what EOF means where it came
            return h11.NEED_DATA
        if buffer[end - 4 : end] != b"\r\n\r\n":
            return self._fall_back()  # bare LF line ends (llhttp refuses what h11 accepts)
        head = buffer[:end] if end < len(buffer) else buffer
        request = self._read_head(head)
        if request is None:
            return self._fall_back()
        if len(head.translate(None, _HEAD_CONTROLS)) != end:
            # The reader checked names and the request line: this is in a value.
            raise h11.RemoteProtocolError(
                "control character in a header value", error_status_hint=400
            )
        facts = scan_head(request)
        if facts[2]:
            return self._fall_back()  # chunked bodies are read by h11
        self.facts = facts
        self._expect_continue = facts[5] and request.http_version >= b"1.1"
        self._buffer = buffer[end:]
        self._state = _BODY
        self._remaining = facts[1] or 0
        return request

    def _next_body(self) -> Any:
        remaining = self._remaining
        if not remaining:
            self._state = _DONE
            return h11.EndOfMessage()
        buffer = self._buffer
        if buffer:
            if len(buffer) <= remaining:
                chunk, self._buffer = buffer, b""
            else:
                chunk, self._buffer = buffer[:remaining], buffer[remaining:]
            self._remaining -= len(chunk)
            self._received += len(chunk)
            self._expect_continue = False
            return h11.Data(data=chunk)
        if self._eof:
            raise h11.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                f"received {self._received} bytes, expected {self._received + remaining}"
            )
        return h11.NEED_DATA

    def _fall_back(self) -> Any:
        """Hand this exchange, from its first byte, to h11 (see the module docstring)."""
        buffer = self._buffer
        blank = _BLANK_LINE.search(buffer)
        if _folded(buffer, 0, len(buffer) if blank is None else blank.end()):
            raise h11.RemoteProtocolError(_FOLDED, error_status_hint=400)
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)
        if buffer:
            connection.receive_data(buffer)
        if self._eof:
            connection.receive_data(b"")
        self._fallback = connection
        self._buffer = b""
        return self.next_event()


class ScreenedH11Connection(h11.Connection):
    """A server-side ``h11.Connection`` for a whole connection (the ``pure_h11`` reference)
    with the same head hygiene as :class:`HeadFirstConnection`: empty lines before a request
    line dropped, folded header lines refused, control characters in values refused, and the
    :data:`HeadFacts` of each request."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
        self.facts: HeadFacts | None = None
        self.request_method = b""  # of the request last read
        self._scanning = True  # a request head is arriving: look for folded lines
        self._tail = b""  # the last bytes of the head scanned so far
        self._folded = False

    def receive_data(self, data: bytes) -> None:
        idle = self.their_state is h11.IDLE
        if data[:1] in EMPTY_LINE_STARTS and idle and not self.trailing_data[0]:
            data = data.lstrip(b"\r\n")  # empty lines before the request line
            if not data:
                return
        if self._scanning and data:
            self._screen(data)
        super().receive_data(data)

    def _screen(self, data: bytes) -> None:
        probe = self._tail + data
        blank = _BLANK_LINE.search(probe)
        if _folded(probe, 0, len(probe) if blank is None else blank.end()):
            self._folded = True
        self._scanning = blank is None
        self._tail = probe[-3:]

    def next_event(self) -> Any:
        if self._folded:
            raise h11.RemoteProtocolError(_FOLDED, error_status_hint=400)
        event = super().next_event()
        if type(event) is h11.Request:
            refuse_control_characters(event)
            self.facts = scan_head(event)
            self.request_method = event.method
        return event

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self._scanning = True
        self._tail = b""
        buffered = self.trailing_data[0]
        if buffered:
            self._screen(bytes(buffered))
