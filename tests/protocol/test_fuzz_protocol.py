"""Property-based tests of the HTTP/1.1 protocol layer (hypothesis).

Every example drives a real ``HTTPServer`` connection (the server's protocol object on a real
asyncio transport over a socketpair, see ``fuzz/harness.py``) with exactly the byte chunks the
example chose, for both response writers. Properties:

- valid pipelined requests give byte-identical responses however the bytes are split;
- arbitrary or mangled bytes never raise out of ``data_received`` and never leave the connection
  open past the (small) timeouts, and whatever is written back is HTTP/1.1 responses;
- many hostile connections over real loopback sockets leave no protocol objects or memory behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.servers import PROTOCOL_VARIANTS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from asyncweb.httpserver import HTTPServer
from asyncweb.protocol import HTTP1ServerProtocol
from fuzz.harness import (
    ERROR_STATUSES,
    FAST_TIMEOUTS,
    exchange,
    fuzz_app,
    run,
    status_codes,
    without_dates,
)

VARIANTS = pytest.mark.parametrize("variant", list(PROTOCOL_VARIANTS))
BOUNDED = settings(
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True)
def quiet_protocol_logs() -> Iterator[None]:
    # Every bad request is logged as a warning; thousands of them would only fill the report.
    logging.getLogger("asyncweb").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("asyncweb").setLevel(logging.NOTSET)


# -- strategies ---------------------------------------------------------------------------------

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=12)
_body = st.binary(max_size=300)


@st.composite
def requests(draw: st.DrawFn, allow_http10: bool = False) -> bytes:
    """One valid HTTP/1.1 request: any method we serve, a path, maybe a query, cookies, a body
    framed by Content-Length or chunked, a form body, Expect: 100-continue. With
    ``allow_http10``, maybe an HTTP/1.0 one asking for keep-alive (no chunked body)."""
    http10 = allow_http10 and draw(st.booleans())
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]))
    prefix = draw(st.sampled_from(["/", "/async/"]))
    path = prefix + "/".join(draw(st.lists(_token, max_size=3)))
    if draw(st.booleans()):
        path += "?" + "&".join(f"{k}={v}" for k, v in draw(st.dictionaries(_token, _token)).items())
    headers = [("Host", "fuzz.example")]
    if draw(st.booleans()):
        pairs = draw(st.dictionaries(_token, _token, max_size=4))
        headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in pairs.items())))
    for name, value in draw(st.lists(st.tuples(_token, _token), max_size=3)):
        headers.append(("X-" + name, value))
    body = b""
    framing = "none"
    if method in ("POST", "PUT"):
        kind = draw(st.sampled_from(["raw", "form", "multipart"]))
        if kind == "form":
            fields = draw(st.dictionaries(_token, _token, max_size=4))
            body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        elif kind == "multipart":
            uploads = draw(st.dictionaries(_token, _body, max_size=3))
            parts = [
                b'--BOUND\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                % (k.encode(), v)
                for k, v in uploads.items()
            ]
            body = b"".join(parts) + b"--BOUND--\r\n"
            headers.append(("Content-Type", "multipart/form-data; boundary=BOUND"))
        else:
            body = draw(_body)
        framing = "length" if http10 else draw(st.sampled_from(["length", "chunked"]))
        if framing == "length" and not http10 and draw(st.booleans()):
            headers.append(("Expect", "100-continue"))
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        pieces = []
        rest = body
        while rest:
            size = draw(st.integers(1, max(1, len(rest))))
            pieces.append(b"%x\r\n%s\r\n" % (size, rest[:size]))
            rest = rest[size:]
        body = b"".join(pieces) + b"0\r\n\r\n"
    if http10:
        headers.append(("Connection", "keep-alive"))
    version = "HTTP/1.0" if http10 else "HTTP/1.1"
    head = f"{method} {path} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + body


def _close_last(reqs: list[bytes]) -> bytes:
    if b" HTTP/1.0\r\n" in reqs[-1].split(b"\r\n", 1)[0] + b"\r\n":
        last = reqs[-1].replace(b"Connection: keep-alive\r\n", b"")  # 1.0 closes by default
    else:
        last = reqs[-1].replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
    return b"".join([*reqs[:-1], last])


def _answered(reqs: list[bytes], variant: str) -> list[bytes]:
    """The requests that get a response: h11's reference writer closes after any HTTP/1.0
    request (it does not do HTTP/1.0 keep-alive); ours keeps it when asked, as Tornado does."""
    if variant != "pure-h11":
        return reqs
    for index, request in enumerate(reqs):
        if request.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
            return reqs[: index + 1]
    return reqs


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=40))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if data[a:b]]


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A valid request (or a few) with random bytes inserted, deleted or replaced."""
    data = bytearray(b"".join(draw(st.lists(requests(), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        junk = draw(
            st.one_of(
                st.binary(min_size=1, max_size=4),
                st.sampled_from(
                    [b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b":", b"\r\n\r\n", b"0\r\n"]
                ),
            )
        )
        if action == "insert":
            data[pos:pos] = junk
        elif action == "delete":
            del data[pos : pos + len(junk)]
        else:
            data[pos : pos + len(junk)] = junk
    return bytes(data)


# -- properties ---------------------------------------------------------------------------------


@VARIANTS
@BOUNDED
@given(st.data())
def test_pipelined_requests_give_identical_responses_however_split(
    variant: str, data: st.DataObject
) -> None:
    reqs = data.draw(st.lists(requests(allow_http10=True), min_size=1, max_size=5))
    payload = _close_last(reqs)
    chunks = data.draw(split(payload))

    async def both() -> tuple[tuple[bytes, bool], tuple[bytes, bool]]:
        server = HTTPServer(fuzz_app(), **PROTOCOL_VARIANTS[variant])
        whole = await exchange(server, [payload])
        pieces = await exchange(server, chunks)
        return whole, pieces

    (whole, whole_closed), (pieces, pieces_closed) = run(both())
    assert whole_closed and pieces_closed
    codes = status_codes(whole)
    # 100 Continue interim responses come on top of one final response per request.
    assert [c for c in codes if c != 100] == [
        418 if r.startswith(b"PATCH") else 200 for r in _answered(reqs, variant)
    ], whole
    assert without_dates(pieces) == without_dates(whole)


@VARIANTS
@BOUNDED
@given(st.one_of(st.binary(max_size=600), mangled()), st.data())
def test_arbitrary_bytes_get_responses_or_a_close_never_an_exception(
    variant: str, payload: bytes, data: st.DataObject
) -> None:
    chunks = data.draw(split(payload)) if payload else []

    async def go() -> tuple[bytes, bool]:
        server = HTTPServer(fuzz_app(), **PROTOCOL_VARIANTS[variant], **FAST_TIMEOUTS)
        return await exchange(server, chunks, close_within=5.0)

    written, closed = run(go())
    assert closed, "connection left open past every timeout"
    if written:
        assert written.startswith(b"HTTP/1.1 "), written[:200]
    for code in status_codes(written):
        assert code in ERROR_STATUSES or code in (100, 200, 404, 405, 418), written[:400]


@BOUNDED
@given(st.one_of(mangled(), st.lists(requests(), min_size=1, max_size=3).map(b"".join)))
def test_every_protocol_variant_agrees_on_every_final_status(payload: bytes) -> None:
    """Differential: the default, h11's reference and the httptools parser answer the same bytes
    with the same final statuses (whether to send ``100 Continue`` for an empty body is left to
    each)."""

    async def each() -> dict[str, bytes]:
        answers = {}
        for name, protocol_settings in PROTOCOL_VARIANTS.items():
            server = HTTPServer(fuzz_app(), **protocol_settings, **FAST_TIMEOUTS)
            answers[name], _ = await exchange(server, [payload])
        return answers

    answers = run(each())

    def finals(data: bytes) -> list[int]:
        return [code for code in status_codes(data) if code != 100]

    reference = finals(answers["pure-h11"])
    for name, answer in answers.items():
        assert finals(answer) == reference, (name, answer[:600], answers["pure-h11"][:600])


# -- memory across connections, over real sockets ---------------------------------------------

HOSTILE_INPUTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # keep-alive, dropped by the idle timeout
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS ClientHello
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",  # body never completes
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 5000,  # head never completes
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x00\xff" * 50,
    b"",
]


async def _hostile_round(port: int, rounds: int) -> None:
    async def one(payload: bytes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(payload)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(reader.read(), 20)  # until the server closes
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    for _ in range(rounds):
        await asyncio.gather(*(one(p) for p in HOSTILE_INPUTS))


def _live_protocols() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, HTTP1ServerProtocol))


@VARIANTS
async def test_hostile_connections_leave_nothing_behind(variant: str) -> None:
    from asyncweb.netutil import bind_sockets

    server = HTTPServer(fuzz_app(), **PROTOCOL_VARIANTS[variant], **FAST_TIMEOUTS)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        await asyncio.sleep(0.01)
        baseline_protocols = _live_protocols()
        await _hostile_round(port, 10)  # warm-up: caches, freelists, lazy imports
        tracemalloc.start()
        try:
            await _hostile_round(port, 5)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            await _hostile_round(port, 20)  # 180 more connections
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert _live_protocols() == baseline_protocols
        # A leak of even one small object per connection would show as tens of KB here.
        assert growth < 48 * 1024, f"memory grew by {growth} bytes over 180 connections"
    finally:
        server.stop()
        await server.close_all_connections()
