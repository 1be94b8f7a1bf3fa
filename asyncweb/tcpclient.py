"""``TCPClient.connect``: open a TCP (optionally TLS) connection as an IOStream.

Name resolution and the IPv4/IPv6 race ("happy eyeballs") are asyncio's
``create_connection``; a custom :class:`~asyncweb.netutil.Resolver` may be supplied instead.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from asyncweb import gen, util
from asyncweb.ioloop import IOLoop
from asyncweb.iostream import IOStream, SSLIOStream
from asyncweb.iostream.base import _StreamProtocol
from asyncweb.netutil import Resolver, ssl_options_to_context

__all__ = ["TCPClient"]

# How long the first address gets before the next family is tried in parallel (RFC 8305).
_CONNECT_DELAY = 0.3


class TCPClient:
    """Connects streams; ``resolver`` (a :class:`Resolver`) overrides asyncio's lookups."""

    def __init__(self, resolver: Resolver | None = None, io_loop: IOLoop | None = None) -> None:
        if io_loop is not None:
            util.warn_deprecated_once("the io_loop argument", "nothing (the current IOLoop)")
        self.resolver = resolver

    def close(self) -> None:
        if self.resolver is not None:
            self.resolver.close()

    async def connect(
        self,
        host: str,
        port: int,
        af: socket.AddressFamily = socket.AF_UNSPEC,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        source_ip: str | None = None,
        source_port: int | None = None,
        timeout: float | datetime.timedelta | None = None,
    ) -> IOStream:
        """Connect to ``host:port``; returns an :class:`IOStream` (an :class:`SSLIOStream`
        with ``ssl_options``). ``timeout`` (seconds or a ``timedelta``; Tornado's code, unlike
        its docstring, treats a number as relative) raises ``gen.TimeoutError``."""
        seconds: float | None = None
        if isinstance(timeout, datetime.timedelta):
            seconds = timeout.total_seconds()
        elif isinstance(timeout, (int, float)):
            seconds = float(timeout)
        elif timeout is not None:
            raise TypeError(f"Unsupported timeout {timeout!r}")
        if self.resolver is not None:
            return await self._connect_resolved(
                host, port, af, ssl_options, max_buffer_size, source_ip, source_port, seconds
            )
        attempt = self._connect(
            host, port, af, ssl_options, max_buffer_size, source_ip, source_port
        )
        if seconds is None:
            return await attempt
        try:
            return await asyncio.wait_for(attempt, max(0.0, seconds))
        except asyncio.TimeoutError:
            raise gen.TimeoutError("Timeout while connecting") from None

    async def _connect_resolved(
        self,
        host: str,
        port: int,
        af: socket.AddressFamily,
        ssl_options: dict[str, Any] | ssl.SSLContext | None,
        max_buffer_size: int | None,
        source_ip: str | None,
        source_port: int | None,
        seconds: float | None,
    ) -> IOStream:
        """With a custom resolver: its answers raced by :class:`_Connector`, then TLS; each
        phase says which one ran out of ``seconds``."""
        io_loop = IOLoop.current()
        deadline = io_loop.time() + seconds if seconds is not None else None

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - io_loop.time())

        try:
            addrinfo = await asyncio.wait_for(self.resolver.resolve(host, port, af), left())  # type: ignore[union-attr]
        except asyncio.TimeoutError:
            raise gen.TimeoutError(f"Timeout while resolving {host}") from None
        connector = _Connector(
            addrinfo,
            functools.partial(
                self._create_stream, max_buffer_size, source_ip=source_ip, source_port=source_port
            ),
        )
        _, addr, stream = await connector.start(connect_timeout=deadline)
        if ssl_options is None:
            return stream  # type: ignore[no-any-return]
        context = ssl_options_to_context(ssl_options, server_side=False)
        upgrade = stream.start_tls(False, ssl_options=context, server_hostname=host)
        try:
            return await asyncio.wait_for(upgrade, left())
        except asyncio.TimeoutError:
            stream.close()
            raise gen.TimeoutError(
                f"Timeout during TLS handshake with {_format_addr(addr)}"
            ) from None

    def _create_stream(
        self,
        max_buffer_size: int | None,
        af: socket.AddressFamily,
        addr: Any,
        source_ip: str | None = None,
        source_port: int | None = None,
    ) -> tuple[IOStream, asyncio.Future[IOStream]]:
        """One connection attempt for :class:`_Connector`: a socket of family ``af`` (bound
        to the source address if given; failing here moves on to the next address)."""
        sock = socket.socket(af)
        if source_ip is not None or source_port is not None:
            try:
                sock.bind(
                    (source_ip or ("::" if af == socket.AF_INET6 else "0.0.0.0"), source_port or 0)
                )
            except OSError:
                sock.close()
                raise
        stream = IOStream(sock, max_buffer_size=max_buffer_size)
        return stream, stream.connect(addr)

    async def _connect(
        self,
        host: str,
        port: int,
        af: socket.AddressFamily,
        ssl_options: dict[str, Any] | ssl.SSLContext | None,
        max_buffer_size: int | None,
        source_ip: str | None,
        source_port: int | None,
    ) -> IOStream:
        loop = IOLoop.current().asyncio_loop
        context = (
            ssl_options_to_context(ssl_options, server_side=False)
            if ssl_options is not None
            else None
        )
        cls = SSLIOStream if context is not None else IOStream

        local_addr = None
        if source_ip is not None or source_port is not None:
            local_addr = (
                source_ip or ("::" if af == socket.AF_INET6 else "0.0.0.0"),
                source_port or 0,
            )
        hosts: list[tuple[str, int]] = [(host, af)]
        options: dict[str, Any] = {}
        if isinstance(loop, asyncio.BaseEventLoop):
            options["happy_eyeballs_delay"] = _CONNECT_DELAY  # uvloop has no such option
        last_error: BaseException | None = None
        for target, family in hosts:
            stream: IOStream = cls._without_socket(max_buffer_size=max_buffer_size)
            protocol = _StreamProtocol(stream)
            try:
                transport, _ = await loop.create_connection(
                    lambda protocol=protocol: protocol,
                    target,
                    port,
                    family=socket.AddressFamily(family),
                    ssl=context,
                    server_hostname=host if context is not None else None,
                    local_addr=local_addr,
                    **options,
                )
            except OSError as err:
                last_error = err
                continue
            if stream._transport is None:
                stream._attach(transport, protocol)
            return stream
        assert last_error is not None
        raise last_error


_INITIAL_CONNECT_TIMEOUT = _CONNECT_DELAY


class _Connector:
    """Happy eyeballs over resolved addresses (RFC 6555), for a custom resolver's answers.

    ``addrinfo`` is ``[(family, address), ...]`` in preference order; ``connect(af, addr)``
    starts one attempt and returns ``(stream, future)``. Addresses of the first family are
    tried one after the other; the other family starts when the first attempt fails or after
    ``timeout`` seconds, whichever comes first. The first success wins and every other stream
    is closed; ``connect_timeout`` (a deadline on the IOLoop's clock) gives up on all of them.
    """

    def __init__(
        self,
        addrinfo: list[tuple[Any, Any]],
        connect: Callable[[Any, Any], tuple[Any, asyncio.Future[Any]]],
    ) -> None:
        self.io_loop = IOLoop.current()
        self.connect = connect
        self.future: asyncio.Future[tuple[Any, Any, Any]] = (
            self.io_loop.asyncio_loop.create_future()
        )
        self.future.add_done_callback(self._on_future_done)
        self.timeout: asyncio.Handle | None = None
        self.connect_timeout: asyncio.Handle | None = None
        self.last_error: BaseException | None = None
        self.remaining = len(addrinfo)
        self.primary_addrs, self.secondary_addrs = self.split(addrinfo)
        self.streams: set[Any] = set()
        self._secondary_started = False
        self._in_flight: dict[int, Any] = {}  # id(stream) -> address, in start order

    @staticmethod
    def split(
        addrinfo: list[tuple[Any, Any]],
    ) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
        """The addresses of the first family, and all the others (order kept)."""
        if not addrinfo:
            return [], []
        first = addrinfo[0][0]
        primary = [(af, addr) for af, addr in addrinfo if af == first]
        secondary = [(af, addr) for af, addr in addrinfo if af != first]
        return primary, secondary

    def start(
        self, timeout: float = _INITIAL_CONNECT_TIMEOUT, connect_timeout: float | None = None
    ) -> asyncio.Future[tuple[Any, Any, Any]]:
        self.try_connect(iter(self.primary_addrs))
        self.set_timeout(timeout)
        if connect_timeout is not None:
            self.set_connect_timeout(connect_timeout)
        return self.future

    def try_connect(self, addrs: Iterator[tuple[Any, Any]]) -> None:
        """Start the next attempt from ``addrs`` (moving past ones that fail at once)."""
        while not self.future.done():
            try:
                af, addr = next(addrs)
            except StopIteration:
                if self.remaining == 0:
                    error = self.last_error or OSError("connection failed")
                    self.future.set_exception(error)
                return
            try:
                stream, attempt = self.connect(af, addr)
            except Exception as err:
                self.remaining -= 1
                self.last_error = err
                self._start_secondary()
                continue
            self.streams.add(stream)
            self._in_flight[id(stream)] = addr
            attempt.add_done_callback(
                functools.partial(self.on_connect_done, addrs, af, addr, stream)
            )
            return

    def on_connect_done(
        self,
        addrs: Iterator[tuple[Any, Any]],
        af: Any,
        addr: Any,
        stream: Any,
        attempt: asyncio.Future[Any],
    ) -> None:
        self.remaining -= 1
        self._in_flight.pop(id(stream), None)
        if attempt.cancelled() or attempt.exception() is not None:
            stream.close()
            if self.future.done():
                return
            error = attempt.exception() if not attempt.cancelled() else None
            self.last_error = error or OSError(f"connection attempt to {addr!r} cancelled")
            # A failure is an answer: the other family need not wait for the timeout.
            self._start_secondary()
            self.try_connect(addrs)
            return
        if self.future.done():
            stream.close()  # a slower attempt that lost the race
            return
        self.streams.discard(stream)
        self.future.set_result((af, addr, stream))

    def _start_secondary(self) -> None:
        if not self._secondary_started:
            self._secondary_started = True
            self.try_connect(iter(self.secondary_addrs))

    def set_timeout(self, timeout: float) -> None:
        if not self.future.done():
            self.timeout = self.io_loop.call_later(timeout, self.on_timeout)

    def on_timeout(self) -> None:
        self.timeout = None
        if not self.future.done():
            self._start_secondary()

    def clear_timeout(self) -> None:
        if self.timeout is not None:
            self.io_loop.remove_timeout(self.timeout)
            self.timeout = None

    def set_connect_timeout(self, connect_timeout: float) -> None:
        if not self.future.done():
            self.connect_timeout = self.io_loop.add_timeout(
                connect_timeout, self.on_connect_timeout
            )

    def on_connect_timeout(self) -> None:
        self.connect_timeout = None
        if not self.future.done():
            waiting = ", ".join(sorted(_format_addr(a) for a in self._in_flight.values()))
            self.future.set_exception(TimeoutError(f"Timeout while connecting to {waiting}"))
        self.close_streams()

    def clear_timeouts(self) -> None:
        self.clear_timeout()
        if self.connect_timeout is not None:
            self.io_loop.remove_timeout(self.connect_timeout)
            self.connect_timeout = None

    def close_streams(self) -> None:
        for stream in self.streams:
            stream.close()

    def _on_future_done(self, future: asyncio.Future[Any]) -> None:
        self.clear_timeouts()
        # Whatever is still trying lost: the winner (if any) was taken out of the set.
        self.close_streams()


def _format_addr(addr: Any) -> str:
    """``host:port`` for logs and errors (``[v6]:port``; a Unix socket's path as is)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)
