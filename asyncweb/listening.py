"""Listening sockets on plain asyncio, for the HTTP layer: binding TCP and Unix sockets, TLS
contexts from Tornado-style ``ssl_options``, and the server half that serves a protocol on them
(``asyncweb.netutil`` re-exports these under Tornado's names)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import ssl
import stat
from collections.abc import Iterable
from functools import partial
from typing import Any

from asyncweb.log import app_log

# listen() backlog when none is given. Tornado's is 128; a burst of 1,000 connections then
# overflows the accept queue, and each dropped handshake waits a second or more for its
# retransmit (p99 1.2-1.9 s at 1,000 connections against 0.5-0.8 s with 1,024: issue 20).
# The kernel caps it at net.core.somaxconn.
_DEFAULT_BACKLOG = 1024
# Connections taken per readiness of a listener before the loop serves the others.
_ACCEPT_BATCH = 128

# accept() errors that say "not now" rather than "this listener is broken".
_OUT_OF_RESOURCES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))

# Keys of Tornado-style ``ssl_options`` dicts we understand.
_SSL_PARAMS = frozenset(("ssl_version", "certfile", "keyfile", "cert_reqs", "ca_certs", "ciphers"))


def bind_sockets(
    port: int,
    address: str | None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    backlog: int = _DEFAULT_BACKLOG,
    flags: int | None = None,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Create listening, non-blocking sockets on ``address:port`` (every address if None).

    ``port=0`` picks a free port; when ``address`` resolves to several addresses (IPv4 and
    IPv6 for ``localhost``) they all share the port chosen for the first.
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("the platform doesn't support SO_REUSEPORT")
    if address == "":
        address = None
    if not socket.has_ipv6 and family == socket.AF_UNSPEC:
        family = socket.AF_INET
    if flags is None:
        flags = socket.AI_PASSIVE
    infos = sorted(
        socket.getaddrinfo(address, port, family, socket.SOCK_STREAM, 0, flags),
        key=lambda info: info[0],
    )
    sockets: list[socket.socket] = []
    try:
        _bind_each(infos, port, address, backlog, reuse_port, sockets)
    except BaseException:
        # Do not leak the sockets already bound when a later address fails.
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_each(
    infos: list[tuple[Any, ...]],
    port: int,
    address: str | None,
    backlog: int,
    reuse_port: bool,
    sockets: list[socket.socket],
) -> None:
    bound_port: int | None = None
    seen: set[tuple[Any, ...]] = set()
    for af, socktype, proto, _canon, sockaddr in infos:
        key = (af, sockaddr)
        if key in seen:
            continue
        seen.add(key)
        if af == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3] != 0:
            # Link-local addresses with a scope id need more care than a server default.
            continue
        try:
            sock = socket.socket(af, socktype, proto)
        except OSError as err:
            if err.errno == errno.EAFNOSUPPORT:
                continue
            raise
        try:
            if os.name != "nt":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if af == socket.AF_INET6:
                # Keep IPv6 sockets to IPv6 so the IPv4 socket can share the port.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and bound_port is not None:
                sockaddr = (sockaddr[0], bound_port, *sockaddr[2:])
            sock.setblocking(False)
            try:
                sock.bind(sockaddr)
            except OSError as err:
                if (
                    err.errno == errno.EADDRNOTAVAIL
                    and address == "localhost"
                    and sockaddr[0] == "::1"
                ):
                    # Hosts (containers, mostly) where IPv6 is half there: "localhost"
                    # resolves to ::1 but it cannot be bound. Serve on IPv4 only.
                    sock.close()
                    continue
                raise
            bound_port = sock.getsockname()[1]
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        sockets.append(sock)


def bind_unix_socket(
    file: str, mode: int = 0o600, backlog: int = _DEFAULT_BACKLOG
) -> socket.socket:
    """A listening Unix socket at ``file``, replacing a stale socket file left there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        if file.startswith("\0"):
            # Linux abstract namespace: no file system entry to check, replace or chmod.
            sock.bind(file)
        else:
            try:
                st = os.stat(file)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISSOCK(st.st_mode):
                    raise ValueError(f"file {file} exists and is not a socket")
                os.remove(file)
            sock.bind(file)
            os.chmod(file, mode)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def ssl_options_to_context(
    ssl_options: dict[str, Any] | ssl.SSLContext, server_side: bool | None = True
) -> ssl.SSLContext:
    """Accept an ``SSLContext`` as is, or build one from Tornado's ``ssl_options`` dict."""
    if isinstance(ssl_options, ssl.SSLContext):
        return ssl_options
    if not isinstance(ssl_options, dict):
        raise TypeError(f"ssl_options must be a dict or an SSLContext, not {type(ssl_options)!r}")
    unknown = set(ssl_options) - _SSL_PARAMS
    if unknown:
        raise ValueError(f"unknown ssl_options keys: {sorted(unknown)}")
    purpose = ssl.Purpose.CLIENT_AUTH if server_side else ssl.Purpose.SERVER_AUTH
    context = ssl.create_default_context(purpose)
    if "ssl_version" in ssl_options:
        context = ssl.SSLContext(ssl_options["ssl_version"])
    if "certfile" in ssl_options:
        context.load_cert_chain(ssl_options["certfile"], ssl_options.get("keyfile"))
    if "cert_reqs" in ssl_options:
        if ssl_options["cert_reqs"] == ssl.CERT_NONE:
            # Client contexts check host names, which CERT_NONE cannot coexist with.
            context.check_hostname = False
        context.verify_mode = ssl_options["cert_reqs"]
    if "ca_certs" in ssl_options:
        context.load_verify_locations(ssl_options["ca_certs"])
    if "ciphers" in ssl_options:
        context.set_ciphers(ssl_options["ciphers"])
    return context


def is_valid_ip(ip: str) -> bool:
    """True for a literal IPv4 or IPv6 address (never a name lookup)."""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


class _ListeningServer:
    """The socket half shared by ``HTTPServer`` and ``TCPServer``: ``listen``/``bind``/
    ``add_sockets`` watch each listening socket and serve every accepted connection with the
    subclass's ``_make_protocol`` (``loop.connect_accepted_socket``); ``_stop_listening``
    undoes all of it. Subclasses set ``_ssl_context``
    and call ``_init_listening()`` in ``__init__``.
    """

    _ssl_context: ssl.SSLContext | None
    # Connections taken per readiness of a listener before the loop serves others.
    accept_batch: int = _ACCEPT_BATCH

    def _init_listening(self) -> None:
        # {fd: listening socket}, as Tornado's TCPServer has it (tools read its values()).
        self._sockets: dict[int, socket.socket] = {}
        self._pending_sockets: list[socket.socket] = []
        # (loop, socket) for each listener we watch, so stopping can unwatch it.
        self._watched: list[tuple[asyncio.AbstractEventLoop, socket.socket]] = []
        # Connections accepted whose transport is still being set up (TLS handshakes).
        self._connecting: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopped = False

    def _make_protocol(self) -> asyncio.BaseProtocol:
        raise NotImplementedError()

    def listen(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = _DEFAULT_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind ``address:port`` (every interface when None) and serve on the current IOLoop."""
        self.add_sockets(bind_sockets(port, address, family, backlog, flags, reuse_port))

    def bind(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = _DEFAULT_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind now, serve after ``start()`` (at once if it has already run)."""
        sockets = bind_sockets(port, address, family, backlog, flags, reuse_port)
        if self._started:
            self.add_sockets(sockets)
        else:
            self._pending_sockets.extend(sockets)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Serve on already-listening sockets (from ``bind_sockets``)."""
        loop = _serving_loop()
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            # Our own accept loop rather than loop.create_server: under load uvloop's
            # server drained the accept queue a few connections per turn, so the queue
            # overflowed and dropped handshakes waited seconds for a retransmit (issue 20).
            # It also keeps the backlog given to listen(); create_server re-listens at 100.
            loop.add_reader(sock.fileno(), self._accept_ready, loop, sock)
            self._watched.append((loop, sock))

    def add_socket(self, socket: socket.socket) -> None:
        self.add_sockets([socket])

    def _start_pending(self) -> None:
        self._started = True
        sockets, self._pending_sockets = self._pending_sockets, []
        self.add_sockets(sockets)

    def _accept_ready(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        # Bounded: a flood of connections must not keep the open ones waiting; the
        # listener stays readable, so the rest are taken on the next turn.
        for _ in range(self.accept_batch):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up before we took it
            except OSError as err:
                if err.errno in _OUT_OF_RESOURCES:
                    # Out of descriptors or memory: stop watching for a second rather
                    # than spin on a listener we cannot accept from.
                    app_log.error("accept failed, pausing for 1s: %s", err)
                    loop.remove_reader(sock.fileno())
                    loop.call_later(1.0, self._resume_accepting, loop, sock)
                    return
                raise
            self._serve_connection(loop, conn)

    def _resume_accepting(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        if not self._stopped and sock.fileno() != -1:
            loop.add_reader(sock.fileno(), self._accept_ready, loop, sock)

    def _serve_connection(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        conn.setblocking(False)
        task = loop.create_task(
            loop.connect_accepted_socket(self._make_protocol, conn, ssl=self._ssl_context)
        )
        self._connecting.add(task)
        task.add_done_callback(partial(self._connection_started, conn))

    def _connection_started(self, conn: socket.socket, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if task.cancelled() or task.exception() is not None:
            # A failed TLS handshake, mostly: the client is gone, the server carries on.
            if not task.cancelled():
                app_log.debug("connection setup failed", exc_info=task.exception())
            conn.close()

    def _stop_listening(self) -> None:
        """Stop accepting and close the listening sockets; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for loop, sock in self._watched:
            if sock.fileno() != -1 and not loop.is_closed():
                loop.remove_reader(sock.fileno())
        self._watched.clear()
        for task in list(self._connecting):
            task.cancel()
        for sock in [*self._sockets.values(), *self._pending_sockets]:
            sock.close()
        self._sockets.clear()
        self._pending_sockets.clear()


def _serving_loop() -> asyncio.AbstractEventLoop:
    """The running loop; before one runs, the loop that ``IOLoop.current().start()`` will run
    (Tornado's listen-then-start), which is the thread's IOLoop: the loop layer's business."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        from asyncweb.ioloop import IOLoop

        return IOLoop.current().asyncio_loop
