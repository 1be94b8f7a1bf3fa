"""An IOStream-shaped view of a connection's transport.

Code written for Tornado reaches through a request or a WebSocket to the stream beneath it
(``request.connection.stream``, ``ws_connection.stream``) to ask whether it is closed, to
set ``TCP_NODELAY`` or to get at the socket. Here the connection is an asyncio transport, so
:class:`StreamFace` answers those questions from the transport. It reads and writes nothing:
bytes go through the protocol that owns the transport, which keeps the framing its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

__all__ = ["StreamFace"]


class StreamFace:
    """``closed()``, ``socket``, ``fileno()``, ``set_nodelay()``, ``close()`` and the other
    read-only parts of Tornado's ``IOStream`` surface, over ``transport``."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        self._transport = transport

    @property
    def socket(self) -> Any:
        """The connection's socket (asyncio's wrapper of it), or None once closed."""
        if self._transport is None or self._transport.is_closing():
            return None
        return self._transport.get_extra_info("socket")

    @property
    def error(self) -> BaseException | None:
        # Errors surface through the protocol's own callbacks, not on the stream.
        return None

    def fileno(self) -> int:
        sock = self.socket
        if sock is None:
            raise ValueError("the stream is closed")
        return int(sock.fileno())

    def closed(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def reading(self) -> bool:
        return False

    def writing(self) -> bool:
        """Whether written bytes are still waiting in the transport's buffer."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        return bool(getattr(transport, "get_write_buffer_size", lambda: 0)())

    def set_nodelay(self, value: bool) -> None:
        """Send small writes at once (``TCP_NODELAY``); a no-op on non-TCP sockets."""
        sock = self.socket
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if value else 0)

    def close(self, exc_info: Any = False) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def __repr__(self) -> str:
        return f"<StreamFace {'closed' if self.closed() else 'open'}>"
