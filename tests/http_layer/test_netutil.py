"""asyncweb.netutil: listening sockets, Unix sockets, TLS contexts, IP validation."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import stat
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from asyncweb.netutil import bind_sockets, bind_unix_socket, is_valid_ip, ssl_options_to_context


def _ipv6_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = _ipv6_works()
needs_ipv6 = pytest.mark.skipif(not IPV6, reason="IPv6 is not available here")


@contextlib.contextmanager
def closing_all(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _accept_one(listener: socket.socket, timeout: float = 5.0) -> socket.socket:
    """Accept on a non-blocking listener, waiting for the connection to be ready."""
    readable, _, _ = select.select([listener], [], [], timeout)
    assert readable, "no connection arrived"
    conn, _addr = listener.accept()
    return conn


def _assert_serves(listener: socket.socket) -> None:
    """A client can connect to ``listener`` and exchange bytes with the accepted socket."""
    host, port = listener.getsockname()[:2]
    with socket.create_connection((host, port), timeout=5) as client:
        conn = _accept_one(listener)
        with conn:
            conn.setblocking(True)
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"


# -- bind_sockets ----------------------------------------------------------------------------


def test_bind_sockets_ipv4_loopback() -> None:
    with closing_all(bind_sockets(0, "127.0.0.1")) as sockets:
        assert len(sockets) == 1
        sock = sockets[0]
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_STREAM
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert port > 0
        assert sock.getblocking() is False
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        if os.name != "nt":
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        _assert_serves(sock)


def test_bind_sockets_explicit_port() -> None:
    with closing_all(bind_sockets(0, "127.0.0.1")) as first:
        port = first[0].getsockname()[1]
    # SO_REUSEADDR: the same port can be bound again right away.
    with closing_all(bind_sockets(port, "127.0.0.1")) as again:
        assert again[0].getsockname()[1] == port
        _assert_serves(again[0])


def test_bind_sockets_localhost_shares_one_port() -> None:
    with closing_all(bind_sockets(0, "localhost")) as sockets:
        assert sockets
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1
        assert ports.pop() > 0
        for sock in sockets:
            assert sock.getblocking() is False
            _assert_serves(sock)


@needs_ipv6
def test_bind_sockets_all_interfaces_ipv4_and_ipv6_share_the_port() -> None:
    with closing_all(bind_sockets(0, None)) as sockets:
        families = {sock.family for sock in sockets}
        assert families == {socket.AF_INET, socket.AF_INET6}
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
        for sock in sockets:
            if sock.family == socket.AF_INET6:
                # IPv6 sockets stay IPv6-only so the IPv4 one can have the port.
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_bind_sockets_empty_address_means_all_and_family_restricts() -> None:
    with closing_all(bind_sockets(0, "", family=socket.AF_INET)) as sockets:
        assert [sock.family for sock in sockets] == [socket.AF_INET]
        assert sockets[0].getsockname()[0] == "0.0.0.0"


@needs_ipv6
def test_bind_sockets_ipv6_loopback() -> None:
    with closing_all(bind_sockets(0, "::1")) as sockets:
        assert len(sockets) == 1
        assert sockets[0].family == socket.AF_INET6
        _assert_serves(sockets[0])


def test_bind_sockets_port_in_use() -> None:
    with closing_all(bind_sockets(0, "127.0.0.1")) as first:
        port = first[0].getsockname()[1]
        with pytest.raises(OSError) as info:
            bind_sockets(port, "127.0.0.1")
        assert info.value.errno == errno.EADDRINUSE


@needs_ipv6
def _ipv4_port_free(port: int) -> bool:
    # SO_REUSEADDR as bind_sockets sets it: earlier tests' connections still in TIME_WAIT on
    # this number do not hold it (without it the probe failed now and then in a full run).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
            probe.listen(1)
        except OSError:
            return False
    return True


def test_bind_sockets_failure_closes_the_sockets_already_bound() -> None:
    # Take a port on IPv6 only: bind_sockets(port, None) binds IPv4 first, then fails on IPv6.
    for _ in range(20):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as blocker:
            blocker.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            blocker.bind(("::", 0))
            blocker.listen(1)
            port = blocker.getsockname()[1]
            if not _ipv4_port_free(port):
                continue  # another socket listens on that number over IPv4: take another
            with pytest.raises(OSError) as info:
                bind_sockets(port, None)
            assert info.value.errno == errno.EADDRINUSE
            # The IPv4 listener made before the failure must be closed, not left to the GC
            # (the traceback in ``info`` still references it).
            assert _ipv4_port_free(port)
            return
    pytest.fail("every IPv6 port tried was taken on IPv4 too")


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_bind_sockets_reuse_port() -> None:
    with closing_all(bind_sockets(0, "127.0.0.1", reuse_port=True)) as first:
        sock = first[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        port = sock.getsockname()[1]
        with closing_all(bind_sockets(port, "127.0.0.1", reuse_port=True)) as second:
            assert second[0].getsockname()[1] == port
            assert second[0].getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_bind_sockets_unknown_host() -> None:
    with pytest.raises(socket.gaierror):
        bind_sockets(0, "no-such-host.invalid")


# -- bind_unix_socket ------------------------------------------------------------------------

unix_only = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[str]:
    # Unix socket paths are limited to ~100 bytes; tmp_path can be long.
    path = tmp_path / "s.sock"
    if len(str(path)) > 100:
        pytest.skip("temporary directory path too long for a Unix socket")
    yield str(path)


def _assert_unix_serves(listener: socket.socket, path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(path)
        conn = _accept_one(listener)
        with conn:
            conn.setblocking(True)
            client.sendall(b"hi")
            assert conn.recv(2) == b"hi"


@unix_only
def test_bind_unix_socket(sock_path: str) -> None:
    with bind_unix_socket(sock_path) as sock:
        assert sock.family == socket.AF_UNIX
        assert sock.getblocking() is False
        st = os.stat(sock_path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        _assert_unix_serves(sock, sock_path)


@unix_only
def test_bind_unix_socket_mode(sock_path: str) -> None:
    with bind_unix_socket(sock_path, mode=0o640):
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o640


@unix_only
def test_bind_unix_socket_replaces_stale_socket(sock_path: str) -> None:
    # A socket file left behind by a process that is gone.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as old:
        old.bind(sock_path)
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    with bind_unix_socket(sock_path) as sock:
        _assert_unix_serves(sock, sock_path)


@unix_only
def test_bind_unix_socket_refuses_regular_file(sock_path: str) -> None:
    Path(sock_path).write_text("precious")
    with pytest.raises(ValueError, match="not a socket"):
        bind_unix_socket(sock_path)
    assert Path(sock_path).read_text() == "precious"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract namespace is Linux")
def test_bind_unix_socket_abstract_namespace() -> None:
    name = f"\0asyncweb-test-{uuid.uuid4().hex}"
    with bind_unix_socket(name) as sock:
        assert sock.getsockname() == name.encode()
        _assert_unix_serves(sock, name)


# -- ssl_options_to_context ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("certs")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile = directory / "cert.pem"
    keyfile = directory / "key.pem"
    cafile = directory / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return {"certfile": str(certfile), "keyfile": str(keyfile), "ca_certs": str(cafile)}


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[bytes, Any]:
    """A real TLS handshake over a socket pair; returns what the server read and its peer cert."""
    left, right = socket.socketpair()
    result: dict[str, Any] = {}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(left, server_side=True) as tls:
                result["data"] = tls.recv(5)
                result["peer"] = tls.getpeercert()
                tls.sendall(b"pong")
        except BaseException as err:
            result["error"] = err

    left.settimeout(5)
    right.settimeout(5)
    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(right, server_hostname="localhost") as tls:
            tls.sendall(b"hello")
            assert tls.recv(4) == b"pong"
    finally:
        thread.join(10)
        left.close()
        right.close()
    if "error" in result:
        raise result["error"]
    return result["data"], result["peer"]


def test_ssl_context_is_returned_as_is() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert ssl_options_to_context(context) is context
    assert ssl_options_to_context(context, server_side=False) is context


def test_ssl_options_dict_makes_a_working_server_context(
    ca: trustme.CA, cert_files: dict[str, str]
) -> None:
    context = ssl_options_to_context(
        {"certfile": cert_files["certfile"], "keyfile": cert_files["keyfile"]}
    )
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE  # servers do not ask for client certificates
    client = ssl.create_default_context()
    ca.configure_trust(client)
    data, peer = _handshake(context, client)
    assert data == b"hello"
    assert peer is None


def test_ssl_options_client_certificates(ca: trustme.CA, cert_files: dict[str, str]) -> None:
    context = ssl_options_to_context(
        {
            "certfile": cert_files["certfile"],
            "keyfile": cert_files["keyfile"],
            "cert_reqs": ssl.CERT_REQUIRED,
            "ca_certs": cert_files["ca_certs"],
        }
    )
    assert context.verify_mode == ssl.CERT_REQUIRED
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca.issue_cert("client@example.com").configure_cert(client)
    _data, peer = _handshake(context, client)
    assert peer is not None
    assert ("email", "client@example.com") in peer["subjectAltName"]


def test_ssl_options_ciphers(cert_files: dict[str, str]) -> None:
    context = ssl_options_to_context({**cert_files, "ciphers": "AES256"})
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert tls12
    assert all("AES256" in name or "AES-256" in name for name in tls12)
    with pytest.raises(ssl.SSLError):
        ssl_options_to_context({"ciphers": "no-such-cipher"})


def test_ssl_options_client_side_cert_none() -> None:
    # A client context checks host names; CERT_NONE must switch that off, not fail.
    context = ssl_options_to_context({"cert_reqs": ssl.CERT_NONE}, server_side=False)
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
    context = ssl_options_to_context(
        {"ssl_version": ssl.PROTOCOL_TLS_CLIENT, "cert_reqs": ssl.CERT_NONE}
    )
    assert context.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert context.verify_mode == ssl.CERT_NONE


def test_ssl_options_ssl_version() -> None:
    context = ssl_options_to_context({"ssl_version": ssl.PROTOCOL_TLS_SERVER})
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER


def test_ssl_options_unknown_key() -> None:
    with pytest.raises(ValueError, match="server_hostname"):
        ssl_options_to_context({"certfile": "x.pem", "server_hostname": "example.com"})


@pytest.mark.parametrize("options", [["certfile"], "cert.pem", None, 1])
def test_ssl_options_wrong_type(options: Any) -> None:
    with pytest.raises(TypeError):
        ssl_options_to_context(options)


def test_ssl_options_missing_certfile(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        ssl_options_to_context({"certfile": str(tmp_path / "missing.pem")})


# -- is_valid_ip -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "4.4.4.4",
        "0.0.0.0",
        "::1",
        "::",
        "2620:0:1cfe:face:b00c::3",
        "::ffff:1.2.3.4",
        "fe80::1%1",
    ],
)
def test_is_valid_ip_accepts(ip: str) -> None:
    assert is_valid_ip(ip) is True


@pytest.mark.parametrize(
    "ip",
    [
        "",
        "\x00",
        "localhost",
        "www.google.com",
        "4.4.4.4<",
        " 127.0.0.1",
        "1.2.3.4\n",
        "1.2.3.4.5",
        "256.1.1.1",
        "::1/128",
        "[::1]",
        "1:2:3:4:5:6:7:8:9",
    ],
)
def test_is_valid_ip_rejects(ip: str) -> None:
    assert is_valid_ip(ip) is False


# -- accept handler and resolvers -----------------------------------------------------------------


async def test_add_accept_handler_accepts_until_removed() -> None:
    import asyncio

    from asyncweb.netutil import add_accept_handler

    listener = bind_sockets(0, "127.0.0.1")[0]
    port = listener.getsockname()[1]
    accepted: list[tuple[socket.socket, object]] = []
    got_two = asyncio.Event()

    def on_connection(connection: socket.socket, address: object) -> None:
        assert not connection.getblocking()
        accepted.append((connection, address))
        if len(accepted) == 2:
            got_two.set()

    remove = add_accept_handler(listener, on_connection)
    clients = []
    try:
        for _ in range(2):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            clients.append(writer)
        await asyncio.wait_for(got_two.wait(), 20)
        assert [address[0] for _conn, address in accepted] == ["127.0.0.1", "127.0.0.1"]  # type: ignore[index]
        remove()
        # No longer accepted by us: the connection waits in the backlog.
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        clients.append(writer)
        await asyncio.sleep(0.05)
        assert len(accepted) == 2
    finally:
        for writer in clients:
            writer.close()
        for connection, _address in accepted:
            connection.close()
        listener.close()


async def test_resolvers() -> None:
    from asyncweb import netutil

    default = netutil.Resolver()
    assert isinstance(default, netutil.DefaultLoopResolver)
    results = await default.resolve("localhost", 80, socket.AF_INET)
    assert (socket.AF_INET, ("127.0.0.1", 80)) in results
    for resolver in (
        netutil.DefaultExecutorResolver(),
        netutil.ThreadedResolver(num_threads=2),
        netutil.BlockingResolver(),
    ):
        try:
            assert (socket.AF_INET, ("127.0.0.1", 8)) in await resolver.resolve(
                "127.0.0.1", 8, socket.AF_INET
            )
        finally:
            resolver.close()
    override = netutil.OverrideResolver(
        netutil.DefaultExecutorResolver(),
        {"svc.test": "127.0.0.1", ("api.test", 443): ("127.0.0.1", 8443)},
    )
    assert (await override.resolve("svc.test", 1, socket.AF_INET))[0] == (
        socket.AF_INET,
        ("127.0.0.1", 1),
    )
    assert (await override.resolve("api.test", 443, socket.AF_INET))[0][1] == ("127.0.0.1", 8443)
    with pytest.raises(OSError):
        await netutil.DefaultExecutorResolver().resolve("no-such-host.invalid", 80)
    closed = netutil.ThreadedResolver()
    closed.close()
    with pytest.raises(RuntimeError):
        await closed.resolve("127.0.0.1", 1)


def test_resolver_configure_chooses_the_implementation() -> None:
    from asyncweb import netutil

    saved = netutil.Resolver._save_configuration()
    try:
        netutil.Resolver.configure("asyncweb.netutil.BlockingResolver")
        assert type(netutil.Resolver()) is netutil.BlockingResolver
        netutil.Resolver.configure(netutil.ThreadedResolver, num_threads=1)
        threaded = netutil.Resolver()
        assert isinstance(threaded, netutil.ThreadedResolver)
        threaded.close()
        with pytest.raises(ValueError):
            netutil.Resolver.configure(dict)  # type: ignore[arg-type]
    finally:
        netutil.Resolver._restore_configuration(saved)
    assert type(netutil.Resolver()) is netutil.DefaultLoopResolver


def test_ssl_wrap_socket_builds_a_client_context() -> None:
    from asyncweb.netutil import ssl_wrap_socket

    sock = socket.socket()
    try:
        wrapped = ssl_wrap_socket(sock, {"cert_reqs": ssl.CERT_NONE}, server_hostname="x")
        assert isinstance(wrapped, ssl.SSLSocket)
        assert not wrapped.server_side
        wrapped.close()
        with socket.socket() as other, pytest.raises(ValueError):
            ssl_wrap_socket(other, ssl.create_default_context(), server_side=False)
    finally:
        sock.close()
