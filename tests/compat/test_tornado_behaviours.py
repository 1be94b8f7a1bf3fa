"""Tornado behaviours that Tornado's own test suite showed asyncweb lacked: error classes and
messages code matches on, and documented behaviour. Real servers on loopback where HTTP is
involved."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import socket
import tempfile
import zlib
from typing import Any

import pytest

from asyncweb import gen
from asyncweb.escape import parse_qs_bytes
from asyncweb.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from asyncweb.httputil import (
    HTTPHeaders,
    HTTPInputError,
    parse_body_arguments,
    parse_multipart_form_data,
)
from asyncweb.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError
from asyncweb.util import GzipDecompressor
from asyncweb.web import (
    Application,
    HTTPError,
    RedirectHandler,
    RequestHandler,
    StaticFileHandler,
)
from tests.support.servers import Fetch, Serve


class Echo(RequestHandler):
    def get(self) -> None:
        self.write(self.request.headers.get("X-Echo", "") or self.request.headers["User-Agent"])

    def post(self) -> None:
        self.write({"fields": sorted(self.request.body_arguments)})


@pytest.fixture
async def client() -> Any:
    http = AsyncHTTPClient(force_instance=True)
    yield http
    http.close()


# -- forms: malformed bodies are HTTPInputError, the server answers 400 -------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"--B\r\n\r\nFoo\r\n--B--", "multipart/form-data missing headers"),
        (
            b"--B\r\nContent-Disposition: invalid; name=a\r\n\r\nx\r\n--B--",
            "Invalid multipart/form-data",
        ),
        (b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx--B--", "Invalid multipart"),
        (
            b'--B\r\nContent-Disposition: form-data; filename="f"\r\n\r\nx\r\n--B--',
            "multipart/form-data value missing name",
        ),
        (b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n', "no final boundary"),
        (
            b'--B\r\nContent-Disposition: form-data; name="a"; filename="a\rb"\r\n\r\nx\r\n--B--',
            "Invalid header value",
        ),
    ],
)
async def test_malformed_multipart_is_an_input_error_and_a_400(
    body: bytes, message: str, serve: Serve, fetch: Fetch
) -> None:
    arguments: dict[str, list[bytes]] = {}
    with pytest.raises(HTTPInputError, match=message):
        parse_multipart_form_data(b"B", body, arguments, {})
    assert arguments == {}
    url = await serve(Application([("/", Echo)]))
    resp = await fetch(
        url + "/",
        method="POST",
        body=body,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    assert resp.status == 400
    assert message in resp.reason


def test_form_limits_use_tornados_wording() -> None:
    with pytest.raises(HTTPInputError, match="Max number of fields exceeded"):
        parse_body_arguments("application/x-www-form-urlencoded", b"a=1&" * 1001, {}, {})
    part = b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n'
    with pytest.raises(HTTPInputError, match="too many parts"):
        parse_multipart_form_data(b"B", part * 101 + b"--B--", {}, {})
    with pytest.raises(HTTPInputError, match="Unsupported Content-Encoding: gzip"):
        parse_body_arguments(
            "application/x-www-form-urlencoded",
            b"a=1",
            {},
            {},
            HTTPHeaders({"Content-Encoding": "gzip"}),
        )


@pytest.mark.parametrize("name", ["", "foo bar", "foo\tbar", "foo\x00bar", " foo", "é"])
def test_header_names_must_be_tokens(name: str) -> None:
    with pytest.raises(HTTPInputError, match="Invalid header name"):
        HTTPHeaders().add(name, "x")


def test_parse_qs_bytes_on_percent_heavy_input_matches_urllib() -> None:
    assert parse_qs_bytes(b"a=" + b"%41" * 5000) == {"a": [b"A" * 5000]}
    assert parse_qs_bytes(b"a=%%%&b=%zz&c=1+2&&d", keep_blank_values=True) == {
        "a": [b"%%%"],
        "b": [b"%zz"],
        "c": [b"1 2"],
        "d": [b""],
    }
    with pytest.raises(ValueError, match="bad query field"):
        parse_qs_bytes(b"a=1&b", strict_parsing=True)


# -- GzipDecompressor ---------------------------------------------------------------------------


def inflate(data: bytes, max_length: int, read_size: int) -> bytes:
    decompressor = GzipDecompressor()
    out = b""
    for i in range(0, len(data), read_size):
        chunk = data[i : i + read_size]
        while chunk:
            piece = decompressor.decompress(chunk, max_length)
            assert len(piece) <= max_length
            chunk = decompressor.unconsumed_tail
            out += piece
    return out + decompressor.flush()


def test_gzip_decompressor_members_trailing_data_and_truncation() -> None:
    data = gzip.compress(b"hello " * 500) + gzip.compress(b"") + gzip.compress(b"world")
    for max_length, read_size in [(1, 7), (100, 1), (65536, len(data))]:
        assert inflate(data, max_length, read_size) == b"hello " * 500 + b"world"
    with pytest.raises(zlib.error):
        inflate(gzip.compress(b"x") + b"garbage", 100, 1024)
    with pytest.raises(zlib.error):
        inflate(gzip.compress(b"x" * 100)[:-3], 100, 1024)
    bomb = gzip.compress(b"\0" * 1_000_000)
    decompressor = GzipDecompressor()
    assert len(decompressor.decompress(bomb, 1024)) == 1024
    with pytest.raises(ValueError):
        decompressor.flush()  # would inflate the rest without a cap
    with pytest.warns(DeprecationWarning):
        GzipDecompressor().decompress(gzip.compress(b"x"))


# -- simple_httpclient --------------------------------------------------------------------------


class HangingResolver:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def resolve(self, host: str, port: int, family: Any = 0) -> list[tuple[int, Any]]:
        await self.release.wait()
        return [(socket.AF_INET, (host, port))]


async def test_timeouts_name_the_step() -> None:
    resolver = HangingResolver()
    http = AsyncHTTPClient(force_instance=True, resolver=resolver)
    try:
        with pytest.raises(HTTPTimeoutError) as info:
            await http.fetch("http://127.0.0.1:1/", connect_timeout=0.05)
        assert str(info.value) == "Timeout while resolving 127.0.0.1"
    finally:
        resolver.release.set()
        http.close()
    # TCP completes in the kernel's backlog, TLS never starts.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        http = AsyncHTTPClient(force_instance=True)
        try:
            with pytest.raises(HTTPTimeoutError) as info:
                await http.fetch(f"https://127.0.0.1:{port}/", connect_timeout=0.2)
            assert str(info.value) == f"Timeout during TLS handshake with 127.0.0.1:{port}"
        finally:
            http.close()


async def test_refused_responses_are_stream_closed_errors(
    serve: Serve, client: AsyncHTTPClient, caplog: pytest.LogCaptureFixture
) -> None:
    class Big(RequestHandler):
        def get(self) -> None:
            self.write(b"x" * 5000)

    url = await serve(Application([("/big", Big)]))
    with (
        caplog.at_level(logging.INFO, "asyncweb.general"),
        pytest.raises(HTTPStreamClosedError) as info,
    ):
        await client.fetch(url + "/big", max_body_size=1000)
    # Code catching HTTPClientError (Tornado's HTTPError) sees it; so does HTTPInputError.
    assert isinstance(info.value, HTTPClientError) and isinstance(info.value, HTTPInputError)
    assert info.value.code == 599
    assert "Malformed HTTP message from None: Content-Length too long" in caplog.text
    assert (await client.fetch(url + "/big")).body == b"x" * 5000


async def test_callbacks_as_tornado(serve: Serve, client: AsyncHTTPClient) -> None:
    url = await serve(Application([("/", Echo)]))
    chunks: list[bytes] = []

    async def streaming(chunk: bytes) -> None:
        await asyncio.sleep(0)
        chunks.append(chunk)

    response = await client.fetch(url + "/", streaming_callback=streaming)
    assert b"".join(chunks) and not response.body

    def broken(line: str) -> None:
        raise ValueError("from the callback")

    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(url + "/", header_callback=broken)

    def producer(write: Any) -> None:  # a plain function, not a coroutine
        write(b"a=1&b=2")

    response = await client.fetch(
        url + "/", method="POST", body_producer=producer, headers={"Content-Length": "7"}
    )
    assert response.body == b'{"fields": ["a", "b"]}'


async def test_header_values_bytes_and_latin1(serve: Serve, client: AsyncHTTPClient) -> None:
    url = await serve(Application([("/", Echo)]))
    for value in (b"b\xe4r", "b\xe4r"):
        response = await client.fetch(url + "/", headers={"X-Echo": value})  # type: ignore[dict-item]
        assert response.body == b"b\xe4r".decode("latin-1").encode("utf-8")


async def test_hostname_mapping_with_ports_and_redirect_schemes(
    serve: Serve,
) -> None:
    class Away(RequestHandler):
        def get(self) -> None:
            self.redirect("ftp://example.com/")

    url = await serve(Application([("/", Echo), ("/away", Away)]))
    port = int(url.rsplit(":", 1)[1])
    http = AsyncHTTPClient(
        force_instance=True, hostname_mapping={("mapped.test", 80): ("127.0.0.1", port)}
    )
    try:
        response = await http.fetch("http://mapped.test/", user_agent="via-mapping")
        assert response.body == b"via-mapping"
        with pytest.raises(ValueError, match="Unsupported url scheme"):
            await http.fetch(f"http://127.0.0.1:{port}/away")
        with pytest.raises(ValueError, match="not-an-address"):
            await http.fetch(HTTPRequest(url + "/", network_interface="not-an-address"))
    finally:
        http.close()


def test_fetch_may_be_called_before_the_loop_runs() -> None:
    from asyncweb.ioloop import IOLoop

    # As in Tornado: fetch() on a current loop that is not running yet returns a future
    # the loop resolves once it runs.
    io_loop = IOLoop(make_current=True)
    http = AsyncHTTPClient(force_instance=True)
    try:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        future = http.fetch(f"http://127.0.0.1:{port}/")
        with pytest.raises(OSError):
            io_loop.run_sync(lambda: future)
    finally:
        http.close()
        io_loop.close(all_fds=True)


# -- web ----------------------------------------------------------------------------------------


class Form(RequestHandler):
    def get(self) -> None:
        self.write("ok")

    def post(self) -> None:
        self.write("ok")


class TrustsExample(Form):
    def check_trusted_origin(self, origin: str) -> bool:
        return origin.endswith(".example.com")


async def test_cross_origin_protection(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    url = await serve(
        Application(
            [("/", Form), ("/wild", TrustsExample)],
            cross_origin_protection=True,
            trusted_origins=["https://trusted.test"],
        )
    )

    async def post(path: str, **headers: str) -> int:
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        return (await fetch(url + path, method="POST", body="x=1", headers=headers)).status

    with caplog.at_level(logging.WARNING, "asyncweb.general"):
        assert await post("/") == 200  # not a browser
        assert await post("/", Sec_Fetch_Site="same-origin") == 200
        assert await post("/", Sec_Fetch_Site="none") == 200
        assert await post("/", Sec_Fetch_Site="cross-site") == 403
        assert await post("/", Sec_Fetch_Site="same-site", Origin=url) == 403
        assert await post("/", Sec_Fetch_Site="cross-site", Origin="https://trusted.test") == 200
        assert await post("/", Origin=url.upper().replace("HTTP://", "http://") + "/x") == 200
        assert await post("/", Origin="https://evil.test") == 403
        assert await post("/", Origin="null") == 403
        assert await post("/", Origin="https://trusted.test/") == 403  # compared exactly
        assert await post("/wild", Origin="https://app.example.com") == 200
        assert await post("/wild", Origin="https://evil.test") == 403
        get = await fetch(url + "/", headers={"Sec-Fetch-Site": "cross-site"})
        assert get.status == 200
    assert "Sec-Fetch-Site cross-site request without Origin not allowed" in caplog.text
    assert "Origin 'null' not allowed" in caplog.text


async def test_refusal_messages_in_tornados_wording(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    class Cookies(RequestHandler):
        def get(self) -> None:
            errors = []
            for kwargs in ({"name": "a;b"}, {"name": "a", "domain": "x;y"}):
                try:
                    self.set_cookie(kwargs.pop("name"), "v", **kwargs)
                except Exception as e:
                    errors.append(str(e))
            self.write({"errors": errors})

    url = await serve(
        Application(
            [
                ("/xsrf", Form),
                ("/cookies", Cookies),
                (r"/r/(.*)", RedirectHandler, {"url": "/{0}"}),
            ],
            xsrf_cookies=True,
        )
    )
    with caplog.at_level(logging.WARNING, "asyncweb.general"):
        # A well-formed token, but no cookie to match it with.
        token = "ab" * 16
        assert (await fetch(url + "/xsrf", method="POST", body=f"_xsrf={token}")).status == 403
        assert (await fetch(url + "/r/%2Fevil.test/x")).status == 400
        assert (await fetch(url + "/r/a%0Ab")).status == 400
    assert "XSRF cookie does not match POST argument" in caplog.text
    assert "Redirect URL cannot change the scheme or netloc" in caplog.text
    assert "Redirect URL contains invalid characters" in caplog.text
    body = (await fetch(url + "/cookies")).text
    assert "Invalid cookie attribute name" in body and "Invalid cookie attribute domain" in body


def test_static_get_version_reads_only_regular_files_inside_root(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "static")
        os.mkdir(root)
        os.mkdir(os.path.join(root, "dir"))
        with open(os.path.join(root, "a.txt"), "w") as f:
            f.write("abc")
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write("s")
        os.symlink("/dev/zero", os.path.join(root, "zero"))
        os.mkfifo(os.path.join(root, "fifo"))
        settings = {"static_path": root}
        StaticFileHandler.reset()
        try:
            assert StaticFileHandler.get_version(settings, "a.txt")
            with pytest.raises(HTTPError) as info:
                StaticFileHandler.get_version(settings, "../secret")
            assert info.value.status_code == 403
            with caplog.at_level(logging.ERROR, "asyncweb.general"):
                # Each would hang or fail reading: no version, one logged line each.
                for name in ("zero", "fifo", "dir"):
                    assert StaticFileHandler.get_version(settings, name) is None
            assert caplog.text.count("is not a file") == 3

            class Small(StaticFileHandler):
                MAX_VERSION_CONTENT_SIZE = 2

            Small.reset()
            assert Small.get_version(settings, "a.txt") is None
            assert "larger than" in caplog.text
        finally:
            StaticFileHandler.reset()


# -- gen ----------------------------------------------------------------------------------------


async def test_gen_done_futures_and_cancellation() -> None:
    calls: list[str] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)

    @gen.coroutine
    def worker(name: str, step: Any) -> Any:
        for _ in range(3):
            calls.append(name)
            yield step

    yield_list: Any = [worker("a", done), worker("b", done)]
    await gen.multi(yield_list)
    assert "".join(calls) == "aaabbb"  # done futures do not give up the loop
    calls.clear()
    await gen.multi([worker("a", gen.moment), worker("b", gen.moment)])
    assert "".join(calls) == "ababab"

    @gen.coroutine
    def cancels() -> Any:
        raise asyncio.CancelledError()

    future = cancels()
    assert future.cancelled()

    child: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    child.cancel()
    combined = gen.multi([child])
    with pytest.raises(asyncio.CancelledError):
        await combined
    assert not combined.cancelled()
