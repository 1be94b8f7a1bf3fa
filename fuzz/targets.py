"""Fuzz targets: each takes one input (``bytes``) and raises only when it found a bug.

Shared by the atheris runner (``fuzz/run.py``, ``nox -s fuzz``) and the corpus replay test
(``tests/protocol/test_corpus_replay.py``), so a crash found once is checked by every test run.
Inputs are decoded here without atheris, so replaying needs nothing beyond the test dependencies.

A target checks properties, not just "no exception": the parsers' outputs must come from the
input, and the protocol must answer with HTTP/1.1 responses or close.
"""

from __future__ import annotations

import asyncio
import http.cookies
import importlib.util
import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

from asyncweb import httputil
from asyncweb.httpserver import HTTPServer
from fuzz.harness import ERROR_STATUSES, exchange, fuzz_app, status_codes

_loop: asyncio.AbstractEventLoop | None = None
_servers: dict[str, HTTPServer] = {}

# Tiny timeouts: an input that leaves the connection waiting costs milliseconds, not minutes.
_TIMEOUTS: dict[str, Any] = {
    "idle_connection_timeout": 0.005,
    "header_timeout": 0.005,
    "body_timeout": 0.005,
}


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        # Bad requests are logged as warnings; millions of lines would drown the fuzzer.
        logging.getLogger("asyncweb").setLevel(logging.CRITICAL)
    return _loop


def close_loop() -> None:
    """Close the shared event loop (the replay test calls this when done)."""
    global _loop
    if _loop is not None and not _loop.is_closed():
        _loop.close()
    _loop = None
    _servers.clear()


def split_input(data: bytes) -> tuple[int, list[bytes]]:
    """Input layout: one flags byte, one byte N (the number of cuts, mod 8), N cut bytes,
    then the payload, cut at those positions (scaled to its length). Returns (flags, chunks)."""
    if len(data) < 2:
        return 0, [data] if data else []
    flags, count = data[0], data[1] % 8
    cuts_raw, payload = data[2 : 2 + count], data[2 + count :]
    if not payload:
        return flags, []
    cuts = sorted({1 + (c * len(payload)) // 256 for c in cuts_raw if len(payload) > 1})
    bounds = [0, *[c for c in cuts if c < len(payload)], len(payload)]
    return flags, [payload[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def request_parsing(data: bytes) -> None:
    """Feed the bytes, in the chunks the input chooses, to a real server connection (the
    protocol variant chosen by the flags byte: bit 0 h11's writer, else bit 1 the httptools
    parser). The protocol must not raise, must close the connection within a second (its
    timeouts are milliseconds), and may only write HTTP/1.1 responses."""
    flags, chunks = split_input(data)
    variant = "pure_h11" if flags & 1 else "httptools" if flags & 2 else "own"
    loop = _event_loop()
    server = _servers.get(variant)
    if server is None:
        settings = {"pure_h11": {"pure_h11": True}, "httptools": {"http_parser": "httptools"}}
        server = _servers[variant] = HTTPServer(
            fuzz_app(), **settings.get(variant, {}), **_TIMEOUTS
        )
    written, closed = loop.run_until_complete(exchange(server, chunks, close_within=1.0))
    if not closed:
        raise AssertionError("connection still open after every timeout")
    if written and not written.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"not an HTTP/1.1 response: {written[:200]!r}")
    for code in status_codes(written):
        if code not in ERROR_STATUSES and code not in (100, 200, 404, 405, 418):
            raise AssertionError(f"unexpected status {code}: {written[:400]!r}")


def _from_input(value: bytes, source: bytes) -> bool:
    return value in source


def multipart(data: bytes) -> None:
    """First line: the Content-Type value (its boundary parameter included); the rest: the
    body. Both parsers may refuse a malformed body only with HTTPInputError (Tornado 6.5+'s
    documented outcome; the server answers 400), and a refused body adds nothing; any other
    exception is a finding. Every field and file body kept must be a piece of the input body."""
    content_type, _, body = data.partition(b"\n")
    ctype = content_type.decode("latin-1")
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[httputil.HTTPFile]] = {}
    try:
        httputil.parse_body_arguments(ctype, body, arguments, files)
    except httputil.HTTPInputError:
        _check_nothing_stored(arguments, files)
    for values in arguments.values():
        for value in values:
            if ctype.lower().startswith("multipart/") and not _from_input(value, body):
                raise AssertionError(f"field value {value[:80]!r} is not from the body")
    for uploads in files.values():
        for upload in uploads:
            if not _from_input(upload.body, body):
                raise AssertionError("file body is not from the request body")
    # And the multipart parser directly, with the first line as the raw boundary (so for the
    # seeds, whose first line is a whole Content-Type, the refusal path is the one taken).
    arguments, files = {}, {}
    try:
        httputil.parse_multipart_form_data(content_type, body, arguments, files)
    except httputil.HTTPInputError:
        _check_nothing_stored(arguments, files)
    for values in arguments.values():
        for value in values:
            if not _from_input(value, body):
                raise AssertionError(f"field value {value[:80]!r} is not from the body")


def _check_nothing_stored(
    arguments: dict[str, list[bytes]], files: dict[str, list[httputil.HTTPFile]]
) -> None:
    if arguments or files:
        raise AssertionError(f"a refused body left {list(arguments)} and {list(files)} behind")


def cookies(data: bytes) -> None:
    """Any Cookie header value parses without raising, into exactly what a reference built on
    the standard library's cookie unquoting gives (Tornado's documented semantics: split on
    ``;``, a piece without ``=`` is a value under the empty name, the last name wins)."""
    header = data.decode("latin-1")
    parsed = httputil.parse_cookie(header)
    reference: dict[str, str] = {}
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep:
            name, value = "", chunk
        name, value = name.strip(), value.strip()
        if name or value:
            reference[name] = http.cookies._unquote(value)
    if parsed != reference:
        raise AssertionError(f"parse_cookie({header[:200]!r}) = {parsed!r}, want {reference!r}")


def template(data: bytes) -> None:
    """Untrusted-looking template source: compiling either works or raises the template
    module's own error types (ParseError, or SyntaxError from generated code), never anything
    else; a template that compiles renders (any exception from user expressions is fine)."""
    from asyncweb import template as tmpl  # type: ignore[attr-defined, unused-ignore]

    source = data.decode("utf-8", "replace")
    try:
        compiled = tmpl.Template(source, autoescape="xhtml_escape")
    except (tmpl.ParseError, SyntaxError, ValueError):
        return
    try:
        compiled.generate()
    except Exception:
        # Expressions in fuzzed templates fail in all the usual ways (NameError...).
        return


_SIGNING_SECRET = os.urandom(16).hex()  # per process: no stored input can carry a valid MAC


def signed_value(data: bytes) -> None:
    """Signed cookies: arbitrary input never decodes (nor raises); any value signed with either
    format version decodes back to itself; changing any one byte of a signed value makes it
    undecodable. First byte: format version (bit 0) and the byte to change; the rest: value."""
    from asyncweb.web.signing import create_signed_value, decode_signed_value

    if decode_signed_value(_SIGNING_SECRET, "n", data) is not None:
        raise AssertionError(f"unsigned input decoded: {data[:100]!r}")
    if not data:
        return
    control, value = data[0], data[1:]
    version = 1 + (control & 1)
    signed = create_signed_value(_SIGNING_SECRET, "n", value, version=version)
    if decode_signed_value(_SIGNING_SECRET, "n", signed) != value:
        raise AssertionError(f"v{version} round trip failed for {value[:100]!r}")
    if decode_signed_value(_SIGNING_SECRET, "other", signed) is not None:
        raise AssertionError("a value signed for one name decoded under another")
    position = (control * 7919) % len(signed)
    tampered = bytearray(signed)
    tampered[position] ^= 1 + (control >> 1) % 255
    if decode_signed_value(_SIGNING_SECRET, "n", bytes(tampered)) is not None:
        raise AssertionError(f"tampered value decoded: {bytes(tampered)[:200]!r}")


_WS_HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: fuzz.example\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)
_WS_DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def _websocket_app() -> Any:
    from asyncweb.web import Application
    from asyncweb.websocket import WebSocketHandler

    class Echo(WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

        def get_compression_options(self) -> dict[str, Any] | None:
            return {}

    return Application([("/ws", Echo)], websocket_max_message_size=4096)


def websocket_frames(data: bytes) -> None:
    """A real upgrade, then the input's bytes as frames (flags bit 1: offer permessage-deflate),
    then the client's EOF. The server must not raise, must have answered 101, may only send
    well-formed frames, and must close the connection within a second."""
    flags, chunks = split_input(data)
    loop = _event_loop()
    key = 2 + bool(flags & 2)
    server = _servers.get(key)
    if server is None:
        server = _servers[key] = HTTPServer(_websocket_app(), **_TIMEOUTS)
    head = _WS_HANDSHAKE + (_WS_DEFLATE if flags & 2 else b"") + b"\r\n"
    written, closed = loop.run_until_complete(
        exchange(server, [head, *chunks], close_within=1.0, half_close=True)
    )
    if not written.startswith(b"HTTP/1.1 101 "):
        raise AssertionError(f"no upgrade: {written[:200]!r}")
    if not closed:
        raise AssertionError("WebSocket connection still open after the client's EOF")
    _check_server_frames(written.split(b"\r\n\r\n", 1)[1])


def _check_server_frames(stream: bytes) -> None:
    """Server frames are unmasked, use known opcodes, and a close frame comes last."""
    pos = 0
    while pos < len(stream):
        if len(stream) - pos < 2:
            raise AssertionError("truncated frame header from the server")
        first, second = stream[pos], stream[pos + 1]
        if second & 0x80:
            raise AssertionError("server frame is masked")
        opcode = first & 0x0F
        if opcode not in (0x0, 0x1, 0x2, 0x8, 0x9, 0xA):
            raise AssertionError(f"server sent opcode {opcode}")
        length = second & 0x7F
        pos += 2
        if length == 126:
            length = int.from_bytes(stream[pos : pos + 2], "big")
            pos += 2
        elif length == 127:
            length = int.from_bytes(stream[pos : pos + 8], "big")
            pos += 8
        pos += length
        if pos > len(stream):
            raise AssertionError("truncated frame payload from the server")
        if opcode == 0x8 and pos != len(stream):
            raise AssertionError("server sent frames after its close frame")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "request": request_parsing,
    "multipart": multipart,
    "cookie": cookies,
}
if importlib.util.find_spec("asyncweb.template") is not None:
    TARGETS["template"] = template
if importlib.util.find_spec("asyncweb.websocket") is not None:
    TARGETS["websocket"] = websocket_frames
if importlib.util.find_spec("asyncweb.web.signing") is not None:
    TARGETS["signed"] = signed_value
