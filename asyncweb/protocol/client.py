"""HTTP/1.1 client connections: an ``asyncio.Protocol`` owning a client-side ``h11.Connection``.

The layer above drives one exchange at a time: ``send_request`` (the head), ``send_data`` /
``send_end`` (the body), then ``next_event`` until the response's ``EndOfMessage``. When both
sides finished cleanly and neither asked to close, ``finish_exchange`` readies the connection
for the next request, so a pool can keep it. It knows bytes, h11 events, limits and flow
control; timeouts, redirects and everything else belong to the HTTP client above it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import h11

from asyncweb.protocol.flow_control import FlowControl, next_tick_future

# Bytes received beyond what the reader has consumed before we stop reading the socket.
_READ_BUFFER_LIMIT = 256 * 1024


class ConnectionClosedError(ConnectionError):
    """The connection closed before the exchange finished. ``response_started`` tells whether
    any byte of a response had arrived (if not, an idempotent request is safe to retry)."""

    def __init__(self, message: str, response_started: bool) -> None:
        super().__init__(message)
        self.response_started = response_started


class ResponseProtocolError(Exception):
    """The server sent something that is not valid HTTP/1.1 (or broke a limit)."""


class HTTP1ClientProtocol(asyncio.Protocol):
    """One client connection. Create it through ``loop.create_connection``."""

    def __init__(self, max_header_size: int = 65536) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_size)
        self.max_header_size = max_header_size
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._close_error: BaseException | None = None
        # The peer's EOF is noted at once but given to h11 only once it needs more data, so
        # bytes that came just before it are parsed (and judged) as bytes, not as a close.
        self._eof = False
        self._eof_fed = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._flow = FlowControl()
        self._response_started = False
        # How many exchanges this connection completed (a pool's reuse is visible here).
        self.exchanges = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = self._flow.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._response_started = True
        self._h11.receive_data(data)
        if self._data_waiter is None:
            if len(self._h11.trailing_data[0]) > _READ_BUFFER_LIMIT:
                self._flow.pause_reading()
        else:
            self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._close_error = exc
        self._eof = True
        self._wake()
        self._flow.close(None)  # the next write or read reports the close

    def pause_writing(self) -> None:
        self._flow.pause_writing()

    def resume_writing(self) -> None:
        self._flow.resume_writing()

    # The exchange

    @property
    def usable(self) -> bool:
        """Idle, open, and in a state where a new request may start."""
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and self._h11.our_state is h11.IDLE
            and self._h11.their_state is h11.IDLE
            and not self._h11.trailing_data[0]
        )

    def send_request(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        self._response_started = False
        try:
            data = self._h11.send(h11.Request(method=method, target=target, headers=headers))
        except h11.LocalProtocolError as e:
            raise ValueError(f"Invalid request: {e}") from None
        self._write(data)

    def send_data(self, chunk: bytes) -> asyncio.Future[None]:
        """Write a body chunk; the future resolves once the transport's buffer drained."""
        if chunk:
            self._write(self._h11.send(h11.Data(data=chunk)))
        return self.drain()

    def send_end(self) -> None:
        self._write(self._h11.send(h11.EndOfMessage()))

    def drain(self) -> asyncio.Future[None]:
        """Resolves once the transport's buffer is below its high-water mark, at the earliest
        on the loop's next iteration (a body producer looping on ``await`` lets the loop run);
        raises ``ConnectionClosedError`` once the connection is closed or closing."""
        loop = asyncio.get_running_loop()
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionClosedError("Connection closed", self._response_started)
        if self._flow.write_paused:
            return self._flow.drain_waiter()
        return next_tick_future(loop)

    async def next_event(self) -> h11.Event:
        """The next response event (``InformationalResponse``, ``Response``, ``Data``,
        ``EndOfMessage``); raises ``ConnectionClosedError`` or ``ResponseProtocolError``."""
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as e:
                if self._eof_fed:
                    # The peer closed mid-message (or before answering at all).
                    raise ConnectionClosedError(
                        "Connection closed", self._response_started
                    ) from None
                raise ResponseProtocolError(str(e)) from None
            if event is h11.NEED_DATA:
                self._flow.resume_reading()
                if self._eof and not self._eof_fed:
                    self._feed_eof()
                    continue
                if self.closed or self._eof_fed:
                    raise ConnectionClosedError(
                        "Connection closed" if self._response_started else "Stream closed",
                        self._response_started,
                    )
                self._data_waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._data_waiter
                finally:
                    self._data_waiter = None
                continue
            if event is h11.PAUSED:
                raise ResponseProtocolError("unexpected data after the response")
            if isinstance(event, h11.ConnectionClosed):
                raise ConnectionClosedError("Connection closed", self._response_started)
            assert isinstance(event, h11.Event)
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                size = (
                    16
                    + len(event.reason)
                    + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items())
                )
                if size > self.max_header_size:
                    raise ResponseProtocolError("Response headers too large")
            return event

    def finish_exchange(self) -> bool:
        """After a complete exchange: True when the connection may carry another request."""
        self.exchanges += 1
        if (
            self._h11.our_state is h11.DONE
            and self._h11.their_state is h11.DONE
            and not self.closed
            and not self._eof
        ):
            self._h11.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    # Internals

    def _write(self, data: bytes | None) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionClosedError("Connection closed", self._response_started)
        if data:
            self.transport.write(data)

    def _feed_eof(self) -> None:
        if not self._eof_fed:
            self._eof_fed = True
            with contextlib.suppress(RuntimeError):  # h11 already saw the close
                self._h11.receive_data(b"")

    def _wake(self) -> None:
        waiter = self._data_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
