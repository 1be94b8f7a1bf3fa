"""``IOStream``: Tornado's buffered stream API on an asyncio transport and protocol.

Bytes arrive through ``asyncio.Protocol.data_received`` into one read buffer; each read
method registers what it waits for (a delimiter, a regex, a byte count, the close) and is
satisfied from that buffer. When nothing is reading, the stream stops reading from the
transport once a chunk is buffered (``pause_reading``), so a slow consumer pushes back on
the peer instead of growing the buffer. ``write`` hands bytes to the transport and returns a
future that is done at once while the transport's buffer is below its high-water mark, or
once it has drained below it again.

Only one read may be pending at a time. Reads return futures; the Tornado 2-4 ``callback=``
and ``streaming_callback=`` arguments still work (with one ``DeprecationWarning``).
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import io
import numbers
import os
import re
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any, cast

from asyncweb import util
from asyncweb.ioloop import IOLoop
from asyncweb.log import gen_log
from asyncweb.netutil import ssl_options_to_context

# One class for both layers, so ``except iostream.StreamClosedError`` also catches the
# protocol layer's closed-connection errors.
from asyncweb.protocol.flow_control import FlowControl
from asyncweb.protocol.http1 import StreamClosedError

__all__ = [
    "BaseIOStream",
    "IOStream",
    "PipeIOStream",
    "SSLIOStream",
    "StreamBufferFullError",
    "StreamClosedError",
    "UnsatisfiableReadError",
]

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


class IOStream(BaseIOStream):
    """A stream on a socket: an accepted (connected) one, or a new one to :meth:`connect`."""

    def __init__(self, socket: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket = socket
        socket.setblocking(False)
        try:
            socket.getpeername()
        except OSError:
            return  # not connected yet: connect() attaches the transport
        self._connecting = True
        loop = self.io_loop.asyncio_loop
        task = loop.create_task(self._attach_connected(socket))
        task.add_done_callback(self._connect_done(None, None))

    def _ssl_context(self, server_side: bool) -> ssl.SSLContext | None:
        return None

    async def _attach_connected(self, sock: socket.socket) -> BaseIOStream:
        loop = self.io_loop.asyncio_loop
        protocol = _StreamProtocol(self)
        context = self._ssl_context(server_side=True)
        if context is None:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        else:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, ssl=context)
        self._attach_early(transport, protocol)
        return self

    def _attach_early(self, transport: asyncio.BaseTransport, protocol: _StreamProtocol) -> None:
        # (uvloop's transports do not derive from asyncio.Transport; they behave as one.)
        if self._transport is None:
            self._attach(cast(asyncio.Transport, transport), protocol)

    def connect(
        self,
        address: Any,
        callback: Callable[[], Any] | None = None,
        server_hostname: str | None = None,
    ) -> asyncio.Future[IOStream]:
        """Connect the socket to ``address``; the future resolves to this stream.

        A failure closes the stream and fails the future with :class:`StreamClosedError`.
        """
        if callback is not None:
            util.warn_deprecated_once("IOStream.connect(callback=)", "the returned Future")
        self._connecting = True
        loop = self.io_loop.asyncio_loop
        result: asyncio.Future[IOStream] = loop.create_future()
        task = loop.create_task(self._connect(address, server_hostname))
        task.add_done_callback(self._connect_done(result, callback))
        return result

    async def _connect(self, address: Any, server_hostname: str | None) -> None:
        loop = self.io_loop.asyncio_loop
        assert self.socket is not None
        await loop.sock_connect(self.socket, address)
        protocol = _StreamProtocol(self)
        context = self._ssl_context(server_side=False)
        if context is None:
            transport, _ = await loop.create_connection(lambda: protocol, sock=self.socket)
        else:
            hostname = server_hostname
            if hostname is None and isinstance(address, tuple):
                hostname = address[0]
            transport, _ = await loop.create_connection(
                lambda: protocol, sock=self.socket, ssl=context, server_hostname=hostname
            )
        self._attach_early(transport, protocol)

    def _connect_done(
        self,
        result: asyncio.Future[IOStream] | None,
        callback: Callable[[], Any] | None,
    ) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            error = None if task.cancelled() else task.exception()
            if task.cancelled() or error is not None:
                if error is not None:
                    gen_log.warning("Connect error on %r: %s", self.socket, error)
                self.error = error
                if self.socket is not None and self._transport is None:
                    self.socket.close()
                self._connecting = False
                self.close()
                if result is not None and not result.done():
                    result.set_exception(StreamClosedError(real_error=error))
                return
            if result is not None and not result.done():
                result.set_result(self)
            if callback is not None:
                self.io_loop.add_callback(callback)

        return done

    def start_tls(
        self,
        server_side: bool,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> asyncio.Future[SSLIOStream]:
        """Upgrade this connection to TLS; the future resolves to a new :class:`SSLIOStream`
        and this stream object must not be used afterwards.

        Call it with no read or write pending and nothing buffered.
        """
        if self._read is not None or self.writing() or self._read_buffer:
            raise ValueError("IOStream is not idle; cannot convert to SSL")
        if self._transport is None or self._protocol is None or self._closed:
            raise StreamClosedError(real_error=self.error)
        if ssl_options is None:
            ssl_options = {} if server_side else ssl.create_default_context()
        context = ssl_options_to_context(ssl_options, server_side=server_side)
        loop = self.io_loop.asyncio_loop
        transport, protocol = self._transport, self._protocol
        # Hand-over: the old stream lets go of the connection without closing it.
        protocol.stream = None
        self._transport = None
        self._closed = True
        new_stream: SSLIOStream = SSLIOStream._without_socket(
            max_buffer_size=self.max_buffer_size,
            read_chunk_size=self.read_chunk_size,
            max_write_buffer_size=self.max_write_buffer_size,
        )
        new_stream._ssl_options = context

        async def upgrade() -> SSLIOStream:
            try:
                tls_transport = await loop.start_tls(
                    transport,
                    protocol,
                    context,
                    server_side=server_side,
                    server_hostname=server_hostname,
                )
            except BaseException:
                transport.close()
                raise
            protocol.stream = new_stream
            new_stream._attach(cast(asyncio.Transport, tls_transport), protocol)
            return new_stream

        return asyncio.ensure_future(upgrade(), loop=loop)


class SSLIOStream(IOStream):
    """An :class:`IOStream` over TLS.

    ``ssl_options`` (a dict of ``ssl`` settings or an ``SSLContext``) applies when the socket
    is connected by :meth:`connect` (client side) or was accepted (server side).
    """

    _ssl_options: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ssl_options = kwargs.pop("ssl_options", None)
        if args and isinstance(args[0], ssl.SSLSocket):
            # A socket wrapped by the caller (Tornado allows it; do_handshake_on_connect
            # must be False): asyncio does TLS itself on the plain socket, so take the
            # wrapper's context and unwrap it before the handshake.
            wrapped: ssl.SSLSocket = args[0]
            if self._ssl_options is None:
                self._ssl_options = wrapped.context
            plain = socket.socket(fileno=wrapped.detach())
            args = (plain, *args[1:])
        super().__init__(*args, **kwargs)

    def _ssl_context(self, server_side: bool) -> ssl.SSLContext | None:
        options = self._ssl_options
        if options is None:
            options = {} if server_side else ssl.create_default_context()
        return ssl_options_to_context(options, server_side=server_side)

    def wait_for_handshake(self) -> asyncio.Future[SSLIOStream]:
        """Resolves once the TLS handshake is complete (asyncio finishes it before any
        data can flow, so a connected stream has already completed it)."""
        future: asyncio.Future[SSLIOStream] = self._new_future()
        if self._transport is not None:
            future.set_result(self)
        elif self._closed:
            future.set_exception(StreamClosedError(real_error=self.error))
        else:
            self._handshake_waiters.append(future)
        return future

    @property
    def _handshake_waiters(self) -> list[asyncio.Future[SSLIOStream]]:
        waiters: list[asyncio.Future[SSLIOStream]] | None = self.__dict__.get("_hs_waiters")
        if waiters is None:
            waiters = self.__dict__["_hs_waiters"] = []
        return waiters

    def _attach(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        super()._attach(transport, protocol)
        for waiter in self._handshake_waiters:
            if not waiter.done():
                waiter.set_result(self)

    def _signal_closed(self) -> None:
        for waiter in self._handshake_waiters:
            if not waiter.done():
                waiter.set_exception(StreamClosedError(real_error=self.error))
                waiter.exception()
        super()._signal_closed()


class PipeIOStream(BaseIOStream):
    """A stream on a pipe's file descriptor (one end of ``os.pipe()``, a pty...).

    The read end of a pipe gets the loop's read-pipe transport, the write end its write-pipe
    transport (which also notices the reader going away), a read-write fd the read one. The
    stream owns ``fd`` from now on: closing the stream closes it.
    """

    def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
        self.fd = fd
        # FileIO wraps the fd without reopening it; the transport closes it when done.
        self._fio = io.FileIO(fd, "r+", closefd=True)
        super().__init__(*args, **kwargs)
        os.set_blocking(fd, False)
        self._connecting = True
        writer = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
        loop = self.io_loop.asyncio_loop
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
