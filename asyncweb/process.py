"""Several processes: pre-forking servers (``fork_processes``, from :mod:`asyncweb.prefork`) and
child processes watched from the event loop (``Subprocess``), as Tornado's ``tornado.process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from asyncweb.ioloop import IOLoop
from asyncweb.iostream import StreamClosedError, UnsatisfiableReadError

# Pre-forking lives in asyncweb.prefork (HTTPServer.start uses it); Tornado's names stay here.
from asyncweb.prefork import cpu_count, fork_processes, task_id

__all__ = ["CalledProcessError", "Subprocess", "cpu_count", "fork_processes", "task_id"]

CalledProcessError = subprocess.CalledProcessError


class _PipeStream:
    """The part of ``IOStream``'s interface a pipe needs (``iostream`` has no pipe stream):
    ``read_bytes``, ``read_until``, ``read_until_close``, ``write``, ``close``, ``closed``.
    Non-blocking reads and writes on the file descriptor, waiting with the loop's
    ``add_reader``/``add_writer``. Errors are ``iostream``'s."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd: int | None = fd
        self._buffer = bytearray()
        self._eof = False
        self.error: BaseException | None = None

    def fileno(self) -> int:
        if self.fd is None:
            raise ValueError("stream is closed")
        return self.fd

    def closed(self) -> bool:
        return self.fd is None

    def close(self) -> None:
        if self.fd is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            loop.remove_reader(self.fd)
            loop.remove_writer(self.fd)
        os.close(self.fd)
        self.fd = None

    async def _fill(self) -> bool:
        """Read what is available into the buffer; False at end of file."""
        if self._eof:
            return False
        fd = self.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                await self._wait(fd, reading=True)
                continue
            if not data:
                self._eof = True
                return False
            self._buffer += data
            return True

    async def _wait(self, fd: int, reading: bool) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        add, remove = (
            (loop.add_reader, loop.remove_reader)
            if reading
            else (loop.add_writer, loop.remove_writer)
        )
        add(fd, wake)
        try:
            await ready
        finally:
            if self.fd is not None:
                remove(fd)

    def _take(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    async def read_bytes(self, num_bytes: int, partial: bool = False) -> bytes:
        """``num_bytes`` bytes (fewer with ``partial``, as soon as any arrive)."""
        while len(self._buffer) < num_bytes and not (partial and self._buffer):
            if not await self._fill():
                raise StreamClosedError()
        return self._take(num_bytes)

    async def read_until(self, delimiter: bytes, max_bytes: int | None = None) -> bytes:
        """Bytes up to and including ``delimiter``."""
        while True:
            index = self._buffer.find(delimiter)
            if index >= 0:
                return self._take(index + len(delimiter))
            if max_bytes is not None and len(self._buffer) > max_bytes:
                raise UnsatisfiableReadError(f"delimiter not found in {max_bytes} bytes")
            if not await self._fill():
                raise StreamClosedError()

    async def read_until_close(self) -> bytes:
        """Everything until the other end closes."""
        while await self._fill():
            pass
        return self._take(len(self._buffer))

    async def write(self, data: bytes) -> None:
        """Write all of ``data``; resolves once the pipe took it."""
        view = memoryview(bytes(data))
        while view:
            fd = self.fileno()
            try:
                sent = os.write(fd, view)
            except BlockingIOError:
                await self._wait(fd, reading=False)
                continue
            except BrokenPipeError as err:
                raise StreamClosedError(real_error=err) from err
            view = view[sent:]


class Subprocess:
    """``subprocess.Popen`` watched from the event loop.

    Pass ``stdin``/``stdout``/``stderr=Subprocess.STREAM`` to get non-blocking streams as
    ``self.stdin``/``self.stdout``/``self.stderr`` (with ``read_until_close()``,
    ``read_bytes()``, ``read_until()``, ``write()``, ``close()``); other arguments go to
    ``Popen``. ``await proc.wait_for_exit()`` waits for the exit without blocking the loop.

    On Linux the exit is seen through a pidfd on the loop; elsewhere a helper thread waits.
    Neither takes over SIGCHLD, so :meth:`initialize` and :meth:`uninitialize` exist only
    for Tornado compatibility and do nothing.
    """

    STREAM = object()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = IOLoop.current().asyncio_loop
        ours: list[int] = []  # our ends of the pipes, closed if Popen fails
        theirs: list[int] = []  # the child's ends, closed in this process once it started
        streams: dict[str, _PipeStream] = {}
        for name in ("stdin", "stdout", "stderr"):
            if kwargs.get(name) is not Subprocess.STREAM:
                continue
            read_fd, write_fd = os.pipe()
            mine, child = (write_fd, read_fd) if name == "stdin" else (read_fd, write_fd)
            ours.append(mine)
            theirs.append(child)
            kwargs[name] = child
            streams[name] = _PipeStream(mine)
        try:
            self.proc = subprocess.Popen(*args, **kwargs)
        except BaseException:
            for fd in ours + theirs:
                os.close(fd)
            raise
        for fd in theirs:
            os.close(fd)
        self.stdin = streams.get("stdin")
        self.stdout = streams.get("stdout")
        self.stderr = streams.get("stderr")
        self.pid = self.proc.pid
        self.returncode: int | None = None
        self._exit_callback: Callable[[int], None] | None = None
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._watch()

    def _watch(self) -> None:
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                pidfd = pidfd_open(self.pid)
            except OSError:
                pass
            else:
                self._loop.add_reader(pidfd, self._pidfd_ready, pidfd)
                return
        thread = threading.Thread(target=self._wait_in_thread, daemon=True)
        thread.start()

    def _pidfd_ready(self, pidfd: int) -> None:
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        self._set_returncode(self.proc.wait())

    def _wait_in_thread(self) -> None:
        code = self.proc.wait()
        # RuntimeError: the loop was closed meanwhile.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._set_returncode, code)

    def _set_returncode(self, code: int) -> None:
        self.returncode = code
        if not self._exited.done():
            self._exited.set_result(code)
        if self._exit_callback is not None:
            callback, self._exit_callback = self._exit_callback, None
            callback(code)

    def set_exit_callback(self, callback: Callable[[int], None]) -> None:
        """Run ``callback(returncode)`` on the loop when the process exits (a negative
        returncode is the signal that killed it)."""
        if self.returncode is not None:
            self._loop.call_soon(callback, self.returncode)
            return
        self._exit_callback = callback

    def wait_for_exit(self, raise_error: bool = True) -> asyncio.Future[int]:
        """A future for the exit code (a Future, as Tornado returns, so callbacks can be
        added to it as well as awaiting it). With ``raise_error``, a non-zero code raises
        ``subprocess.CalledProcessError`` instead."""
        result: asyncio.Future[int] = self._loop.create_future()

        def exited(done: asyncio.Future[int]) -> None:
            if result.done():
                return
            code = done.result()
            if raise_error and code != 0:
                result.set_exception(CalledProcessError(code, self.proc.args))
            else:
                result.set_result(code)

        self._exited.add_done_callback(exited)
        return result

    @classmethod
    def initialize(cls) -> None:
        """Tornado installs its SIGCHLD handler here; exits are watched per process instead."""

    @classmethod
    def uninitialize(cls) -> None:
        """See :meth:`initialize`."""
