"""``TCPServer``: accept connections and hand each one to ``handle_stream`` as an IOStream.

Listening is ``listening._ListeningServer``'s (its own batched accept over sockets from
``netutil.bind_sockets``); each connection's transport feeds an
:class:`~asyncweb.iostream.IOStream` (an
:class:`~asyncweb.iostream.SSLIOStream`, after the handshake, when ``ssl_options`` is set).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from typing import Any

from asyncweb import util
from asyncweb.ioloop import IOLoop
from asyncweb.iostream import BaseIOStream, IOStream, SSLIOStream
from asyncweb.iostream.base import _StreamProtocol
from asyncweb.log import app_log
from asyncweb.netutil import _ListeningServer, ssl_options_to_context

__all__ = ["TCPServer"]


class TCPServer(_ListeningServer):
    """Subclass and override :meth:`handle_stream` (a plain or ``async`` method).

    ``listen(port)``, or ``bind(port)`` then ``start()``, or ``add_sockets(sockets)``; all
    of them may be called before the loop starts.
    """

    def __init__(
        self,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        read_chunk_size: int | None = None,
        io_loop: IOLoop | None = None,
    ) -> None:
        if io_loop is not None:
            util.warn_deprecated_once("the io_loop argument", "nothing (the current IOLoop)")
        self.ssl_options = ssl_options
        self._ssl_context = (
            ssl_options_to_context(ssl_options, server_side=True) if ssl_options else None
        )
        self.max_buffer_size = max_buffer_size
        self.read_chunk_size = read_chunk_size
        self._init_listening()
        self._handling: set[asyncio.Future[Any]] = set()

    def start(self, num_processes: int | None = 1, max_restarts: int | None = None) -> None:
        """Start accepting on the sockets from :meth:`bind` (in this one process)."""
        if num_processes != 1:
            raise NotImplementedError(
                "multi-process start() is not available; run one process per core with "
                "bind_sockets(reuse_port=True) or a process manager"
            )
        if self._started:
            raise RuntimeError("TCPServer.start() called twice")
        self._start_pending()

    def stop(self) -> None:
        """Stop accepting connections; open ones carry on. Safe to call more than once."""
        self._stop_listening()

    def handle_stream(self, stream: IOStream, address: Any) -> Awaitable[None] | None:
        """Serve one connection. Override; may be a coroutine."""
        raise NotImplementedError()

    def _make_protocol(self) -> _StreamProtocol:
        cls = SSLIOStream if self._ssl_context is not None else IOStream
        stream = cls._without_socket(
            max_buffer_size=self.max_buffer_size, read_chunk_size=self.read_chunk_size
        )
        return _StreamProtocol(stream, self._handle)

    def _handle(self, stream: BaseIOStream, transport: asyncio.Transport) -> None:
        assert isinstance(stream, IOStream)
        address = transport.get_extra_info("peername")
        try:
            result = self.handle_stream(stream, address)
        except Exception:
            app_log.error("Error in connection callback", exc_info=True)
            stream.close()
            return
        if result is not None:
            future = asyncio.ensure_future(result)
            self._handling.add(future)
            future.add_done_callback(self._handled)

    def _handled(self, future: asyncio.Future[Any]) -> None:
        self._handling.discard(future)
        if not future.cancelled() and future.exception() is not None:
            app_log.error("Error in connection callback", exc_info=future.exception())
