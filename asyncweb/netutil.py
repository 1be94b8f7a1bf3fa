"""Socket helpers: listening sockets and TLS contexts, with Tornado's names."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
import stat
from typing import Any

_DEFAULT_BACKLOG = 128

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
