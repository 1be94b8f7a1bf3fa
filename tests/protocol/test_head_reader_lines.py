"""The head readers split and screen a head themselves instead of going through h11's receive
buffer and reader: for any head they are given (one ending in CRLF CRLF, with CRLF line ends
only and no control character but HTAB: what ``HeadFirstConnection`` checks before calling
them), they answer either None (an ``h11.Connection`` reads it) or exactly what h11's own
reader reads; a folded line (which h11 unfolds and the server refuses) is always None. Whole
exchanges, cut every way, are compared in test_request_parser."""

from __future__ import annotations

import h11
import pytest
from h11._readers import maybe_read_from_IDLE_client
from h11._receivebuffer import ReceiveBuffer

from asyncweb.protocol.request_parser import HEAD_READERS, read_head_h11

HEADS = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x?y=1 HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\nX-A:  b c \t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",  # a bare LF inside: h11 splits there
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",  # a stray CR: refused by h11
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  # h11 unfolds; the server refuses
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHOST: a\r\nhost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +7\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 21 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\n:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb \t\r\n\r\n",
    b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Upgrade\r\nContent-Encoding: GZIP\r\n"
    b"Expect: 100-Continue\r\n\r\n",
]

CONTROLS = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def h11_reading(head: bytes) -> h11.Request | None:
    buffer = ReceiveBuffer()
    buffer += head
    try:
        return maybe_read_from_IDLE_client(buffer)
    except h11.ProtocolError:
        return None


def given_to_readers(head: bytes) -> bool:
    """Whether HeadFirstConnection would hand this head to a reader at all."""
    lf = head.count(b"\n")
    return lf == head.count(b"\r\n") == head.count(b"\r") and not any(
        byte in CONTROLS for byte in head
    )


READABLE = [head for head in HEADS if given_to_readers(head)]


@pytest.mark.parametrize("reader", list(HEAD_READERS))
@pytest.mark.parametrize("head", READABLE)
def test_none_or_what_h11_reads(reader: str, head: bytes) -> None:
    ours = HEAD_READERS[reader](head)
    theirs = h11_reading(head)
    if b"\n " in head or b"\n\t" in head:
        assert ours is None  # folded: the Connection refuses it
        return
    if theirs is None:
        assert ours is None  # what h11 refuses is never read here
        return
    if ours is None:
        return
    assert (ours.method, ours.target, ours.http_version) == (
        theirs.method,
        theirs.target,
        theirs.http_version,
    )
    assert ours.headers == [(name, value) for _, name, value in theirs.headers._full_items]


def test_the_common_heads_are_read_here() -> None:
    # The short path must actually be taken, or the readers would be dead weight.
    common = [HEADS[1], HEADS[2], HEADS[14], HEADS[21], HEADS[23], HEADS[26], HEADS[27]]
    common += [HEADS[31], HEADS[32]]
    for head in common:
        assert given_to_readers(head)
        assert read_head_h11(head) is not None, head
    head = read_head_h11(HEADS[32])
    assert head is not None
    assert head.connection == b"keep-alive, upgrade"
    assert head.gzipped and head.expect_continue
    assert read_head_h11(HEADS[14]).content_length == 7  # type: ignore[union-attr]


def test_heads_h11_reads_otherwise_go_to_it() -> None:
    # Repeated equal lengths (h11 merges them) and any Transfer-Encoding: not on the short path.
    for head in (HEADS[12], HEADS[13], HEADS[17]):
        assert h11_reading(head) is not None
        assert read_head_h11(head) is None
    for head in (HEADS[3], HEADS[4], HEADS[5]):
        assert not given_to_readers(head)  # bare LF, stray CR: the Connection's
    assert given_to_readers(HEADS[6]) and h11_reading(HEADS[6]) is not None
    assert read_head_h11(HEADS[6]) is None  # folded: h11 unfolds it, the server refuses it


def test_the_token_caches_stay_small() -> None:
    # Names and methods come from clients: the caches take a bounded number of short ones.
    from asyncweb.protocol import request_parser as parser

    names, methods = dict(parser._known_names), set(parser._known_methods)
    try:
        for i in range(2 * parser._TOKENS_CACHED):
            head = b"M%d / HTTP/1.1\r\nHost: a\r\nX-%d: v\r\nX-%s: v\r\n\r\n" % (i, i, b"n" * 200)
            assert read_head_h11(head) is not None  # still read, cached or not
        assert len(parser._known_names) <= parser._TOKENS_CACHED
        assert len(parser._known_methods) <= parser._TOKENS_CACHED
        assert max(map(len, parser._known_names)) <= parser._TOKEN_CACHED_LENGTH
    finally:
        parser._known_names.clear()
        parser._known_names.update(names)
        parser._known_methods.clear()
        parser._known_methods.update(methods)
