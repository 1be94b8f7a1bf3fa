"""The connection a WebSocket handler talks to: the :class:`WebSocketConnection` interface and
:class:`TransportConnection`, its implementation over an asyncio transport."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, cast

from asyncweb.protocol.stream_face import StreamFace
from asyncweb.protocol.websocket import (
    WebSocketProtocol,
)

if TYPE_CHECKING:
    pass


class WebSocketConnection(Protocol):
    """What a :class:`WebSocketHandler` needs from the connection carrying its messages."""

    selected_subprotocol: str | None

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str | None: ...

    @property
    def is_closing(self) -> bool: ...

    def write_message(self, message: str | bytes) -> Awaitable[None]: ...

    def ping(self, data: bytes) -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    def start_receiving(self) -> None: ...

    def set_nodelay(self, value: bool) -> None: ...

    def buffered_amount(self) -> int: ...


class _ClosingFlag(int):
    """A bool that may also be called: asyncweb reads ``connection.is_closing``, Tornado code
    calls ``ws_connection.is_closing()``; both get the same answer."""

    __slots__ = ()

    def __call__(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return repr(bool(self))


_CLOSING = _ClosingFlag(1)
_OPEN = _ClosingFlag(0)


def _closing(connection: Any) -> bool:
    """``connection.is_closing`` read either way: a flag (asyncweb's carriers) or a method
    (Tornado's; code and tests written for Tornado may put their own object there)."""
    value = connection.is_closing
    return bool(value() if callable(value) else value)


class TransportConnection:
    """:class:`WebSocketConnection` over an asyncio transport, via :class:`WebSocketProtocol`.

    It is also what Tornado code sees as ``handler.ws_connection``: ``stream``,
    ``client_terminated``, ``server_terminated`` and ``is_closing()`` are there for it.
    """

    def __init__(self, protocol: WebSocketProtocol, subprotocol: str | None = None) -> None:
        self.protocol = protocol
        self.selected_subprotocol = subprotocol

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason

    @property
    def is_closing(self) -> bool:
        return cast(bool, _CLOSING if self.protocol.is_closing else _OPEN)

    @property
    def client_terminated(self) -> bool:
        """The client's side is over: its Close frame came, or the connection is gone."""
        return self.protocol.close_sent if self.protocol.client else self.protocol.close_received

    @property
    def server_terminated(self) -> bool:
        """The server's side is over: its Close frame went out, or the connection is gone."""
        return self.protocol.close_received if self.protocol.client else self.protocol.close_sent

    @property
    def stream(self) -> StreamFace:
        """An IOStream-shaped view of the connection (``closed()``, ``socket``,
        ``set_nodelay()``)."""
        return StreamFace(self.protocol.transport)

    def write_message(self, message: str | bytes) -> asyncio.Future[None]:
        return self.protocol.send_message(message)

    def ping(self, data: bytes) -> None:
        self.protocol.ping(data)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.protocol.close(code if code is not None else 1000, reason)

    def start_receiving(self) -> None:
        self.protocol.start_receiving()

    def set_nodelay(self, value: bool) -> None:
        self.protocol.set_nodelay(value)

    def buffered_amount(self) -> int:
        return self.protocol.write_buffer_size()

    def send_prepared(self, frame: bytes) -> bool:
        """Write an already built frame; False when this connection can't take one (it
        compresses, so each message must go through its own compressor)."""
        if self.protocol.compressed:
            return False
        self.protocol.send_frame_bytes(frame)
        return True


# Tornado's name for the class of ``WebSocketHandler.ws_connection``.
WebSocketProtocol13 = TransportConnection
