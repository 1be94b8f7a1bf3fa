"""The short path for whole WebSocket data frames against wsproto, the reference.

Frames built here must read back in wsproto as the same message; frames read here must be read
by wsproto as exactly that message; anything else must be left to wsproto (None).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Message, TextMessage
from wsproto.frame_protocol import FrameProtocol

from asyncweb.protocol.ws_frames import plain_frame, read_plain_frame

messages = st.one_of(st.text(max_size=300), st.binary(max_size=300))
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def wsproto_reads(data: bytes, masked: bool) -> list[Any]:
    """The events wsproto reports for ``data`` arriving at a server (masked frames) or a
    client (unmasked)."""
    connection = Connection(ConnectionType.SERVER if masked else ConnectionType.CLIENT)
    connection.receive_data(data)
    return list(connection.events())


def as_message(events: list[Any]) -> str | bytes | None:
    if len(events) != 1 or not isinstance(events[0], Message):
        return None
    event = events[0]
    if not event.message_finished:
        return None
    if isinstance(event, TextMessage):
        return str(event.data)
    assert isinstance(event, BytesMessage)
    return bytes(event.data)


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("size", SIZES)
def test_built_frames_read_back_in_wsproto(masked: bool, size: int) -> None:
    for message in ("é" * (size // 2) + "a" * (size % 2), bytes(range(256)) * (size // 256 + 1)):
        message = message[:size] if isinstance(message, bytes) else message
        frame = plain_frame(message, masked)
        assert as_message(wsproto_reads(frame, masked)) == message
        # The short path reads its own frames back, up to 2-byte lengths (longer: wsproto).
        read = read_plain_frame(frame + b"next", 0, masked)
        encoded = message.encode() if isinstance(message, str) else message
        assert read == ((message, len(frame)) if len(encoded) <= 65535 else None)


@settings(max_examples=300, deadline=None)
@given(messages, st.booleans())
def test_any_message_round_trips(message: str | bytes, masked: bool) -> None:
    frame = plain_frame(message, masked)
    assert as_message(wsproto_reads(frame, masked)) == message
    assert read_plain_frame(b"xx" + frame, 2, masked) == (message, len(frame) + 2)


def wsproto_frame(message: str | bytes, fin: bool = True, client: bool = True) -> bytes:
    return bytes(FrameProtocol(client=client, extensions=[]).send_data(message, fin))


@st.composite
def damaged_frames(draw: st.DrawFn) -> bytes:
    """A frame wsproto built, often with a byte changed, cut short or extended."""
    frame = bytearray(wsproto_frame(draw(messages), draw(st.booleans())))
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.integers(0, 2))
        if what == 0 and frame:
            at = draw(st.integers(0, min(len(frame) - 1, 12)))
            frame[at] = draw(st.integers(0, 255))
        elif what == 1:
            del frame[draw(st.integers(0, len(frame))) :]
        else:
            frame += draw(st.binary(max_size=8))
    return bytes(frame)


@settings(max_examples=600, deadline=None)
@given(st.one_of(damaged_frames(), st.binary(max_size=40)))
def test_reads_only_what_wsproto_reads_the_same(data: bytes) -> None:
    read = read_plain_frame(data, 0, True)
    if read is None:
        return
    message, end = read
    assert as_message(wsproto_reads(data[:end], True)) == message


def test_other_frames_are_left_to_wsproto() -> None:
    text = wsproto_frame("hi")
    assert read_plain_frame(text, 0, True) == ("hi", len(text))
    assert read_plain_frame(text, 0, False) is None  # masked, where frames must not be
    assert read_plain_frame(wsproto_frame("hi", client=False), 0, True) is None
    assert read_plain_frame(wsproto_frame("part", fin=False), 0, True) is None  # a fragment
    ping = bytes(FrameProtocol(client=True, extensions=[]).ping(b"p"))
    assert read_plain_frame(ping, 0, True) is None
    assert read_plain_frame(text[:-1], 0, True) is None  # not all here yet
    bad_utf8 = bytearray(wsproto_frame(b"\xff"))
    bad_utf8[0] = 0x81  # a text frame holding invalid UTF-8: wsproto closes with 1007
    assert read_plain_frame(bytes(bad_utf8), 0, True) is None
    padded = bytes([0x82, 0x80 | 126, 0, 5]) + b"\0\0\0\0" + b"abcde"  # 2-byte length for 5
    assert read_plain_frame(padded, 0, True) is None
    assert isinstance(wsproto_reads(padded, True)[0], Message) is False
