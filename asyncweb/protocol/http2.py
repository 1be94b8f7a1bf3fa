"""HTTP/2 server connections: an ``asyncio.Protocol`` driving an ``h2.connection.H2Connection``.

Each stream is one request, handed to the same :class:`~asyncweb.protocol.http1.RequestReceiver`
the HTTP/1 protocol uses, with an :class:`HTTP2Stream` as its response side (``write_headers`` /
``write`` / ``finish``...), so the layers above cannot tell the versions apart except by the
request's version, ``b"2.0"``. Like ``http1`` it imports nothing from the framework.

Reached through ``h2_select.HTTPVersionSelector``: TLS connections that chose ``h2`` by ALPN, and
cleartext ones that open with the HTTP/2 preface (h2c by prior knowledge); everything else is
served by the HTTP/1 protocol as before.

Flow control: a stream's response bytes wait in that stream until both its window and the
connection's allow them, so a slow reader stalls only its own stream's writes; request bodies are
acknowledged (window handed back) only once the receiver has taken them. Floods of frames that
cost work without progress (resets, PINGs, SETTINGS, empty DATA) end the connection with
``ENHANCE_YOUR_CALM``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from asyncweb.protocol.flow_control import FlowControl, shared_done_future
from asyncweb.protocol.h2_hpack import StatelessEncoder
from asyncweb.protocol.http1 import (
    HeaderSource,
    HTTP1Params,
    HTTPOutputError,
    RequestReceiver,
    StartLine,
    StreamClosedError,
    closed_future,
    gunzip_request,
    run_close_callback,
)
from asyncweb.protocol.response_head import status_has_no_body

log = logging.getLogger("asyncweb.general")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_ErrorCodes = h2.errors.ErrorCodes

# RFC 9113 8.2.2: meaningless (or harmful) in HTTP/2; dropped from responses.
_CONNECTION_HEADERS = frozenset(
    ("connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade")
)


@dataclass
class HTTP2Params:
    """HTTP/2 limits, on top of the server's :class:`HTTP1Params` (header size, body size and
    timeouts apply per stream)."""

    max_concurrent_streams: int = 100
    # Receive windows: what a client may send before we hand the space back.
    initial_window_size: int = 256 * 1024
    connection_window_size: int = 1024 * 1024
    # Response bytes a stream may hold before its writes wait (its flush() future).
    stream_buffer_size: int = 65536
    # A stream whose pending response bytes made no progress for this long is reset: a client
    # that never opens its window holds nothing for longer.
    send_timeout: float | None = 60.0
    # Frames a client may send per flood_window seconds that cost us work without progress
    # (PING, SETTINGS, PRIORITY, RST_STREAM, empty DATA); and resets alone (CVE-2023-44487).
    max_control_frames: int = 1000
    max_resets: int = 200
    flood_window: float = 10.0


class HTTP2ServerProtocol(asyncio.Protocol):
    """Serves HTTP/2 on one connection; one :class:`HTTP2Stream` per request."""

    def __init__(
        self,
        start_request: Callable[[Any], RequestReceiver],
        params: HTTP1Params,
        h2_params: HTTP2Params | None = None,
        context: Any = None,
        on_closed: Callable[[Any], None] | None = None,
    ) -> None:
        self._start_request = start_request
        self.params = params
        self.h2_params = h2_params or HTTP2Params()
        self.context = context
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        # Response heads are checked by write_headers; h2 checks what comes in.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config=config)
        self._h2.encoder = StatelessEncoder()  # type: ignore[assignment]
        self._streams: dict[int, HTTP2Stream] = {}
        self._closed = False
        self._going_away = False  # GOAWAY sent: no new streams, close when the last one ends
        self._last_stream_id = 0
        self._flow = FlowControl(self._loop)
        self._flush_scheduled = False
        self._done_future = shared_done_future(self._loop)
        self._idle_timer: asyncio.TimerHandle | None = None
        self._flood_start = 0.0
        self._control_frames = 0
        self._resets = 0

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = self._flow.transport = cast(asyncio.Transport, transport)
        p = self.h2_params
        settings = h2.settings.SettingCodes
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                settings.MAX_CONCURRENT_STREAMS: p.max_concurrent_streams,
                settings.MAX_HEADER_LIST_SIZE: self.params.max_header_size,
                settings.INITIAL_WINDOW_SIZE: p.initial_window_size,
            },
        )
        # h2 applies a new header list limit to its decoder only once the peer acknowledges it.
        self._h2.decoder.max_header_list_size = self.params.max_header_size
        self._h2.initiate_connection()
        extra = p.connection_window_size - 65535
        if extra > 0:
            self._h2.increment_flow_control_window(extra)
        self._flood_start = self._loop.time()
        self._arm_idle()
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as err:
            code = getattr(err, "error_code", _ErrorCodes.PROTOCOL_ERROR)
            peer = self.transport.get_extra_info("peername") if self.transport else None
            log.warning("HTTP/2 protocol error from %s: %s", peer, err)
            self._terminate(code, str(err))
            return
        for event in events:
            if self._closed:
                return
            self._on_event(event)
        # h2 holds a header block until its last CONTINUATION frame, up to 64 of them (1 MiB);
        # our bound is the header size limit. (A private field: without it, h2's bound holds.)
        block = getattr(self._h2.incoming_buffer, "_headers_buffer", None)
        if block and sum(len(frame.data) for frame in block) > self.params.max_header_size:
            self._terminate(_ErrorCodes.ENHANCE_YOUR_CALM, "header block too large")
            return
        self._flush()

    def eof_received(self) -> bool | None:
        self._shutdown(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._shutdown(exc)

    def pause_writing(self) -> None:
        self._flow.pause_writing()

    def resume_writing(self) -> None:
        self._flow.write_paused = False  # streams pump before their writers resume
        self._pump_all()
        self._flow.resume_writing()

    # -- events --------------------------------------------------------------------------------

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id or 0)
            if stream is None:
                self._ack(event.flow_controlled_length or 0, event.stream_id or 0)
            else:
                stream._data(event.data or b"", event.flow_controlled_length or 0)
            if not event.data and not event.stream_ended:
                self._count_control()
        elif isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream._request_end()
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id:
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream._pump()
            else:
                self._pump_all()
        elif isinstance(event, h2.events.StreamReset):
            if event.remote_reset:
                self._count_control()
                self._resets += 1
            stream = self._streams.get(event.stream_id or 0)
            if stream is not None:
                stream._gone(reset=False)
            if not self._closed and self._resets > self.h2_params.max_resets:
                self._terminate(_ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._count_control()
            self._pump_all()  # the initial window may have grown
        elif isinstance(event, (h2.events.PingReceived, h2.events.PriorityUpdated)):
            self._count_control()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # The peer opens no more streams; those it has may still finish unless it failed.
            if event.error_code:
                self._shutdown(None)
            else:
                # h2 refuses every later frame once a GOAWAY came; RFC 9113 6.8 lets the
                # streams up to its last id finish, so the state goes back to open.
                self._h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
                self._going_away = True
                self._maybe_finish_going_away()

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id or 0
        if self._going_away:
            self._h2.reset_stream(stream_id, _ErrorCodes.REFUSED_STREAM)
            return
        self._last_stream_id = stream_id
        method = target = authority = b""
        headers: list[tuple[bytes, bytes]] = []
        has_host = False
        for name, value in cast(list[tuple[bytes, bytes]], event.headers or []):
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    target = value
                elif name == b":authority":
                    authority = value
                continue
            if name == b"host":
                has_host = True
            headers.append((name, value))
        if authority and not has_host:
            headers.insert(0, (b"host", authority))
        # RFC 9113 8.2.3: a client may split Cookie into several fields; HTTP/1 has one.
        cookies = [value for name, value in headers if name == b"cookie"]
        if len(cookies) > 1:
            headers = [pair for pair in headers if pair[0] != b"cookie"]
            headers.append((b"cookie", b"; ".join(cookies)))
        if not target:
            # CONNECT (no :path) has no meaning for this server.
            self._h2.reset_stream(stream_id, _ErrorCodes.PROTOCOL_ERROR)
            return
        self._cancel_idle()
        stream = HTTP2Stream(self, stream_id)
        self._streams[stream_id] = stream
        stream._start(method, target, headers, bool(event.stream_ended))

    # -- floods --------------------------------------------------------------------------------

    def _count_control(self) -> None:
        now = self._loop.time()
        if now - self._flood_start > self.h2_params.flood_window:
            self._flood_start = now
            self._control_frames = 0
            self._resets = 0
        self._control_frames += 1
        if self._control_frames > self.h2_params.max_control_frames and not self._closed:
            self._terminate(_ErrorCodes.ENHANCE_YOUR_CALM, "too many control frames")

    # -- output --------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self.transport is None or self._closed:
            return
        data = self._h2.data_to_send()
        if data:
            self.transport.write(data)

    def _schedule_flush(self) -> None:
        """Stream output is sent once per loop iteration, so a handler's head, body and end go
        out together (HEADERS and DATA with END_STREAM in one write)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        for stream in list(self._streams.values()):
            if stream._dirty:
                stream._pump(flush=False)
        self._flush()

    def _pump_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream._pending_size or stream._finishing:
                stream._pump(flush=False)
            else:
                stream._wake_writers()
        self._flush()

    def _ack(self, length: int, stream_id: int) -> None:
        if length and not self._closed:
            # A ProtocolError here means the connection is closing.
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.acknowledge_received_data(length, stream_id)

    # -- streams and lifetime ------------------------------------------------------------------

    def _stream_done(self, stream: HTTP2Stream) -> None:
        if self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]
        if not self._streams and not self._closed:
            if self._going_away:
                self._maybe_finish_going_away()
            else:
                self._arm_idle()

    def _arm_idle(self) -> None:
        timeout = self.params.idle_connection_timeout
        if timeout and self._idle_timer is None:
            self._idle_timer = self._loop.call_later(timeout, self._on_idle)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _on_idle(self) -> None:
        self._idle_timer = None
        if not self._streams and not self._closed:
            self._terminate(_ErrorCodes.NO_ERROR, "")

    @property
    def request_in_flight(self) -> bool:
        return bool(self._streams)

    def close_when_idle(self) -> None:
        """Graceful shutdown: GOAWAY with the last stream id now; streams up to it finish, later
        ones are refused, and the connection closes after the last one."""
        if self._closed or self._going_away:
            return
        self._going_away = True
        if not self._streams:
            self._terminate(_ErrorCodes.NO_ERROR, "")
            return
        # Sent outside h2's state machine, which would refuse all further frames after it.
        frame = GoAwayFrame(stream_id=0, last_stream_id=self._h2.highest_inbound_stream_id)
        self._flush()
        if self.transport is not None:
            self.transport.write(frame.serialize())

    def _maybe_finish_going_away(self) -> None:
        if self._going_away and not self._streams and not self._closed:
            self._terminate(_ErrorCodes.NO_ERROR, "")

    def _terminate(self, code: int, why: str) -> None:
        """GOAWAY with ``code`` and close."""
        if self._closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection(code, additional_data=why.encode("latin-1", "replace"))
        self._flush()
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._shutdown(None)

    def _shutdown(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_idle()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        for stream in list(self._streams.values()):
            stream._gone(reset=False, exc=exc)
        self._streams.clear()
        self._flow.close(StreamClosedError(exc))
        if self._on_closed is not None:
            self._on_closed(self)


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
