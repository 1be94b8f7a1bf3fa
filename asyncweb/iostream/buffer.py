"""``_StreamBuffer``: Tornado's private chunked write buffer (append at the end, consume from
the front). asyncweb's streams write to their transport; Tornado's tests import this class."""

from __future__ import annotations

import collections


class _StreamBuffer:
    """Bytes appended at the end, consumed from the front: ``append``, ``peek``, ``advance``.

    Small pieces are joined into bytearrays of up to about ``_large_buf_threshold`` bytes; a
    piece that large or larger is kept as it is, so big writes are never copied.
    """

    def __init__(self) -> None:
        self._buffers: collections.deque[tuple[bool, bytearray | bytes | memoryview]] = (
            collections.deque()
        )
        self._first_pos = 0
        self._size = 0
        self._large_buf_threshold = 2048

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        if not size:
            return
        if size >= self._large_buf_threshold:
            if isinstance(data, memoryview):
                data = data.cast("B")
            self._buffers.append((True, data))
        elif (
            self._buffers
            and not self._buffers[-1][0]
            and len(self._buffers[-1][1]) < self._large_buf_threshold
        ):
            last = self._buffers[-1][1]
            assert isinstance(last, bytearray)
            last += data
        else:
            self._buffers.append((False, bytearray(data)))
        self._size += size

    def peek(self, size: int) -> memoryview:
        """Up to ``size`` bytes from the front, without consuming them (release the view
        before changing the buffer)."""
        if not self._buffers:
            return memoryview(b"")
        _, data = self._buffers[0]
        return memoryview(data)[self._first_pos : self._first_pos + size]

    def advance(self, size: int) -> None:
        """Drop ``size`` bytes from the front."""
        if not 0 < size <= self._size:
            raise ValueError(f"cannot advance by {size} in a buffer of {self._size}")
        self._size -= size
        while size:
            is_large, data = self._buffers[0]
            left = len(data) - self._first_pos
            if size < left:
                self._first_pos += size
                if not is_large:
                    # Keep the joined piece compact once most of it is consumed.
                    assert isinstance(data, bytearray)
                    del data[: self._first_pos]
                    self._first_pos = 0
                return
            size -= left
            self._buffers.popleft()
            self._first_pos = 0
