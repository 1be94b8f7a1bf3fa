"""Request parsing for the server protocol: a request head read on a short path, everything
unusual read by a real ``h11.Connection``.

``HTTP1ServerProtocol`` drives its parser through the part of ``h11.Connection`` it uses:
``receive_data``, ``next_event``, ``trailing_data`` and ``they_are_waiting_for_100_continue``.
:class:`HeadFirstConnection` offers that part for one exchange. Most of what a full
``h11.Connection`` costs per request is its state machine, which the protocol does not need: it
decides keep-alive and framing itself and starts each exchange on a fresh parser. So the head is
read by a *head reader*, the one thing that differs between the two parsers a server may choose:

- ``"h11"`` (the default): the head split in one pass and screened against h11's request-line
  and field grammars (its own token grammar for names and methods, known-good names cached);
  the screen only passes what h11 reads the same way, and everything else goes to h11;
- ``"httptools"`` (optional): llhttp splits the head into request line and fields, which then
  pass the same screen.

Both readers work on a head already known to end in CRLF CRLF, with CRLF line ends only and
no control character but HTAB (``_next_head`` checks those first). A folded line does not pass
either (its name would start with whitespace; llhttp would unfold it, so its reader looks for
one), and the Connection it goes to refuses it. Both
produce a :class:`RequestHead`: the request line, the headers as (lowercase name, value)
pairs, and the framing facts the server protocol needs, read in the same pass.

A Content-Length body is counted out of the buffer. Anything else goes to a real
``h11.Connection`` fed the exchange from its first byte: a head either reader refuses or
doubts, bare-LF line ends, a chunked body, a head that outgrows the limit, input ending
mid-head. So every rejection carries h11's own status and reason, and ``pure_h11`` (one
``h11.Connection`` per connection, responses through it too, read through
:class:`ScreenedH11Connection`) stays the reference all of them are tested against.

Both parsers also keep a head's hygiene: empty lines before a request line are dropped (RFC 9112
2.2; old clients send a CRLF after a POST body), obsolete line folding is refused with a 400
(h11 would unfold it; proxies that disagree about folding are a smuggling vector), and the
headers are read once, into the :class:`RequestHead` the server protocol reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, NamedTuple

import h11

try:  # h11's token grammar (methods and field names); absent, every head goes to a Connection
    from h11._events import method_re as _token_re
except ImportError:  # pragma: no cover - a future h11 may move it
    _token_re = None  # type: ignore[assignment]

try:
    import httptools
except ImportError:  # pragma: no cover - the default parser needs nothing extra
    httptools = None  # type: ignore[assignment]


class RequestHead(NamedTuple):
    """A request head as the server protocol reads it: the request line, the headers, and the
    facts it decides framing and keep-alive by, all read in one pass."""

    method: bytes
    target: bytes
    http_version: bytes  # b"1.1"
    headers: list[tuple[bytes, bytes]]  # (lowercase name, value), in the order received
    content_length: int | None
    chunked: bool
    connection: bytes  # the Connection header, lowercase
    gzipped: bool  # Content-Encoding: gzip
    expect_continue: bool  # Expect: 100-continue


# A complete head (see the module docstring) -> the request, or None: "let a real
# h11.Connection read this exchange".
HeadReader = Callable[[bytes], "RequestHead | None"]

# What may start an empty line, which is ignored where a request line is expected.
EMPTY_LINE_STARTS = (b"\r", b"\n")
_FOLDED = "obsolete line folding is not allowed"

# What ends a head for h11: a blank line after a CRLF or a bare LF.
_BLANK_LINE = re.compile(b"\n\r?\n")
_OWS = b" \t"
_VERSIONS = {b"HTTP/1.1": b"1.1", b"HTTP/1.0": b"1.0"}
_LLHTTP_VERSIONS = {"1.1": b"1.1", "1.0": b"1.0"}

_HEAD, _BODY, _DONE = range(3)

# Control characters h11 lets through in a field value (it refuses NUL, CR, LF and the other
# whitespace controls): refused, as some proxies and log readers act on them. In a whole head
# CR and LF are line ends; h11 itself refuses them anywhere else.
_VALUE_CONTROL = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
# Control characters (HTAB aside), CR and LF, for bytes.translate's delete argument (much faster
# than a regex): all a head holds of these is its line ends, when they are CRLF only.
_CONTROLS_CR_LF = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])

_new_tuple = tuple.__new__


def refuse_control_characters(request: h11.Request) -> None:
    """Raise h11's error (400) for a header value holding a control character other than
    HTAB; for requests read by an ``h11.Connection``."""
    for _, value in request.headers.raw_items():
        if _VALUE_CONTROL.search(value):
            raise h11.RemoteProtocolError(
                "control character in a header value", error_status_hint=400
            )


def head_from_h11(request: h11.Request) -> RequestHead:
    """The :class:`RequestHead` of a request an ``h11.Connection`` read (and checked)."""
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
            expect_continue = expect_continue or _expects_continue(value)
    return _new_tuple(
        RequestHead,
        (
            request.method,
            request.target,
            request.http_version,
            pairs,
            declared,
            chunked,
            connection,
            gzipped,
            expect_continue,
        ),
    )


def _expects_continue(value: bytes) -> bool:
    return any(item.strip().lower() == b"100-continue" for item in value.split(b","))


def head_size(head: RequestHead) -> int:
    """The bytes a request head took on the wire, give or take its line ends' spelling."""
    size = len(head.method) + len(head.target) + len(b" HTTP/1.1\r\n\r\n")
    for name, value in head.headers:
        size += len(name) + len(value) + 4
    return size


def _folded(buffer: bytes, start: int, end: int) -> bool:
    """A line of buffer[start:end] starts with SP or HTAB (obsolete line folding)."""
    return buffer.find(b"\n ", start, end) >= 0 or buffer.find(b"\n\t", start, end) >= 0


# -- the screen both readers pass their fields through -------------------------------------------

# Names and methods already matched by h11's token grammar (names with their lowercase form):
# clients send the same few, so the regex runs once per spelling. Bounded in count and length,
# as they come from the client.
_TOKENS_CACHED = 512
_TOKEN_CACHED_LENGTH = 64
_known_names: dict[bytes, bytes] = {}
_known_methods: set[bytes] = set()
# Names whose value the protocol reads (the rest are only kept).
_FRAMING_NAMES = frozenset(
    (
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"content-encoding",
        b"expect",
    )
)
# h11's bound on a Content-Length's digits.
_LENGTH_DIGITS = 20
_partition = bytes.partition
_colons = repeat(b":")


def _learn_name(name: bytes) -> bytes | None:
    """``name`` in lowercase if it is a token (h11's field-name grammar), else None."""
    if _token_re is None or _token_re.fullmatch(name) is None:
        return None
    lowered = name.lower()
    if len(_known_names) < _TOKENS_CACHED and len(name) <= _TOKEN_CACHED_LENGTH:
        _known_names[name] = lowered
    return lowered


def _valid_request_line(method: bytes, target: bytes) -> bool:
    """The method a token and the target visible ASCII (h11's request-line grammar), for a
    line already split at single spaces, with no control characters but HTAB."""
    if not target or not target.isascii() or b"\t" in target:
        return False
    if method in _known_methods:
        return True
    if _token_re is None or _token_re.fullmatch(method) is None:
        return False
    if len(_known_methods) < _TOKENS_CACHED and len(method) <= _TOKEN_CACHED_LENGTH:
        _known_methods.add(method)
    return True


def _screen(
    method: bytes, target: bytes, version: bytes, fields: Iterable[tuple[bytes, bytes, bytes]]
) -> RequestHead | None:
    """The head from ``(name, ":", value)`` fields, or None where h11 would refuse it or read
    it otherwise: a name that is no token, a missing colon, a Host header missing (HTTP/1.1)
    or repeated, a Content-Length that is not one plain number (h11 merges equal repeats and
    refuses the rest), any Transfer-Encoding (h11 reads chunked bodies and refuses the other
    codings)."""
    pairs = []
    declared: int | None = None
    gzipped = expect_continue = False
    connection = b""
    hosts = 0
    known = _known_names.get
    for name, colon, value in fields:
        lowered = known(name) or _learn_name(name)
        if lowered is None or not colon:
            return None
        value = value.strip(_OWS)
        if lowered in _FRAMING_NAMES:
            if lowered == b"host":
                hosts += 1
            elif lowered == b"content-length":
                if declared is not None or not value.isdigit() or len(value) > _LENGTH_DIGITS:
                    return None
                declared = int(value)
            elif lowered == b"connection":
                connection = value.lower()
            elif lowered == b"content-encoding":
                gzipped = value.lower() == b"gzip"
            elif lowered == b"expect":
                expect_continue = expect_continue or _expects_continue(value)
            else:
                return None  # Transfer-Encoding
        pairs.append((lowered, value))
    if hosts > 1 or (not hosts and version == b"1.1"):
        return None
    return _new_tuple(
        RequestHead,
        (method, target, version, pairs, declared, False, connection, gzipped, expect_continue),
    )


def read_head_h11(head: bytes) -> RequestHead | None:
    """The head split at its CRLFs, the request line at its spaces, each field at its first
    colon, and screened against h11's grammars (see the module docstring)."""
    lines = head[:-4].split(b"\r\n")
    request_line = lines[0].split(b" ")
    if len(request_line) != 3:
        return None
    method, target, spelled_version = request_line
    version = _VERSIONS.get(spelled_version)
    if version is None or not _valid_request_line(method, target):
        return None  # other versions are rare: h11 reads (or refuses) them
    del lines[0]
    return _screen(method, target, version, map(_partition, lines, _colons))


class _Fields:
    """What llhttp reports of one head."""

    __slots__ = ("complete", "fields", "url")

    def __init__(self) -> None:
        self.url = b""
        self.fields: list[tuple[bytes, bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, b":", value))

    def on_headers_complete(self) -> None:
        self.complete = True


def read_head_llhttp(head: bytes) -> RequestHead | None:
    """llhttp's split of a request head, screened as the h11 reader's is."""
    assert httptools is not None
    if b"\n " in head or b"\n\t" in head:
        return None  # a folded line, which llhttp would unfold
    seen = _Fields()
    parser = httptools.HttpRequestParser(seen)
    try:
        parser.feed_data(head)
    except httptools.HttpParserUpgrade:
        pass  # the whole head was read; the protocol decides about the upgrade
    except httptools.HttpParserError:
        return None
    version = _LLHTTP_VERSIONS.get(parser.get_http_version())
    if not seen.complete or version is None:
        return None  # other versions are rare, and llhttp reads some differently
    method = parser.get_method()
    target = seen.url
    # llhttp tolerates extra spaces in the request line; h11 (RFC 9112 3) takes exactly one.
    if not head.startswith(b"%s %s HTTP/%s\r\n" % (method, target, version)):
        return None
    if not _valid_request_line(method, target):
        return None
    return _screen(method, target, version, seen.fields)


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
                return head_from_h11(event)
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
        end = buffer.find(b"\r\n\r\n", self._scanned) + 4
        if end == 3:
            return self._incomplete_head()
        head = buffer[:end] if end < len(buffer) else buffer
        if len(head.translate(None, _CONTROLS_CR_LF)) + 2 * head.count(b"\r\n") != end:
            # A bare LF (which ends a line for h11), a stray CR or a control character: h11
            # reads it, and says what is wrong (see next_event).
            return self._fall_back()
        request = self._read_head(head)
        if request is None or request.chunked:
            return self._fall_back()
        self._expect_continue = request.expect_continue and request.http_version == b"1.1"
        self._buffer = buffer[end:]
        self._state = _BODY
        self._remaining = request.content_length or 0
        return request

    def _incomplete_head(self) -> Any:
        """No CRLF CRLF in the buffer yet: wait for more, unless the head ended at a bare-LF
        blank line, outgrew the limit, or the input ended (all read by h11)."""
        buffer = self._buffer
        scanned = self._scanned
        blank = _BLANK_LINE.search(buffer, scanned)
        if blank is not None:
            return self._fall_back()
        if _folded(buffer, scanned, len(buffer)):
            raise h11.RemoteProtocolError(_FOLDED, error_status_hint=400)
        self._scanned = max(0, len(buffer) - 3)
        if len(buffer) > self._max_head or self._eof:
            return self._fall_back()  # h11 answers 431, or what EOF means where it came
        return h11.NEED_DATA

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
    :class:`RequestHead` of each request."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_incomplete_event_size)
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
            self.request_method = event.method
            return head_from_h11(event)
        return event

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self._scanning = True
        self._tail = b""
        buffered = self.trailing_data[0]
        if buffered:
            self._screen(bytes(buffered))
