"""What the server protocol does to a request body before the application sees it.

A gzip body is inflated when the server asks for it (:func:`gunzip_request`), and a chunked
body is judged by its chunk-size lines as they arrive (:func:`judge_chunk`), not by the bytes
those lines announce: a body that will pass its limit is refused before it is read.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import h11

try:  # to judge a chunk-size line as soon as it arrives
    from h11._readers import ChunkedReader as _ChunkedReader
except ImportError:  # pragma: no cover - a future h11 may move it; h11's own limits remain
    _ChunkedReader = None  # type: ignore[assignment,misc]

__all__ = ["gunzip_request", "judge_chunk"]

# A chunk size needs at most 16 hex digits (64 bits); h11 takes 20, and waits for the line end.
_LONG_CHUNK_SIZE = re.compile(b"[0-9A-Fa-f]{17}")


def gunzip_request(headers: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], Any]:
    """A gzip request body is inflated for the application: its Content-Encoding is renamed
    (the body it describes is gone) and a decompressor made. Called only for gzip bodies."""
    renamed = [
        (b"x-consumed-content-encoding", value) if name == b"content-encoding" else (name, value)
        for name, value in headers
    ]
    return renamed, zlib.decompressobj(16 + zlib.MAX_WBITS)


def judge_chunk(parser: object, received: int, limit: int | None) -> tuple[int, str] | None:
    """Refuse a chunked body early: (413, why) when the chunk being read would take the body
    past ``limit`` (None: not counted here, as for a compressed body, whose decoded bytes are
    counted), (400, why) for a chunk-size line of more than 16 hex digits before it even
    ends; None while the body may go on. ``parser`` is an ``h11.Connection`` or a parser that
    handed its exchange to one (``HeadFirstConnection.connection``)."""
    connection = parser
    if not isinstance(parser, h11.Connection):
        connection = getattr(parser, "connection", None)
    reader = getattr(connection, "_reader", None)
    if _ChunkedReader is None or type(reader) is not _ChunkedReader:
        return None
    announced = reader._bytes_in_chunk
    if announced:
        if limit is not None and received + announced > limit:
            return 413, f"a chunk of {announced} bytes exceeds {limit}"
        return None
    if reader._bytes_to_discard or reader._reading_trailer:
        return None
    buffered = getattr(getattr(connection, "_receive_buffer", None), "_data", b"")
    if _LONG_CHUNK_SIZE.match(buffered):
        return 400, "chunk size of more than 16 hex digits"
    return None
