"""Streams on sockets: ``IOStream`` (connect, accepted sockets, ``start_tls``) and
``SSLIOStream`` (the same over TLS)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

from asyncweb import util
from asyncweb.iostream.base import BaseIOStream, _StreamProtocol
from asyncweb.log import gen_log
from asyncweb.netutil import ssl_options_to_context
from asyncweb.protocol.http1 import StreamClosedError


class IOStream(BaseIOStream):
    """A stream on a socket: an accepted (connected) one, or a new one to :meth:`connect`."""

    def __init__(self, socket: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket = socket
        socket.setblocking(False)
        try:
            socket.getpeername()
        except OSError:
            return  # not connected yet: connect() attaches the transport
        self._connecting = True
        loop = self.io_loop.asyncio_loop
        task = loop.create_task(self._attach_connected(socket))
        task.add_done_callback(self._connect_done(None, None))

    def _ssl_context(self, server_side: bool) -> ssl.SSLContext | None:
        return None

    async def _attach_connected(self, sock: socket.socket) -> BaseIOStream:
        loop = self.io_loop.asyncio_loop
        protocol = _StreamProtocol(self)
        context = self._ssl_context(server_side=True)
        if context is None:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        else:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, ssl=context)
        self._attach_early(transport, protocol)
        return self

    def _attach_early(self, transport: asyncio.BaseTransport, protocol: _StreamProtocol) -> None:
        # (uvloop's transports do not derive from asyncio.Transport; they behave as one.)
        if self._transport is None:
            self._attach(cast(asyncio.Transport, transport), protocol)

    def connect(
        self,
        address: Any,
        callback: Callable[[], Any] | None = None,
        server_hostname: str | None = None,
    ) -> asyncio.Future[IOStream]:
        """Connect the socket to ``address``; the future resolves to this stream.

        A failure closes the stream and fails the future with :class:`StreamClosedError`.
        """
        if callback is not None:
            util.warn_deprecated_once("IOStream.connect(callback=)", "the returned Future")
        self._connecting = True
        loop = self.io_loop.asyncio_loop
        result: asyncio.Future[IOStream] = loop.create_future()
        task = loop.create_task(self._connect(address, server_hostname))
        task.add_done_callback(self._connect_done(result, callback))
        return result

    async def _connect(self, address: Any, server_hostname: str | None) -> None:
        loop = self.io_loop.asyncio_loop
        assert self.socket is not None
        await loop.sock_connect(self.socket, address)
        protocol = _StreamProtocol(self)
        context = self._ssl_context(server_side=False)
        if context is None:
            transport, _ = await loop.create_connection(lambda: protocol, sock=self.socket)
        else:
            hostname = server_hostname
            if hostname is None and isinstance(address, tuple):
                hostname = address[0]
            transport, _ = await loop.create_connection(
                lambda: protocol, sock=self.socket, ssl=context, server_hostname=hostname
            )
        self._attach_early(transport, protocol)

    def _connect_done(
        self,
        result: asyncio.Future[IOStream] | None,
        callback: Callable[[], Any] | None,
    ) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            error = None if task.cancelled() else task.exception()
            if task.cancelled() or error is not None:
                if error is not None:
                    gen_log.warning("Connect error on %r: %s", self.socket, error)
                self.error = error
                if self.socket is not None and self._transport is None:
                    self.socket.close()
                self._connecting = False
                self.close()
                if result is not None and not result.done():
                    result.set_exception(StreamClosedError(real_error=error))
                return
            if result is not None and not result.done():
                result.set_result(self)
            if callback is not None:
                self.io_loop.add_callback(callback)

        return done

    def start_tls(
        self,
        server_side: bool,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> asyncio.Future[SSLIOStream]:
        """Upgrade this connection to TLS; the future resolves to a new :class:`SSLIOStream`
        and this stream object must not be used afterwards.

        Call it with no read or write pending and nothing buffered.
        """
        if self._read is not None or self.writing() or self._read_buffer:
            raise ValueError("IOStream is not idle; cannot convert to SSL")
        if self._transport is None or self._protocol is None or self._closed:
            raise StreamClosedError(real_error=self.error)
        if ssl_options is None:
            ssl_options = {} if server_side else ssl.create_default_context()
        context = ssl_options_to_context(ssl_options, server_side=server_side)
        loop = self.io_loop.asyncio_loop
        transport, protocol = self._transport, self._protocol
        # Hand-over: the old stream lets go of the connection without closing it.
        protocol.stream = None
        self._transport = None
        self._closed = True
        new_stream: SSLIOStream = SSLIOStream._without_socket(
            max_buffer_size=self.max_buffer_size,
            read_chunk_size=self.read_chunk_size,
            max_write_buffer_size=self.max_write_buffer_size,
        )
        new_stream._ssl_options = context

        async def upgrade() -> SSLIOStream:
            try:
                tls_transport = await loop.start_tls(
                    transport,
                    protocol,
                    context,
                    server_side=server_side,
                    server_hostname=server_hostname,
                )
            except BaseException:
                transport.close()
                raise
            protocol.stream = new_stream
            new_stream._attach(cast(asyncio.Transport, tls_transport), protocol)
            return new_stream

        return asyncio.ensure_future(upgrade(), loop=loop)


class SSLIOStream(IOStream):
    """An :class:`IOStream` over TLS.

    ``ssl_options`` (a dict of ``ssl`` settings or an ``SSLContext``) applies when the socket
    is connected by :meth:`connect` (client side) or was accepted (server side).
    """

    _ssl_options: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ssl_options = kwargs.pop("ssl_options", None)
        if args and isinstance(args[0], ssl.SSLSocket):
            # A socket wrapped by the caller (Tornado allows it; do_handshake_on_connect
            # must be False): asyncio does TLS itself on the plain socket, so take the
            # wrapper's context and unwrap it before the handshake.
            wrapped: ssl.SSLSocket = args[0]
            if self._ssl_options is None:
                self._ssl_options = wrapped.context
            plain = socket.socket(fileno=wrapped.detach())
            args = (plain, *args[1:])
        super().__init__(*args, **kwargs)

    def _ssl_context(self, server_side: bool) -> ssl.SSLContext | None:
        options = self._ssl_options
        if options is None:
            options = {} if server_side else ssl.create_default_context()
        return ssl_options_to_context(options, server_side=server_side)

    def wait_for_handshake(self) -> asyncio.Future[SSLIOStream]:
        """Resolves once the TLS handshake is complete (asyncio finishes it before any
        data can flow, so a connected stream has already completed it)."""
        future: asyncio.Future[SSLIOStream] = self._new_future()
        if self._transport is not None:
            future.set_result(self)
        elif self._closed:
            future.set_exception(StreamClosedError(real_error=self.error))
        else:
            self._handshake_waiters.append(future)
        return future

    @property
    def _handshake_waiters(self) -> list[asyncio.Future[SSLIOStream]]:
        waiters: list[asyncio.Future[SSLIOStream]] | None = self.__dict__.get("_hs_waiters")
        if waiters is None:
            waiters = self.__dict__["_hs_waiters"] = []
        return waiters

    def _attach(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        super()._attach(transport, protocol)
        for waiter in self._handshake_waiters:
            if not waiter.done():
                waiter.set_result(self)

    def _signal_closed(self) -> None:
        for waiter in self._handshake_waiters:
            if not waiter.done():
                waiter.set_exception(StreamClosedError(real_error=self.error))
                waiter.exception()
        super()._signal_closed()
