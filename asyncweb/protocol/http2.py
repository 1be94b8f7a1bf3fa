"""HTTP/2 server connections: an ``asyncio.Protocol`` driving an ``h2.connection.H2Connection``.

Each stream is one request, handed to the same :class:`~asyncweb.protocol.http1.RequestReceiver`
the HTTP/1 protocol uses, with an :class:`~asyncweb.protocol.h2_stream.HTTP2Stream` as its
response side (``write_headers`` / ``write`` / ``finish``...), so the layers above cannot tell
the versions apart except by the request's version, ``b"2.0"``. Like ``http1`` it imports
nothing from the framework.

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
from collections.abc import Callable
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
from asyncweb.protocol.h2_stream import HTTP2Stream
from asyncweb.protocol.http1 import (
    HTTP1Params,
    RequestReceiver,
    StreamClosedError,
)

log = logging.getLogger("asyncweb.general")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_ErrorCodes = h2.errors.ErrorCodes


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
