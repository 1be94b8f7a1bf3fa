"""Hostile clients against a real server over loopback; after each attack a normal request on a
new connection must still be answered.

Expected behaviour comes from RFC 9110/9112 and Tornado's security advisories:
- request smuggling (GHSA-753j-mpmx-qq6g, GHSA-qppv-j76h-2rpx): duplicate, listed, unknown or
  obfuscated Transfer-Encoding, conflicting Content-Length, non-digit lengths and chunk sizes,
  bad chunk line endings and obs-fold are refused with a 4xx/501 and the connection closed,
  so nothing after them is read as another request (RFC 9112 6.1, 6.3, 7.1, 5.2);
- CRLF/NUL never reach the response head (header injection); error pages show no internals
  unless ``debug``/``serve_traceback``; slowloris heads and bodies are dropped by timeouts;
- parsing stays linear (CVE-2024-52804 cookie unquoting, GHSA-c98p-7wgm-6p64 repeated headers,
  multipart parameter splitting): inputs far larger than any default limit finish quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.web import Application, HTTPError, RequestHandler, stream_request_body
from tests.support.servers import Fetch, Serve, assert_linear, assert_linear_async, raw_exchange

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(autouse=True)
def quiet_bad_request_warnings() -> Iterator[None]:
    logging.getLogger("asyncweb").setLevel(logging.ERROR)
    yield
    logging.getLogger("asyncweb").setLevel(logging.NOTSET)


@pytest.fixture
def serve_both(protocol_settings: dict[str, Any], serve: Serve) -> Serve:
    """Each protocol variant in turn (see tests/support/servers.py)."""

    async def _serve(target: Any, **settings: Any) -> str:
        return await serve(target, **protocol_settings, **settings)

    return _serve


class Echo(RequestHandler):
    def get(self, *args: Any) -> None:
        self.write(f"{self.request.method} {self.request.path} {len(self.request.body)}\n")

    post = put = get


def app(*handlers: Any, **settings: Any) -> Application:
    """The handlers given, then Echo for every other path (``/after`` included)."""
    return Application([*handlers, (r"/(.*)", Echo)], **settings)


async def assert_still_serving(url: str) -> None:
    response = await raw_exchange(
        url, b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response[:200]
    assert response.endswith(b"GET /after 0\n")


def post(headers: bytes, body: bytes) -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body + SMUGGLED


# -- request smuggling ------------------------------------------------------------------------

CHUNKED_Z = b"1\r\nZ\r\n0\r\n\r\n"
REFUSED = {
    "duplicate-te": post(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_Z
    ),
    "listed-te": post(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_Z),
    "identity-then-chunked": post(b"Transfer-Encoding: identity, chunked\r\n", CHUNKED_Z),
    "gzip-then-chunked": post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_Z),
    "unknown-te": post(b"Transfer-Encoding: xchunked\r\n", CHUNKED_Z),
    "te-vertical-tab": post(b"Transfer-Encoding: chunked\x0b\r\n", CHUNKED_Z),
    "te-space-before-colon": post(b"Transfer-Encoding : chunked\r\n", CHUNKED_Z),
    "conflicting-content-lengths": post(b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"),
    "content-length-plus": post(b"Content-Length: +3\r\n", b"abc"),
    "content-length-minus": post(b"Content-Length: -3\r\n", b"abc"),
    "content-length-underscore": post(b"Content-Length: 0_3\r\n", b"abc"),
    "content-length-hex": post(b"Content-Length: 0x3\r\n", b"abc"),
    "content-length-huge": post(b"Content-Length: " + b"9" * 40 + b"\r\n", b"abc"),
    "chunk-size-plus": post(b"Transfer-Encoding: chunked\r\n", b"+1\r\nZ\r\n0\r\n\r\n"),
    "chunk-size-minus": post(b"Transfer-Encoding: chunked\r\n", b"-1\r\nZ\r\n0\r\n\r\n"),
    "chunk-size-0x": post(b"Transfer-Encoding: chunked\r\n", b"0x1\r\nZ\r\n0\r\n\r\n"),
    "chunk-size-underscore": post(b"Transfer-Encoding: chunked\r\n", b"0_1\r\nZ\r\n0\r\n\r\n"),
    "chunk-size-huge": post(b"Transfer-Encoding: chunked\r\n", b"f" * 30 + b"\r\nZ\r\n0\r\n\r\n"),
    "chunk-bare-lf": post(b"Transfer-Encoding: chunked\r\n", b"1\nZ\n0\n\n"),
    "chunk-data-overrun": post(b"Transfer-Encoding: chunked\r\n", b"1\r\nZXX0\r\n\r\n"),
    "chunk-extension-bare-lf": post(b"Transfer-Encoding: chunked\r\n", b"1;a\nb\r\nZ\r\n0\r\n\r\n"),
    "obs-fold": b"GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" + SMUGGLED,
    "obs-fold-tab": b"GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tTransfer-Encoding: chunked\r\n\r\n"
    + SMUGGLED,
    "bare-cr-in-value": b"GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + SMUGGLED,
    "nul-in-value": b"GET /p HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + SMUGGLED,
    "space-in-name": b"GET /p HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n" + SMUGGLED,
    "two-hosts": b"GET /p HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + SMUGGLED,
    "no-host": b"GET /p HTTP/1.1\r\n\r\n" + SMUGGLED,
    "http09": b"GET /p\r\n\r\n" + SMUGGLED,
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SMUGGLED,
}


@pytest.mark.parametrize("attack", REFUSED, ids=list(REFUSED))
async def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(
    serve_both: Serve, attack: str
) -> None:
    url = await serve_both(app())
    response = await raw_exchange(url, REFUSED[attack])  # reads until the server closes
    status = response.split(b"\r\n", 1)[0]
    assert status[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 501", b"HTTP/1.1 505"), response[:300]
    assert b"connection: close" in response.lower()
    assert response.count(b"HTTP/1.1 ") == 1, "a second request was read from the same bytes"
    assert b"GET /smuggled 0" not in response
    await assert_still_serving(url)


async def test_transfer_encoding_on_http10_never_keeps_the_connection(serve_both: Serve) -> None:
    # RFC 9112 6.1: faulty framing; the connection must close after this message.
    # (With "Connection: keep-alive" too: see docs/reliability.md, finding 4.)
    url = await serve_both(app())
    attack = b"POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
    response = await raw_exchange(url, attack + CHUNKED_Z + SMUGGLED)
    assert response.count(b"HTTP/1.1 ") == 1 and b"/smuggled" not in response, response
    assert b"connection: close" in response.lower()
    await assert_still_serving(url)


@pytest.mark.parametrize(
    "body",
    [
        post(b"Transfer-Encoding: CHUNKED\r\n", CHUNKED_Z),  # coding names are case-insensitive
        post(b"Transfer-Encoding: chunked\r\n", b"1;ext=v\r\nZ\r\n0\r\nX-Trailer: t\r\n\r\n"),
        post(b"Content-Length: 1\r\nContent-Length: 1\r\n", b"Z"),  # identical: RFC 9112 6.3
    ],
    ids=["uppercase-chunked", "extension-and-trailer", "repeated-identical-length"],
)
async def test_valid_framing_variants_frame_the_body_exactly(
    serve_both: Serve, body: bytes
) -> None:
    url = await serve_both(app())
    response = await raw_exchange(url, body.replace(SMUGGLED, b"") + _closing(b"/next"))
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert b"POST /p 1\n" in response and response.endswith(b"GET /next 0\n")


def _closing(path: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


# -- oversized and endless input ------------------------------------------------------------


async def test_oversized_head_line_and_body_are_refused(serve_both: Serve) -> None:
    url = await serve_both(app(), max_header_size=4096, max_body_size=1000)
    long_target = b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert (await raw_exchange(url, long_target)).startswith(b"HTTP/1.1 431")
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 1000 + b"\r\n"
    assert (await raw_exchange(url, many)).startswith(b"HTTP/1.1 431")
    big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001
    assert (await raw_exchange(url, big)).startswith(b"HTTP/1.1 413")
    chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"200\r\n" + b"x" * 512 + b"\r\n"
    chunked += b"200\r\n" + b"x" * 512 + b"\r\n0\r\n\r\n"
    assert (await raw_exchange(url, chunked)).startswith(b"HTTP/1.1 413")
    await assert_still_serving(url)


async def _drip(url: str, data: bytes, interval: float) -> bytes:
    """Send ``data`` one byte per ``interval``; return what came back before the server closed."""
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def dripping() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in data:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(interval)

    sender = asyncio.create_task(dripping())
    try:
        # A hang guard: dripping all of ``data`` takes 10 s, the server's timeouts are 0.5 s.
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def test_slowloris_head_and_body_are_dropped_while_others_are_served(
    serve_both: Serve,
) -> None:
    url = await serve_both(app(), header_timeout=0.5, body_timeout=0.5)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + b"b" * 200
    slow = [asyncio.create_task(_drip(url, data, 0.05)) for data in (head, body, head, body)]
    # Meanwhile, normal clients get answers.
    for _ in range(5):
        await assert_still_serving(url)
    results = await asyncio.gather(*slow)
    for received in results:
        # Closed by the server (dripping 200 bytes would take 10 s), with a 408 or silently.
        assert received == b"" or received.startswith(b"HTTP/1.1 408"), received[:200]
    await assert_still_serving(url)


@stream_request_body
class EarlyRefusal(RequestHandler):
    def prepare(self) -> None:
        raise HTTPError(401)  # answered before the body is read

    def data_received(self, chunk: bytes) -> None:
        pass


async def test_body_left_after_an_early_answer_gets_a_bounded_time(serve_both: Serve) -> None:
    # With no body_timeout (the default) a client that stopped sending after the answer held
    # the connection for ever; now it gets the head timeout to finish a body nobody reads,
    # and one that does finish keeps its connection.
    head = b"POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    # The client that finishes has the default minute to do it, whatever the load here.
    for finishes, timeout in ((False, 0.3), (True, 60.0)):
        url = await serve_both(app((r"/early", EarlyRefusal)), header_timeout=timeout)
        host, port = url.rsplit("//", 1)[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(head)
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
            assert answer.startswith(b"HTTP/1.1 401"), answer
            length = int(answer.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await asyncio.wait_for(reader.readexactly(length), 20)
            if finishes:
                writer.write(b"5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
                again = await asyncio.wait_for(reader.readuntil(b"GET /after 0\n"), 20)
                assert again.startswith(b"HTTP/1.1 200 OK")
            else:
                # wait_for is a hang guard: the server closes after 0.3 s.
                assert await asyncio.wait_for(reader.read(), 20) == b""
        finally:
            writer.close()
    await assert_still_serving(url)


async def test_thousands_of_repeated_headers_stay_linear(serve_both: Serve) -> None:
    seen: list[int] = []

    class Count(RequestHandler):
        def get(self) -> None:
            seen.append(len(self.request.headers.get_list("X-Repeat")))
            self.write(str(len(self.request.headers.get("X-Repeat", ""))))

    url = await serve_both(app(("/", Count)), max_header_size=4 * 1024 * 1024)

    async def exchange(count: int) -> None:
        head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"X-Repeat: v\r\n" * count
        response = await raw_exchange(url, head + b"\r\n", read_timeout=30)
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert seen[-1] == count

    # Server and client share this thread: 16 times the repeats (up to a 1.3 MB head) cost
    # about 16 times its CPU time; quadratic joining would cost 256 times.
    await assert_linear_async(exchange, 6_250, 100_000, 16)
    await assert_still_serving(url)


def test_pathological_cookies_parse_in_linear_time() -> None:
    # CVE-2024-52804: unquoting was quadratic in the number of backslash escapes.
    shapes: list[Callable[[int], str]] = [
        lambda n: 'a="' + "\\" * (2 * n) + '"',
        lambda n: 'a="' + "\\\\\\0" * (n // 2) + '"',
        lambda n: "; " * n,
        lambda n: "a=" + '"' * n,
        lambda n: ";".join(f"c{i}=v" for i in range(n // 5)),
    ]
    for shape in shapes:
        assert_linear(httputil.parse_cookie, shape(31_250), shape(500_000), 16)


async def test_pathological_cookie_header_over_the_wire(serve_both: Serve, fetch: Fetch) -> None:
    class Cookies(RequestHandler):
        def get(self) -> None:
            self.write(str(len(self.request.cookies)))

    url = await serve_both(app(("/", Cookies)), max_header_size=2 * 1024 * 1024)
    cookie = 'a="' + "\\\\" * 400_000 + '"; ' + "; ".join(f"k{i}=v" for i in range(20_000))
    response = await fetch(url + "/", headers={"Cookie": cookie})
    assert response.status == 200
    assert response.body == b"20001"
    await assert_still_serving(url)


_PATHOLOGICAL_DISPOSITIONS: list[Callable[[int], str]] = [
    lambda n: "form-data; name=a" + "; x=y" * (n // 5),
    lambda n: 'form-data; name="' + "\\" * n,  # unterminated quoted string of escapes
    lambda n: "form-data; name=a; " + '"' * n,
    lambda n: "form-data; " + "; ".join(f"name*{i}=p" for i in range(n // 20)),
    lambda n: "form-data; name*=utf-8''" + "%41" * (n // 3),
]


def _multipart_body(disposition: str) -> bytes:
    return b"--B\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\nv\r\n--B--\r\n"


def test_pathological_multipart_parameters_parse_in_linear_time() -> None:
    # Part headers are capped at 10 KiB by default (as Tornado's ParseMultipartConfig); the
    # cap raised here, so that the parameter parser itself is measured on large input, as it
    # runs for an application that raises it. The Content-Type header has no such cap.
    roomy = httputil.ParseMultipartConfig(max_part_header_size=1_000_000)

    def parse(disposition: str) -> None:
        body = _multipart_body(disposition)
        with contextlib.suppress(httputil.HTTPInputError):  # some shapes lack a usable name
            httputil.parse_multipart_form_data(b"B", body, {}, {}, config=roomy)
        with contextlib.suppress(httputil.HTTPInputError):
            httputil.parse_body_arguments(
                f"multipart/form-data; boundary=B; {disposition}", _multipart_body("x"), {}, {}
            )

    for shape in _PATHOLOGICAL_DISPOSITIONS:
        assert_linear(parse, shape(31_250), shape(500_000), 16)


def test_oversized_multipart_part_headers_are_refused_in_linear_time() -> None:
    def refuse(disposition: str) -> None:
        with pytest.raises(httputil.HTTPInputError, match="part header too large"):
            httputil.parse_multipart_form_data(b"B", _multipart_body(disposition), {}, {})

    for shape in _PATHOLOGICAL_DISPOSITIONS:
        assert_linear(refuse, shape(31_250), shape(500_000), 16)


# -- header and response injection ------------------------------------------------------------


class Injector(RequestHandler):
    def get(self, how: str) -> None:
        evil = "x\r\nX-Injected: yes"
        if how == "header-value":
            self.set_header("X-Echo", evil)
        elif how == "header-value-lf":
            self.set_header("X-Echo", "x\nX-Injected: yes")
        elif how == "header-value-nul":
            self.set_header("X-Echo", "x\x00y")
        elif how == "header-name":
            self.set_header("X-Bad\r\nX-Injected", "yes")
        elif how == "add-header":
            self.add_header("X-Echo", evil)
        elif how == "redirect":
            self.redirect("/target" + evil)
            return
        elif how == "redirect-argument":
            self.redirect(self.get_argument("next"))
            return
        elif how == "reason":
            self.set_status(200, "OK\r\nX-Injected: yes")
        elif how == "cookie-value":
            self.set_cookie("c", "v\r\nX-Injected: yes")
        elif how == "cookie-domain":
            self.set_cookie("c", "v", domain="example.com; X-Injected=yes")
        elif how == "cookie-path":
            self.set_cookie("c", "v", path="/; HttpOnly=false")
        elif how == "cookie-samesite":
            self.set_cookie("c", "v", samesite="Lax\r\nX-Injected: yes")
        self.write("body")


@pytest.mark.parametrize(
    "how",
    [
        "header-value",
        "header-value-lf",
        "header-value-nul",
        "header-name",
        "add-header",
        "redirect",
        "reason",
        "cookie-value",
        "cookie-domain",
        "cookie-path",
        "cookie-samesite",
    ],
)
async def test_nothing_injects_into_the_response_head(serve_both: Serve, how: str) -> None:
    url = await serve_both(app((r"/inject/(.*)", Injector)))
    response = await raw_exchange(url, _closing(b"/inject/" + how.encode()))
    head = response.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 "), response[:300]
    assert not any(line.lower().startswith(b"x-injected") for line in lines), head
    assert b"\n" not in b"".join(lines) and b"\x00" not in head
    assert not any(b"X-Injected=yes" in line or b"HttpOnly=false" in line for line in lines)
    await assert_still_serving(url)


async def test_redirect_to_a_header_looking_argument_injects_nothing(serve_both: Serve) -> None:
    url = await serve_both(app((r"/inject/(.*)", Injector)))
    target = b"/inject/redirect-argument?next=/ok%0d%0aSet-Cookie:%20evil=1"
    response = await raw_exchange(url, _closing(target))
    head = response.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"set-cookie") for line in head.split(b"\r\n")), head
    await assert_still_serving(url)


# -- error pages ------------------------------------------------------------------------------


class Failing(RequestHandler):
    def get(self, how: str) -> None:
        if how == "exception":
            raise RuntimeError("database password is hunter2")
        if how == "http-error":
            raise HTTPError(403, "user %s has token %s", "alice", "s3cr3t")
        if how == "reason":
            raise HTTPError(400, reason="<script>alert(1)</script>")
        if how == "key-error":
            lookup: dict[str, str] = {}
            self.write(lookup["missing-secret-key"])
        raise HTTPError(404)


@pytest.mark.parametrize("how", ["exception", "http-error", "reason", "key-error"])
async def test_error_pages_leak_nothing_outside_debug(
    serve: Serve, fetch: Fetch, how: str, caplog: Any
) -> None:
    url = await serve(app((r"/fail/(.*)", Failing)))
    with caplog.at_level(logging.CRITICAL):
        response = await fetch(url + "/fail/" + how)
    assert response.status in (400, 403, 500)
    for secret in (b"hunter2", b"s3cr3t", b"alice", b"Traceback", b"missing-secret-key", b".py"):
        assert secret not in response.body, response.body
    assert b"<script>" not in response.body
    assert b"<script>" not in response.reason.encode()
    missing = await fetch(url + "/fail/unknown/<script>alert(1)</script>")
    assert missing.status == 404 and b"<script>" not in missing.body
    await assert_still_serving(url)


async def test_debug_error_pages_do_show_the_traceback(
    serve: Serve, fetch: Fetch, caplog: Any
) -> None:
    url = await serve(app((r"/fail/(.*)", Failing), serve_traceback=True))
    with caplog.at_level(logging.CRITICAL):
        response = await fetch(url + "/fail/exception")
    assert response.status == 500
    assert b"Traceback" in response.body and b"hunter2" in response.body


# -- wrong protocol on the port ---------------------------------------------------------------


def _client_hello() -> bytes:
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def test_tls_handshake_on_a_plain_port_gets_400_and_close(serve_both: Serve) -> None:
    url = await serve_both(app())
    hello = _client_hello()
    assert hello[:1] == b"\x16"
    response = await raw_exchange(url, hello)
    assert response.startswith(b"HTTP/1.1 400"), response[:100]
    await assert_still_serving(url)


async def test_plain_http_on_a_tls_port_does_not_hurt_the_server(
    serve: Serve, tmp_path: Any
) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    url = await serve(app(), ssl_options=server_context)
    plain = url.replace("https://", "http://")
    garbage = await raw_exchange(plain, _closing(b"/x") + b"\x00\xff" * 100, read_timeout=5)
    assert b"200 OK" not in garbage
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=client_context)
    try:
        writer.write(_closing(b"/after"))
        response = await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
            await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 200 OK") and response.endswith(b"GET /after 0\n")


# -- a client that stops reading ---------------------------------------------------------------


async def test_client_that_stops_reading_stalls_only_its_own_response(serve_both: Serve) -> None:
    written: list[int] = []
    ended = asyncio.Event()
    chunk = b"x" * 65536

    class Firehose(RequestHandler):
        async def get(self) -> None:
            try:
                for _ in range(800):  # 50 MB, far more than any socket buffer
                    self.write(chunk)
                    await self.flush()
                    written.append(len(chunk))
            finally:
                ended.set()

    url = await serve_both(app(("/firehose", Firehose)))
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=65536)
    writer.write(b"GET /firehose HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.readexactly(1000)  # it started, then this client stops reading
    # Stalled: a round of five other exchanges (many loop turns) in which it wrote nothing.
    # Counted in turns, not seconds, so a slow machine cannot pass for a stall or miss one.
    for _ in range(100):
        before = sum(written)
        for _ in range(5):
            await assert_still_serving(url)
        if sum(written) == before or ended.is_set():
            break
    stalled_at = sum(written)
    for _ in range(5):
        await assert_still_serving(url)
    # Back-pressure: the handler waits in flush(), so only what the socket buffers and the
    # transport's high-water mark hold was produced; memory is bounded by them.
    assert sum(written) == stalled_at
    assert stalled_at < 16 * 1024 * 1024, stalled_at
    assert not ended.is_set()
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
    await asyncio.wait_for(ended.wait(), 20)  # the handler hears the close and ends
    await assert_still_serving(url)
