"""HTTP/2 (asyncweb.protocol.http2): real clients (curl, the h2 library over a socket) against
HTTPServer(http2=...), on loopback; handlers can't tell the versions apart but by version."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from asyncweb import web
from asyncweb.httpserver import HTTPServer
from asyncweb.protocol import StreamClosedError
from asyncweb.protocol.http2 import HTTP2Params, HTTP2ServerProtocol
from tests.support.servers import Serve, wait_until

CURL = shutil.which("curl")


def curl_has_http2() -> bool:
    if CURL is None:
        return False
    out = subprocess.run([CURL, "-V"], capture_output=True, text=True).stdout
    return "HTTP2" in out


needs_curl = pytest.mark.skipif(not curl_has_http2(), reason="curl with HTTP/2 is not installed")


class RawH2:
    """A minimal HTTP/2 client on the h2 library over a real socket; it keeps every event."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Any
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.conn: h2.connection.H2Connection = conn
        self.events: list[h2.events.Event] = []
        self.bodies: dict[int, bytearray] = {}
        self.closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        validate: bool = True,
        settings: dict[int, int] | None = None,
        auto_ack: bool = True,
    ) -> RawH2:
        host, port = url.rsplit("//", 1)[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=False,
        )
        conn = h2.connection.H2Connection(config=config)
        if settings:
            conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        conn.initiate_connection()
        client = cls(reader, writer, conn)
        client.auto_ack = auto_ack
        client.flush()
        return client

    auto_ack = True

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def request(
        self,
        path: str = "/",
        method: str = "GET",
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
        end: bool = True,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        pairs = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", b"http"),
            (b":authority", b"127.0.0.1"),
        ]
        pairs += [(n.encode(), v.encode()) for n, v in headers or []]
        self.conn.send_headers(stream_id, pairs, end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end)
        self.flush()
        return stream_id

    async def read_until(self, done: Callable[[], object], timeout: float = 20.0) -> None:
        """Read and process events until ``done()`` or the connection closes."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not done() and not self.closed:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError("timed out waiting for the server")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self.closed = True
                break
            for event in self._receive(data):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived) and event.stream_id:
                    self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data or b"")
                    if self.auto_ack:
                        self.conn.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id
                        )
            self.flush()

    def _receive(self, data: bytes) -> list[h2.events.Event]:
        """Frame by frame: h2 refuses every frame after a GOAWAY, but RFC 9113 6.8 lets the
        streams up to its last id finish, so a graceful one puts the client back to open."""
        self._buffer += data
        events: list[h2.events.Event] = []
        while len(self._buffer) >= 9:
            size = 9 + int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < size:
                break
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            for event in self.conn.receive_data(frame):
                events.append(event)
                if isinstance(event, h2.events.ConnectionTerminated) and not event.error_code:
                    self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return events

    _buffer = b""

    def of(self, kind: type, stream_id: int | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (stream_id is None or e.stream_id == stream_id)
        ]

    def ended(self, stream_id: int) -> bool:
        return bool(self.of(h2.events.StreamEnded, stream_id) or self.reset_code(stream_id))

    def reset_code(self, stream_id: int) -> int | None:
        resets = self.of(h2.events.StreamReset, stream_id)
        return int(resets[0].error_code) if resets else None

    def goaway(self) -> h2.events.ConnectionTerminated | None:
        found = self.of(h2.events.ConnectionTerminated)
        return found[0] if found else None

    def status(self, stream_id: int) -> int:
        for event in self.of(h2.events.ResponseReceived, stream_id):
            return int(dict(event.headers)[b":status"])
        raise AssertionError(f"no response on stream {stream_id}")

    def response_headers(self, stream_id: int) -> list[tuple[bytes, bytes]]:
        for event in self.of(h2.events.ResponseReceived, stream_id):
            return list(event.headers)
        raise AssertionError(f"no response on stream {stream_id}")

    async def get(self, path: str = "/", **kwargs: Any) -> tuple[int, bytes]:
        stream_id = self.request(path, **kwargs)
        await self.read_until(lambda: self.ended(stream_id))
        return self.status(stream_id), bytes(self.bodies.get(stream_id, b""))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def run_curl(*args: str) -> tuple[int, str, str]:
    assert CURL is not None
    proc = await asyncio.create_subprocess_exec(
        CURL, "-sS", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode("latin-1"), err.decode("latin-1")


async def curl_ok(*args: str) -> str:
    rc, out, err = await run_curl(*args)
    assert rc == 0, err
    return out


# -- the app ------------------------------------------------------------------------------------


class Echo(web.RequestHandler):
    def get(self) -> None:
        self.set_cookie("a", "1")
        self.set_cookie("b", "2")
        self.write(
            {
                "version": self.request.version,
                "host": self.request.host,
                "cookie": self.request.headers.get("Cookie"),
                "args": self.get_arguments("x"),
            }
        )

    def post(self) -> None:
        self.write(f"got {len(self.request.body)} {self.get_body_argument('k', '-')}")


class Streamer(web.RequestHandler):
    progress: dict[str, Any] = {}

    async def get(self) -> None:
        chunks = int(self.get_argument("n", "8"))
        name = self.get_argument("name", "s")
        self.progress[name] = 0
        try:
            for _ in range(chunks):
                self.write(b"x" * 16384)
                await self.flush()
                self.progress[name] += 1
        except StreamClosedError:
            self.progress[name + "-closed"] = True


@web.stream_request_body
class Upload(web.RequestHandler):
    def prepare(self) -> None:
        self.size = 0
        self.chunks = 0
        self.request.connection.set_max_body_size(10 * 1024 * 1024)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.chunks += 1

    def put(self) -> None:
        self.write(f"{self.size}")


class Boom(web.RequestHandler):
    def get(self) -> None:
        raise ValueError("boom")


class Redirect(web.RequestHandler):
    def get(self) -> None:
        self.redirect("/echo")


class Template(web.RequestHandler):
    def get(self) -> None:
        self.render("page.html", items=["a", "<b>"])


class Gate(web.RequestHandler):
    gate: asyncio.Event | None = None

    async def get(self) -> None:
        assert self.gate is not None
        await self.gate.wait()
        self.write("released")


def make_app(tmp_path: Path, **settings: Any) -> web.Application:
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "data.bin").write_bytes(bytes(range(256)) * 400)
    (tmp_path / "page.html").write_text("{% for i in items %}<li>{{ i }}</li>{% end %}")
    return web.Application(
        [
            (r"/echo", Echo),
            (r"/stream", Streamer),
            (r"/upload", Upload),
            (r"/boom", Boom),
            (r"/redirect", Redirect),
            (r"/template", Template),
            (r"/gate", Gate),
        ],
        static_path=str(static),
        template_path=str(tmp_path),
        **settings,
    )


def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return ctx, ca_path


# -- how HTTP/2 is reached ----------------------------------------------------------------------


@needs_curl
async def test_curl_prior_knowledge_and_http1_on_one_port(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    rc, out, err = await run_curl("--http2-prior-knowledge", "-i", url + "/echo?x=1&x=2")
    assert rc == 0, err
    assert out.startswith("HTTP/2 200")
    assert '"version": "HTTP/2.0"' in out
    assert '"args": ["1", "2"]' in out
    assert out.count("set-cookie:") == 2
    rc, out, err = await run_curl("--http1.1", "-i", url + "/echo")
    assert rc == 0, err
    assert out.startswith("HTTP/1.1 200")
    assert '"version": "HTTP/1.1"' in out


@needs_curl
async def test_curl_tls_alpn_h2_and_http11(serve: Serve, tmp_path: Path) -> None:
    ctx, ca = tls_contexts(tmp_path)
    url = await serve(make_app(tmp_path), http2=True, ssl_options=ctx)
    port = url.rsplit(":", 1)[1]
    resolve = f"localhost:{port}:127.0.0.1"
    base = f"https://localhost:{port}"
    rc, out, err = await run_curl(
        "--http2", "-v", "--cacert", str(ca), "--resolve", resolve, base + "/echo"
    )
    assert rc == 0, err
    assert "ALPN: server accepted h2" in err
    assert '"version": "HTTP/2.0"' in out
    rc, out, err = await run_curl(
        "--http1.1", "-v", "--cacert", str(ca), "--resolve", resolve, base + "/echo"
    )
    assert rc == 0, err
    assert '"version": "HTTP/1.1"' in out


async def test_without_http2_the_preface_is_refused(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path))
    client = await RawH2.connect(url)
    await client.read_until(lambda: False)
    assert client.closed  # HTTP/1 answered the preface with an error and closed
    await client.close()


# -- the framework over HTTP/2 --------------------------------------------------------------------


@needs_curl
async def test_framework_features_over_curl(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path, xsrf_cookies=True), http2=True)
    h2 = ["--http2-prior-knowledge", "-i"]
    # Errors: the framework's 500 page.
    out = await curl_ok(*h2, url + "/boom")
    assert out.startswith("HTTP/2 500")
    # Redirects.
    out = await curl_ok(*h2, url + "/redirect")
    assert out.startswith("HTTP/2 302") and "location: /echo" in out
    # Templates (autoescaped).
    out = await curl_ok(*h2, url + "/template")
    assert "<li>a</li><li>&lt;b&gt;</li>" in out
    # XSRF: a POST without the token is refused, with it accepted.
    out = await curl_ok(*h2, "-d", "k=v", url + "/echo")
    assert out.startswith("HTTP/2 403")
    token = "2|abcd1234|" + "0" * 40 + "|1"
    out = await curl_ok(*h2, "-b", "_xsrf=" + token, "-d", "k=v&_xsrf=" + token, url + "/echo")
    assert out.startswith("HTTP/2 200"), out
    assert "got " in out and " v" in out
    # Static files: ranges and validators.
    out = await curl_ok(*h2, "-r", "10-19", url + "/static/data.bin")
    assert out.startswith("HTTP/2 206") and "content-range: bytes 10-19/102400" in out
    out = await curl_ok(*h2, url + "/static/data.bin", "-o", "/dev/null", "-D", "-")
    etag = [line.split(": ", 1)[1].strip() for line in out.splitlines() if line.startswith("etag")]
    out = await curl_ok(*h2, "-H", f"If-None-Match: {etag[0]}", url + "/static/data.bin")
    assert out.startswith("HTTP/2 304")
    out = await curl_ok(*h2, "-I", url + "/static/data.bin")
    assert out.startswith("HTTP/2 200") and "content-length: 102400" in out


@needs_curl
async def test_uploads_streamed_and_buffered(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    body = tmp_path / "body"
    body.write_bytes(b"a" * 3_000_000)
    rc, out, err = await run_curl(
        "--http2-prior-knowledge", "-X", "PUT", "--data-binary", f"@{body}", url + "/upload"
    )
    assert rc == 0, err
    assert out == "3000000"
    rc, out, err = await run_curl(
        "--http2-prior-knowledge", "--data-binary", f"@{body}", url + "/echo"
    )
    assert out == "got 3000000 -"


async def test_wsgi_and_asgi_over_http2(serve: Serve) -> None:
    from asyncweb.asgi import ASGIContainer
    from asyncweb.wsgi import WSGIContainer

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi ", environ["SERVER_PROTOCOL"].encode()]

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["http_version"].encode()})

    for app, expected in (
        (WSGIContainer(wsgi_app), b"wsgi HTTP/2.0"),
        (ASGIContainer(asgi_app), b"2"),
    ):
        url = await serve(app, http2=True)
        client = await RawH2.connect(url)
        status, body = await client.get("/")
        assert (status, body) == (200, expected)
        await client.close()


# -- flow control -------------------------------------------------------------------------------


async def test_slow_reader_stalls_only_its_own_stream(serve: Serve, tmp_path: Path) -> None:
    Streamer.progress = {}
    params = HTTP2Params(send_timeout=None)
    url = await serve(make_app(tmp_path), http2=params)
    # Every stream starts with a zero window; only the second one is opened.
    client = await RawH2.connect(
        url, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}, auto_ack=True
    )
    await client.read_until(lambda: client.of(h2.events.SettingsAcknowledged))
    slow = client.request("/stream?n=200&name=slow")
    fast = client.request("/stream?n=40&name=fast")
    client.conn.increment_flow_control_window(2**30)
    client.conn.increment_flow_control_window(2**30, stream_id=fast)
    client.flush()
    await client.read_until(lambda: client.ended(fast))
    assert client.status(fast) == 200
    assert len(client.bodies[fast]) == 40 * 16384
    # The stalled handler got as far as the stream buffer lets it (4 chunks of 16 KiB in
    # 64 KiB; the fifth write waits), and no further.
    bound = params.stream_buffer_size // 16384
    await wait_until(lambda: Streamer.progress.get("slow") == bound)
    await asyncio.sleep(0.1)
    assert Streamer.progress["slow"] == bound
    assert not client.ended(slow)
    await client.close()
    await wait_until(lambda: Streamer.progress.get("slow-closed"))


async def test_zero_window_stream_is_reset_after_send_timeout(serve: Serve, tmp_path: Path) -> None:
    Streamer.progress = {}
    url = await serve(make_app(tmp_path), http2=HTTP2Params(send_timeout=0.3))
    client = await RawH2.connect(url, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    stalled = client.request("/stream?n=1000&name=z")
    await client.read_until(lambda: client.ended(stalled))
    assert client.reset_code(stalled) == h2.errors.ErrorCodes.CANCEL
    await wait_until(lambda: Streamer.progress.get("z-closed"))
    assert Streamer.progress["z"] <= HTTP2Params().stream_buffer_size // 16384 + 1
    # The connection itself is still good.
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    client.flush()
    status, body = await client.get("/echo")
    assert status == 200 and b"HTTP/2.0" in body
    await client.close()


async def test_client_gone_fails_writes_promptly(serve: Serve, tmp_path: Path) -> None:
    Streamer.progress = {}
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    first = client.request("/stream?n=1000&name=r")
    client.request("/stream?n=1000&name=t")
    await wait_until(lambda: "r" in Streamer.progress and "t" in Streamer.progress)
    # A reset ends one stream's handler...
    client.conn.reset_stream(first)
    client.flush()
    await wait_until(lambda: Streamer.progress.get("r-closed"))
    assert "t-closed" not in Streamer.progress
    # ...a closed connection every other one.
    await client.close()
    await wait_until(lambda: Streamer.progress.get("t-closed"))


# -- shutdown -----------------------------------------------------------------------------------


async def test_graceful_shutdown_goaway_then_inflight_finishes(tmp_path: Path) -> None:
    from asyncweb.netutil import bind_sockets

    Gate.gate = asyncio.Event()
    server = HTTPServer(make_app(tmp_path), http2=True)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    client = await RawH2.connect(url)
    inflight = client.request("/gate")
    await wait_until(lambda: any(c.request_in_flight for c in server._connections))
    server.stop()
    closing = asyncio.ensure_future(server.close_all_connections())
    await client.read_until(lambda: client.goaway() is not None)
    goaway = client.goaway()
    assert goaway is not None
    assert goaway.error_code == 0 and goaway.last_stream_id == inflight
    assert not closing.done()
    Gate.gate.set()
    await client.read_until(lambda: client.ended(inflight))
    assert client.status(inflight) == 200 and bytes(client.bodies[inflight]) == b"released"
    await asyncio.wait_for(closing, 20)
    await client.read_until(lambda: False)
    assert client.closed
    await client.close()


async def test_requests_above_goaway_are_refused(serve: Serve, tmp_path: Path) -> None:
    Gate.gate = asyncio.Event()
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    first = client.request("/gate")
    await wait_until(lambda: [p for p in _h2_protocols() if p._streams])
    protocols = [p for p in _h2_protocols() if p._streams]
    protocols[0].close_when_idle()
    await client.read_until(lambda: client.goaway() is not None)
    later = client.request("/echo")
    await client.read_until(lambda: client.ended(later))
    assert client.reset_code(later) == h2.errors.ErrorCodes.REFUSED_STREAM
    Gate.gate.set()
    await client.read_until(lambda: client.ended(first))
    assert client.status(first) == 200
    await client.close()


def _h2_protocols() -> list[HTTP2ServerProtocol]:
    import gc

    return [o for o in gc.get_objects() if isinstance(o, HTTP2ServerProtocol) and not o._closed]


@pytest.mark.skipif(not os.path.exists("/usr/bin/h2load"), reason="h2load is not installed")
async def test_h2load_runs_clean(serve: Serve, tmp_path: Path) -> None:
    url = await serve(make_app(tmp_path), http2=True)
    proc = await asyncio.create_subprocess_exec(
        "h2load", "-n", "200", "-c", "4", "-m", "10", url + "/echo", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    text = out.decode()
    assert "200 succeeded, 0 failed, 0 errored" in text, text


# -- asyncweb serve --http2 ---------------------------------------------------------------------


@needs_curl
def test_cli_serve_http2_cleartext_and_tls(tmp_path: Path) -> None:
    from tests.cli_apps.runner import Server, kill_all

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    started = []
    try:
        plain = Server("cli_apps.pid_app:app", "--port", "0", "--http2")
        started.append(plain)
        out = subprocess.run(
            [
                CURL or "curl",
                "-sS",
                "--http2-prior-knowledge",
                "-w",
                " %{http_version}",
                plain.url() + "/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert out == f"{plain.proc.pid} 2"
        tls = Server(
            "cli_apps.pid_app:app",
            "--port",
            "0",
            "--http2",
            "--certfile",
            str(tmp_path / "cert.pem"),
        )
        started.append(tls)
        url = tls.url()
        assert url.startswith("https://")
        port = url.rsplit(":", 1)[1]
        out = subprocess.run(
            [
                CURL or "curl",
                "-sS",
                "--http2",
                "-w",
                " %{http_version}",
                "--cacert",
                str(tmp_path / "ca.pem"),
                "--resolve",
                f"localhost:{port}:127.0.0.1",
                f"https://localhost:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert out == f"{tls.proc.pid} 2"
    finally:
        kill_all(started)


def test_stateless_hpack_blocks_decode_with_any_table_size() -> None:
    """The server's HPACK blocks read the same to a decoder whose peer allowed a table of 4096
    bytes or of none (they announce size 0 first and never index)."""
    import hpack

    from asyncweb.protocol.h2_hpack import StatelessEncoder

    heads = [
        [(b":status", b"200"), (b"content-type", b"text/html; charset=UTF-8")],
        [(b":status", b"404"), (b"x-" + b"n" * 200, b"v" * 300), (b"set-cookie", b"a=1")],
        [(b":status", b"200"), (b"content-length", b"12"), (b"etag", b'"x"')],
    ]
    for table_size in (4096, 0):
        encoder = StatelessEncoder()
        decoder = hpack.Decoder()
        decoder.max_allowed_table_size = table_size
        for _ in range(2):
            for head in heads:
                assert decoder.decode(encoder.encode(head), raw=True) == head
        assert len(decoder.header_table.dynamic_entries) == 0


async def test_xheaders_apply_per_stream(serve: Serve) -> None:
    """Overlapping streams behind a proxy each see their own X-Real-Ip."""
    Gate.gate = asyncio.Event()

    class Ip(web.RequestHandler):
        async def get(self) -> None:
            if self.get_argument("wait", ""):
                assert Gate.gate is not None
                await Gate.gate.wait()
            self.write(self.request.remote_ip)

    url = await serve(web.Application([(r"/", Ip)]), http2=True, xheaders=True)
    client = await RawH2.connect(url)
    slow = client.request("/?wait=1", headers=[("x-real-ip", "10.0.0.1")])
    await asyncio.sleep(0.05)
    status, body = await client.get("/", headers=[("x-real-ip", "10.0.0.2")])
    assert (status, body) == (200, b"10.0.0.2")
    Gate.gate.set()
    await client.read_until(lambda: client.ended(slow))
    assert bytes(client.bodies[slow]) == b"10.0.0.1"
    await client.close()


async def test_client_goaway_lets_its_streams_finish(serve: Serve, tmp_path: Path) -> None:
    Gate.gate = asyncio.Event()
    url = await serve(make_app(tmp_path), http2=True)
    client = await RawH2.connect(url)
    inflight = client.request("/gate")
    await asyncio.sleep(0.05)
    client.conn.close_connection()
    client.flush()
    client.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN  # see _receive
    await asyncio.sleep(0.05)
    Gate.gate.set()
    await client.read_until(lambda: client.ended(inflight))
    assert client.status(inflight) == 200 and bytes(client.bodies[inflight]) == b"released"
    await client.read_until(lambda: False)
    assert client.closed  # and the server closed once it was done
    await client.close()
