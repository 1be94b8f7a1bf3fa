"""Tornado's ``tornado.netutil``: socket helpers on the IOLoop (``add_accept_handler``, name
resolvers), with the listening-socket and TLS helpers of :mod:`asyncweb.listening` under
their Tornado names."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

# Binding and listening live in the HTTP layer's asyncweb.listening; Tornado's names stay here.
from asyncweb.listening import _ACCEPT_BATCH
from asyncweb.listening import _DEFAULT_BACKLOG as _DEFAULT_BACKLOG
from asyncweb.listening import _SSL_PARAMS as _SSL_PARAMS
from asyncweb.listening import _ListeningServer as _ListeningServer
from asyncweb.listening import bind_sockets as bind_sockets
from asyncweb.listening import bind_unix_socket as bind_unix_socket
from asyncweb.listening import is_valid_ip as is_valid_ip
from asyncweb.listening import ssl_options_to_context as ssl_options_to_context
from asyncweb.log import app_log
from asyncweb.util import Configurable


def ssl_wrap_socket(
    socket: socket.socket,
    ssl_options: dict[str, Any] | ssl.SSLContext,
    server_hostname: str | None = None,
    server_side: bool | None = None,
    **kwargs: Any,
) -> ssl.SSLSocket:
    """Wrap ``socket`` in TLS per ``ssl_options`` (a dict or an ``SSLContext``)."""
    if server_side is None:
        server_side = server_hostname is None
    context = ssl_options_to_context(ssl_options, server_side=server_side)
    if not server_side and context.check_hostname and server_hostname is None:
        raise ValueError("a client socket that checks host names needs server_hostname")
    return context.wrap_socket(
        socket, server_hostname=server_hostname, server_side=server_side, **kwargs
    )


# -- accepting ---------------------------------------------------------------------------------


def add_accept_handler(
    sock: socket.socket, callback: Callable[[socket.socket, Any], None]
) -> Callable[[], None]:
    """Call ``callback(connection, address)`` for each connection accepted on ``sock``.

    ``sock`` is a listening socket (``bind_sockets``). Returns a function that stops
    accepting. Each readiness accepts at most 128 connections so one busy
    listener cannot starve the loop.
    """
    from asyncweb.ioloop import IOLoop

    io_loop = IOLoop.current()
    removed = [False]

    def accept_ready(fd: Any, events: int) -> None:
        for _ in range(_ACCEPT_BATCH):
            if removed[0]:
                return
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client went away before we accepted
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE):
                    # Out of descriptors: try again on the next readiness.
                    app_log.error("accept failed: %s", err)
                    return
                raise
            connection.setblocking(False)
            callback(connection, address)

    def remove_handler() -> None:
        if not removed[0]:
            removed[0] = True
            io_loop.remove_handler(sock)

    io_loop.add_handler(sock, accept_ready, IOLoop.READ)
    return remove_handler


def _resolve_addr(
    host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
) -> list[tuple[int, Any]]:
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    return [(fam, address) for fam, _type, _proto, _canon, address in infos]


class Resolver(Configurable):
    """Turns ``(host, port, family)`` into ``[(family, address), ...]`` (a coroutine).

    ``Resolver()`` builds the configured implementation (:class:`DefaultLoopResolver`
    unless ``Resolver.configure(...)`` chose another).
    """

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        return Resolver

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        return DefaultLoopResolver

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Awaitable[list[tuple[int, Any]]]:
        raise NotImplementedError()

    def close(self) -> None:
        """Release what the resolver holds (threads, connections)."""


class DefaultLoopResolver(Resolver):
    """``loop.getaddrinfo`` (asyncio runs it in its default executor)."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM
        )
        return [(fam, address) for fam, _type, _proto, _canon, address in infos]


class DefaultExecutorResolver(Resolver):
    """``socket.getaddrinfo`` in the IOLoop's default executor."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        from asyncweb.ioloop import IOLoop

        return await IOLoop.current().run_in_executor(None, _resolve_addr, host, port, family)


class ExecutorResolver(Resolver):
    """``socket.getaddrinfo`` in a given executor (or a private thread pool)."""

    def initialize(
        self,
        executor: concurrent.futures.Executor | None = None,
        close_executor: bool = True,
    ) -> None:
        if executor is None:
            executor = concurrent.futures.ThreadPoolExecutor(4)
            close_executor = True
        self.executor: concurrent.futures.Executor | None = executor
        self.close_executor = close_executor

    def close(self) -> None:
        if self.close_executor and self.executor is not None:
            self.executor.shutdown()
        self.executor = None

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        if self.executor is None:
            raise RuntimeError("resolver is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _resolve_addr, host, port, family)


class BlockingResolver(ExecutorResolver):
    """Resolves in the calling thread (blocks the loop; for tests and special cases)."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(executor=_InlineExecutor(), close_executor=False)


class ThreadedResolver(ExecutorResolver):
    """Resolves on a thread pool of ``num_threads`` threads."""

    def initialize(self, num_threads: int = 10, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(
            executor=concurrent.futures.ThreadPoolExecutor(num_threads), close_executor=True
        )


class _InlineExecutor(concurrent.futures.Executor):
    def submit(  # type: ignore[override]
        self, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:
            future.set_exception(err)
        return future


class OverrideResolver(Resolver):
    """Answers some names from ``mapping`` and asks ``resolver`` for the rest.

    Keys are ``host``, ``(host, port)`` or ``(host, port, family)``; values ``host`` or
    ``(host, port)``.
    """

    def initialize(self, resolver: Resolver, mapping: dict[Any, Any]) -> None:
        self.resolver = resolver
        self.mapping = mapping

    def close(self) -> None:
        self.resolver.close()

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Awaitable[list[tuple[int, Any]]]:
        if (host, port, family) in self.mapping:
            host, port = self.mapping[(host, port, family)]
        elif (host, port) in self.mapping:
            host, port = self.mapping[(host, port)]
        elif host in self.mapping:
            host = self.mapping[host]
        return self.resolver.resolve(host, port, family)
