"""WebSocket connections: an ``asyncio.Protocol`` owning a wsproto frame-layer connection.

The opening handshake is HTTP's business (the server's HTTP/1.1 protocol answers ``101`` and
calls :meth:`~asyncweb.protocol.http1.HTTP1ServerProtocol.switch_protocol`; the client does its
own request). From then on :class:`WebSocketProtocol` owns the transport: wsproto parses and
builds the frames (whole text and binary messages without extensions on a short path,
:mod:`asyncweb.protocol.ws_frames`, while wsproto holds nothing half-read), this class adds
what wsproto leaves out:

- **Messages, whole.** wsproto reports payload as it arrives; fragments are joined here and the
  message handed to the :class:`MessageReceiver` once complete. ``max_message_size`` is checked
  while a message grows and bounds how far compressed data is inflated (close 1009), so
  neither a huge frame nor a deflate bomb gets buffered whole.
- **In-order, back-pressured delivery.** A receiver callback that returns an awaitable stops
  event processing (and reading the socket) until it resolves.
- **Output back-pressure.** :meth:`send_message` returns a future that is already done while the
  transport's buffer is under its high-water mark, else one that resolves when it drains.
- **Keepalive.** With ``ping_interval`` a ping goes out periodically; a peer that sends nothing
  for ``ping_timeout`` after a ping is dropped (default: 3 intervals or 30 s, whichever is
  longer; 0: never).
- **Closing.** The closing handshake with a timeout: the side that sent Close waits up to
  ``close_timeout`` for the peer's; the server then closes TCP (RFC 6455 7.1.1).

No framework imports: the handler side lives in :mod:`asyncweb.websocket`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import socket
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits
from wsproto.handshake import client_extensions_handshake, server_extensions_handshake
from wsproto.utilities import LocalProtocolError, generate_accept_token, generate_nonce

from .flow_control import FlowControl, next_tick_future, shared_done_future
from .ws_frames import plain_frame, read_plain_frame

log = logging.getLogger("asyncweb.websocket")

# The default websocket_max_message_size, as Tornado's: a larger message (or a frame header
# announcing one) closes the connection with 1009. So Autobahn's 9.1.6 and 9.2.6 (16 MiB
# messages) end with 1009 by design; raise the setting where such messages are expected.
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024


class WebSocketError(Exception):
    """Base class for WebSocket errors (:mod:`asyncweb.websocket` re-exports it)."""


class WebSocketClosedError(WebSocketError):
    """Raised by operations on a closed connection."""


@dataclass
class WebSocketParams:
    """Limits and timers of one connection; ``None`` switches a timer off."""

    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    ping_interval: float | None = None
    ping_timeout: float | None = None
    # How long to wait for the peer's Close (and, for a client, for the server to hang up).
    close_timeout: float = 5.0


class MessageReceiver(Protocol):
    """What a connection reports to. An awaitable from ``message_received`` (an async
    ``on_message``) holds every later event until it resolves."""

    def message_received(self, message: str | bytes) -> Awaitable[None] | None: ...

    def ping_received(self, data: bytes) -> None: ...

    def pong_received(self, data: bytes) -> None: ...

    def connection_closed(self, code: int | None, reason: str | None) -> None: ...

    def message_failed(self, error: BaseException) -> None:
        """``message_received`` (or its awaitable) raised ``error``; the connection then
        closes with 1011. The receiver logs it its own way."""
        ...


# -- handshake helpers (used by both sides) ------------------------------------------------------


def accept_token(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a client's ``Sec-WebSocket-Key``."""
    return generate_accept_token(key.encode("ascii")).decode("ascii")


def new_key() -> str:
    """A fresh random ``Sec-WebSocket-Key``."""
    return generate_nonce().decode("ascii")


def valid_key(key: str | None) -> bool:
    """RFC 6455 4.2.1: the key is 16 random bytes, base64-encoded."""
    if not key:
        return False
    try:
        return len(base64.b64decode(key.strip().encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError):
        return False


class TunedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate with a chosen zlib ``compression_level`` and
    ``mem_level`` for what we send, and inflation bounded by ``max_message_size``.

    A deflate bomb expands about 1000:1, so inflating a read whole before checking its size
    could allocate gigabytes; instead each piece is inflated to at most what is left of the
    limit plus one byte, and a message past the limit fails with 1009 (Message Too Big).
    """

    def __init__(
        self,
        compression_level: int = 6,
        mem_level: int = 8,
        max_message_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.compression_level = compression_level
        self.mem_level = mem_level
        self.max_message_size = max_message_size
        self._inflated = 0  # bytes inflated so far for the message being received

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        limit = self.max_message_size
        if limit is None or not self._inbound_compressed or not self._inbound_is_compressible:
            return super().frame_inbound_payload_data(proto, data)
        decompressor = self._decompressor
        assert decompressor is not None
        try:
            # max_length 0 would mean "no limit": the +1 keeps it positive.
            inflated = decompressor.decompress(data, limit - self._inflated + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(inflated)
        if self._inflated > limit:
            return CloseReason.MESSAGE_TOO_BIG
        return inflated

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if not fin:
            return None  # the message continues: so does its count
        inflated = self._inflated
        self._inflated = 0
        tail = super().frame_inbound_complete(proto, fin)
        # The tail is the flushed end of the stream (normally empty); it counts too.
        limit = self.max_message_size
        if limit is not None and isinstance(tail, bytes) and inflated + len(tail) > limit:
            return CloseReason.MESSAGE_TOO_BIG
        return tail

    def frame_outbound(
        self,
        proto: Any,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            bits = self.client_max_window_bits if proto.client else self.server_max_window_bits
            self._compressor = zlib.compressobj(
                self.compression_level, zlib.DEFLATED, -int(bits), self.mem_level
            )
        return super().frame_outbound(proto, opcode, rsv, data, fin)


def deflate_from_options(options: dict[str, Any]) -> TunedDeflate:
    """A permessage-deflate extension from Tornado-style compression options:
    ``compression_level``, ``mem_level``, and ``no_context_takeover`` (both directions) or
    ``server_no_context_takeover`` / ``client_no_context_takeover`` one at a time."""
    both = bool(options.get("no_context_takeover", False))
    return TunedDeflate(
        compression_level=int(options.get("compression_level", zlib.Z_DEFAULT_COMPRESSION)),
        mem_level=int(options.get("mem_level", 8)),
        server_no_context_takeover=both or bool(options.get("server_no_context_takeover")),
        client_no_context_takeover=both or bool(options.get("client_no_context_takeover")),
    )


def negotiate_server_extensions(
    offered: list[str], compression_options: dict[str, Any] | None
) -> tuple[str | None, list[Extension]]:
    """The server's answer to ``Sec-WebSocket-Extensions`` offers: (header value or None,
    the extensions to run)."""
    if compression_options is None or not offered:
        return None, []
    extension = deflate_from_options(compression_options)
    try:
        accepted = server_extensions_handshake(offered, [extension])
    except (ValueError, IndexError):
        return None, []
    if accepted is None or not extension.enabled():
        return None, []
    return accepted.decode("ascii"), [extension]


def client_offer(compression_options: dict[str, Any] | None) -> tuple[str | None, list[Extension]]:
    """The client's ``Sec-WebSocket-Extensions`` offer and the extensions it proposes."""
    if compression_options is None:
        return None, []
    extension = deflate_from_options(compression_options)
    offer = extension.offer()
    return f"{extension.name}; {offer}" if isinstance(offer, str) else extension.name, [extension]


def accept_client_extensions(header: str | None, proposed: list[Extension]) -> list[Extension]:
    """Apply the server's ``Sec-WebSocket-Extensions`` answer; raises ``ValueError`` if it
    names an extension we did not offer."""
    if not header:
        return []
    accepted = [part.strip() for part in header.split(",") if part.strip()]
    try:
        return client_extensions_handshake(accepted, proposed)
    except Exception as err:
        raise ValueError(f"unsupported extension in the server's answer: {header!r}") from err


# -- the connection -----------------------------------------------------------------------------


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, either side. Created before it gets its transport (the HTTP
    layer hands it over); ``receiving`` False holds incoming messages until :meth:`start_receiving`
    (the server calls ``open()`` first)."""

    # Slots and on-demand lists and futures keep an idle WebSocket small (C10K); "__dict__"
    # still allows an attribute set from outside (allocated only then).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_close_received",
        "_close_sent",
        "_close_timer",
        "_closed",
        "_closed_future",
        "_compressed",
        "_discarding",
        "_done",
        "_flow",
        "_last_heard",
        "_loop",
        "_lost_callbacks",
        "_parts",
        "_pending",
        "_ping_timer",
        "_plain",
        "_pong_timer",
        "_processing",
        "_receiving",
        "_size",
        "_waiting_for_app",
        "_ws",
        "client",
        "close_code",
        "close_reason",
        "params",
        "receiver",
        "transport",
    )

    def __init__(
        self,
        receiver: MessageReceiver,
        params: WebSocketParams,
        *,
        client: bool = False,
        extensions: list[Extension] | None = None,
        receiving: bool = True,
    ) -> None:
        self.receiver = receiver
        self.params = params
        self.client = client
        self._ws = Connection(
            ConnectionType.CLIENT if client else ConnectionType.SERVER, extensions
        )
        self._compressed = bool(extensions)
        # Whole uncompressed messages may be read on the short path: wsproto holds no part of a
        # frame or message (see _read_plain).
        self._plain = not extensions
        for extension in extensions or ():
            if isinstance(extension, TunedDeflate):
                extension.max_message_size = params.max_message_size
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._receiving = receiving
        self._pending: list[bytes] | None = None  # bytes that arrived while not receiving
        self._parts: list[Any] | None = None  # fragments of the message being received
        self._size = 0
        self._waiting_for_app: asyncio.Future[Any] | None = None
        self._processing = False
        self._flow = FlowControl(self._loop)
        self._done = shared_done_future(self._loop)
        # Close state: our Close sent, the peer's received, and what the peer said.
        self._close_sent = False
        self._close_received = False
        self._discarding = False  # a message over the limit: ignore data until the close ends
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._closed = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._last_heard = self._loop.time()
        self._lost_callbacks: tuple[Callable[[], None], ...] = ()
        self._closed_future: asyncio.Future[None] | None = None

    @property
    def closed_future(self) -> asyncio.Future[None]:
        """Resolves once the connection is gone."""
        if self._closed_future is None:
            self._closed_future = self._loop.create_future()
            if self._closed:
                self._closed_future.set_result(None)
        return self._closed_future

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = self._flow.transport = cast(asyncio.Transport, transport)
        self._last_heard = self._loop.time()
        if self.params.ping_interval:
            self._ping_timer = self._loop.call_later(self.params.ping_interval, self._keepalive)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._last_heard = self._loop.time()
        if not self._receiving or self._waiting_for_app is not None or self._processing:
            self._hold(data)
            self._pause_reading()
            return
        self._feed(data)

    def eof_received(self) -> bool | None:
        self._connection_gone()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection_gone()

    def pause_writing(self) -> None:
        self._flow.pause_writing()

    def resume_writing(self) -> None:
        self._flow.resume_writing()

    # -- SwitchedProtocol (the HTTP layer's view) -----------------------------------------------

    def set_lost_callback(self, callback: Callable[[], None]) -> None:
        self._lost_callbacks = (*self._lost_callbacks, callback)

    def close_when_idle(self) -> None:
        """Server shutdown: say goodbye with 1001 (Going Away)."""
        self.close(1001, "server shutting down")

    # -- reading ---------------------------------------------------------------------------

    def start_receiving(self) -> None:
        """Deliver messages from now on (those that came early first)."""
        if self._receiving:
            return
        self._receiving = True
        self._continue()

    def _feed(self, data: bytes) -> None:
        if self._plain:
            data = self._read_plain(data)
            if not data:
                return
        try:
            self._ws.receive_data(data)
        except LocalProtocolError:
            return  # the connection is already closed for wsproto
        self._process()

    def _read_plain(self, data: bytes) -> bytes:
        """Deliver the whole plain messages ``data`` starts with (see ws_frames); returns the
        bytes from the first other frame on, for wsproto. If the receiver makes us wait, the
        rest goes to wsproto's buffer at once, to be read when it is ready."""
        masked = not self.client
        limit = self.params.max_message_size
        start = 0
        while not (self._close_sent or self._discarding or self._closed):
            frame = read_plain_frame(data, start, masked)
            if frame is None:
                break
            message, end = frame
            if limit is not None and end - start > limit:
                break  # wsproto and _dispatch answer it (1009)
            start = end
            if self._deliver(message):
                if start < len(data):
                    self._plain = False
                    with contextlib.suppress(LocalProtocolError):
                        self._ws.receive_data(data[start:])
                return b""
        return data[start:] if start else data

    def _process(self) -> None:
        self._processing = True
        try:
            for event in self._ws.events():
                if self._dispatch(event):
                    self._plain = False
                    return  # the receiver is busy: the rest waits in wsproto's buffer
            self._check_announced_size()
            self._plain = not self._compressed and self._wsproto_idle()
        finally:
            self._processing = False

    def _wsproto_idle(self) -> bool:
        """wsproto holds no unread bytes, no frame or message half-read and no event: the next
        bytes start a frame, which the short path may read (False if its insides moved)."""
        try:
            proto: Any = self._ws._proto
            decoder = proto._frame_decoder
            return (
                self._ws.state is ConnectionState.OPEN
                and not self._ws._events
                and not decoder.buffer.buffer
                and decoder.header is None
                and proto._message_decoder.opcode is None
            )
        except AttributeError:  # pragma: no cover - a future wsproto
            return False

    def _check_announced_size(self) -> None:
        """A frame whose header announces more than the message limit fails the connection
        (1009) at once, before its payload is waited for (wsproto reports payload only as it
        arrives). Compressed frames too, as in Tornado: the limit is far above what deflate
        could make of a message under it."""
        limit = self.params.max_message_size
        if limit is None or self._closed or self._close_sent:
            return
        decoder: Any = getattr(getattr(self._ws, "_proto", None), "_frame_decoder", None)
        header = getattr(decoder, "header", None)
        if header is None or header.opcode.iscontrol():
            return
        if self._size + header.payload_len - decoder.payload_consumed > limit:
            self._fail(1009, "message too big")

    def _dispatch(self, event: Any) -> bool:
        """Handle one event; True when the receiver made us wait."""
        if isinstance(event, Message):
            if self._discarding or self._close_sent:
                return False
            data = event.data
            limit = self.params.max_message_size
            if limit is not None:
                size = len(data)
                if type(data) is str and size * 4 > limit:
                    size = len(data.encode("utf-8", "surrogatepass"))
                self._size += size
                if self._size > limit:
                    self._parts = None
                    self._discarding = True
                    self.close(1009, "message too big")
                    return False
            if not event.message_finished:
                if self._parts is None:
                    self._parts = []
                self._parts.append(data)
                return False
            if self._parts:
                self._parts.append(data)
                joined = "" if isinstance(event, TextMessage) else b""
                data = joined.join(self._parts)
                self._parts = None
            self._size = 0
            if isinstance(event, BytesMessage) and type(data) is not bytes:
                data = bytes(data)
            return self._deliver(data)
        if isinstance(event, Ping):
            if not self.is_closing and self.transport is not None:
                self.transport.write(self._ws.send(event.response()))
            self._call(self.receiver.ping_received, bytes(event.payload))
            return False
        if isinstance(event, Pong):
            self._call(self.receiver.pong_received, bytes(event.payload))
            return False
        if isinstance(event, CloseConnection):
            if self._ws.state is ConnectionState.OPEN:
                # wsproto reports a frame it could not parse (1002, 1007 for bad UTF-8, 1009
                # from TunedDeflate's limit) as a Close while the connection is still open:
                # fail the connection.
                if event.code == CloseReason.MESSAGE_TOO_BIG:
                    self._fail(1009, "message too big")
                else:
                    self._fail(int(event.code), event.reason or "protocol error")
            else:
                self._on_close_frame(event)
        return False

    def _deliver(self, message: str | bytes) -> bool:
        try:
            pending = self.receiver.message_received(message)
        except (Exception, asyncio.CancelledError) as error:
            self._app_failed(error)
            return False
        if pending is None:
            return False
        future = asyncio.ensure_future(pending)
        if future.done():
            self._check_app_result(future)
            return False
        self._waiting_for_app = future
        future.add_done_callback(self._app_ready)
        return True

    def _check_app_result(self, future: asyncio.Future[Any]) -> None:
        # Nothing here cancels it: a cancelled one was cancelled by the application.
        error = asyncio.CancelledError() if future.cancelled() else future.exception()
        if error is not None:
            self._app_failed(error)

    def _app_failed(self, error: BaseException) -> None:
        try:
            self.receiver.message_failed(error)
        except Exception:
            log.error("uncaught exception in message_failed", exc_info=True)
        self.close(1011, "internal error")

    def _app_ready(self, future: asyncio.Future[Any]) -> None:
        self._waiting_for_app = None
        self._check_app_result(future)
        self._continue()

    def _continue(self) -> None:
        """Go on with what is buffered (in wsproto, then what arrived meanwhile)."""
        if self._closed or self._processing:
            return
        self._process()
        while self._pending and self._waiting_for_app is None and not self._closed:
            data = self._pending.pop(0)
            if not self._pending:
                self._pending = None
            self._feed(data)
        if self._receiving and self._waiting_for_app is None and not self._pending:
            self._resume_reading()

    def _call(self, callback: Callable[[bytes], None], data: bytes) -> None:
        try:
            callback(data)
        except Exception:
            name = getattr(callback, "__name__", "callback")
            log.error("uncaught exception in %s", name, exc_info=True)

    def _hold(self, data: bytes) -> None:
        """Keep bytes for later."""
        if self._pending is None:
            self._pending = []
        self._pending.append(data)

    def _pause_reading(self) -> None:
        self._flow.pause_reading()

    def _resume_reading(self) -> None:
        if not self._closed:
            self._flow.resume_reading()

    # -- writing ---------------------------------------------------------------------------

    @property
    def is_closing(self) -> bool:
        """True once a Close was sent or received, or the connection is gone (or going: a
        failed send closes the transport before connection_lost is reported)."""
        if self._closed or self._close_sent or self._close_received:
            return True
        transport = self.transport
        return transport is not None and transport.is_closing()

    @property
    def close_sent(self) -> bool:
        """This side sent its Close frame, or the connection is gone."""
        return self._closed or self._close_sent

    @property
    def close_received(self) -> bool:
        """The peer's Close frame arrived, or the connection is gone."""
        return self._closed or self._close_received

    def send_message(self, message: str | bytes) -> asyncio.Future[None]:
        """Send one message (str: text, bytes: binary). The future resolves once the output
        buffer is below its high-water mark (at the earliest on the loop's next iteration, so
        a sender looping on ``await`` lets the loop run); it fails with
        :class:`WebSocketClosedError` if the connection closes first."""
        if self.is_closing or self.transport is None:
            raise WebSocketClosedError()
        if self._compressed:
            event: Message[Any] = (
                TextMessage(data=message)
                if isinstance(message, str)
                else BytesMessage(data=message)
            )
            self.transport.write(self._ws.send(event))
        else:
            self.transport.write(plain_frame(message, self.client))
        if self._flow.write_paused:
            return self._flow.drain_waiter()
        return next_tick_future(self._loop)

    def send_frame_bytes(self, frame: bytes) -> None:
        """Write a frame built elsewhere (a broadcast encodes a message once for every
        connection without compression)."""
        if self.is_closing or self.transport is None:
            raise WebSocketClosedError()
        self.transport.write(frame)

    @property
    def compressed(self) -> bool:
        return self._compressed

    def write_buffer_size(self) -> int:
        if self.transport is None or self._closed:
            return 0
        return self.transport.get_write_buffer_size()

    def drain(self) -> asyncio.Future[None]:
        if self._closed or (self.transport is not None and self.transport.is_closing()):
            future = self._loop.create_future()
            future.set_exception(WebSocketClosedError())
            return future
        if self._flow.write_paused:
            return self._flow.drain_waiter()
        return self._done

    def ping(self, data: bytes = b"") -> None:
        if self.is_closing or self.transport is None:
            raise WebSocketClosedError()
        if len(data) > 125:
            raise ValueError("ping data may be at most 125 bytes")
        self.transport.write(self._ws.send(Ping(payload=data)))

    def set_nodelay(self, value: bool) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)

    # -- closing ---------------------------------------------------------------------------

    def close(self, code: int | None = 1000, reason: str | None = None) -> None:
        """Start the closing handshake (no-op if already closing)."""
        if self._closed or self._close_sent:
            return
        self._close_sent = True
        if (
            self.transport is not None
            and not self.transport.is_closing()
            and self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
        ):
            with contextlib.suppress(LocalProtocolError):
                self.transport.write(
                    self._ws.send(CloseConnection(code=code or 1000, reason=reason))
                )
        if self._close_received:
            self._finish_close()
            return
        self._close_timer = self._loop.call_later(self.params.close_timeout, self.abort)
        if not self._receiving:
            # Closed before messages were wanted (in open()): read on to hear the peer's Close;
            # messages are dropped from now on anyway.
            self._receiving = True
            self._loop.call_soon(self._continue)

    def _on_close_frame(self, event: CloseConnection) -> None:
        self._close_received = True
        code = int(event.code)
        if not self._close_sent:
            self.close_code = code if code != CloseReason.NO_STATUS_RCVD else None
            self.close_reason = event.reason or None
            # Answer with the peer's code; protocol errors (wsproto's own) go out as they are.
            self._close_sent = True
            if self.transport is not None and not self.transport.is_closing():
                reply = 1000 if code == CloseReason.NO_STATUS_RCVD else code
                with contextlib.suppress(LocalProtocolError, ValueError):
                    self.transport.write(
                        self._ws.send(CloseConnection(code=reply, reason=event.reason))
                    )
        elif self.close_code is None:
            self.close_code = code if code != CloseReason.NO_STATUS_RCVD else None
            self.close_reason = event.reason or None
        self._finish_close()

    def _fail(self, code: int, reason: str) -> None:
        """The input can't be trusted any more: send Close and hang up without waiting."""
        log.info("failing WebSocket connection: %s (%d)", reason, code)
        self._discarding = True
        self.close(code, reason[:100])
        if self.transport is not None:
            self.transport.close()
        self._connection_gone()

    def _finish_close(self) -> None:
        """Both Close frames are out: the server hangs up now, a client gives it a moment."""
        if self.transport is None or self._closed:
            return
        if self.client:
            if self._close_timer is not None:
                self._close_timer.cancel()
            self._close_timer = self._loop.call_later(self.params.close_timeout, self.abort)
        else:
            self.transport.close()
            self._connection_gone()

    def abort(self) -> None:
        """Drop the connection without a handshake."""
        if self.transport is not None:
            self.transport.abort()
        self._connection_gone()

    def _connection_gone(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in (self._close_timer, self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._close_timer = self._ping_timer = self._pong_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._flow.close(WebSocketClosedError())
        self._pending = None
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)
        try:
            self.receiver.connection_closed(self.close_code, self.close_reason)
        except Exception:
            log.error("uncaught exception in close callback", exc_info=True)
        callbacks, self._lost_callbacks = self._lost_callbacks, ()
        for callback in callbacks:
            callback()

    # -- keepalive --------------------------------------------------------------------------

    def _keepalive(self) -> None:
        """Ping every ``ping_interval``; a peer that sends nothing at all (not even the pong)
        within ``ping_timeout`` of a ping is taken for dead."""
        self._ping_timer = None
        interval = self.params.ping_interval
        if self.is_closing or not interval or self.transport is None:
            return
        sent_at = self._loop.time()
        self.transport.write(self._ws.send(Ping(payload=b"")))
        self._ping_timer = self._loop.call_later(interval, self._keepalive)
        timeout = self.params.ping_timeout
        if timeout is None:
            timeout = max(3 * interval, 30.0)
        # A timeout of 0 turns the check off (pings still go out), as in Tornado.
        if timeout > 0 and self._pong_timer is None:
            self._pong_timer = self._loop.call_later(timeout, self._check_alive, sent_at)

    def _check_alive(self, ping_sent_at: float) -> None:
        self._pong_timer = None
        if self.is_closing:
            return
        # While we are not reading (the application is behind), the answer may be waiting
        # unread in the socket: only a peer we are listening to can be judged silent.
        if self._last_heard < ping_sent_at and not self._flow.read_paused:
            log.info("closing WebSocket: the peer did not answer a ping in time")
            self.close(1000, "ping timeout")
            self.abort()


def build_frame(message: str | bytes) -> bytes:
    """One unmasked (server-side) frame for ``message``, without extensions."""
    return plain_frame(message, False)
