"""Collecting a request body that the handler will read whole (``request.body``).

Small bodies stay a list of chunks. Past ``SPOOL_THRESHOLD`` bytes the chunks go to an
anonymous temporary file as they arrive and are dropped, so many concurrent large uploads hold
no more than a threshold each while arriving, and the body is read back as one object at the
end. That single large allocation is returned to the system when freed; thousands of
medium-sized chunks interleaved with other traffic's objects were not (the allocator kept the
heap: 700 MiB after 20 chunked 50 MiB uploads, see benchmarks/upload_memory.py).
"""

from __future__ import annotations

import tempfile
from typing import IO

SPOOL_THRESHOLD = 1024 * 1024


class BodySpool:
    """Body chunks in memory up to ``threshold`` bytes, then in a temporary file."""

    __slots__ = ("_chunks", "_file", "_size", "threshold")

    def __init__(self, threshold: int = SPOOL_THRESHOLD) -> None:
        self.threshold = threshold
        self._chunks: list[bytes] = []
        self._size = 0
        self._file: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._size

    def append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._file is not None:
            self._file.write(chunk)
            return
        self._chunks.append(chunk)
        if self._size > self.threshold:
            # Closed by getvalue() or close() (or __del__), not by a with block.
            self._file = tempfile.TemporaryFile(prefix="asyncweb-body-")  # noqa: SIM115
            for part in self._chunks:
                self._file.write(part)
            self._chunks = []

    def getvalue(self) -> bytes:
        """The whole body, as immutable bytes; the temporary file is closed."""
        if self._file is None:
            chunks = self._chunks
            return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
        file, self._file = self._file, None
        try:
            file.seek(0)
            return file.read()
        finally:
            file.close()

    def close(self) -> None:
        """Drop what was collected."""
        self._chunks = []
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def __del__(self) -> None:
        # A discarded body (the client left, the body was refused) must not leave its file to
        # the garbage collector's ResourceWarning.
        self.close()
