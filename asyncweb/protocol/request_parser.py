"""Request parsing for the server protocol: a request head read on a short path, everything
unusual read by a real ``h11.Connection``.

``HTTP1ServerProtocol`` drives its parser through the part of ``h11.Connection`` it uses:
``receive_data``, ``next_event``, ``trailing_data`` and ``they_are_waiting_for_100_continue``.
:class:`HeadFirstConnection` offers that part for one exchange. Most of what a full
``h11.Connection`` costs per request is its state machine, which the protocol does not need: it
decides keep-alive and framing itself and starts each exchange on a fresh parser. So the head is
read by a *head reader*, the one thing that differs between the two parsers a server may choose:

- ``"h11"`` (the default): h11's own request-head reader, the same function ``h11.Connection``
  calls, so the ``h11.Request`` is h11's in every byte and every check;
- ``"httptools"`` (optional, faster): llhttp splits the head into request line and fields, and
  the ``h11.Request`` is still built by h11, which checks the Host header, Content-Length,
  Transfer-Encoding, the method and the target as for its own reader.

A Content-Length body is counted out of the buffer. Anything else goes to a real
``h11.Connection`` fed the exchange from its first byte: a head either reader refuses or
doubts, bare-LF line ends, a chunked body, a head that outgrows the limit, input ending
mid-head. So every rejection carries h11's own status and reason, and ``pure_h11`` (one
``h11.Connection`` per connection, responses through it too) stays the reference all of them
are tested against.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import h11

try:  # h11's reader, behind its public Connection; absent, every head goes to a Connection
    from h11._readers import maybe_read_from_IDLE_client
    from h11._receivebuffer import ReceiveBuffer
except ImportError:  # pragma: no cover - a future h11 may move them
    maybe_read_from_IDLE_client = None  # type: ignore[assignment]

try:
    import httptools
except ImportError:  # pragma: no cover - the default parser needs nothing extra
    httptools = None  # type: ignore[assignment]

# A complete head (bytes up to and including its blank line) -> the request, or None: "let a
# real h11.Connection read this exchange".
HeadReader = Callable[[bytes], "h11.Request | None"]

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


def read_head_h11(head: bytes) -> h11.Request | None:
    """h11's own reading of a request head."""
    if maybe_read_from_IDLE_client is None:
        return None
    buffer = ReceiveBuffer()
    buffer += head
    try:
        return maybe_read_from_IDLE_client(buffer)
    except h11.ProtocolError:
        return None  # the Connection raises it again, as the error h11 reports


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
    try:
        return h11.Request(
            method=method, target=seen.url, headers=seen.fields, http_version=version, _parsed=True
        )
    except h11.LocalProtocolError:
        return None


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
        "_h11",
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
        self._h11: h11.Connection | None = None

    # -- the part of h11.Connection's interface the protocol uses ----------------------------

    def receive_data(self, data: bytes) -> None:
        if self._h11 is not None:
            self._h11.receive_data(data)
        elif not data:
            self._eof = True
        elif self._buffer:
            self._buffer += data
        else:
            self._buffer = data

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        if self._h11 is not None:
            return self._h11.trailing_data
        return self._buffer, self._eof

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        if self._h11 is not None:
            return self._h11.they_are_waiting_for_100_continue
        return self._expect_continue

    @property
    def connection(self) -> h11.Connection | None:
        """The ``h11.Connection`` reading this exchange, once it was handed over."""
        return self._h11

    def next_event(self) -> Any:
        if self._h11 is not None:
            event = self._h11.next_event()
            if type(event) is h11.Request:
                refuse_control_characters(event)
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
        blank = _BLANK_LINE.search(buffer, self._scanned)
        if blank is None:
            self._scanned = max(0, len(buffer) - 2)
            if len(buffer) > self._max_head or self._eof:
                return self._fall_back()  # h11 answers 431, or what EOF means where it came
            return h11.NEED_DATA
        end = blank.end()
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
        length = 0
        for _, name, value in request.headers._full_items:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                return self._fall_back()  # chunked bodies are read by h11
            elif name == b"expect" and request.http_version >= b"1.1":
                self._expect_continue = self._expect_continue or any(
                    item.strip().lower() == b"100-continue" for item in value.split(b",")
                )
        self._buffer = buffer[end:]
        self._state = _BODY
        self._remaining = length
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
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)
        if self._buffer:
            connection.receive_data(self._buffer)
        if self._eof:
            connection.receive_data(b"")
        self._h11 = connection
        self._buffer = b""
        return self.next_event()
