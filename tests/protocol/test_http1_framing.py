"""Request framing the protocol must refuse or contain (RFC 9112 2.2, 6.1), for both writers.

Raw bytes over loopback sockets to a plain callable (no framework). Every test ends with a
normal request on a new connection, which must be served.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from asyncweb.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from tests.support.servers import Serve, raw_exchange, wait_until

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def serve(protocol_settings: dict[str, Any], serve: Serve) -> Serve:
    async def _serve(target: Any, **settings: Any) -> str:
        return await serve(target, **protocol_settings, **settings)

    return _serve


class Recorder:
    """Answers "<method> <path> <body length>"; after ``delay`` seconds if set, like a handler
    that is still working when more bytes arrive."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.paths: list[str] = []

    def __call__(self, request: HTTPServerRequest) -> None:
        self.paths.append(request.path)
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self.respond, request)
        else:
            self.respond(request)

    @staticmethod
    def respond(request: HTTPServerRequest) -> None:
        body = f"{request.method} {request.path} {len(request.body)}\n".encode()
        headers = HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))})
        assert request.connection is not None
        request.connection.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), headers, body)
        request.connection.finish()


async def assert_still_serving(url: str) -> None:
    response = await raw_exchange(
        url, b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert response.startswith(b"HTTP/1.1 200 "), response
    assert response.endswith(b"GET /after 0\n"), response


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- Content-Length with Transfer-Encoding (RFC 9112 6.1; Tornado answers 400) --------------


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
        b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\nContent-Length: 5\r\n",
    ],
    ids=["cl-te", "te-cl", "cl0-te", "te-cl-cl"],
)
@pytest.mark.parametrize("version", [b"1.1", b"1.0"])
async def test_content_length_with_transfer_encoding_gets_400_and_close(
    serve: Serve, framing: bytes, version: bytes
) -> None:
    recorder = Recorder()
    url = await serve(recorder)
    head = b"POST /p HTTP/" + version + b"\r\nHost: x\r\nConnection: keep-alive\r\n" + framing
    response = await raw_exchange(url, head + b"\r\n0\r\n\r\n" + SMUGGLED)
    assert response.startswith(b"HTTP/1.1 400 "), response
    assert response.count(b"HTTP/1.1 ") == 1, response
    assert b"Content-Length and Transfer-Encoding" in response
    assert b"\r\nconnection: close\r\n" in response.lower()
    assert recorder.paths == []  # neither the ambiguous request nor what followed it ran
    await assert_still_serving(url)


async def test_transfer_encoding_alone_still_frames_the_body(serve: Serve) -> None:
    recorder = Recorder()
    url = await serve(recorder)
    request = (
        b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    response = await raw_exchange(
        url, request + b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert response.count(b"HTTP/1.1 200 ") == 2, response
    assert recorder.paths == ["/p", "/next"]
    assert b"POST /p 3\n" in response
    await assert_still_serving(url)


# -- HTTP/1.0 with Transfer-Encoding is never kept alive (RFC 9112 6.1) --------------------


@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["sync", "delayed"])
async def test_http10_transfer_encoding_closes_even_when_keep_alive_is_asked(
    serve: Serve, delay: float
) -> None:
    recorder = Recorder(delay)
    url = await serve(recorder)
    attack = (
        b"POST /p HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nZ\r\n0\r\n\r\n" + SMUGGLED
    )
    response = await raw_exchange(url, attack)
    assert response.startswith(b"HTTP/1.1 200 "), response
    assert response.count(b"HTTP/1.1 ") == 1, response
    assert b"connection: close" in response.lower()
    assert response.endswith(b"POST /p 1\n")
    assert recorder.paths == ["/p"]
    await assert_still_serving(url)


# -- Bytes after the last request of a closing connection (RFC 9112 2.2, 9.6) --------------

CLOSING_REQUESTS = {
    # Old clients send a CRLF after a POST body; RFC 9112 2.2 says to ignore it.
    "http10-stray-crlf": b"POST /a HTTP/1.0\r\nContent-Length: 1\r\n\r\nZ\r\n",
    "http10-pipelined": b"POST /a HTTP/1.0\r\nContent-Length: 1\r\n\r\nZ" + SMUGGLED,
    "close-pipelined": (
        b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nZ" + SMUGGLED
    ),
    "close-garbage": (
        b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nZ\x00\xff"
    ),
    "close-chunked-stray-crlf": (
        b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nZ\r\n0\r\n\r\n\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", CLOSING_REQUESTS.values(), ids=CLOSING_REQUESTS.keys())
@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["sync", "delayed"])
async def test_bytes_after_a_closing_request_are_dropped(
    serve: Serve, request_bytes: bytes, delay: float, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(delay)
    url = await serve(recorder)
    with caplog.at_level(logging.WARNING, logger="asyncweb"):
        response = await raw_exchange(url, request_bytes)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response
    assert response.count(b"HTTP/1.1 ") == 1, response
    assert response.endswith(b"POST /a 1\n"), response
    assert recorder.paths == ["/a"]
    assert no_errors_logged(caplog), caplog.text
    await assert_still_serving(url)


@pytest.mark.parametrize("trailing", [b"\r\n", SMUGGLED], ids=["crlf", "pipelined"])
async def test_bytes_arriving_while_a_closing_request_is_handled_are_dropped(
    serve: Serve, trailing: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(delay=0.3)
    url = await serve(recorder)
    host, port = url.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"POST /a HTTP/1.0\r\nContent-Length: 1\r\n\r\nZ")
        await wait_until(lambda: recorder.paths)  # until the handler has the request
        assert recorder.paths == ["/a"]
        with caplog.at_level(logging.WARNING, logger="asyncweb"):
            writer.write(trailing)  # arrives while the response is still owed
            response = await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
        await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response
    assert response.count(b"HTTP/1.1 ") == 1 and response.endswith(b"POST /a 1\n"), response
    assert recorder.paths == ["/a"]
    assert no_errors_logged(caplog), caplog.text
    await assert_still_serving(url)


async def test_http10_keep_alive_then_pipelined_keeps_the_first_response(
    serve: Serve, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    # Our writer (with either parser) keeps this connection and serves the next request; h11's
    # closes after the first response (it never keeps HTTP/1.0). Either way the first response
    # is intact.
    recorder = Recorder(delay=0.05)
    url = await serve(recorder)
    data = (
        b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nZ"
        b"GET /b HTTP/1.0\r\n\r\n"
    )
    with caplog.at_level(logging.WARNING, logger="asyncweb"):
        response = await raw_exchange(url, data)
    first, _, rest = response.partition(b"POST /a 1\n")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.count(b"HTTP/1.1 ") == 1, response
    if request.node.callspec.params["protocol_settings"] != "pure-h11":
        assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"GET /b 0\n"), response
        assert recorder.paths == ["/a", "/b"]
    else:
        assert rest == b"", response
        assert recorder.paths == ["/a"]
    assert no_errors_logged(caplog), caplog.text
    await assert_still_serving(url)


# -- Empty lines before a request line are ignored (RFC 9112 2.2), as Tornado does ----------


@pytest.mark.parametrize(
    "first",
    [
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nZ\r\n",  # stray CRLF, same packet
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n\r\n",
        b"\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nZ",  # before the first
    ],
    ids=["after-length-body", "after-chunked-body", "before-first-request"],
)
@pytest.mark.parametrize("split", [False, True], ids=["together", "separate-packets"])
async def test_empty_lines_before_a_request_line_are_ignored(
    serve: Serve, first: bytes, split: bool, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    url = await serve(recorder)
    host, port = url.rsplit("//", 1)[1].split(":")
    second = b"\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        with caplog.at_level(logging.WARNING, logger="asyncweb"):
            if split:
                for piece in (first[:1], first[1:], second[:1], second[1:]):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.02)
            else:
                writer.write(first + second)
            response = await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
        await writer.wait_closed()
    assert response.count(b"HTTP/1.1 200 OK\r\n") == 2, response
    assert b"POST /a 1\n" in response and response.endswith(b"GET /b 0\n"), response
    assert recorder.paths == ["/a", "/b"]
    assert "bad request" not in caplog.text
    await assert_still_serving(url)


async def test_only_empty_lines_then_close_is_no_request(serve: Serve) -> None:
    recorder = Recorder()
    url = await serve(recorder)
    assert await raw_exchange(url, b"\r\n\r\n\n", read_timeout=0.3) == b""
    assert recorder.paths == []
    await assert_still_serving(url)
