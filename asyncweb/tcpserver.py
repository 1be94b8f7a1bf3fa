"""``TCPServer``: accept connections and hand each one to ``handle_stream`` as an IOStream.

Listening runs on ``loop.create_server`` over sockets from ``netutil.bind_sockets``; each
connection's transport feeds an :class:`~asyncweb.iostream.IOStream` (an
:class:`~asyncweb.iostream.SSLIOStream`, after the handshake, when ``ssl_options`` is set).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any

from asyncweb import util
from asyncweb.ioloop import IOLoop
from asyncweb.iostream import BaseIOStream, IOStream, SSLIOStream, _StreamProtocol
from asyncweb.log import app_log
from asyncweb.netutil import bind_sockets, ssl_options_to_context

__all__ = ["TCPServer"]


class TCPServer:
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
        self._sockets: dict[int, socket.socket] = {}
        self._pending_sockets: list[socket.socket] = []
        self._starting: list[asyncio.Task[asyncio.AbstractServer]] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._handling: set[asyncio.Future[Any]] = set()
        self._started = False
        self._stopped = False

    def listen(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = 128,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Accept connections on ``address:port`` (every interface when None)."""
        sockets = bind_sockets(
            port,
            address=address,
            family=family,
            backlog=backlog,
            flags=flags,
            reuse_port=reuse_port,
        )
        self.add_sockets(sockets)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Accept connections on already-listening sockets."""
        loop = IOLoop.current().asyncio_loop
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            task = loop.create_task(
                loop.create_server(self._make_protocol, sock=sock, ssl=self._ssl_context)
            )
            self._starting.append(task)
            task.add_done_callback(self._server_started)

    def add_socket(self, socket: socket.socket) -> None:
        self.add_sockets([socket])

    def bind(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = 128,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind now, accept after :meth:`start`."""
        sockets = bind_sockets(
            port,
            address=address,
            family=family,
            backlog=backlog,
            flags=flags,
            reuse_port=reuse_port,
        )
        if self._started:
            self.add_sockets(sockets)
        else:
            self._pending_sockets.extend(sockets)

    def start(self, num_processes: int | None = 1, max_restarts: int | None = None) -> None:
        """Start accepting on the sockets from :meth:`bind` (in this one process)."""
        if num_processes != 1:
            raise NotImplementedError(
                "multi-process start() is not available; run one process per core with "
                "bind_sockets(reuse_port=True) or a process manager"
            )
        if self._started:
            raise RuntimeError("TCPServer.start() called twice")
        self._started = True
        sockets, self._pending_sockets = self._pending_sockets, []
        self.add_sockets(sockets)

    def stop(self) -> None:
        """Stop accepting connections; open ones carry on. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._starting:
            task.cancel()
        for server in self._servers:
            server.close()
        self._servers.clear()
        for sock in [*self._sockets.values(), *self._pending_sockets]:
            sock.close()
        self._sockets.clear()
        self._pending_sockets.clear()

    def handle_stream(self, stream: IOStream, address: Any) -> Awaitable[None] | None:
        """Serve one connection. Override; may be a coroutine."""
        raise NotImplementedError()

    def _server_started(self, task: asyncio.Task[asyncio.AbstractServer]) -> None:
        self._starting.remove(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            app_log.error("could not start serving", exc_info=task.exception())
            return
        if self._stopped:
            task.result().close()
        else:
            self._servers.append(task.result())

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
