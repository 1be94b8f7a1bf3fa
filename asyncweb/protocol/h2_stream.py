"""One HTTP/2 stream: a request handed to a ``RequestReceiver`` and the response side the framework
writes to (``write_headers`` / ``write`` / ``finish``), with the same methods as
``HTTP1ServerProtocol``'s. Its bytes wait here until the stream's and the connection's windows
allow them (:class:`~asyncweb.protocol.http2.HTTP2ServerProtocol` owns the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import h2.errors
import h2.exceptions

from asyncweb.protocol.http1 import (
    HeaderSource,
    HTTPOutputError,
    RequestReceiver,
    StartLine,
    StreamClosedError,
    closed_future,
    gunzip_request,
    run_close_callback,
)
from asyncweb.protocol.response_head import status_has_no_body

if TYPE_CHECKING:
    from asyncweb.protocol.http2 import HTTP2ServerProtocol

log = logging.getLogger("asyncweb.general")

_ErrorCodes = h2.errors.ErrorCodes

# RFC 9113 8.2.2: meaningless (or harmful) in HTTP/2; dropped from responses.
_CONNECTION_HEADERS = frozenset(
    ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")
)


class HTTP2Stream:
    """One request/response exchange on an HTTP/2 connection: the ``request_conn`` the framework
    writes to, with the same methods as ``HTTP1ServerProtocol``'s response side."""

    def __init__(self, connection: HTTP2ServerProtocol, stream_id: int) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.params = connection.params
        # The server's per-request view of the connection (peer, scheme); one per stream, since
        # xheaders rewrite it for the duration of a request and streams overlap.
        self.context: Any = None
        self._loop = connection._loop
        self._receiver: RequestReceiver | None = None
        self._closed = False
        self._close_callback: Callable[[], None] | None = None
        self._max_body_size = connection.params.max_body_size
        self._body_received = 0
        self._declared_length: int | None = None
        self._decompressor: Any = None
        self._expect_continue = False
        self._expects_body = False
        self._head_pending = False
        self._request_done = False
        self._head_only = False
        # Body chunks (with their flow-controlled length) waiting for the receiver.
        self._inbox: list[tuple[bytes, int]] = []
        self._inbox_ended = False
        self._waiting_for_app = False
        # The response.
        self._response_started = False
        self._response_done = False
        self._headers: list[tuple[bytes, bytes]] | None = None  # not yet handed to h2
        self._no_body = False
        self._body_remaining: int | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._finishing = False  # finish() called; END_STREAM goes with the last bytes
        self._dirty = False
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stall_deadline = 0.0

    # -- what the server above reads -------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.connection.transport

    @property
    def request_in_flight(self) -> bool:
        return not self._closed and not self._response_done

    # -- request side ----------------------------------------------------------------------

    def _start(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], ended: bool
    ) -> None:
        self._head_only = method == b"HEAD"
        gzipped = False
        for name, value in headers:
            if name == b"content-length":
                self._declared_length = int(value) if value.isdigit() else None
            elif name == b"content-encoding":
                gzipped = value.strip().lower() == b"gzip"
            elif name == b"expect":
                self._expect_continue = value.lower() == b"100-continue"
        if self.params.decompress and gzipped:
            headers, self._decompressor = gunzip_request(headers)
        self._expects_body = not ended
        if not ended:
            self._arm_body_timeout(self.params.body_timeout)
        try:
            self._receiver = self.connection._start_request(self)
            self._head_pending = True
            pending = self._receiver.head_received(method, target, b"2.0", headers)
        except Exception:
            log.exception("error starting an HTTP/2 request")
            self._internal_error()
            return
        if pending is not None and self._await_app(pending):
            return
        self._head_accepted()

    def _head_accepted(self) -> None:
        self._head_pending = False
        if self._closed or self._response_started:
            self._deliver()
            return
        declared = self._declared_length
        if declared is not None and declared > self._max_body_size:
            self._reject_body(f"Content-Length {declared} exceeds {self._max_body_size}")
            return
        if self._expect_continue and self._expects_body and not self._inbox_ended:
            self.connection._h2.send_headers(self.stream_id, [(b":status", b"100")])
            self.connection._schedule_flush()
        self._deliver()

    def _data(self, data: bytes, flow_length: int) -> None:
        if self._closed or (self._response_done and self._receiver is None):
            self.connection._ack(flow_length, self.stream_id)
            return
        self._inbox.append((data, flow_length))
        if not self._waiting_for_app and not self._head_pending:
            self._deliver()

    def _request_end(self) -> None:
        self._inbox_ended = True
        if not self._waiting_for_app and not self._head_pending:
            self._deliver()

    def _deliver(self) -> None:
        """Give the receiver the body chunks it can take now, then the end of the request."""
        while self._inbox and not self._waiting_for_app and not self._closed:
            data, flow_length = self._inbox.pop(0)
            self.connection._ack(flow_length, self.stream_id)
            if self._decompressor is not None:
                try:
                    room = self._max_body_size - self._body_received + 1
                    data = self._decompressor.decompress(data, room)
                except zlib.error as err:
                    self._error_response(400, f"bad gzip request body: {err}")
                    return
            self._body_received += len(data)
            if self._body_received > self._max_body_size:
                self._reject_body(f"body exceeds {self._max_body_size} bytes")
                return
            if data and self._receiver is not None and not self._response_done:
                try:
                    self._await_app(self._receiver.body_received(data))
                except Exception as err:
                    self._app_failed(err)
                    return
        ended = self._inbox_ended and not self._inbox and not self._waiting_for_app
        if ended and not self._request_done and not self._closed:
            self._request_done = True
            self._cancel_body_timeout()
            receiver = self._receiver
            if receiver is not None and not self._response_done:
                try:
                    receiver.message_done()
                except Exception as err:
                    self._app_failed(err)
                    return
            self._maybe_done()
        self.connection._schedule_flush()  # window updates from the acks

    def _await_app(self, pending: Awaitable[None] | None) -> bool:
        if pending is None:
            return False
        future = asyncio.ensure_future(pending)
        if future.done():
            if not future.cancelled() and future.exception() is not None:
                self._app_failed(future.exception())
            return False
        self._waiting_for_app = True
        future.add_done_callback(self._app_ready)
        return True

    def _app_ready(self, future: asyncio.Future[None]) -> None:
        self._waiting_for_app = False
        if not future.cancelled() and future.exception() is not None:
            self._app_failed(future.exception())
            return
        if self._head_pending:
            self._head_accepted()
        else:
            self._deliver()

    def _app_failed(self, exc: BaseException | None) -> None:
        log.error("error in request receiver", exc_info=exc)
        self._internal_error()

    # -- response side (what the framework calls) ----------------------------------------

    def write_headers(
        self, start_line: StartLine, headers: HeaderSource, chunk: bytes | None = None
    ) -> asyncio.Future[None]:
        if self._response_started:
            raise RuntimeError("response headers already written")
        if self._closed:
            return closed_future(self._loop)
        code = start_line.code
        if code == 101:
            raise HTTPOutputError("HTTP/2 has no 101 Switching Protocols")
        out = [(b":status", str(code).encode())]
        length: int | None = None
        fields = _fields
        for item in headers.get_all():
            field = fields.get(item)
            if field is None:
                field = _response_field(item[0], item[1])
            if field is _DROPPED:
                continue
            if field[0] == b"content-length":
                length = int(field[1])
            out.append(field)
        if code < 200:
            # An interim response (103 Early Hints): the real one follows.
            self.connection._h2.send_headers(self.stream_id, out)
            self.connection._schedule_flush()
            return self._done_or_wait()
        self._response_started = True
        self._no_body = self._head_only or status_has_no_body(code)
        if code == 204:
            out = [pair for pair in out if pair[0] != b"content-length"]
        self._body_remaining = None if self._no_body else length
        self._headers = out
        self._mark_dirty()
        if chunk:
            return self.write(chunk)
        return self._done_or_wait()

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        if self._closed or self.connection._closed:
            return closed_future(self._loop)
        if not self._response_started:
            raise RuntimeError("write() before write_headers()")
        if not chunk or self._no_body:
            return self._done_or_wait()
        if self._body_remaining is not None:
            if len(chunk) > self._body_remaining:
                raise HTTPOutputError("response body longer than its Content-Length")
            self._body_remaining -= len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        self._mark_dirty()
        return self._done_or_wait()

    def finish(self) -> None:
        if self._closed or self._response_done:
            return
        if not self._response_started:
            raise RuntimeError("finish() before write_headers()")
        if self._body_remaining:
            missing = self._body_remaining
            self.close()
            raise HTTPOutputError(f"response body {missing} bytes short of its Content-Length")
        self._response_done = True
        self._finishing = True
        self._close_callback = None
        self._mark_dirty()
        if not self._request_done:
            # Answered before the whole body came: the rest is read and dropped.
            self._receiver = None

    def drain(self) -> asyncio.Future[None]:
        if self._closed:
            return closed_future(self._loop)
        return self._done_or_wait()

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def set_max_body_size(self, max_body_size: int) -> None:
        self._max_body_size = max_body_size

    def set_body_timeout(self, timeout: float | None) -> None:
        if not self._request_done:
            self._arm_body_timeout(timeout)

    def detach(self) -> Any:
        raise StreamClosedError(RuntimeError("an HTTP/2 stream can't be detached"))

    def close(self) -> None:
        """Abandon the exchange: RST_STREAM (CANCEL) and the connection carries on."""
        if not self._closed:
            self._reset(_ErrorCodes.CANCEL)

    # -- output flow ---------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty = True
        self.connection._schedule_flush()

    def _done_or_wait(self) -> asyncio.Future[None]:
        conn = self.connection
        if self._pending_size <= conn.h2_params.stream_buffer_size and not conn._flow.write_paused:
            return conn._done_future
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        return waiter

    def _pump(self, flush: bool = True) -> None:
        """Hand h2 what the windows allow: the head, body bytes, END_STREAM after the last."""
        self._dirty = False
        if self._closed:
            return
        conn = self.connection
        h2conn = conn._h2
        sid = self.stream_id
        try:
            if self._headers is not None:
                headers, self._headers = self._headers, None
                end = self._finishing and not self._pending
                h2conn.send_headers(sid, headers, end_stream=end)
                if end:
                    self._sent_all()
                    return
            progressed = False
            while self._pending and not conn._flow.write_paused:
                window = min(h2conn.local_flow_control_window(sid), h2conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = self._pending[0]
                if len(chunk) > window:
                    self._pending[0] = chunk[window:]
                    chunk = chunk[:window]
                else:
                    self._pending.pop(0)
                self._pending_size -= len(chunk)
                progressed = True
                end = self._finishing and not self._pending
                h2conn.send_data(sid, chunk, end_stream=end)
                if end:
                    self._sent_all()
                    break
            else:
                if self._finishing and not self._pending and not self._closed:
                    h2conn.end_stream(sid)
                    self._sent_all()
        except h2.exceptions.ProtocolError as err:
            log.debug("HTTP/2 stream %d: %s", sid, err)
            self._gone(reset=False)
            return
        finally:
            if flush:
                conn._flush()
        if self._closed:
            return
        if progressed:
            self._stall_deadline = self._loop.time() + (conn.h2_params.send_timeout or 0)
        if self._pending:
            self._arm_stall_timer()
        self._wake_writers()

    def _wake_writers(self) -> None:
        if not self._waiters:
            return
        conn = self.connection
        if self._pending_size <= conn.h2_params.stream_buffer_size and not conn._flow.write_paused:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _sent_all(self) -> None:
        self._finishing = False
        self._cancel_stall_timer()
        self._wake_writers()
        if not self._request_done:
            # RFC 9113 8.1: a complete response may end the request early with NO_ERROR.
            self._reset(_ErrorCodes.NO_ERROR, notify=False)
            return
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self._request_done and self._response_done and not self._finishing:
            self._release()
            self.connection._stream_done(self)

    def _arm_stall_timer(self) -> None:
        timeout = self.connection.h2_params.send_timeout
        if timeout is None or self._stall_timer is not None:
            return
        if self._stall_deadline <= self._loop.time():
            self._stall_deadline = self._loop.time() + timeout
        self._stall_timer = self._loop.call_at(self._stall_deadline, self._on_stall_timer)

    def _cancel_stall_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _on_stall_timer(self) -> None:
        self._stall_timer = None
        if self._closed or not self._pending:
            return
        if self._loop.time() >= self._stall_deadline:
            log.info("HTTP/2 stream %d: the peer took no data for too long", self.stream_id)
            self._reset(_ErrorCodes.CANCEL)
        else:
            self._stall_timer = self._loop.call_at(self._stall_deadline, self._on_stall_timer)

    # -- timeouts and errors -------------------------------------------------------------

    def _arm_body_timeout(self, timeout: float | None) -> None:
        self._cancel_body_timeout()
        if timeout:
            self._timer = self._loop.call_later(timeout, self._on_body_timeout)

    def _cancel_body_timeout(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_body_timeout(self) -> None:
        self._timer = None
        if not self._closed and not self._request_done:
            log.debug("HTTP/2 stream %d: body timeout", self.stream_id)
            self._error_response(408, "body timeout")

    def _reject_body(self, why: str) -> None:
        log.info("rejecting request body: %s", why)
        self._error_response(413, "Payload Too Large")

    def _internal_error(self) -> None:
        self._error_response(500, "Internal Server Error")

    def _error_response(self, status: int, why: str) -> None:
        """A short text/plain answer if no response began (the request's rest is refused with
        RST_STREAM NO_ERROR once it is out), else a reset; the receiver hears the end."""
        self._inbox.clear()
        self._tell_gone()
        if self._closed:
            return
        if self._response_started:
            self._reset(_ErrorCodes.INTERNAL_ERROR)
            return
        body = f"{status} {why}\n".encode("latin-1", "replace")
        self._response_started = True
        self._headers = [
            (b":status", str(status).encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        self._pending = [] if self._head_only else [body]
        self._pending_size = len(self._pending[0]) if self._pending else 0
        self._response_done = True
        self._finishing = True
        self._close_callback = None
        self._mark_dirty()

    def _reset(self, code: int, notify: bool = True) -> None:
        if self._closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):  # already closed in h2
            self.connection._h2.reset_stream(self.stream_id, code)
        self.connection._schedule_flush()
        if notify:
            self._gone(reset=True)
        else:
            self._request_done = True
            self._release()
            self.connection._stream_done(self)

    def _gone(self, reset: bool, exc: BaseException | None = None) -> None:
        """The stream ended before its exchange did (a reset, either way, or a lost
        connection): writers fail, the handler hears of it."""
        if self._closed:
            return
        self._release(exc)
        self._tell_gone()
        self.connection._stream_done(self)

    def _tell_gone(self) -> None:
        """The receiver and the close callback hear, once each, that the exchange is over."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None and not self._response_done:
            try:
                receiver.connection_lost()
            except Exception:
                log.exception("error in request receiver")
        callback, self._close_callback = self._close_callback, None
        run_close_callback(callback)

    def _release(self, exc: BaseException | None = None) -> None:
        self._closed = True
        self._cancel_body_timeout()
        self._cancel_stall_timer()
        self._pending = []
        self._pending_size = 0
        self._inbox = []
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(StreamClosedError(exc))


# (name, value) as the framework gives it -> the checked HTTP/2 field (lowercase bytes), or
# _DROPPED for connection-specific fields; a head repeats most of its fields every time.
_fields: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_DROPPED = (b"", b"")


def _response_field(name: str, value: str) -> tuple[bytes, bytes]:
    lower = name.lower()
    field = _DROPPED
    if lower not in _CONNECTION_HEADERS:
        if "\r" in value or "\n" in value or "\0" in value or not _is_token(lower):
            raise HTTPOutputError(f"invalid response header {name!r}: {value!r}")
        if lower == "content-length" and (not value.isdigit() or not value.isascii()):
            raise HTTPOutputError(f"invalid Content-Length {value!r}")
        field = (lower.encode("latin-1"), value.encode("latin-1"))
    if len(_fields) >= 4096:
        _fields.clear()
    _fields[(name, value)] = field
    return field


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
_tokens: set[str] = set()


def _is_token(lower_name: str) -> bool:
    if lower_name in _tokens:
        return True
    if not lower_name or not _TOKEN_CHARS.issuperset(lower_name):
        return False
    if len(_tokens) < 4096:
        _tokens.add(lower_name)
    return True
