"""asyncweb.iostream over real loopback sockets: TCPServer, TCPClient and raw sockets.

Every test runs on the standard asyncio loop and on uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import socket
import ssl
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from asyncweb import iostream, netutil, util
from asyncweb.iostream import (
    IOStream,
    SSLIOStream,
    StreamBufferFullError,
    StreamClosedError,
    UnsatisfiableReadError,
)
from asyncweb.protocol import http1
from asyncweb.tcpclient import TCPClient
from asyncweb.tcpserver import TCPServer
from tests.support.servers import wait_until

_policies: list[Any] = [("asyncio", asyncio.DefaultEventLoopPolicy())]
try:
    import uvloop

    _policies.append(("uvloop", uvloop.EventLoopPolicy()))
except ImportError:  # pragma: no cover
    pass


# pytest-asyncio 1.x wants a conftest hook for this; until tests/conftest.py has one, the
# fixture (deprecated, still supported) runs each test on both loops.
pytestmark = pytest.mark.filterwarnings(
    'ignore:Overriding the "event_loop_policy" fixture:DeprecationWarning'
)


@pytest.fixture(params=_policies, ids=[name for name, _ in _policies])
def event_loop_policy(request: pytest.FixtureRequest) -> Any:
    return request.param[1]


Handler = Callable[[IOStream, Any], Awaitable[None] | None]


class FunctionServer(TCPServer):
    def __init__(self, handler: Handler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handler = handler
        self.streams: list[IOStream] = []

    def handle_stream(self, stream: IOStream, address: Any) -> Awaitable[None] | None:
        self.streams.append(stream)
        return self.handler(stream, address)


async def drop(streams: list[IOStream]) -> None:
    """Close streams at once, unsent data or not, and let the loop see them go."""
    for stream in streams:
        transport = stream._transport
        if transport is not None and not transport.is_closing():
            transport.abort()
        stream.close()
    for _ in range(5):
        await asyncio.sleep(0.005)


@pytest.fixture
async def clients() -> AsyncIterator[list[IOStream]]:
    """Client streams a test made; closed (aborted) when it ends."""
    made: list[IOStream] = []
    yield made
    await drop(made)


@pytest.fixture
async def start_server(clients: list[IOStream]) -> AsyncIterator[Callable[..., Awaitable[int]]]:
    servers: list[FunctionServer] = []

    async def start(handler: Handler, **kwargs: Any) -> int:
        server = FunctionServer(handler, **kwargs)
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        servers.append(server)
        return int(sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.stop()
    await drop([stream for server in servers for stream in server.streams])


async def echo_lines(stream: IOStream, address: Any) -> None:
    """Echo each line back until the client closes."""
    try:
        while True:
            line = await stream.read_until(b"\n")
            await stream.write(line)
    except StreamClosedError:
        pass


async def test_read_methods_against_a_tcpserver(clients: list[IOStream], start_server: Any) -> None:
    seen_addresses: list[Any] = []

    async def scripted(stream: IOStream, address: Any) -> None:
        seen_addresses.append(address)
        stream.set_nodelay(True)
        await stream.write(b"HELLO\r\n\r\nabc123xyzpartial")
        # The rest only once the client has read "partial": a partial read then sees
        # exactly what was sent so far, however busy the machine.
        assert await stream.read_until(b"\n") == b"go\n"
        await stream.write(b"0123456789" + b"tail-data")
        stream.close()

    port = await start_server(scripted)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    assert isinstance(client, IOStream) and not client.closed()
    assert await client.read_until(b"\r\n\r\n") == b"HELLO\r\n\r\n"
    assert await client.read_until_regex(rb"\d+") == b"abc123"
    assert await client.read_bytes(3) == b"xyz"
    assert await client.read_bytes(100, partial=True) == b"partial"
    await client.write(b"go\n")
    buf = bytearray(10)
    assert await client.read_into(buf) == 10
    assert buf == b"0123456789"
    assert await client.read_until_close() == b"tail-data"
    assert client.closed()
    assert seen_addresses[0][0] == "127.0.0.1"
    with pytest.raises(StreamClosedError):
        await client.read_bytes(1)
    with pytest.raises(StreamClosedError):
        client.write(b"x")


async def test_stream_closed_error_is_the_protocol_layers() -> None:
    assert iostream.StreamClosedError is http1.StreamClosedError
    assert issubclass(StreamClosedError, OSError)


async def test_raw_socket_connect_and_accept_handler(clients: list[IOStream]) -> None:
    """IOStream on sockets we make ourselves: connect() a new one, wrap accepted ones."""
    listener = netutil.bind_sockets(0, "127.0.0.1")[0]
    port = listener.getsockname()[1]
    served: list[IOStream] = []
    tasks: list[asyncio.Future[None]] = []

    def on_accept(connection: socket.socket, address: Any) -> None:
        stream = IOStream(connection)
        clients.append(stream)
        served.append(stream)
        tasks.append(asyncio.ensure_future(echo_lines(stream, address)))

    stop_accepting = netutil.add_accept_handler(listener, on_accept)
    try:
        client = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        clients.append(client)
        connected = await client.connect(("127.0.0.1", port))
        assert connected is client
        client.write(b"one\n")
        client.write(b"two\n")
        assert await client.read_until(b"\n") == b"one\n"
        assert await client.read_until(b"\n") == b"two\n"
        assert client.fileno() >= 0
        closed = asyncio.Event()
        client.set_close_callback(closed.set)
        client.close()
        await asyncio.wait_for(closed.wait(), 20)
    finally:
        stop_accepting()
        stop_accepting()  # idempotent
        listener.close()
    for stream in served:
        stream.close()


async def test_connect_failure_is_a_stream_closed_error(clients: list[IOStream]) -> None:
    listener = netutil.bind_sockets(0, "127.0.0.1")[0]
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    stream = IOStream(socket.socket())
    clients.append(stream)
    with pytest.raises(StreamClosedError) as info:
        await stream.connect(("127.0.0.1", port))
    assert isinstance(info.value.real_error, ConnectionRefusedError)
    assert stream.closed()
    with pytest.raises(ConnectionRefusedError):
        await TCPClient().connect("127.0.0.1", port)


async def test_write_back_pressure(clients: list[IOStream], start_server: Any) -> None:
    """A writer whose peer does not read is held back by its write futures."""
    chunk = os.urandom(64 * 1024)
    total_chunks = 256  # 16 MiB: far more than the kernel and transport buffers hold
    blocked = asyncio.Event()
    progress = {"written": 0, "pending_seen": 0}

    async def flood(stream: IOStream, address: Any) -> None:
        for _ in range(total_chunks):
            future = stream.write(chunk)
            if not future.done():
                progress["pending_seen"] += 1
                assert stream.writing()
                blocked.set()
            await future
            progress["written"] += 1
        stream.close()

    port = await start_server(flood)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    await asyncio.wait_for(blocked.wait(), 10)
    await asyncio.sleep(0.05)
    # The writer is stuck well short of the end, and the idle reader buffered little.
    assert progress["written"] < total_chunks
    assert len(client._read_buffer) <= 1024 * 1024
    digest = hashlib.sha256()
    received = 0
    while received < total_chunks * len(chunk):
        data = await client.read_bytes(1024 * 1024, partial=True)
        received += len(data)
        digest.update(data)
    assert digest.digest() == hashlib.sha256(chunk * total_chunks).digest()
    assert progress["written"] == total_chunks
    assert progress["pending_seen"] > 0
    assert await client.read_until_close() == b""


async def test_peer_reset_fails_reads_and_writes(
    clients: list[IOStream], start_server: Any
) -> None:
    server_side: list[IOStream] = []
    server_read_error: list[BaseException] = []
    server_closed = asyncio.Event()

    async def hold(stream: IOStream, address: Any) -> None:
        server_side.append(stream)
        stream.set_close_callback(server_closed.set)
        try:
            await stream.read_until(b"never")
        except StreamClosedError as err:
            server_read_error.append(err)

    port = await start_server(hold)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    await wait_until(lambda: server_side)
    # The client resets the connection (SO_LINGER 0, then close): an RST, not a FIN.
    sock = client.socket
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    await asyncio.wait_for(server_closed.wait(), 20)
    assert server_side[0].closed()
    assert isinstance(server_read_error[0], StreamClosedError)
    with pytest.raises(StreamClosedError):
        server_side[0].write(b"after reset")


async def test_reset_during_a_pending_read_reports_the_real_error(
    clients: list[IOStream], start_server: Any
) -> None:
    async def reset_after_hello(stream: IOStream, address: Any) -> None:
        await stream.write(b"partial line without end")
        await asyncio.sleep(0.02)
        sock = stream.socket
        assert sock is not None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.close()

    port = await start_server(reset_after_hello)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    with pytest.raises(StreamClosedError) as info:
        await client.read_until(b"\n")
    assert isinstance(info.value.real_error, (ConnectionResetError, type(None)))
    assert client.closed()


async def test_max_bytes_and_buffer_limits(clients: list[IOStream], start_server: Any) -> None:
    async def talk(stream: IOStream, address: Any) -> None:
        await stream.write(b"x" * 5000)
        with contextlib.suppress(StreamClosedError):
            await stream.read_until_close()

    port = await start_server(talk)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    # As in Tornado: the read fails as closed, the reason being the unsatisfiable read.
    with pytest.raises(StreamClosedError) as closed:
        await client.read_until(b"\n", max_bytes=100)
    assert isinstance(closed.value.real_error, UnsatisfiableReadError)
    assert client.closed()
    assert isinstance(client.error, UnsatisfiableReadError)

    small = await TCPClient().connect("127.0.0.1", port, max_buffer_size=1024)
    clients.append(small)
    with pytest.raises(StreamBufferFullError):
        await small.read_until_regex(rb"\n")
    assert small.closed()

    found_late = await TCPClient().connect("127.0.0.1", port)
    clients.append(found_late)
    await found_late.read_bytes(10)
    with pytest.raises(StreamClosedError) as closed:
        await found_late.read_until(b"xx", max_bytes=1)
    assert isinstance(closed.value.real_error, UnsatisfiableReadError)


async def test_one_read_at_a_time_and_bad_arguments(
    clients: list[IOStream], start_server: Any
) -> None:
    port = await start_server(echo_lines)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    pending = client.read_until(b"\n")
    assert client.reading()
    with pytest.raises(RuntimeError, match="Already reading"):
        client.read_bytes(1)
    with pytest.raises(ValueError):
        client.read_bytes(-1)
    client.write(b"ok\n")
    assert await pending == b"ok\n"
    assert not client.reading()
    client.close()
    closed_read = client.read_bytes(1)
    with pytest.raises(StreamClosedError):
        await closed_read


async def test_max_write_buffer_size(clients: list[IOStream], start_server: Any) -> None:
    async def idle(stream: IOStream, address: Any) -> None:
        await asyncio.sleep(0.5)
        stream.close()

    port = await start_server(idle)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    client.max_write_buffer_size = 1024 * 1024
    with pytest.raises(StreamBufferFullError):
        for _ in range(1000):
            client.write(b"y" * 65536)
    client.close()


async def test_legacy_callbacks(clients: list[IOStream], start_server: Any) -> None:
    util._warned_once.clear()

    async def send(stream: IOStream, address: Any) -> None:
        await stream.write(b"line\n" + b"a" * 3000)
        await asyncio.sleep(0.01)
        await stream.write(b"b" * 3000)
        stream.close()

    port = await start_server(send)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    got: list[Any] = []
    done = asyncio.Event()
    chunks: list[bytes] = []
    with pytest.warns(DeprecationWarning, match="callback"):
        assert client.read_until(b"\n", callback=got.append) is not None
    await wait_until(lambda: got)
    assert got == [b"line\n"]
    client.read_bytes(
        2000, callback=got.append, streaming_callback=chunks.append
    ).add_done_callback(lambda f: None)
    await wait_until(lambda: len(got) > 1)
    assert got[1] == b"" and b"".join(chunks) == b"a" * 2000
    rest: list[bytes] = []
    client.read_until_close(callback=lambda data: done.set(), streaming_callback=rest.append)
    await asyncio.wait_for(done.wait(), 20)
    assert b"".join(rest) == b"a" * 1000 + b"b" * 3000

    written = asyncio.Event()
    echo_port = await start_server(echo_lines)
    other = IOStream(socket.socket())
    clients.append(other)
    connected = asyncio.Event()
    with pytest.warns(DeprecationWarning, match=r"connect\(callback=\) is deprecated"):
        other.connect(("127.0.0.1", echo_port), callback=connected.set)
    await asyncio.wait_for(connected.wait(), 20)
    with pytest.warns(DeprecationWarning, match=r"write\(callback=\) is deprecated"):
        other.write(b"cb\n", callback=written.set)
    await asyncio.wait_for(written.wait(), 20)
    assert await other.read_until(b"\n") == b"cb\n"
    other.close()


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    yield server_context, client_context


async def test_tls_server_and_client(clients: list[IOStream], start_server: Any, tls: Any) -> None:
    server_context, client_context = tls
    port = await start_server(echo_lines, ssl_options=server_context)
    client = await TCPClient().connect("localhost", port, ssl_options=client_context)
    clients.append(client)
    assert isinstance(client, SSLIOStream)
    assert await client.wait_for_handshake() is client
    client.write(b"secret\n")
    assert await client.read_until(b"\n") == b"secret\n"
    assert client.get_extra_info("ssl_object") is not None
    client.close()

    raw = SSLIOStream(socket.socket(), ssl_options=client_context)
    clients.append(raw)
    handshake = raw.wait_for_handshake()
    await raw.connect(("127.0.0.1", port), server_hostname="localhost")
    await handshake
    raw.write(b"again\n")
    assert await raw.read_until(b"\n") == b"again\n"
    raw.close()

    # A client that does not trust the certificate fails to connect.
    with pytest.raises(ssl.SSLError):
        await TCPClient().connect("localhost", port, ssl_options={})


async def test_start_tls_upgrades_both_sides(
    clients: list[IOStream], start_server: Any, tls: Any
) -> None:
    server_context, client_context = tls

    async def starttls(stream: IOStream, address: Any) -> None:
        assert await stream.read_until(b"\n") == b"STARTTLS\n"
        await stream.write(b"GO\n")
        secure = await stream.start_tls(server_side=True, ssl_options=server_context)
        line = await secure.read_until(b"\n")
        await secure.write(b"secure " + line)
        secure.close()

    port = await start_server(starttls)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    client.write(b"STARTTLS\n")
    assert await client.read_until(b"\n") == b"GO\n"
    secure = await client.start_tls(
        server_side=False, ssl_options=client_context, server_hostname="localhost"
    )
    assert isinstance(secure, SSLIOStream)
    secure.write(b"hi\n")
    assert await secure.read_until(b"\n") == b"secure hi\n"
    assert await secure.read_until_close() == b""


async def test_unix_socket_server_and_stream(clients: list[IOStream]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "s.sock")
        server = FunctionServer(echo_lines)
        server.add_socket(netutil.bind_unix_socket(path))
        client = IOStream(socket.socket(socket.AF_UNIX))
        clients.append(client)
        await client.connect(path)
        client.set_nodelay(True)  # not TCP: ignored
        client.write(b"unix\n")
        assert await client.read_until(b"\n") == b"unix\n"
        client.close()
        server.stop()
        await asyncio.sleep(0.01)


async def test_tcpserver_bind_start_stop_and_async_errors(
    clients: list[IOStream],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing(stream: IOStream, address: Any) -> None:
        stream.close()
        raise ValueError("handler failed")

    server = FunctionServer(failing)
    server.bind(0, "127.0.0.1")
    port = server._pending_sockets[0].getsockname()[1]
    server.start()
    with pytest.raises(RuntimeError):
        server.start()
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    assert await client.read_until_close() == b""
    await wait_until(lambda: "handler failed" in caplog.text)
    server.stop()
    server.stop()
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectionRefusedError):
        await TCPClient().connect("127.0.0.1", port)
    with pytest.raises(NotImplementedError):
        FunctionServer(failing).start(num_processes=2)


async def test_tcpclient_timeout_source_port_and_resolver(start_server: Any) -> None:
    port = await start_server(echo_lines)
    resolver = netutil.OverrideResolver(
        netutil.DefaultExecutorResolver(), {"example.invalid": "127.0.0.1"}
    )
    client = TCPClient(resolver=resolver)
    stream = await client.connect("example.invalid", port, timeout=5, source_ip="127.0.0.1")
    assert stream.get_extra_info("sockname")[0] == "127.0.0.1"
    stream.write(b"resolved\n")
    assert await stream.read_until(b"\n") == b"resolved\n"
    stream.close()
    client.close()
    # 192.0.2.0/24 is TEST-NET-1: unroutable, so only the timeout ends the attempt.
    from asyncweb import gen

    with pytest.raises((gen.TimeoutError, OSError)):
        await TCPClient().connect("192.0.2.1", 9, timeout=0.05)
    with pytest.raises(TypeError):
        await TCPClient().connect("127.0.0.1", port, timeout="soon")  # type: ignore[arg-type]


async def test_legacy_io_loop_arguments_are_accepted(clients: list[IOStream]) -> None:
    from asyncweb.ioloop import IOLoop

    util._warned_once.discard("the io_loop argument")
    io_loop = IOLoop.current()
    with pytest.warns(DeprecationWarning, match="io_loop argument"):
        server = FunctionServer(echo_lines, io_loop=io_loop)
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    try:
        stream = IOStream(socket.socket(), io_loop=io_loop)
        clients.append(stream)
        await stream.connect(sockets[0].getsockname())
        stream.write(b"old\n")
        assert await stream.read_until(b"\n") == b"old\n"
        other = await TCPClient(io_loop=io_loop).connect(*sockets[0].getsockname())
        clients.append(other)
        other.write(b"older\n")
        assert await other.read_until(b"\n") == b"older\n"
    finally:
        server.stop()
        await drop(server.streams)


@pytest.mark.parametrize("wrapped", [False, True], ids=["ssl_options", "wrapped_socket"])
async def test_ssl_iostream_on_an_accepted_socket(
    clients: list[IOStream], tls: Any, wrapped: bool
) -> None:
    """Tornado 2 style TLS server: SSLIOStream(accepted_socket, ssl_options=...), or on a
    socket the caller wrapped already (``wrap_socket(..., do_handshake_on_connect=False)``,
    as Tornado allows): its context is the one used."""
    server_context, client_context = tls
    listener = netutil.bind_sockets(0, "127.0.0.1")[0]
    tasks: list[asyncio.Future[None]] = []

    def on_accept(connection: socket.socket, address: Any) -> None:
        if wrapped:
            tls_socket = server_context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
            stream = SSLIOStream(tls_socket)
        else:
            stream = SSLIOStream(connection, ssl_options=server_context)
        clients.append(stream)
        tasks.append(asyncio.ensure_future(echo_lines(stream, address)))

    stop = netutil.add_accept_handler(listener, on_accept)
    try:
        client = await TCPClient().connect(
            "localhost", listener.getsockname()[1], ssl_options=client_context
        )
        clients.append(client)
        client.write(b"tls accepted\n")
        assert await client.read_until(b"\n") == b"tls accepted\n"
        server_stream = clients[0]
        assert isinstance(server_stream, SSLIOStream)
        assert await server_stream.wait_for_handshake() is server_stream
    finally:
        stop()
        listener.close()


async def test_close_flushes_within_close_flush_timeout(
    clients: list[IOStream], start_server: Any
) -> None:
    chunk = b"z" * 65536
    total = 256 * len(chunk)
    closed = asyncio.Event()

    async def flood_then_close(stream: IOStream, address: Any) -> None:
        stream.close_flush_timeout = 0.05
        stream.set_close_callback(closed.set)
        for _ in range(256):
            stream.write(chunk)  # not awaited: everything lands in the transport buffer
        stream.close()

    port = await start_server(flood_then_close)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    await asyncio.wait_for(closed.wait(), 20)
    await asyncio.sleep(0.3)  # the peer read nothing meanwhile: the server gave up
    received = 0
    try:
        while True:
            received += len(await client.read_bytes(1024 * 1024, partial=True))
    except StreamClosedError:
        pass
    assert 0 < received < total


async def test_close_delivers_buffered_data(clients: list[IOStream], start_server: Any) -> None:
    payload = os.urandom(4 * 1024 * 1024)

    async def send_then_close(stream: IOStream, address: Any) -> None:
        stream.write(payload)
        stream.close()

    port = await start_server(send_then_close)
    client = await TCPClient().connect("127.0.0.1", port)
    clients.append(client)
    assert await client.read_until_close() == payload


async def test_pipe_streams_and_writes_made_before_the_transport() -> None:
    # Both ends of an os.pipe() as PipeIOStreams. The first write is made before the
    # stream's transport exists: its future must still resolve once the bytes are handed on
    # (it used to wait for a resume_writing that never came, so the producer stalled).
    read_fd, write_fd = os.pipe()
    reader, writer = iostream.PipeIOStream(read_fd), iostream.PipeIOStream(write_fd)
    assert writer.fileno() == write_fd
    produced, consumed = hashlib.sha1(), hashlib.sha1()
    chunks = [os.urandom(997) for _ in range(300)]

    async def produce() -> int:
        writes = 0
        for chunk in chunks:
            produced.update(chunk)
            await writer.write(chunk)
            writes += 1
        writer.close()
        return writes

    async def consume() -> int:
        total = 0
        buf = bytearray(1500)
        while True:
            try:
                count = await reader.read_into(buf, partial=True)
            except StreamClosedError:
                return total
            consumed.update(buf[:count])
            total += count

    writes, total = await asyncio.wait_for(asyncio.gather(produce(), consume()), 30)
    assert writes == len(chunks)
    assert total == 997 * 300
    assert produced.digest() == consumed.digest()
    assert reader.closed()
    with pytest.raises(OSError):
        os.fstat(read_fd)  # the stream owned the fd and closed it


async def test_pipe_streams_closed_at_once_leave_their_fd_numbers_to_new_owners() -> None:
    # Streams closed before their transports are connected: the fds must be closed once, by
    # one owner. On uvloop the transport closed the descriptor while the file object handed
    # to connect_read_pipe() still claimed it, and collecting that object later closed
    # whatever had reused the number (in Tornado's iostream tests, a new pipe under libuv's
    # watch, and libuv aborted the process).
    read_fd, write_fd = os.pipe()
    streams = [iostream.PipeIOStream(read_fd), iostream.PipeIOStream(write_fd)]
    for stream in streams:
        stream.close()
    await wait_until(lambda: all(stream._connection_lost for stream in streams))
    for fd in (read_fd, write_fd):
        with pytest.raises(OSError):
            os.fstat(fd)  # closed with its stream
    # Reuse both numbers (the lowest free ones go first), then let the old objects go.
    held: list[int] = []
    try:
        while len(held) < 64 and not {read_fd, write_fd} <= set(held):
            held.append(os.open(os.devnull, os.O_RDONLY))
        assert {read_fd, write_fd} <= set(held), "the freed numbers were not reused"
        streams.clear()
        del stream
        gc.collect()
        for fd in (read_fd, write_fd):
            os.fstat(fd)  # still the new owner's
    finally:
        for fd in held:
            os.close(fd)


async def test_unsatisfiable_read_closes_even_with_the_data_already_buffered() -> None:
    read_fd, write_fd = os.pipe()
    reader, writer = iostream.PipeIOStream(read_fd), iostream.PipeIOStream(write_fd)
    await writer.write(b"123456")
    await reader.read_bytes(1, partial=True)  # the rest is buffered now
    with pytest.raises(StreamClosedError) as closed:
        await reader.read_until(b"def", max_bytes=3)
    assert isinstance(closed.value.real_error, UnsatisfiableReadError)
    assert reader.closed()
    writer.close()
