"""HTTP/1.1 server connections: the lifecycle of one connection, as an ``asyncio.Protocol``.

This layer knows bytes, h11 events, limits, flow control and timeouts. It hands each request to
a :class:`RequestReceiver` made by the server above it and offers that request's response side
(``write_headers`` / ``write`` / ``finish``), so it imports nothing from the framework. Requests
are read by a parser with ``h11.Connection``'s interface, which also keeps the head's hygiene
(see ``request_parser``); response heads are framed by ``response_head.frame_response``. The
pure-h11 reference variant overrides the ``_encode_*`` and parser hooks (``h11_reference``).

One request is handled at a time. Pipelined requests wait in the parser's buffer (it answers
``PAUSED`` until the current exchange is over), which keeps responses strictly in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

import h11

from asyncweb.protocol.errors import HTTPOutputError, StreamClosedError
from asyncweb.protocol.flow_control import (
    FlowControl,
    closed_future,
    next_tick_future,
    shared_done_future,
)
from asyncweb.protocol.interfaces import (
    NO_PARSER,
    HeaderSource,
    RequestParser,
    RequestReceiver,
    StartLine,
    SwitchedProtocol,
)
from asyncweb.protocol.malformed_log import MalformedRequestLog
from asyncweb.protocol.params import HTTP1Params
from asyncweb.protocol.refusals import TOO_MANY_CONNECTIONS, error_response
from asyncweb.protocol.request_body import gunzip_request, judge_chunk
from asyncweb.protocol.request_parser import (
    EMPTY_LINE_STARTS,
    HeadFirstConnection,
    RequestHead,
    head_size,
)
from asyncweb.protocol.response_head import CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, frame_response

# Also importable from here, where they were first defined.
__all__ = [
    "HTTP1Params",
    "HTTP1ServerProtocol",
    "HTTPOutputError",
    "HeaderSource",
    "MalformedRequestLog",
    "RequestParser",
    "RequestReceiver",
    "StartLine",
    "StreamClosedError",
    "SwitchedProtocol",
    "closed_future",
    "gunzip_request",
    "run_close_callback",
]

log = logging.getLogger("asyncweb.general")


def run_close_callback(callback: Callable[[], None] | None) -> None:
    """Run an application's close callback; its failure is logged so teardown goes on."""
    if callback is not None:
        try:
            callback()
        except Exception:
            log.exception("error in connection close callback")


# Pipelined bytes we accept beyond the request being handled before we stop reading the socket.
_PIPELINE_BUFFER_LIMIT = 65536


class HTTP1ServerProtocol(asyncio.Protocol):
    """Serves HTTP/1.x on one connection. Also the ``request_conn`` the framework writes to."""

    # Slots keep an idle connection small (C10K); "__dict__" still allows an attribute set from
    # outside (allocated only then), "__weakref__" weak references.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_body_mode",
        "_body_received",
        "_body_remaining",
        "_chunked_in",
        "_close_callback",
        "_closed",
        "_closing_after_response",
        "_counted_address",
        "_deadline",
        "_deadline_reason",
        "_declared_length",
        "_decompressor",
        "_done_future",
        "_empty_body",
        "_flow",
        "_head_only",
        "_head_pending",
        "_http10",
        "_idle",
        "_keep_alive",
        "_loop",
        "_max_body_size",
        "_on_closed",
        "_parser",
        "_parser_has_data",
        "_processing",
        "_receiver",
        "_request_done",
        "_response_done",
        "_response_started",
        "_start_request",
        "_successor",
        "_switching",
        "_timer",
        "_timer_at",
        "_unchecked_bytes",
        "_waiting_for_app",
        "context",
        "detached",
        "params",
        "transport",
    )

    # A request without a body is over once its head is in: no need to ask the parser for the
    # EndOfMessage it is bound to produce next, as the next exchange starts on a new parser.
    _ENDS_WITH_HEAD = True

    def __init__(
        self,
        start_request: Callable[[HTTP1ServerProtocol], RequestReceiver],
        params: HTTP1Params,
        context: Any = None,
        on_closed: Callable[[HTTP1ServerProtocol], None] | None = None,
    ) -> None:
        self._start_request = start_request
        self.params = params
        self.context = context
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        # An idle connection has no parser of its own: see _new_parser.
        self._parser: RequestParser = NO_PARSER
        self.transport: asyncio.Transport | None = None
        self._receiver: RequestReceiver | None = None
        self._keep_alive = True  # this exchange may be followed by another
        self._http10 = False
        self._body_mode = NO_BODY
        self._body_remaining = 0
        self._chunked_in = False  # the request body is chunked
        self._declared_length: int | None = None
        self._empty_body = False
        self._head_pending = False
        self._close_callback: Callable[[], None] | None = None
        # The current exchange.
        self._response_started = False
        self._response_done = False
        self._request_done = False
        self._head_only = False  # a HEAD request: its response carries no body bytes
        self._max_body_size = params.max_body_size
        self._body_received = 0
        self._decompressor: Any = None
        # Event processing: re-entrancy guard and what stalls it.
        self._processing = False
        self._waiting_for_app: Awaitable[None] | None = None
        # Flow control, both ways.
        self._flow = FlowControl(self._loop)
        self._done_future = shared_done_future(self._loop)
        self._closed = False
        self._closing_after_response = False
        self._counted_address: str | None = None  # see max_connections_per_address
        self.detached = False
        # A 101 response was written: the connection belongs to another protocol after it.
        self._switching = False
        self._successor: SwitchedProtocol | None = None
        # One timer per connection, moved lazily: see _arm_deadline.
        self._deadline: float | None = None
        self._deadline_reason = ""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._idle = True
        self._parser_has_data = False
        self._unchecked_bytes = 0

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = self._flow.transport = cast(asyncio.Transport, transport)
        if self.params.max_connections_per_address and not self._admit():
            return
        self._wait_for_head()

    def _admit(self) -> bool:
        """Count this connection against its address's cap; past the cap, answer 503 and
        close (False)."""
        address = self._peer_address()
        if not self.params.admit(address):
            cap = self.params.max_connections_per_address
            why = f"more than {cap} connections from this address"
            self.params.malformed_log.refused(address, 503, why)
            assert self.transport is not None
            self.transport.write(TOO_MANY_CONNECTIONS)
            self._shutdown(None)
            return False
        self._counted_address = address
        return True

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        parser = self._parser
        if parser is NO_PARSER:
            parser = self._parser = self._new_parser()
        parser.receive_data(data)
        if self._idle and data[:1] in EMPTY_LINE_STARTS and not parser.trailing_data[0]:
            return  # only empty lines, which the parser dropped: still idle
        self._parser_has_data = True
        self._unchecked_bytes += len(data)
        if self._idle:
            # First bytes of a request head: from now on the head has header_timeout to arrive.
            # Usually the whole head is here, and reading it sets the next deadline: arm this
            # one only if it is not.
            self._idle = False
            if not self._processing and self._waiting_for_app is None:
                self._process()
                if self._receiver is None and not self._idle and not self._closed:
                    self._arm_deadline(
                        self.params.head_timeout, "timed out reading the request head"
                    )
                return
            self._arm_deadline(self.params.head_timeout, "timed out reading the request head")
        if self._processing or self._waiting_for_app is not None:
            self._limit_pipeline_buffer()
            return
        self._process()

    def eof_received(self) -> bool | None:
        if self._successor is not None:
            return self._successor.eof_received()  # see connection_lost
        # A peer that closes while we still owe it a response is treated as gone (as Tornado
        # does), so long-poll handlers learn about it at once.
        if not self._closed:
            if self._parser is not NO_PARSER:
                self._parser.receive_data(b"")
            self._shutdown(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._successor is not None:
            # A TLS transport reports a loss to the protocol it had when the loss happened, which
            # may be this one even though the connection was handed over since.
            self._successor.connection_lost(exc)
            return
        self._shutdown(exc)

    def pause_writing(self) -> None:
        self._flow.pause_writing()

    def resume_writing(self) -> None:
        self._flow.resume_writing()

    # -- reading ---------------------------------------------------------------------------

    def _process(self) -> None:
        """Drive h11 until it needs more data, the app is busy, or the exchange must wait."""
        self._processing = True
        try:
            while not self._closed and not self.detached and self._waiting_for_app is None:
                if not self._parser_has_data:
                    # A fresh parser with nothing buffered: no event to look for.
                    if self._flow.read_paused:
                        self._resume_reading()
                    return
                if self._request_done and not self._response_done:
                    # Bytes past the request wait for the next exchange, or are dropped with the
                    # connection: h11 refuses them after a request that ends the connection
                    # (HTTP/1.0, "Connection: close"), which would put a 400 over the response.
                    self._limit_pipeline_buffer()
                    return
                try:
                    event = self._parser.next_event()
                except h11.RemoteProtocolError as err:
                    self._bad_request(err.error_status_hint, str(err))
                    return
                event_type = type(event)
                try:
                    if event_type is h11.Data:
                        self._on_body(event.data)
                        if self._chunked_in and self._chunk_refused():
                            return
                        continue
                    if event_type is RequestHead:
                        self._on_request(event)
                        continue
                    if event_type is h11.EndOfMessage:
                        self._on_request_end()
                        continue
                except Exception:
                    # The layer above should have answered; make sure the client hears something.
                    log.error("uncaught exception while handling a request", exc_info=True)
                    self._error_response_and_close(500, "the server failed to handle the request")
                    return
                if event is h11.NEED_DATA:
                    if self._chunked_in and self._chunk_refused():
                        return
                    if self._flow.read_paused:
                        self._resume_reading()
                    return
                elif event is h11.PAUSED:
                    if self._response_done and not self._switching:
                        self._next_cycle()
                        continue
                    self._limit_pipeline_buffer()
                    return
                elif event_type is h11.ConnectionClosed:
                    self._shutdown(None)
                    return
        finally:
            self._processing = False

    def _on_request(self, request: RequestHead) -> None:
        method, target, version, headers, declared, chunked, connection, gzipped, _ = request
        if not version.startswith(b"1."):
            self._bad_request(505, f"unsupported HTTP version {version.decode('latin-1')}")
            return
        self._idle = False
        if self._unchecked_bytes > self.params.max_header_size:
            # h11 only bounds incomplete heads; one that arrived whole is measured here. The
            # counter is an upper bound on the bytes any buffered head can have, so this runs
            # about once per max_header_size bytes received.
            if head_size(request) > self.params.max_header_size:
                self._bad_request(431, "request head too large")
                return
            self._unchecked_bytes = len(self._parser.trailing_data[0])
        self._head_only = method == b"HEAD"
        # RFC 9112 6.3: neither Content-Length nor Transfer-Encoding means no body at all.
        self._empty_body = not chunked and not declared
        self._chunked_in = chunked
        if self._empty_body:
            self._deadline = None  # the head is in; nothing more to wait for from the peer
        else:
            if chunked and declared is not None:
                # RFC 9112 6.1: a proxy in front may have framed it by Content-Length, so the
                # bytes that follow could be another request to it (smuggling). Tornado: 400.
                self._bad_request(400, "both Content-Length and Transfer-Encoding")
                return
            self._arm_deadline(self.params.body_timeout, "body timeout")
        self._http10 = version == b"1.0"
        if self._http10:
            # HTTP/1.0 keeps the connection only when asked to (and the response has a length).
            # Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 6.1): close after it.
            self._keep_alive = b"keep-alive" in connection and not chunked
        else:
            self._keep_alive = b"close" not in connection
        if self.params.no_keep_alive:
            self._keep_alive = False
        if self.params.decompress and gzipped:
            headers, self._decompressor = gunzip_request(headers)
        self._receiver = self._start_request(self)
        self._declared_length = declared
        self._head_pending = True
        pending = self._receiver.head_received(method, target, version, headers)
        if pending is not None:
            self._await_app(pending)
        if self._waiting_for_app is None:
            self._head_accepted()

    def _head_accepted(self) -> None:
        """The receiver has the head (an async prepare() included): now the body may come."""
        self._head_pending = False
        if self._closed or self._response_started:
            return
        # The receiver may have raised the limit (streaming handlers do, in prepare()).
        declared = self._declared_length
        if declared is not None and declared > self._max_body_size:
            self._reject_body(f"Content-Length {declared} exceeds {self._max_body_size}")
            return
        if self._empty_body and self._ENDS_WITH_HEAD:
            self._on_request_end()
        elif self._parser.they_are_waiting_for_100_continue:
            self._send_continue()

    def _on_body(self, data: bytes) -> None:
        if self._decompressor is not None:
            try:
                # Bounded output so a small gzip bomb cannot expand past the body limit at once.
                room = self._max_body_size - self._body_received + 1
                data = self._decompressor.decompress(data, room)
            except zlib.error as err:
                self._bad_request(400, f"bad gzip request body: {err}")
                return
        self._body_received += len(data)
        if self._body_received > self._max_body_size:
            self._reject_body(f"body exceeds {self._max_body_size} bytes")
            return
        if data and self._receiver is not None and not self._response_done:
            self._await_app(self._receiver.body_received(data))

    def _chunk_refused(self) -> bool:
        """Judge a chunked body by its chunk-size lines as they come (see judge_chunk). True
        when the request was refused."""
        if self._closed:
            return False
        # Compressed bytes are not what the limit counts; decoding checks those.
        limit = self._max_body_size if self._decompressor is None else None
        verdict = judge_chunk(self._parser, self._body_received, limit)
        if verdict is None:
            return False
        status, why = verdict
        if status == 413:
            self._reject_body(why)
        else:
            self._bad_request(status, why)
        return True

    def _on_request_end(self) -> None:
        if self._request_done:
            return  # ended early (no body); this is h11's EndOfMessage catching up
        self._request_done = True
        self._deadline = None
        receiver = self._receiver
        if receiver is not None and not self._response_done:
            receiver.message_done()
        if self._response_done and not self._closed and not self.detached:
            self._next_cycle()

    def _await_app(self, pending: Awaitable[None] | None) -> None:
        """Stop consuming events until the application's awaitable resolves."""
        if pending is None:
            return
        future = asyncio.ensure_future(pending)
        if future.done():
            future.exception() if not future.cancelled() else None
            return
        self._waiting_for_app = future
        future.add_done_callback(self._app_ready)

    def _app_ready(self, future: asyncio.Future[None]) -> None:
        self._waiting_for_app = None
        if not future.cancelled() and future.exception() is not None:
            log.error("error in request receiver", exc_info=future.exception())
            self.close()
            return
        if self._head_pending:
            self._head_accepted()
        if not self._closed and not self._processing:
            self._process()

    def _next_cycle(self) -> None:
        """Both sides of the exchange are done: get ready for the next request."""
        if self._closing_after_response or not self._keep_alive:
            self.close()
            return
        restarted = self._restart_parser(self._parser)
        if restarted is None:
            self.close()
            return
        self._parser, buffered = restarted
        self._parser_has_data = bool(buffered)
        self._receiver = None
        self._close_callback = None  # it belonged to the finished request
        self._response_started = self._response_done = self._request_done = False
        self._body_received = 0
        self._chunked_in = False
        self._max_body_size = self.params.max_body_size
        self._decompressor = None
        self._wait_for_head(buffered)
        if not self._processing:
            self._process()

    def _limit_pipeline_buffer(self) -> None:
        buffered = self._parser.trailing_data[0]
        if len(buffered) > _PIPELINE_BUFFER_LIMIT:
            self._flow.pause_reading()

    def _resume_reading(self) -> None:
        if not self._closed:
            self._flow.resume_reading()

    # -- responses -------------------------------------------------------------------------

    def write_headers(
        self, start_line: StartLine, headers: HeaderSource, chunk: bytes | None = None
    ) -> asyncio.Future[None]:
        """Start the response. Framing follows the headers: Content-Length if given, else
        chunked (HTTP/1.1) or close-delimited (HTTP/1.0); HEAD, 1xx, 204, 304 carry no body."""
        if self._response_started:
            raise RuntimeError("response headers already written")
        if self._closed:
            return closed_future(self._loop)
        # Not checked here for a closing transport (a failed send): one write more is harmless
        # (the transport counts it), and the head is on every request's path.
        code = start_line.code
        if code == 101:
            self._switching = True  # no framing follows; see switch_protocol
        data, self._body_mode, close = self._encode_head(
            code,
            start_line.reason,
            headers.get_all(),
            chunk,
            not self._keep_alive or self._closing_after_response,
        )
        if close:
            self._keep_alive = False
        self._response_started = True
        assert self.transport is not None
        self.transport.write(data)
        if self._flow.write_paused:
            return self._flow.drain_waiter()
        return self._done_future

    def _encode_head(
        self,
        code: int,
        reason: str,
        headers: Iterable[tuple[str, str]],
        chunk: bytes | None,
        close: bool,
    ) -> tuple[bytes, int, bool]:
        """The response head's bytes (with ``chunk`` framed after it), its body mode and
        whether the connection must close after the response."""
        head, mode, self._body_remaining, close = frame_response(
            code, reason, headers, self._head_only, self._http10, close
        )
        if chunk:
            self._body_mode = mode
            if mode == LENGTH and len(chunk) <= self._body_remaining:
                self._body_remaining -= len(chunk)  # the usual whole-body response
                head += chunk
            else:
                head += self._frame(chunk)
        return head, mode, close

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        """Send a body chunk. The future fails with StreamClosedError once the peer is gone,
        waits for a drain under back-pressure, and otherwise resolves on the loop's next
        iteration: a handler looping on ``await flush()`` still lets the loop run."""
        if self._closed:
            return closed_future(self._loop)
        if not self._response_started:
            raise RuntimeError("write() before write_headers()")
        if not chunk or self._body_mode == NO_BODY:
            return self._done_future
        future = self._write_out(self._frame(chunk))
        if future is self._done_future:
            return next_tick_future(self._loop)
        return future

    def _frame(self, chunk: bytes) -> bytes:
        mode = self._body_mode
        if mode == LENGTH:
            if len(chunk) > self._body_remaining:
                raise HTTPOutputError("response body longer than its Content-Length")
            self._body_remaining -= len(chunk)
            return chunk
        if mode == CHUNKED:
            return b"%x\r\n%b\r\n" % (len(chunk), chunk)
        if mode == UNTIL_CLOSE:
            return chunk
        return b""

    def finish(self) -> None:
        """End the response. The next pipelined request is started once the body was read too."""
        if self._closed or self._response_done:
            return
        if not self._response_started:
            raise RuntimeError("finish() before write_headers()")
        if not self._switching:
            try:
                data, close = self._encode_end()
            except HTTPOutputError:
                self.close()  # the peer can't trust this connection's framing any more
                raise
            if data:
                self._write_out(data)
            if close:
                self._keep_alive = False
        self._exchange_written()

    def _encode_end(self) -> tuple[bytes, bool]:
        """What ends the response body, and whether the connection must close after it."""
        if self._body_mode == CHUNKED:
            return b"0\r\n\r\n", False
        if self._body_mode == LENGTH and self._body_remaining:
            missing = self._body_remaining
            raise HTTPOutputError(f"response body {missing} bytes short of its Content-Length")
        return b"", False

    def _exchange_written(self) -> None:
        self._response_done = True
        self._deadline = None
        if self._switching:
            return  # the connection now waits for switch_protocol() or detach()
        if self._request_done:
            self._next_cycle()
        elif not self._keep_alive:
            self.close()
        else:
            if not self._empty_body:
                # Responded before the whole body came: read and discard the rest, then go
                # on; nobody waits for that body, so a client gets a bounded time to finish it.
                params = self.params
                self._arm_deadline(params.body_timeout or params.head_timeout, "body timeout")
            if not self._processing and self._waiting_for_app is None:
                self._process()

    def _send_continue(self) -> None:
        assert self.transport is not None
        self.transport.write(self._encode_continue())

    def _encode_continue(self) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def _restart_parser(self, parser: RequestParser) -> tuple[RequestParser, bytes] | None:
        """The parser for the next exchange and the bytes it holds (None if the connection
        can't go on). A new parser per exchange, fed what is left of the old one's buffer:
        responses (written by us) never go through h11's send path, so no state carries over.
        Without buffered bytes the next one is made when bytes come (an idle connection keeps
        none)."""
        leftover = parser.trailing_data[0]
        if leftover:
            parser = self._new_parser()
            parser.receive_data(leftover)
            leftover = parser.trailing_data[0]  # less any empty lines
            if leftover:
                return parser, leftover
        return NO_PARSER, b""

    def _new_parser(self) -> RequestParser:
        """One exchange's parser: heads on the short path, anything unusual through a real
        ``h11.Connection`` (see protocol.request_parser)."""
        return HeadFirstConnection(self.params.read_head, self.params.max_header_size)

    def _write_out(self, data: bytes) -> asyncio.Future[None]:
        transport = self.transport
        assert transport is not None
        if self._closed or transport.is_closing():
            # A failed send closes the transport at once but reports connection_lost only on
            # the next loop iteration; writing on would only be counted (and logged) by it.
            return closed_future(self._loop)
        transport.write(data)
        if self._flow.write_paused:
            return self._flow.drain_waiter()
        return self._done_future

    def _peer_lost(self) -> bool:
        """The transport is closing (a send failed, or we closed it) while connection_lost is
        yet to come: nothing more can be sent."""
        transport = self.transport
        return transport is not None and not self.detached and transport.is_closing()

    def _bad_request(self, status: int, why: str) -> None:
        """Answer input h11 (or we) rejected with a short error and close."""
        self.params.malformed_log.refused(self._peer_address(), status, why)
        self._error_response_and_close(status, why)

    def _reject_body(self, why: str) -> None:
        self.params.malformed_log.refused(self._peer_address(), 413, why)
        self._error_response_and_close(413, "Payload Too Large")

    def _peer_address(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if isinstance(peer, tuple) and peer:
            return str(peer[0])
        return str(peer or "unknown")

    def _error_response_and_close(self, status: int, why: str) -> None:
        if not self._response_started:
            self._keep_alive = False
            with contextlib.suppress(ValueError, RuntimeError, h11.ProtocolError):
                self.write_headers(*error_response(status, why))
        if self._receiver is not None and not self._response_done:
            receiver, self._receiver = self._receiver, None
            receiver.connection_lost()
        self.close()

    # -- timeouts --------------------------------------------------------------------------

    def _wait_for_head(self, buffered: bytes = b"") -> None:
        if buffered:
            self._idle = False
            self._arm_deadline(self.params.head_timeout, "timed out reading the request head")
        else:
            self._idle = True
            self._arm_deadline(self.params.idle_connection_timeout, "idle connection timeout")

    def _arm_deadline(self, timeout: float | None, reason: str) -> None:
        """Set when the current phase must end. The timer only moves when it would fire late,
        so a keep-alive request costs a clock read, not a timer reschedule."""
        if timeout is None:
            self._deadline = None
            return
        deadline = self._loop.time() + timeout
        self._deadline = deadline
        self._deadline_reason = reason
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._deadline is None:
            return
        if self._loop.time() >= self._deadline:
            log.debug("closing connection: %s", self._deadline_reason)
            if self._receiver is not None and not self._response_started:
                self._error_response_and_close(408, self._deadline_reason)
            else:
                self.close()
            return
        self._timer_at = self._deadline
        self._timer = self._loop.call_at(self._deadline, self._on_timer)

    # -- framework-facing controls ----------------------------------------------------------

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def set_max_body_size(self, max_body_size: int) -> None:
        self._max_body_size = max_body_size

    def set_body_timeout(self, timeout: float | None) -> None:
        if not self._request_done:
            self._arm_deadline(timeout, "body timeout")

    @property
    def request_in_flight(self) -> bool:
        return self._receiver is not None or self._response_started

    @property
    def stream(self) -> Any:
        """Tornado's ``request.connection.stream``: an IOStream-shaped view of the transport."""
        from asyncweb.protocol.stream_face import StreamFace

        return StreamFace(self.transport)

    def close_when_idle(self) -> None:
        """Graceful shutdown: close now if idle, else right after the current response."""
        if self._closed:
            return
        if self._successor is not None:
            self._successor.close_when_idle()
            return
        if self._receiver is None and not self._response_started:
            self.close()
        else:
            self._closing_after_response = True

    def drain(self) -> asyncio.Future[None]:
        """Resolves once the transport's buffer is below its high-water mark."""
        if self._closed or self._peer_lost():
            return closed_future(self._loop)
        if self._flow.write_paused:
            return self._flow.drain_waiter()
        return self._done_future

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """Give up the connection: returns the transport (still open, no longer read by this
        protocol) and the bytes read past the request. The server forgets the connection; the
        caller must install its own protocol with ``transport.set_protocol``."""
        transport, leftover = self._take_transport()
        self._shutdown(None)
        return transport, leftover

    def switch_protocol(self, successor: SwitchedProtocol) -> None:
        """Hand the connection to ``successor`` after a 101 response (a WebSocket): it gets
        ``connection_made`` and the bytes read past the request. The server keeps counting the
        connection until the successor reports it lost, and a graceful server shutdown reaches
        it through its ``close_when_idle``."""
        transport, leftover = self._take_transport()
        self._successor = successor
        successor.set_lost_callback(self._successor_lost)
        transport.set_protocol(cast(asyncio.BaseProtocol, successor))
        successor.connection_made(transport)
        if leftover:
            successor.data_received(leftover)
        if self._closing_after_response:
            # A graceful shutdown began during the handshake. Soon, not now: the caller has yet
            # to start the successor (a WebSocket's open()).
            self._loop.call_soon(successor.close_when_idle)

    def _take_transport(self) -> tuple[asyncio.Transport, bytes]:
        if self.transport is None or self._closed or self.detached:
            raise StreamClosedError()
        self.detached = True
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # The request is over for this layer: nothing more is reported to its receiver.
        self._receiver = None
        self._close_callback = None
        self._flow.resume_reading()
        leftover = bytes(self._parser.trailing_data[0])
        self._parser = NO_PARSER  # the parser state is of no use to the successor
        return self.transport, leftover

    def _successor_lost(self) -> None:
        self._successor = None
        self._shutdown(None)

    def close(self) -> None:
        if self.detached:
            if self._successor is not None:
                self._successor.close_when_idle()
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._shutdown(None)

    def _shutdown(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._counted_address is not None:
            self.params.release(self._counted_address)
            self._counted_address = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.transport.is_closing() and not self.detached:
            self.transport.close()
        self._flow.close(StreamClosedError(exc))
        receiver, self._receiver = self._receiver, None
        if receiver is not None and not self._response_done:
            receiver.connection_lost()
        callback, self._close_callback = self._close_callback, None
        run_close_callback(callback)
        if self._on_closed is not None:
            self._on_closed(self)
