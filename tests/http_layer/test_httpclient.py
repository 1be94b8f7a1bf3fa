"""asyncweb.httpclient against asyncweb's own server and the standard library's http.server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.server
import socket
import ssl
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from asyncweb import httpclient, simple_httpclient
from asyncweb.httpclient import (
    AsyncHTTPClient,
    HTTPClient,
    HTTPClientError,
    HTTPError,
    HTTPRequest,
    HTTPResponse,
)
from asyncweb.httputil import HTTPInputError
from asyncweb.simple_httpclient import (
    HTTPStreamClosedError,
    HTTPTimeoutError,
    SimpleAsyncHTTPClient,
)
from asyncweb.web import Application, RequestHandler, stream_request_body
from tests.support.servers import Serve, free_port, wait_until

# -- asyncweb app under test -----------------------------------------------------------------------


class Echo(RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "method": "GET",
                "headers": dict(self.request.headers.get_all()),
                "query": self.request.query,
                "conn": id(self.request.connection),
                "remote": self.request.remote_ip,
            }
        )

    def post(self) -> None:
        self.write({"method": "POST", "body": self.request.body.decode(), "conn": 0})

    def put(self) -> None:
        self.write({"method": "PUT", "body": self.request.body.decode(), "conn": 0})

    def head(self) -> None:
        self.set_header("X-Head", "yes")


class Redirect(RequestHandler):
    def get(self, code: str) -> None:
        self.redirect(f"/echo?from={code}", status=int(code))

    def post(self, code: str) -> None:
        self.redirect(f"/echo?from={code}", status=int(code))


class Chain(RequestHandler):
    def get(self, n: str) -> None:
        left = int(n)
        self.redirect(f"/chain/{left - 1}" if left else "/echo")


class Slow(RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(float(self.get_argument("delay", "5")))
        self.write("late")


class Chunks(RequestHandler):
    async def get(self) -> None:
        for i in range(5):
            self.write(f"part{i};" * 100)
            await self.flush()
        self.finish()


@stream_request_body
class Upload(RequestHandler):
    def prepare(self) -> None:
        self.sizes: list[int] = []

    def data_received(self, chunk: bytes) -> None:
        self.sizes.append(len(chunk))

    def post(self) -> None:
        self.write({"total": sum(self.sizes), "te": self.request.headers.get("Transfer-Encoding")})

    put = post


class Status(RequestHandler):
    def get(self, code: str) -> None:
        self.set_status(int(code))
        if int(code) not in (204, 304):
            self.write("status body")


class Auth(RequestHandler):
    def get(self) -> None:
        header = self.request.headers.get("Authorization", "")
        self.write(base64.b64decode(header.split(" ", 1)[1]).decode() if header else "none")


class Big(RequestHandler):
    def get(self) -> None:
        self.write(b"x" * 100_000)


def make_app() -> Application:
    return Application(
        [
            (r"/echo", Echo),
            (r"/redirect/(\d+)", Redirect),
            (r"/chain/(\d+)", Chain),
            (r"/slow", Slow),
            (r"/chunks", Chunks),
            (r"/upload", Upload),
            (r"/status/(\d+)", Status),
            (r"/auth", Auth),
            (r"/big", Big),
        ],
        compress_response=True,
    )


@pytest.fixture
async def base(serve: Serve) -> str:
    return await serve(make_app())


@pytest.fixture
async def client() -> Any:
    c = AsyncHTTPClient(force_instance=True)
    yield c
    c.close()


# -- a third-party server: the standard library's http.server in a thread --------------------------


class StdlibHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Filled per server: client ports seen and how to answer.
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.ports.append(self.client_address[1])
        self.server.requests_on_conn = getattr(self, "_count", 0) + 1
        self._count = self.server.requests_on_conn
        if self.path == "/drop-second" and self._count >= 2:
            self.close_connection = True  # a stale keep-alive connection: no answer, just EOF
            return
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/landed?via=stdlib")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/hang":
            self.server.release.wait(10)  # until the test is over
            self.close_connection = True
            return
        if self.path == "/gzip":
            body = gzip.compress(b"hello gzip " * 50)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
        else:
            body = f"stdlib {self.path}".encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self._count = getattr(self, "_count", 0) + 1
        if self.path == "/drop-second" and self._count >= 2:
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stdlib_server() -> Iterator[Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StdlibHandler)
    server.daemon_threads = True
    server.ports = []  # type: ignore[attr-defined]
    server.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(5)


def stdlib_url(server: Any, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


# -- basics ----------------------------------------------------------------------------------------


async def test_get_post_put_head(base: str, client: AsyncHTTPClient) -> None:
    response = await client.fetch(base + "/echo?a=1", headers={"X-Test": "v"})
    assert response.code == 200 and response.reason == "OK"
    data = httpclient_json(response)
    assert data["headers"]["X-Test"] == "v"
    assert data["headers"]["User-Agent"].startswith("asyncweb/")
    assert data["query"] == "a=1"
    assert response.effective_url == base + "/echo?a=1"
    assert response.request_time is not None and response.request_time >= 0
    assert response.start_time is not None and "queue" in response.time_info
    assert response.buffer is not None and response.buffer.getvalue() == response.body

    response = await client.fetch(base + "/echo", method="POST", body="x=1")
    assert httpclient_json(response)["body"] == "x=1"
    response = await client.fetch(base + "/echo", method="PUT", body=b"put")
    assert httpclient_json(response)["body"] == "put"
    response = await client.fetch(base + "/echo", method="HEAD")
    assert response.body == b"" and response.headers["X-Head"] == "yes"


def httpclient_json(response: HTTPResponse) -> Any:
    import json

    return json.loads(response.body)


async def test_user_agent_if_modified_since_and_basic_auth(
    base: str, client: AsyncHTTPClient
) -> None:
    import datetime

    when = datetime.datetime(2020, 1, 2, 3, 4, 5)
    response = await client.fetch(base + "/echo", user_agent="probe/1", if_modified_since=when)
    headers = httpclient_json(response)["headers"]
    assert headers["User-Agent"] == "probe/1"
    assert headers["If-Modified-Since"] == "Thu, 02 Jan 2020 03:04:05 GMT"
    response = await client.fetch(base + "/auth", auth_username="ann", auth_password="s:cret")
    assert response.body == b"ann:s:cret"
    user_in_url = base.replace("http://", "http://bob:pw@") + "/auth"
    assert (await client.fetch(user_in_url)).body == b"bob:pw"
    with pytest.raises(ValueError, match="unsupported auth_mode"):
        await client.fetch(base + "/auth", auth_username="a", auth_password="b", auth_mode="digest")


async def test_errors_raise_or_return(base: str, client: AsyncHTTPClient) -> None:
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/status/404")
    assert info.value.code == 404
    assert info.value.response is not None and info.value.response.body == b"status body"
    assert str(info.value) == "HTTP 404: Not Found"
    assert HTTPError is HTTPClientError

    response = await client.fetch(base + "/status/503", raise_error=False)
    assert response.code == 503 and isinstance(response.error, HTTPClientError)
    with pytest.raises(HTTPClientError):
        response.rethrow()
    ok = await client.fetch(base + "/status/204")
    assert ok.code == 204 and ok.error is None and ok.body == b""
    ok.rethrow()


async def test_request_validation(base: str, client: AsyncHTTPClient) -> None:
    with pytest.raises(ValueError, match="Body must not be None for method POST"):
        await client.fetch(base + "/echo", method="POST")
    with pytest.raises(ValueError, match="Body must be None for method GET"):
        await client.fetch(base + "/echo", body="x")
    ok = await client.fetch(base + "/echo", method="GET", body="x", allow_nonstandard_methods=True)
    assert ok.code == 200
    with pytest.raises(ValueError, match="Unsupported url scheme"):
        await client.fetch("ftp://127.0.0.1/x")
    with pytest.raises(ValueError, match="kwargs can't be used"):
        await client.fetch(HTTPRequest(base), method="POST")


async def test_header_crlf_refused_before_sending(stdlib_server: Any) -> None:
    client = AsyncHTTPClient(force_instance=True)
    try:
        for value in ("a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"):
            with pytest.raises(ValueError, match="Unsafe header value"):
                await client.fetch(stdlib_url(stdlib_server, "/x"), headers={"X-Bad": value})
        assert stdlib_server.ports == []  # nothing reached the server
        assert client.connections_opened == 0  # type: ignore[attr-defined]
    finally:
        client.close()


async def test_address_options(base: str, client: AsyncHTTPClient) -> None:
    port = base.rsplit(":", 1)[1]
    # The server listens on 127.0.0.1 only; IPv4-only resolution of localhost finds it.
    response = await client.fetch(f"http://localhost:{port}/echo", allow_ipv6=False)
    assert httpclient_json(response)["headers"]["Host"] == f"localhost:{port}"
    # The whole of 127/8 is loopback on Linux: a distinct source address shows up server-side.
    response = await client.fetch(base + "/echo", network_interface="127.0.0.2")
    assert httpclient_json(response)["remote"] == "127.0.0.2"
    # That connection is pooled for requests from the same source address only.
    assert httpclient_json(await client.fetch(base + "/echo"))["remote"] == "127.0.0.1"
    mapped = AsyncHTTPClient(force_instance=True, hostname_mapping={"service.invalid": "127.0.0.1"})
    try:
        response = await mapped.fetch(f"http://service.invalid:{port}/echo")
        assert httpclient_json(response)["headers"]["Host"] == f"service.invalid:{port}"
    finally:
        mapped.close()


# -- redirects -------------------------------------------------------------------------------------


async def test_redirects_follow_rfc_methods(base: str, client: AsyncHTTPClient) -> None:
    response = await client.fetch(base + "/redirect/302")
    assert response.effective_url == base + "/echo?from=302"
    assert response.request.url == base + "/redirect/302"

    for code, expected in (("301", "GET"), ("302", "GET"), ("303", "GET"), ("307", "POST")):
        response = await client.fetch(base + f"/redirect/{code}", method="POST", body="payload")
        data = httpclient_json(response)
        assert data["method"] == expected, code
        if expected == "POST":
            assert data["body"] == "payload"  # 307 repeats the request as it was

    response = await client.fetch(base + "/chain/3")
    assert response.effective_url == base + "/echo"
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/chain/3", max_redirects=2)
    assert info.value.code == 302
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/redirect/301", follow_redirects=False)
    assert info.value.code == 301
    assert info.value.response is not None
    assert info.value.response.headers["Location"] == "/echo?from=301"


# -- timeouts and connection failures --------------------------------------------------------------


async def test_request_timeout(base: str, client: AsyncHTTPClient) -> None:
    with pytest.raises(HTTPTimeoutError) as info:
        await client.fetch(base + "/slow?delay=5", request_timeout=0.2)
    assert info.value.code == 599 and str(info.value) == "Timeout during request"
    # The client is still fine afterwards.
    assert (await client.fetch(base + "/echo")).code == 200


async def test_connect_timeout(client: AsyncHTTPClient) -> None:
    # A listening socket that never accepts: TCP completes in the kernel, TLS never does.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with pytest.raises(HTTPTimeoutError) as info:
            await client.fetch(f"https://127.0.0.1:{port}/", connect_timeout=0.2)
        # As Tornado: the message names the step that ran out of time.
        tls = f"Timeout during TLS handshake with 127.0.0.1:{port}"
        assert info.value.code == 599 and str(info.value) == tls
        with pytest.raises(HTTPTimeoutError) as info:
            await client.fetch(f"https://127.0.0.1:{port}/", request_timeout=0.2)
        assert str(info.value) == tls


async def test_connection_refused_is_599(client: AsyncHTTPClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(ConnectionRefusedError):
        await client.fetch(url)
    with pytest.raises(ConnectionRefusedError):
        await client.fetch(url, raise_error=False)  # not a response code: still raised
    seen: list[HTTPResponse] = []
    done = asyncio.Event()

    def callback(response: HTTPResponse) -> None:
        seen.append(response)
        done.set()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.fetch(url, callback=callback)
    await asyncio.wait_for(done.wait(), 20)
    assert seen[0].code == 599 and isinstance(seen[0].error, ConnectionRefusedError)


async def test_legacy_callback_warns_once(base: str, client: AsyncHTTPClient) -> None:
    httpclient._warned_callback = False
    got: list[HTTPResponse] = []
    with pytest.warns(DeprecationWarning, match="callback argument"):
        future = client.fetch(base + "/echo", callback=got.append)
    response = await future
    await asyncio.sleep(0)
    assert got and got[0] is response
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await client.fetch(base + "/status/404", callback=got.append)
    await asyncio.sleep(0)
    assert got[1].code == 404  # errors go to the callback, not raised


# -- bodies: gzip, streaming, limits, 100-continue -------------------------------------------------


async def test_gzip_from_asyncweb_and_stdlib(
    base: str, client: AsyncHTTPClient, stdlib_server: Any
) -> None:
    response = await client.fetch(base + "/big")
    assert response.body == b"x" * 100_000
    assert response.headers["X-Consumed-Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in response.headers
    raw = await client.fetch(base + "/big", decompress_response=False)
    assert "Content-Encoding" not in raw.headers and raw.body == b"x" * 100_000  # not asked
    raw = await client.fetch(
        base + "/big", decompress_response=False, headers={"Accept-Encoding": "gzip"}
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw.body) == b"x" * 100_000

    response = await client.fetch(stdlib_url(stdlib_server, "/gzip"))
    assert response.body == b"hello gzip " * 50
    response = await client.fetch(stdlib_url(stdlib_server, "/gzip"), use_gzip=False)
    assert gzip.decompress(response.body) == b"hello gzip " * 50


async def test_streaming_download_and_header_callback(base: str, client: AsyncHTTPClient) -> None:
    chunks: list[bytes] = []
    lines: list[str] = []
    response = await client.fetch(
        base + "/chunks",
        streaming_callback=chunks.append,
        header_callback=lines.append,
        decompress_response=False,
    )
    assert response.body == b""
    assert b"".join(chunks) == b"".join(f"part{i};".encode() * 100 for i in range(5))
    assert len(chunks) >= 2
    assert lines[0] == "HTTP/1.1 200 OK\r\n" and lines[-1] == "\r\n"
    assert any(line.lower().startswith("transfer-encoding: chunked") for line in lines)


async def test_streaming_upload_with_body_producer(base: str, client: AsyncHTTPClient) -> None:
    async def producer(write: Any) -> None:
        for _ in range(20):
            await write(b"y" * 10_000)

    response = await client.fetch(base + "/upload", method="POST", body_producer=producer)
    assert httpclient_json(response) == {"total": 200_000, "te": "chunked"}
    # With a Content-Length the body is sent as is.
    response = await client.fetch(
        base + "/upload",
        method="PUT",
        body_producer=producer,
        headers={"Content-Length": "200000"},
    )
    assert httpclient_json(response) == {"total": 200_000, "te": None}


async def test_expect_100_continue(base: str, client: AsyncHTTPClient) -> None:
    response = await client.fetch(
        base + "/echo", method="POST", body="after-100", expect_100_continue=True
    )
    assert httpclient_json(response)["body"] == "after-100"


async def test_body_and_header_limits(base: str, client: AsyncHTTPClient) -> None:
    with pytest.raises(HTTPInputError, match="Content-Length too long"):
        await client.fetch(base + "/big", max_body_size=1000, decompress_response=False)
    with pytest.raises(HTTPInputError, match="Body too long"):
        await client.fetch(base + "/chunks", max_body_size=1000, decompress_response=False)
    with pytest.raises(HTTPInputError):
        await client.fetch(base + "/echo", max_header_size=50)
    limited = AsyncHTTPClient(force_instance=True, max_body_size=10)
    try:
        with pytest.raises(HTTPInputError):
            await limited.fetch(base + "/big")
    finally:
        limited.close()


# -- pooling ---------------------------------------------------------------------------------------


async def test_against_stdlib_server(client: AsyncHTTPClient, stdlib_server: Any) -> None:
    response = await client.fetch(stdlib_url(stdlib_server, "/redirect"))
    assert response.effective_url == stdlib_url(stdlib_server, "/landed?via=stdlib")
    assert response.body == b"stdlib /landed?via=stdlib"
    with pytest.raises(HTTPTimeoutError, match="Timeout during request"):
        await client.fetch(stdlib_url(stdlib_server, "/hang"), request_timeout=0.2)

    async def producer(write: Any) -> None:
        for i in range(4):
            await write(b"%d" % i * 1000)

    response = await client.fetch(
        stdlib_url(stdlib_server, "/upload"),
        method="POST",
        body_producer=producer,
        headers={"Content-Length": "4000"},
    )
    assert response.body == b"".join(b"%d" % i * 1000 for i in range(4))


async def test_connection_reuse_visible_server_side(
    base: str, client: AsyncHTTPClient, stdlib_server: Any
) -> None:
    conns = {httpclient_json(await client.fetch(base + "/echo"))["conn"] for _ in range(5)}
    assert len(conns) == 1
    for _ in range(4):
        await client.fetch(stdlib_url(stdlib_server, "/a"))
    assert len(set(stdlib_server.ports)) == 1 and len(stdlib_server.ports) == 4
    # Concurrent requests need their own connections; afterwards they are pooled too.
    await asyncio.gather(*(client.fetch(base + "/slow?delay=0.05") for _ in range(3)))
    opened = client.connections_opened  # type: ignore[attr-defined]
    await asyncio.gather(*(client.fetch(base + "/slow?delay=0.05") for _ in range(3)))
    assert client.connections_opened == opened  # type: ignore[attr-defined]


async def test_idle_limits(base: str) -> None:
    # How many are kept, with an idle timeout no slow machine reaches during the test.
    client = AsyncHTTPClient(force_instance=True, max_idle_per_host=1, idle_timeout=60)
    try:
        await asyncio.gather(*(client.fetch(base + "/slow?delay=0.05") for _ in range(3)))
        assert client.connections_opened == 3  # type: ignore[attr-defined]
        assert sum(len(v) for v in client._idle.values()) == 1  # type: ignore[attr-defined]
    finally:
        client.close()
    # How long: a short idle timeout, waited for rather than slept past.
    client = AsyncHTTPClient(force_instance=True, idle_timeout=0.1)
    try:
        await client.fetch(base + "/echo")
        await wait_until(lambda: not client._idle)  # type: ignore[attr-defined]
        opened = client.connections_opened  # type: ignore[attr-defined]
        await client.fetch(base + "/echo")
        assert client.connections_opened == opened + 1  # type: ignore[attr-defined]
    finally:
        client.close()


async def test_stale_pooled_connection_retried_for_idempotent_only(
    client: AsyncHTTPClient, stdlib_server: Any
) -> None:
    url = stdlib_url(stdlib_server, "/drop-second")
    assert (await client.fetch(url)).body == b"stdlib /drop-second"
    # The pooled connection gets EOF for the next request: a GET is sent again on a new one.
    assert (await client.fetch(url)).body == b"stdlib /drop-second"
    assert client.connections_opened == 2  # type: ignore[attr-defined]
    with pytest.raises(HTTPStreamClosedError) as info:
        # The same happens to a POST on the pooled connection, but it is not idempotent.
        await client.fetch(url, method="POST", body="two")
    assert info.value.code == 599


async def test_max_clients_queue(base: str) -> None:
    client = AsyncHTTPClient(force_instance=True, max_clients=1)
    try:
        responses = await asyncio.gather(
            *(client.fetch(base + "/slow?delay=0.05") for _ in range(3))
        )
        assert [r.body for r in responses] == [b"late"] * 3
        assert client.connections_opened == 1  # type: ignore[attr-defined]
        assert max(r.time_info["queue"] for r in responses) > 0
        slow = asyncio.ensure_future(client.fetch(base + "/slow?delay=1"))
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPTimeoutError, match="Timeout in request queue"):
            await client.fetch(base + "/echo", request_timeout=0.1)
        assert (await slow).body == b"late"
    finally:
        client.close()


async def test_close_fails_active_and_queued_requests(base: str) -> None:
    client = AsyncHTTPClient(force_instance=True, max_clients=1)
    active = asyncio.ensure_future(client.fetch(base + "/slow?delay=5"))
    queued = asyncio.ensure_future(client.fetch(base + "/echo"))
    await asyncio.sleep(0.1)
    client.close()
    for future in (active, queued):
        with pytest.raises(HTTPStreamClosedError):
            await asyncio.wait_for(future, 20)


# -- TLS -------------------------------------------------------------------------------------------


async def test_tls_with_throwaway_ca(serve: Serve, tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    base = await serve(make_app(), ssl_options=server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(base + "/echo", ca_certs=str(ca_file))
        assert response.code == 200
        with pytest.raises(ssl.SSLCertVerificationError):
            await client.fetch(base + "/echo")  # the system store does not know this CA
        assert (await client.fetch(base + "/echo", validate_cert=False)).code == 200
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        assert (await client.fetch(base + "/echo", ssl_options=client_ctx)).code == 200
        response = await client.fetch(
            base + "/echo", ssl_options={"ca_certs": str(ca_file)}, method="GET"
        )
        assert response.code == 200
        # The same TLS settings share a pooled connection.
        conns = {
            httpclient_json(await client.fetch(base + "/echo", ca_certs=str(ca_file)))["conn"]
            for _ in range(3)
        }
        assert len(conns) == 1
    finally:
        client.close()


async def test_tls_client_certificate(serve: Serve, tmp_path: Any) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no service
    base = await serve(make_app(), ssl_options=server_ctx)
    ca_file, cert_file, key_file = (tmp_path / name for name in ("ca.pem", "c.pem", "k.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    client_cert = ca.issue_cert("client@example.com")
    client_cert.cert_chain_pems[0].write_to_path(str(cert_file))
    client_cert.private_key_pem.write_to_path(str(key_file))
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(
            base + "/echo",
            ca_certs=str(ca_file),
            client_cert=str(cert_file),
            client_key=str(key_file),
        )
        assert response.code == 200
        with pytest.raises((ssl.SSLError, HTTPStreamClosedError, ConnectionError)):
            await client.fetch(base + "/echo", ca_certs=str(ca_file))
    finally:
        client.close()


# -- the client object -----------------------------------------------------------------------------


async def test_one_instance_per_loop_and_configure(base: str) -> None:
    shared = AsyncHTTPClient()
    try:
        assert AsyncHTTPClient() is shared
        assert isinstance(shared, SimpleAsyncHTTPClient)
        private = AsyncHTTPClient(force_instance=True)
        assert private is not shared
        private.close()
        with pytest.raises(RuntimeError, match="closed AsyncHTTPClient"):
            private.fetch(base + "/echo")
    finally:
        shared.close()
    assert AsyncHTTPClient() is not shared
    AsyncHTTPClient().close()

    AsyncHTTPClient.configure(
        "asyncweb.simple_httpclient.SimpleAsyncHTTPClient",
        max_clients=3,
        defaults={"user_agent": "configured/1"},
    )
    try:
        configured = AsyncHTTPClient(force_instance=True)
        assert configured.max_clients == 3  # type: ignore[attr-defined]
        response = await configured.fetch(base + "/echo")
        assert httpclient_json(response)["headers"]["User-Agent"] == "configured/1"
        configured.close()
        with pytest.raises(ValueError, match="Invalid subclass"):
            AsyncHTTPClient.configure(dict)  # type: ignore[arg-type]
    finally:
        AsyncHTTPClient.configure(None)
    assert AsyncHTTPClient.configured_class() is SimpleAsyncHTTPClient
    assert simple_httpclient.SimpleAsyncHTTPClient is SimpleAsyncHTTPClient


async def test_blocking_http_client(base: str, stdlib_server: Any) -> None:
    def work() -> tuple[bytes, bytes, int]:
        client = HTTPClient()
        try:
            body = client.fetch(base + "/echo?sync=1").body
            other = client.fetch(stdlib_url(stdlib_server, "/sync")).body
            try:
                client.fetch(base + "/status/404")
            except HTTPClientError as e:
                code = e.code
            return body, other, code
        finally:
            client.close()

    body, other, code = await asyncio.to_thread(work)
    assert b"sync=1" in body and other == b"stdlib /sync" and code == 404


async def test_command_line(base: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncweb.httpclient",
        "--print_headers",
        base + "/status/404",
        base + "/redirect/302",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    text = out.decode()
    assert "status body" in text  # an error response is printed, not raised
    assert "Content-Type: " in text and '"method": "GET"' in text
