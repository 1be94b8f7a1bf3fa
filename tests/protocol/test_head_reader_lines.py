"""read_head_h11 splits the head itself instead of going through h11's receive buffer: for any
head it answers either None (the Connection reads it) or exactly h11's own reader's request."""

from __future__ import annotations

import h11
import pytest
from h11._readers import maybe_read_from_IDLE_client
from h11._receivebuffer import ReceiveBuffer

from asyncweb.protocol.request_parser import read_head_h11

HEADS = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x?y=1 HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\nX-A:  b c \t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",  # a bare LF inside: h11 splits there
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",  # a stray CR: refused by both
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  # h11 unfolds; we hand it over
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n:\r\n\r\n",
    b"GET / HTTP/1.1\r\nX:\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: \x80\xff\r\n\r\n",
]


def h11_reading(head: bytes) -> h11.Request | None:
    buffer = ReceiveBuffer()
    buffer += head
    try:
        return maybe_read_from_IDLE_client(buffer)
    except h11.ProtocolError:
        return None


@pytest.mark.parametrize("head", HEADS)
def test_none_or_what_h11_reads(head: bytes) -> None:
    ours = read_head_h11(head)
    theirs = h11_reading(head)
    if ours is None:
        return
    assert theirs is not None
    assert (ours.method, ours.target, ours.http_version) == (
        theirs.method,
        theirs.target,
        theirs.http_version,
    )
    assert ours.headers._full_items == theirs.headers._full_items


def test_the_common_heads_are_read_here() -> None:
    # The short path must actually be taken, or this module's reader would be dead weight.
    for head in (HEADS[1], HEADS[2], b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n"):
        assert read_head_h11(head) is not None
    for head in (HEADS[3], HEADS[4], HEADS[6]):
        assert read_head_h11(head) is None  # bare LF and folding go to the Connection
        assert h11_reading(head) is not None


@pytest.mark.parametrize("head", HEADS)
def test_refuses_exactly_what_h11_refuses(head: bytes) -> None:
    # Lines split alike (CRLF only, no folding): the same verdict as h11's reader, Host and
    # Content-Length checks of the request event included.
    if head[:-4].count(b"\n") != head[:-4].count(b"\r\n") or b"\n " in head:
        # h11 splits or unfolds this head differently: it must go to the Connection.
        assert read_head_h11(head) is None
        return
    assert (read_head_h11(head) is None) == (h11_reading(head) is None)
