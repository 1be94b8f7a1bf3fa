"""The stream core: ``BaseIOStream`` (reads, writes, closing), the asyncio protocol that feeds
it, its pending-read record and the stream errors."""

from __future__ import annotations

import asyncio
import numbers
import re
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

from asyncweb import util
from asyncweb.ioloop import IOLoop
from asyncweb.log import gen_log
from asyncweb.protocol.flow_control import FlowControl
from asyncweb.protocol.http1 import StreamClosedError

_DEFAULT_MAX_BUFFER_SIZE = 104857600  # 100 MiB, as in Tornado
_DEFAULT_READ_CHUNK_SIZE = 65536


class UnsatisfiableReadError(Exception):
    """A read cannot be satisfied within its ``max_bytes``; the stream is closed."""


class StreamBufferFullError(Exception):
    """A read or write would need more than the stream's buffer limit."""


class _PendingRead:
    __slots__ = (
        "callback",
        "filled",
        "future",
        "kind",
        "max_bytes",
        "partial",
        "scan_from",
        "streaming_callback",
        "target",
    )

    def __init__(
        self,
        kind: str,
        target: Any,
        future: asyncio.Future[Any],
        *,
        max_bytes: int | None = None,
        partial: bool = False,
        callback: Callable[..., Any] | None = None,
        streaming_callback: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.kind = kind
        self.target = target
        self.future = future
        self.max_bytes = max_bytes
        self.partial = partial
        self.callback = callback
        self.streaming_callback = streaming_callback
        self.filled = 0  # bytes delivered so far (streaming reads, read_into)
        self.scan_from = 0  # where the next delimiter search starts


class _StreamProtocol(asyncio.Protocol):
    """Feeds one stream. ``on_made(stream)`` runs once the connection is made."""

    def __init__(
        self,
        stream: BaseIOStream | None,
        on_made: Callable[[BaseIOStream, asyncio.Transport], None] | None = None,
    ) -> None:
        self.stream = stream
        self._on_made = on_made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = self.stream
        if stream is None:
            return
        # A client may have attached already: uvloop reports the connection a loop turn
        # after create_connection() has returned it.
        if stream._transport is not transport:
            stream._attach(cast(asyncio.Transport, transport), self)
        if self._on_made is not None:
            self._on_made(stream, cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        if self.stream is not None:
            self.stream._on_data(data)

    def eof_received(self) -> bool:
        return False  # let the transport close: Tornado streams have no half-closed state

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None:
            self.stream._on_lost(exc)

    def pause_writing(self) -> None:
        if self.stream is not None:
            self.stream._flow.pause_writing()

    def resume_writing(self) -> None:
        if self.stream is not None:
            self.stream._on_drained()


def _buffered(transport: asyncio.Transport) -> int:
    """Bytes waiting in ``transport``; 0 once it is gone (a closed TLS transport raises)."""
    try:
        return transport.get_write_buffer_size()
    except (AttributeError, RuntimeError):
        return 0


class BaseIOStream:
    """The stream API; :class:`IOStream` and :class:`SSLIOStream` attach it to sockets."""

    socket: socket.socket | None = None
    #: After ``close()``, how long (seconds) data still buffered may take to reach the peer
    #: before the connection is dropped; None waits for as long as it takes.
    close_flush_timeout: float | None = 30.0

    def __init__(
        self,
        max_buffer_size: int | None = None,
        read_chunk_size: int | None = None,
        max_write_buffer_size: int | None = None,
        io_loop: IOLoop | None = None,
    ) -> None:
        if io_loop is not None:
            util.warn_deprecated_once("the io_loop argument", "nothing (the current IOLoop)")
        self.io_loop = IOLoop.current()
        self.max_buffer_size = max_buffer_size or _DEFAULT_MAX_BUFFER_SIZE
        self.read_chunk_size = min(
            read_chunk_size or _DEFAULT_READ_CHUNK_SIZE, self.max_buffer_size
        )
        self.max_write_buffer_size = max_write_buffer_size
        self.error: BaseException | None = None
        self._transport: asyncio.Transport | None = None
        self._protocol: _StreamProtocol | None = None
        self._read_buffer = bytearray()
        self._read: _PendingRead | None = None
        self._closed = False
        self._close_callback: Callable[[], Any] | None = None
        self._close_callback_ran = False
        # Write pausing, drain waiters (the writes' futures) and read pausing.
        self._flow = FlowControl(self.io_loop.asyncio_loop)
        self._unsent: list[bytes] = []  # writes made before the transport exists
        self._connecting = False
        self._connection_lost = False

    # -- attaching -----------------------------------------------------------------------------

    def _attach(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._transport = self._flow.transport = transport
        self._protocol = protocol
        self._connecting = False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.socket = sock
        if self._closed:
            transport.close()
            return
        for data in self._unsent:
            transport.write(data)
        self._unsent.clear()
        if not self._flow.write_paused:
            # Writes made before the transport existed are in its buffer now, below the
            # high-water mark (else pause_writing would have been called): they are done.
            self._on_drained()
        self._update_reading()

    @classmethod
    def _without_socket(cls, **kwargs: Any) -> Any:
        """A stream of this class for a transport that is yet to come (servers, clients)."""
        stream = cls.__new__(cls)
        BaseIOStream.__init__(stream, **kwargs)
        return stream

    # -- reading -------------------------------------------------------------------------------

    def read_until(
        self,
        delimiter: bytes,
        callback: Callable[[bytes], Any] | None = None,
        max_bytes: int | None = None,
    ) -> asyncio.Future[bytes]:
        """Read up to and including ``delimiter``.

        With ``max_bytes``, a delimiter not found within that many bytes closes the stream
        with :class:`UnsatisfiableReadError`.
        """
        if not delimiter:
            raise ValueError("delimiter must not be empty")
        return self._start_read(
            _PendingRead("until", delimiter, self._new_future(), max_bytes=max_bytes),
            callback,
        )

    def read_until_regex(
        self,
        regex: bytes | re.Pattern[bytes],
        callback: Callable[[bytes], Any] | None = None,
        max_bytes: int | None = None,
    ) -> asyncio.Future[bytes]:
        """Read up to and including the end of the first match of ``regex``."""
        pattern = regex if isinstance(regex, re.Pattern) else re.compile(regex)
        return self._start_read(
            _PendingRead("regex", pattern, self._new_future(), max_bytes=max_bytes), callback
        )

    def read_bytes(
        self,
        num_bytes: int,
        callback: Callable[[bytes], Any] | None = None,
        streaming_callback: Callable[[bytes], Any] | None = None,
        partial: bool = False,
    ) -> asyncio.Future[bytes]:
        """Read ``num_bytes`` bytes; with ``partial``, whatever is there (at least one byte,
        at most ``num_bytes``) as soon as something is."""
        if not isinstance(num_bytes, numbers.Integral) or num_bytes < 0:
            raise ValueError("num_bytes must be a non-negative integer")
        return self._start_read(
            _PendingRead(
                "bytes",
                int(num_bytes),
                self._new_future(),
                partial=partial,
                streaming_callback=streaming_callback,
            ),
            callback,
        )

    def read_into(
        self,
        buf: bytearray | memoryview,
        callback: Callable[[int], Any] | None = None,
        partial: bool = False,
    ) -> asyncio.Future[int]:
        """Fill ``buf`` (a writable buffer); resolves to the number of bytes read.

        With ``partial``, resolves as soon as at least one byte is in.
        """
        view = memoryview(buf).cast("B")
        return self._start_read(
            _PendingRead("into", view, self._new_future(), partial=partial), callback
        )

    def read_until_close(
        self,
        callback: Callable[[bytes], Any] | None = None,
        streaming_callback: Callable[[bytes], Any] | None = None,
    ) -> asyncio.Future[bytes]:
        """Read everything until the stream closes (the result is all of it; with a
        ``streaming_callback``, the chunks go there and the result is empty)."""
        return self._start_read(
            _PendingRead("close", None, self._new_future(), streaming_callback=streaming_callback),
            callback,
        )

    def reading(self) -> bool:
        """True while a read is pending."""
        return self._read is not None

    def _new_future(self) -> asyncio.Future[Any]:
        return self.io_loop.asyncio_loop.create_future()

    def _start_read(
        self, read: _PendingRead, callback: Callable[..., Any] | None
    ) -> asyncio.Future[Any]:
        if self._read is not None:
            raise RuntimeError("Already reading")
        if callback is not None or read.streaming_callback is not None:
            util.warn_deprecated_once(
                "the IOStream read callback= / streaming_callback= argument",
                "the Future the read method returns",
            )
        read.callback = callback
        if callback is not None:
            read.future.add_done_callback(self._run_read_callback(callback))
        self._read = read
        self._try_read()
        if self._read is read and self._closed:
            self._fail_read(read)
        elif self._read is read:
            self._update_reading()
        return read.future

    def _run_read_callback(self, callback: Callable[..., Any]) -> Callable[..., None]:
        def run(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                self.io_loop.add_callback(callback, future.result())

        return run

    def _on_data(self, data: bytes) -> None:
        self._read_buffer += data
        self._try_read()
        self._update_reading()

    def _try_read(self) -> None:
        """Satisfy the pending read from the buffer if possible."""
        read = self._read
        if read is None:
            return
        buffer = self._read_buffer
        try:
            if read.kind == "until" or read.kind == "regex":
                end = self._find_end(read)
                if end is not None:
                    self._finish_read(read, self._consume(end))
                elif read.max_bytes is not None and len(buffer) > read.max_bytes:
                    raise UnsatisfiableReadError(
                        f"delimiter not found within {read.max_bytes} bytes"
                    )
                elif len(buffer) >= self.max_buffer_size:
                    raise StreamBufferFullError("Reached maximum read buffer size")
            elif read.kind == "bytes":
                wanted = read.target - read.filled
                if read.streaming_callback is not None:
                    if buffer and wanted:
                        chunk = self._consume(min(wanted, len(buffer)))
                        read.filled += len(chunk)
                        self.io_loop.add_callback(read.streaming_callback, chunk)
                    if read.filled == read.target:
                        self._finish_read(read, b"")
                elif read.partial and buffer:
                    self._finish_read(read, self._consume(min(wanted, len(buffer))))
                elif len(buffer) >= wanted:
                    self._finish_read(read, self._consume(wanted))
                elif read.target > self.max_buffer_size and len(buffer) >= self.max_buffer_size:
                    raise StreamBufferFullError("Reached maximum read buffer size")
            elif read.kind == "into":
                view: memoryview = read.target
                count = min(len(view) - read.filled, len(buffer))
                if count:
                    view[read.filled : read.filled + count] = buffer[:count]
                    del buffer[:count]
                    read.filled += count
                if read.filled == len(view) or (read.partial and read.filled):
                    self._finish_read(read, read.filled)
            elif read.kind == "close":
                if read.streaming_callback is not None and buffer:
                    chunk = self._consume(len(buffer))
                    self.io_loop.add_callback(read.streaming_callback, chunk)
                elif len(buffer) > self.max_buffer_size:
                    raise StreamBufferFullError("Reached maximum read buffer size")
        except (UnsatisfiableReadError, StreamBufferFullError) as err:
            gen_log.info("Unsatisfiable read, closing connection: %s", err)
            self._read = None
            # As in Tornado, an unsatisfiable read closes the stream and fails like any read
            # cut short by a close, whether the data was already buffered or not; the reason
            # is the error's real_error (and ``self.error``).
            failure: Exception = err
            if isinstance(err, UnsatisfiableReadError):
                failure = StreamClosedError(real_error=err)
            read.future.set_exception(failure)
            read.future.exception()  # the error is also ``self.error``; don't log it twice
            self.close(exc_info=(type(err), err, None))

    def _find_end(self, read: _PendingRead) -> int | None:
        buffer = self._read_buffer
        if read.kind == "until":
            delimiter: bytes = read.target
            pos = buffer.find(delimiter, read.scan_from)
            if pos == -1:
                read.scan_from = max(0, len(buffer) - len(delimiter) + 1)
                return None
            end = pos + len(delimiter)
        else:
            match = read.target.search(buffer)
            if match is None:
                return None
            end = match.end()
        if read.max_bytes is not None and end > read.max_bytes:
            raise UnsatisfiableReadError(f"delimiter found beyond max_bytes={read.max_bytes}")
        return end

    def _consume(self, count: int) -> bytes:
        data = bytes(self._read_buffer[:count])
        del self._read_buffer[:count]
        return data

    def _finish_read(self, read: _PendingRead, result: Any) -> None:
        self._read = None
        if not read.future.done():
            read.future.set_result(result)

    def _fail_read(self, read: _PendingRead) -> None:
        """The stream closed with ``read`` still pending."""
        self._read = None
        if read.kind == "close":
            read.future.set_result(
                b"" if read.streaming_callback else self._consume(len(self._read_buffer))
            )
            return
        if read.kind == "into" and read.partial and read.filled:
            read.future.set_result(read.filled)
            return
        if not read.future.done():
            read.future.set_exception(StreamClosedError(real_error=self.error))
            read.future.exception()  # a close nobody waited for is not an error to log

    def _update_reading(self) -> None:
        """Read from the transport only while a read is pending or the buffer is small."""
        transport = self._transport
        if transport is None or self._closed:
            return
        if self._read is not None or len(self._read_buffer) < self.read_chunk_size:
            self._flow.resume_reading()
        else:
            self._flow.pause_reading()

    @property
    def _reading_paused(self) -> bool:
        return self._flow.read_paused

    # -- writing -------------------------------------------------------------------------------

    def write(
        self, data: bytes | memoryview, callback: Callable[[], Any] | None = None
    ) -> asyncio.Future[None]:
        """Send ``data``; the future is done once the transport has room for more.

        Raises :class:`StreamClosedError` on a closed stream, and
        :class:`StreamBufferFullError` past ``max_write_buffer_size``.
        """
        self._check_closed()
        data = bytes(data)
        if self.max_write_buffer_size is not None:
            pending = sum(map(len, self._unsent))
            if self._transport is not None:
                pending += _buffered(self._transport)
            if pending + len(data) > self.max_write_buffer_size:
                raise StreamBufferFullError("Reached maximum write buffer size")
        future = self._new_future()
        if callback is not None:
            util.warn_deprecated_once("IOStream.write(callback=)", "the Future write() returns")
            future.add_done_callback(
                lambda f: self.io_loop.add_callback(callback) if not f.exception() else None
            )
        if data:
            if self._transport is None:
                self._unsent.append(data)
            else:
                self._transport.write(data)
        if self._transport is None or self._flow.write_paused:
            self._flow.drain_waiter(future)
        else:
            future.set_result(None)
        return future

    def writing(self) -> bool:
        """True while written data waits to be sent."""
        if self._transport is None:
            return bool(self._unsent)
        return _buffered(self._transport) > 0

    def _on_drained(self) -> None:
        self._flow.resume_writing()

    # -- closing -------------------------------------------------------------------------------

    def set_close_callback(self, callback: Callable[[], Any] | None) -> None:
        """Call ``callback()`` once the stream is closed (by either side)."""
        self._close_callback = callback
        if self._closed and callback is not None:
            self._schedule_close_callback()

    def closed(self) -> bool:
        return self._closed

    def close(self, exc_info: Any = False) -> None:
        """Close the stream (data already written is still sent, within
        :attr:`close_flush_timeout`).

        ``exc_info=True`` (or an exception, or a ``sys.exc_info()`` triple) records why,
        in :attr:`error`.
        """
        if self._closed:
            return
        if exc_info:
            if isinstance(exc_info, tuple):
                self.error = exc_info[1]
            elif isinstance(exc_info, BaseException):
                self.error = exc_info
            else:
                self.error = sys.exc_info()[1]
        self._closed = True
        transport = self._transport
        if transport is not None:
            unsent = _buffered(transport)
            transport.close()
            if unsent and self.close_flush_timeout is not None:
                # Unsent data is still delivered, but a peer that stops reading must not keep
                # a closed stream's connection open for ever.
                self.io_loop.asyncio_loop.call_later(
                    self.close_flush_timeout, self._abort_unless_gone
                )
        self._signal_closed()

    def _abort_unless_gone(self) -> None:
        if not self._connection_lost and self._transport is not None:
            self._transport.abort()

    def _on_lost(self, exc: Exception | None) -> None:
        self._connection_lost = True
        if exc is not None and self.error is None:
            self.error = exc
        self._flow.write_paused = False
        if not self._closed:
            self._closed = True
            self._try_read()
        self._signal_closed()

    def _signal_closed(self) -> None:
        read = self._read
        if read is not None:
            self._try_read()
            if self._read is not None:
                self._fail_read(self._read)
        self._flow.close(StreamClosedError(real_error=self.error))
        self._schedule_close_callback()

    def _schedule_close_callback(self) -> None:
        if self._close_callback is not None and not self._close_callback_ran:
            self._close_callback_ran = True
            callback, self._close_callback = self._close_callback, None
            self.io_loop.add_callback(callback)

    def _check_closed(self) -> None:
        if self._closed:
            raise StreamClosedError(real_error=self.error)

    # -- socket options ------------------------------------------------------------------------

    def set_nodelay(self, value: bool) -> None:
        """Turn Nagle's algorithm off (``True``) or on, for TCP streams."""
        sock = self._transport.get_extra_info("socket") if self._transport else self.socket
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)
            except OSError as err:
                # The connection may be closing; the option no longer matters then.
                gen_log.debug("set_nodelay failed: %s", err)

    def fileno(self) -> int:
        if self.socket is None:
            raise StreamClosedError()
        return self.socket.fileno()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra info (``peername``, ``sslcontext``...)."""
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)
