"""HTTP/2 limits and attacks, each driven by the h2 library as a raw client over loopback: the
outcome is a GOAWAY or RST_STREAM with the expected code (or a 4xx on that stream only), and the
server goes on serving everyone else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import hpack
import pytest
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, PingFrame, SettingsFrame

from asyncweb.protocol.http2 import HTTP2Params
from tests.protocol.test_http2 import Gate, RawH2, make_app
from tests.support.servers import Serve

E = h2.errors.ErrorCodes


@pytest.fixture
def gate() -> Iterator[asyncio.Event]:
    """Holds /gate requests until the test ends (set before the server's graceful close)."""
    Gate.gate = asyncio.Event()
    yield Gate.gate
    Gate.gate.set()


async def still_serving(url: str) -> None:
    """A fresh connection gets its answer."""
    client = await RawH2.connect(url)
    status, body = await client.get("/echo")
    assert status == 200 and b"HTTP/2.0" in body
    await client.close()


async def settled(client: RawH2) -> None:
    """Both SETTINGS exchanged, so that no ACK from the client lands inside what a test sends."""
    await client.read_until(
        lambda: (
            client.of(h2.events.SettingsAcknowledged) and client.of(h2.events.RemoteSettingsChanged)
        )
    )


async def goaway_code(client: RawH2) -> int:
    await client.read_until(lambda: client.goaway() is not None)
    goaway = client.goaway()
    assert goaway is not None, "the server closed without a GOAWAY"
    await client.read_until(lambda: False)  # then it closes
    assert client.closed
    await client.close()
    return int(goaway.error_code or 0)


BASE_HEADERS = [
    (b":method", b"GET"),
    (b":path", b"/echo"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1"),
]


def headers_frame(stream_id: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    block = hpack.Encoder().encode(headers)
    frame = HeadersFrame(stream_id, data=block, flags=["END_HEADERS", "END_STREAM"])
    return bytes(frame.serialize())


# -- SETTINGS limits ------------------------------------------------------------------------------


async def test_max_concurrent_streams(serve: Serve, tmp_path: Path, gate: asyncio.Event) -> None:
    url = await serve(make_app(tmp_path), http2=HTTP2Params(max_concurrent_streams=4))
    client = await RawH2.connect(url)
    await client.read_until(lambda: client.of(h2.events.RemoteSettingsChanged))
    assert client.conn.remote_settings.max_concurrent_streams == 4
    for _ in range(4):
        client.request("/gate")
    # h2 itself won't open a fifth stream against the setting: frame it by hand, with the
    # connection's own encoder so that HPACK state stays in step.
    headers = [(n, v.replace(b"/echo", b"/gate")) for n, v in BASE_HEADERS]
    block = client.conn.encoder.encode(headers)
    client.send_raw(HeadersFrame(9, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    assert await goaway_code(client) == E.PROTOCOL_ERROR
    await still_serving(url)


async def test_max_header_list_size(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True, max_header_size=8192)
    client = await RawH2.connect(url)
    await client.read_until(lambda: client.of(h2.events.RemoteSettingsChanged))
    assert client.conn.remote_settings.max_header_list_size == 8192
    status, _ = await client.get("/echo", headers=[("x-ok", "a" * 4000)])
    assert status == 200
    client.request("/echo", headers=[("x-big", "a" * 9000)])
    assert await goaway_code(client) == E.ENHANCE_YOUR_CALM
    await still_serving(url)


async def test_hpack_bomb(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    # One 4 KB entry in the dynamic table, then referenced 200 times: ~4 KB on the wire,
    # 800 KB once decoded.
    encoder = hpack.Encoder()
    block = encoder.encode(BASE_HEADERS + [(b"x-bomb", b"a" * 4000)] * 200)
    assert len(block) < 5000
    frames = [HeadersFrame(1, data=block[:16000], flags=["END_STREAM"])]
    frames[0].flags.add("END_HEADERS")
    client.send_raw(b"".join(bytes(f.serialize()) for f in frames))
    assert await goaway_code(client) == E.ENHANCE_YOUR_CALM
    await still_serving(url)


# -- floods ---------------------------------------------------------------------------------------


async def test_rapid_reset(serve: Serve, tmp_path: Path, gate: asyncio.Event) -> None:
    """CVE-2023-44487: open and cancel streams as fast as possible."""
    url = await serve(make_app(tmp_path), http2=HTTP2Params(max_resets=50))
    client = await RawH2.connect(url)
    for _ in range(200):
        stream_id = client.request("/gate")
        client.conn.reset_stream(stream_id, E.CANCEL)
    client.flush()
    assert await goaway_code(client) == E.ENHANCE_YOUR_CALM
    await still_serving(url)


async def test_resets_below_the_limit_are_fine(
    serve: Serve, tmp_path: Path, gate: asyncio.Event
) -> None:
    url = await serve(make_app(tmp_path), http2=HTTP2Params(max_resets=50))
    client = await RawH2.connect(url)
    for _ in range(20):
        client.conn.reset_stream(client.request("/gate"), E.CANCEL)
    client.flush()
    status, _ = await client.get("/echo")
    assert status == 200 and client.goaway() is None
    await client.close()


async def test_continuation_flood(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    await settled(client)
    block = hpack.Encoder().encode(BASE_HEADERS)
    data = bytes(HeadersFrame(1, data=block, flags=["END_STREAM"]).serialize())
    # Never END_HEADERS: a server that buffers CONTINUATION frames forever runs out of memory.
    data += b"".join(bytes(ContinuationFrame(1, data=b"").serialize()) for _ in range(1000))
    client.send_raw(data)
    assert await goaway_code(client) == E.PROTOCOL_ERROR
    await still_serving(url)


async def test_continuation_flood_with_large_frames(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    await settled(client)
    # Below h2's own bound of 64 frames, above the header size limit (64 KiB); never ended.
    block = hpack.Encoder().encode([*BASE_HEADERS, (b"x-pad", b"b" * 100000)])
    data = bytes(HeadersFrame(1, data=block[:16000], flags=["END_STREAM"]).serialize())
    for start in range(16000, len(block), 16000):
        data += bytes(ContinuationFrame(1, data=block[start : start + 16000]).serialize())
    client.send_raw(data)
    assert await goaway_code(client) == E.ENHANCE_YOUR_CALM
    await still_serving(url)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(lambda i: PingFrame(0, opaque_data=i.to_bytes(8, "big")), id="ping"),
        pytest.param(lambda i: SettingsFrame(0, settings={}), id="settings"),
    ],
)
async def test_control_frame_floods(serve: Serve, tmp_path: Path, frame: Any) -> None:
    url = await serve(make_app(tmp_path), http2=HTTP2Params(max_control_frames=100))
    client = await RawH2.connect(url)
    client.send_raw(b"".join(bytes(frame(i).serialize()) for i in range(500)))
    assert await goaway_code(client) == E.ENHANCE_YOUR_CALM
    await still_serving(url)


async def test_empty_data_flood(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=HTTP2Params(max_control_frames=100))
    client = await RawH2.connect(url)
    stream_id = client.request("/echo", method="POST", end=False)
    client.send_raw(b"".join(bytes(DataFrame(stream_id, data=b"").serialize()) for _ in range(500)))
    assert await goaway_code(client) == E.ENHANCE_YOUR_CALM
    await still_serving(url)


async def test_a_few_pings_are_answered(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=HTTP2Params(max_control_frames=100))
    client = await RawH2.connect(url)
    for i in range(10):
        client.conn.ping(i.to_bytes(8, "big"))
    client.flush()
    await client.read_until(lambda: len(client.of(h2.events.PingAckReceived)) == 10)
    assert client.goaway() is None
    await client.close()


# -- malformed requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([*BASE_HEADERS, (b":foo", b"bar")], id="unknown-pseudo-header"),
        pytest.param(BASE_HEADERS[:1] + BASE_HEADERS[2:], id="no-path"),
        pytest.param([(b"x-early", b"1"), *BASE_HEADERS], id="pseudo-header-after-regular-header"),
        pytest.param([*BASE_HEADERS, (b":method", b"GET")], id="duplicate-pseudo-header"),
        pytest.param([*BASE_HEADERS, (b"connection", b"keep-alive")], id="connection"),
        pytest.param([*BASE_HEADERS, (b"transfer-encoding", b"chunked")], id="transfer-encoding"),
        pytest.param([*BASE_HEADERS, (b"te", b"gzip")], id="te-not-trailers"),
        pytest.param([*BASE_HEADERS, (b"X-Upper", b"1")], id="uppercase-name"),
        pytest.param([*BASE_HEADERS, (b"x-bad", b"a\r\nb")], id="crlf-in-value"),
    ],
)
async def test_malformed_headers(
    serve: Serve, tmp_path: Path, headers: list[tuple[bytes, bytes]]
) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    client.send_raw(headers_frame(1, headers))
    assert await goaway_code(client) == E.PROTOCOL_ERROR
    await still_serving(url)


async def test_well_formed_headers_pass(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    status, _ = await client.get("/echo", headers=[("te", "trailers"), ("x-fine", "a b")])
    assert status == 200
    await client.close()


# -- per-stream limits ----------------------------------------------------------------------------


async def test_body_limit_is_per_stream(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True, max_body_size=1000)
    client = await RawH2.connect(url)
    big = client.request(
        "/echo", method="POST", body=b"a" * 5000, headers=[("content-length", "5000")]
    )
    chunked = client.request("/echo", method="POST", body=b"a" * 5000)
    form = [("content-type", "application/x-www-form-urlencoded")]
    small = client.request("/echo", method="POST", body=b"k=v", headers=form)
    await client.read_until(lambda: all(client.ended(s) for s in (big, chunked, small)))
    assert client.status(big) == 413
    assert client.status(chunked) == 413
    assert client.status(small) == 200 and bytes(client.bodies[small]) == b"got 3 v"
    assert client.goaway() is None
    status, _ = await client.get("/echo")
    assert status == 200
    await client.close()


async def test_body_timeout_is_per_stream(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True, body_timeout=0.3)
    client = await RawH2.connect(url)
    slow = client.request("/echo", method="POST", body=b"k=", end=False)
    await client.read_until(lambda: client.ended(slow))
    assert client.status(slow) == 408
    status, _ = await client.get("/echo")
    assert status == 200 and client.goaway() is None
    await client.close()


async def test_idle_connection_gets_goaway(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True, idle_connection_timeout=0.3)
    client = await RawH2.connect(url)
    status, _ = await client.get("/echo")
    assert status == 200
    assert await goaway_code(client) == E.NO_ERROR


async def test_garbage_frames_end_in_goaway_not_a_crash(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Damaged frames of every type: each connection ends with a GOAWAY (or carries on), the
    protocol never raises into the loop, and the server goes on serving."""
    import random

    url = await serve(make_app(tmp_path), http2=True)
    rng = random.Random(17)
    valid = [
        headers_frame(1, BASE_HEADERS),
        bytes(DataFrame(1, data=b"abc", flags=["END_STREAM"]).serialize()),
        bytes(PingFrame(0, opaque_data=b"12345678").serialize()),
        bytes(SettingsFrame(0, settings={4: 1000}).serialize()),
    ]
    for _ in range(50):
        frame = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        client = await RawH2.connect(url, validate=False)
        client.send_raw(bytes(frame) + headers_frame(3, BASE_HEADERS))
        with contextlib.suppress(h2.exceptions.ProtocolError, AssertionError):
            # A damaged length may leave the server waiting for the rest of a frame: fine too.
            await client.read_until(lambda c=client: c.goaway() is not None, timeout=0.3)
        await client.close()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    await still_serving(url)
