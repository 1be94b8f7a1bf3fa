"""``TCPClient.connect``: open a TCP (optionally TLS) connection as an IOStream.

Name resolution and the IPv4/IPv6 race ("happy eyeballs") are asyncio's
``create_connection``; a custom :class:`~asyncweb.netutil.Resolver` may be supplied instead.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from typing import Any

from asyncweb import gen, util
from asyncweb.ioloop import IOLoop
from asyncweb.iostream import IOStream, SSLIOStream, _StreamProtocol
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
        attempt = self._connect(
            host, port, af, ssl_options, max_buffer_size, source_ip, source_port
        )
        if seconds is None:
            return await attempt
        try:
            return await asyncio.wait_for(attempt, max(0.0, seconds))
        except asyncio.TimeoutError:
            raise gen.TimeoutError("Timeout while connecting") from None

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
        if self.resolver is not None:
            resolved = await self.resolver.resolve(host, port, af)
            hosts = [(address[0], family) for family, address in resolved]
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


def _format_addr(addr: Any) -> str:
    """``host:port`` for logs and errors (``[v6]:port``; a Unix socket's path as is)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)
