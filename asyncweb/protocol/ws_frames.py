"""WebSocket data frames on a short path, with wsproto as the reference and the fallback.

Most WebSocket traffic is small whole messages: one frame with FIN set, opcode text or binary,
no extension bits. :func:`read_plain_frame` reads such a frame from a buffer and
:func:`plain_frame` builds one (RFC 6455 5.2); anything else (control frames, fragments,
extension bits, oversized or malformed headers, text that is not UTF-8) is left to wsproto,
which reads the connection from that frame on and answers errors with its own Close codes.
``tests/websocket/test_ws_frames.py`` checks both directions against wsproto's own.
"""

from __future__ import annotations

import os

# The first byte of a whole (FIN) data frame without extension bits.
_TEXT, _BINARY = 0x81, 0x82
_MASK_BIT = 0x80
# Lengths 126..65535 take a 2-byte extended length; longer ones (8 bytes) are left to wsproto.
_SHORT_MAX, _EXTENDED_16 = 125, 126
_SIXTEEN_BITS_MAX = 0xFFFF


def _xor(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR the 4-byte ``mask`` repeated (RFC 6455 5.3), as one big-integer XOR."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


def read_plain_frame(data: bytes, start: int, masked: bool) -> tuple[str | bytes, int] | None:
    """The message of the plain data frame at ``data[start:]`` and where the frame ends, or
    None: not such a frame (or not all of it here), so wsproto reads from ``start`` on.
    ``masked``: whether frames from the peer must be masked (a server reading a client)."""
    end = len(data)
    if end - start < 2:
        return None
    first = data[start]
    if first != _TEXT and first != _BINARY:
        return None
    second = data[start + 1]
    if bool(second & _MASK_BIT) != masked:
        return None  # wsproto refuses the wrong masking (1002)
    size = second & 0x7F
    offset = start + 2
    if size == _EXTENDED_16:
        if end - offset < 2:
            return None
        size = int.from_bytes(data[offset : offset + 2], "big")
        if size <= _SHORT_MAX:
            return None  # not the shortest encoding: wsproto refuses it
        offset += 2
    elif size > _SHORT_MAX:
        return None  # an 8-byte length: rare, and wsproto checks it
    if masked:
        mask = data[offset : offset + 4]
        offset += 4
    frame_end = offset + size
    if frame_end > end:
        return None
    payload = data[offset:frame_end]
    if masked:
        payload = _xor(payload, mask)
    if first == _BINARY:
        return payload, frame_end
    try:
        return payload.decode("utf-8"), frame_end
    except UnicodeDecodeError:
        return None  # wsproto fails the connection with 1007


def plain_frame(message: str | bytes, masked: bool) -> bytes:
    """One whole data frame for ``message`` (str: text, bytes: binary), masked with a fresh
    random key where ``masked`` (a client's frames), without extensions."""
    if isinstance(message, str):
        payload = message.encode("utf-8")
        first = _TEXT
    else:
        payload = bytes(message)
        first = _BINARY
    size = len(payload)
    mask_bit = _MASK_BIT if masked else 0
    if size <= _SHORT_MAX:
        head = bytes((first, mask_bit | size))
    elif size <= _SIXTEEN_BITS_MAX:
        head = bytes((first, mask_bit | _EXTENDED_16)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | 127)) + size.to_bytes(8, "big")
    if masked:
        mask = os.urandom(4)
        return head + mask + _xor(payload, mask)
    return head + payload
