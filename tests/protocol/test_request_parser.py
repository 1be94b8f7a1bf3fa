"""The server's request parser, with each head reader (h11's own, and llhttp through httptools),
against a plain ``h11.Connection``, the reference.

Both are fed the same bytes, cut the same way, and must report the same requests (method, target,
version, headers), the same body bytes, the same end, and reject the same inputs with the same
status. The protocol-level suites run every server test with each parser too (see
tests/support/servers.py's PROTOCOL_VARIANTS); this file compares the parsers on their own,
over many more inputs.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncweb.httpserver import HTTPServer
from asyncweb.protocol.request_parser import (
    HEAD_READERS,
    HeadFirstConnection,
    RequestHead,
    ScreenedH11Connection,
)
from tests.protocol.test_fuzz_protocol import requests, split

MAX_HEAD = 4096


def events(parser: Any, chunks: list[bytes], eof: bool) -> list[Any]:
    """What the protocol would see: events up to each NEED_DATA, one exchange only (the first
    PAUSED ends it), and the status of a rejection as the last item."""
    seen: list[Any] = []
    body = bytearray()

    def drain() -> bool:
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as err:
                seen.append(("rejected", err.error_status_hint))
                return False
            if event is h11.NEED_DATA:
                return True
            if event is h11.PAUSED or type(event) is h11.ConnectionClosed:
                seen.append(event if event is h11.PAUSED else "closed")
                return False
            if type(event) is h11.Data:
                body.extend(event.data)
                continue
            if body:
                seen.append(("body", bytes(body)))
                body.clear()
            if type(event) is RequestHead:
                # The request line, headers and framing facts, all compared.
                seen.append(("request", *event))
            else:
                seen.append(type(event).__name__)
                if type(event) is h11.EndOfMessage:
                    return False

    going = True
    for chunk in chunks:
        parser.receive_data(chunk)
        going = drain()
        if not going:
            break
    if going and eof:
        parser.receive_data(b"")
        drain()
    if body:
        seen.append(("body", bytes(body)))
    return seen


READERS = pytest.mark.parametrize("reader", list(HEAD_READERS))


def both(chunks: list[bytes], eof: bool = True, reader: str = "h11") -> tuple[list[Any], list[Any]]:
    fast = events(HeadFirstConnection(HEAD_READERS[reader], MAX_HEAD), chunks, eof)
    # h11, plus the rules the server adds to its reading: empty lines before the request line
    # dropped, folded lines and control characters (other than HTAB) in values refused (400).
    reference = events(ScreenedH11Connection(MAX_HEAD), chunks, eof)
    return fast, reference


CASES = [
    b"GET /user/alice?greeting=hi HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host: 400
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts: 400
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",  # EOF mid-body
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",  # 501
    b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF line ends: h11 accepts them
    b"GET / HTTP/1.1\r\nHost: x\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x \t \r\nX-Pad:  a  b  \r\nX-Empty:\r\n\r\n",  # OWS trimmed
    b"GET / HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\r\n\r\n",  # obs-text is allowed
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHOST: x\r\nhost: y\r\n\r\n",  # two Hosts, spelled apart: 400
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",  # folded: 400
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n",
    b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",  # a stray CR
    b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\nabcdefg",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 21 + b"\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\nContent-Encoding: GZIP\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\nGET / HTTP/1.1\r\nHost: y\r\n\r\n",  # bare-LF end
    b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PROPFIND /dav HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",  # not a method llhttp knows; h11 takes any token
    b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.12\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / FOO/1.1\r\nHost: x\r\n\r\n",
    b"GET /\r\n\r\n",  # HTTP/0.9
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframes",
    b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n",  # pipelined
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (MAX_HEAD + 10),  # never ends
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS ClientHello
    b"GET / HTTP/1.1\r\nHost: x\r\n",  # EOF mid-head
    b"",
]


@READERS
@pytest.mark.parametrize("data", CASES, ids=lambda d: repr(d[:40]))
@pytest.mark.parametrize("step", [0, 1, 7])
def test_agrees_with_h11(reader: str, data: bytes, step: int) -> None:
    """Whole, byte by byte and in 7-byte pieces."""
    chunks = [data[i : i + step] for i in range(0, len(data), step)] if step else [data]
    fast, reference = both([c for c in chunks if c], reader=reader)
    assert fast == reference


def test_the_cases_cover_what_matters() -> None:
    """The list above reaches every outcome: requests, bodies, each rejection status, pause."""
    outcomes = {
        item[0] if isinstance(item, tuple) else str(item)
        for data in CASES
        for item in both([data])[1]
    }
    statuses = {item[1] for data in CASES for item in both([data])[1] if item[0] == "rejected"}
    assert {"request", "body", "EndOfMessage", "rejected", "closed"} <= outcomes
    assert {400, 431, 501} <= statuses


@READERS
def test_trailing_bytes_and_expect_continue_match_h11(reader: str) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    ours = HeadFirstConnection(HEAD_READERS[reader], MAX_HEAD)
    for parser in (ours, h11.Connection(h11.SERVER)):
        parser.receive_data(head)
        assert type(parser.next_event()) in (RequestHead, h11.Request)
        assert parser.they_are_waiting_for_100_continue
        parser.receive_data(b"abcGET /next")
        assert type(parser.next_event()) is h11.Data
        assert not parser.they_are_waiting_for_100_continue
        assert type(parser.next_event()) is h11.EndOfMessage
        assert bytes(parser.trailing_data[0]) == b"GET /next"


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid request with bytes inserted, deleted or replaced, often inside the head."""
    data = bytearray(draw(requests(allow_http10=True)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        junk = draw(
            st.one_of(
                st.binary(min_size=1, max_size=3),
                st.sampled_from(
                    [b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b":", b"\x7f", b"\xff", b","]
                ),
            )
        )
        if draw(st.booleans()):
            data[pos:pos] = junk
        else:
            data[pos : pos + len(junk)] = junk
    return bytes(data)


_NASTY = st.binary(min_size=1, max_size=4).map(
    lambda b: b.replace(b"\r", b"r").replace(b"\n", b"n")
) | st.sampled_from([b" ", b"\t", b":", b",", b"\x7f", b"\xff", b"\x00", b"a b", b"\x0b"])


def rarely(draw: st.DrawFn, usual: bytes, odd: st.SearchStrategy[bytes]) -> bytes:
    """``usual`` most of the time, else something odd: each head has a few flaws at most."""
    return draw(odd) if draw(st.integers(0, 9)) == 0 else usual


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """A request head with the odd flaw: methods, targets, versions, header names and values."""
    odd_method = st.sampled_from([b"BREW", b"get", b"M-SEARCH", b"G\x00T", b""])
    method = rarely(draw, draw(st.sampled_from([b"GET", b"POST", b"PUT"])), odd_method)
    target = draw(st.sampled_from([b"/", b"*", b"http://h/", b"/a?b=c"])) + rarely(
        draw, b"", _NASTY
    )
    odd_version = st.sampled_from([b"HTTP/1.", b"http/1.1", b"HTTP/2.0", b""])
    version = rarely(draw, draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])), odd_version)
    space = rarely(draw, b" ", st.sampled_from([b"  ", b"\t"]))
    lines = [method + b" " + target + space + version]
    if draw(st.integers(0, 9)):
        lines.append(b"Host: x")
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([b"X-A", b"Content-Length", b"Transfer-Encoding", b"Expect"]))
        value = draw(st.sampled_from([b"0", b"3", b"chunked", b"100-continue", b"v"]))
        lines.append(
            name
            + rarely(draw, b"", _NASTY)
            + b":"
            + rarely(draw, b" ", _NASTY)
            + value
            + rarely(draw, b"", _NASTY)
        )
    end = rarely(draw, b"\r\n", st.just(b"\n"))
    return end.join(lines) + end + end + draw(st.sampled_from([b"", b"abc", b"0\r\n\r\n"]))


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    st.one_of(requests(allow_http10=True), damaged(), heads(), st.binary(max_size=200)),
    st.data(),
    st.booleans(),
)
def test_agrees_with_h11_on_generated_input(data: bytes, draw: st.DataObject, eof: bool) -> None:
    chunks = draw.draw(split(data)) if data else []
    for reader in HEAD_READERS:
        fast, reference = both(chunks, eof, reader)
        assert fast == reference, reader


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="http_parser"):
        HTTPServer(lambda request: None, http_parser="picohttpparser")
    with pytest.raises(ValueError, match="pure_h11"):
        HTTPServer(lambda request: None, http_parser="httptools", pure_h11=True)
