"""``PipeIOStream``: a stream on a pipe's file descriptor, through the loop's pipe
transports."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
from typing import Any, cast

from asyncweb.iostream.base import BaseIOStream, _StreamProtocol
from asyncweb.protocol.http1 import StreamClosedError


class PipeIOStream(BaseIOStream):
    """A stream on a pipe's file descriptor (one end of ``os.pipe()``, a pty...).

    The read end of a pipe gets the loop's read-pipe transport, the write end its write-pipe
    transport (which also notices the reader going away), a read-write fd the read one. The
    stream owns ``fd`` from now on: closing the stream closes it.
    """

    def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
        self.fd = fd
        super().__init__(*args, **kwargs)
        loop = self.io_loop.asyncio_loop
        # The transport closes the fd once, in one of two ways: asyncio's pipe transports
        # close the file object they are given, uvloop's close the descriptor themselves.
        # A file object owning the fd under uvloop could close it a second time, when
        # collected, under whoever has the number by then (uvloop only closes the file
        # object of a transport that outlived connect_*_pipe()).
        self._fio = io.FileIO(fd, "r+", closefd=not _closes_pipe_fds_itself(loop))
        os.set_blocking(fd, False)
        self._connecting = True
        writer = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
        task = loop.create_task(self._attach_pipe(writer))
        task.add_done_callback(self._pipe_attached)

    async def _attach_pipe(self, writer: bool) -> None:
        loop = self.io_loop.asyncio_loop
        protocol = _StreamProtocol(self)
        if writer:
            transport: asyncio.BaseTransport
            transport, _ = await loop.connect_write_pipe(lambda: protocol, self._fio)
        else:
            transport, _ = await loop.connect_read_pipe(lambda: protocol, self._fio)
        if self._transport is None:
            self._attach(cast(asyncio.Transport, transport), protocol)

    def _pipe_attached(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:
            self.error = error
            self._connecting = False
            self._fio.close()
            self.close()

    def _update_reading(self) -> None:
        # A write pipe's transport cannot pause reading: there is nothing to read.
        if self._transport is not None and not hasattr(self._transport, "pause_reading"):
            return
        super()._update_reading()

    def write(self, data: bytes | memoryview, callback: Any = None) -> Any:
        if self._transport is not None and not hasattr(self._transport, "write"):
            raise StreamClosedError(real_error=OSError(9, "pipe not open for writing"))
        return super().write(data, callback)

    def fileno(self) -> int:
        return self.fd

    def close_fd(self) -> None:
        self._fio.close()


def _closes_pipe_fds_itself(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop``'s pipe transports close the descriptor rather than the file object
    (uvloop: libuv owns a pipe's fd once it is opened)."""
    return type(loop).__module__.startswith("uvloop")
