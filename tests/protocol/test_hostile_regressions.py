"""Regression tests for the bugs the hardening work found (docs/reliability.md, findings 1-6),
over real servers where the bug was reachable from the network: RFC 2231 charsets that made a
multipart body a 500, Content-Length with Transfer-Encoding, bytes pipelined after a request
that ends the connection, Transfer-Encoding on HTTP/1.0 keep-alive, and the multipart part and
urlencoded argument limits of Tornado 6.5.5/6.5.8."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.web import Application, RequestHandler
from tests.support.servers import Fetch, Serve, raw_exchange


class Fields(RequestHandler):
    def post(self) -> None:
        self.write(
            {"fields": sorted(self.request.body_arguments), "files": sorted(self.request.files)}
        )


@pytest.mark.parametrize("charset", ["UTF-\x008", "idna", "punycode"])
def test_rfc2231_parameter_with_unusable_charset_is_kept_as_sent(charset: str) -> None:
    # bytes.decode raises ValueError/UnicodeError (not LookupError) for these charsets.
    key, params = httputil._parse_header(f"form-data; name*={charset}''%E2%82%AC%FF")
    assert key == "form-data"
    assert "name" in params


async def test_multipart_part_with_unusable_charset_is_not_a_500(
    serve: Serve, fetch: Fetch
) -> None:
    url = await serve(Application([("/", Fields)]))
    body = (
        b"--B\r\nContent-Disposition: form-data; name*=idna''%FF\r\n\r\nv\r\n"
        b'--B\r\nContent-Disposition: form-data; name="ok"\r\n\r\nw\r\n--B--\r\n'
    )
    resp = await fetch(
        url + "/",
        method="POST",
        body=body,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    assert resp.status == 200, resp.body
    assert b'"ok"' in resp.body


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


class SyncEcho(RequestHandler):
    def get(self, *args: object) -> None:
        self.write(f"{self.request.method} {self.request.path} {len(self.request.body)}\n")

    post = get


class Echo(RequestHandler):
    """Answers POST only after awaiting, so the protocol goes on reading meanwhile."""

    def get(self, *args: object) -> None:
        self.write(f"{self.request.method} {self.request.path} {len(self.request.body)}\n")

    async def post(self, *args: object) -> None:
        self.get()


# Finding 2: Content-Length together with Transfer-Encoding (RFC 9112 6.1: the server MUST
# close the connection after responding; Tornado >= 6.4.1 answers 400, GHSA-753j-mpmx-qq6g).
@pytest.mark.parametrize("order", ["cl-te", "te-cl"])
async def test_content_length_with_transfer_encoding_is_refused(
    serve: Serve, protocol_settings: dict[str, Any], order: str
) -> None:
    url = await serve(Application([(r"/(.*)", SyncEcho)]), **protocol_settings)
    cl, te = b"Content-Length: 6\r\n", b"Transfer-Encoding: chunked\r\n"
    head = b"POST /p HTTP/1.1\r\nHost: x\r\n" + (cl + te if order == "cl-te" else te + cl)
    response = await raw_exchange(url, head + b"\r\n0\r\n\r\n" + SMUGGLED)
    assert response.startswith(b"HTTP/1.1 400"), response
    assert b"GET /smuggled" not in response


# Finding 4: HTTP/1.0 + Transfer-Encoding must not keep the connection (RFC 9112 6.1).
async def test_http10_transfer_encoding_closes_even_with_keep_alive(
    serve: Serve, protocol_settings: dict[str, Any]
) -> None:
    url = await serve(Application([(r"/(.*)", SyncEcho)]), **protocol_settings)
    attack = (
        b"POST /p HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nZ\r\n0\r\n\r\n" + SMUGGLED
    )
    response = await raw_exchange(url, attack)
    assert response.count(b"HTTP/1.1 ") == 1 and b"GET /smuggled" not in response, response


# Finding 3: bytes after the last request of a closing connection (HTTP/1.0, or
# "Connection: close") turn into a 400 written over the in-flight response of an async handler.
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /a HTTP/1.0\r\nContent-Length: 1\r\n\r\nZ\r\n",  # the stray CRLF of old clients
        b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nZ"
        + SMUGGLED,
        # Found by hypothesis: even a kept-alive HTTP/1.0 exchange loses its response.
        b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nZ"
        + b"GET /a HTTP/1.0\r\n\r\n",
    ],
    ids=["http10-stray-crlf", "close-then-pipelined", "http10-keep-alive-then-pipelined"],
)
async def test_bytes_after_a_closing_request_do_not_replace_its_response(
    serve: Serve,
    protocol_settings: dict[str, Any],
    request_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = await serve(Application([(r"/(.*)", Echo)]), **protocol_settings)
    with caplog.at_level(logging.ERROR):
        response = await raw_exchange(url, request_bytes)
    assert response.startswith(b"HTTP/1.1 200 OK"), response
    assert b"POST /a 1\n" in response
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# Finding 5: no cap on multipart parts (Tornado 6.5.5: 100 parts, 10 KiB of part headers by
# default, CVE-2026-31958 / GHSA-qjxf-f2mg-c6mc). 100 MB of tiny parts blocks the loop ~20 s.
def test_multipart_part_count_is_capped() -> None:
    body = (
        b"".join(
            b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
            for i in range(101)
        )
        + b"--B--\r\n"
    )
    arguments: dict[str, list[bytes]] = {}
    with contextlib.suppress(httputil.HTTPInputError):
        httputil.parse_multipart_form_data(b"B", body, arguments, {})
    assert len(arguments) <= 100
    assert hasattr(httputil, "ParseMultipartConfig")


# Finding 6: no cap on urlencoded arguments (Tornado 6.5.8: 1000, ParseUrlEncodedConfig).
# 1,000,000 arguments (9.7 MB) take 3.3 s of event-loop time; 100 MB about 35 s.
def test_urlencoded_argument_count_is_capped() -> None:
    body = b"&".join(b"a%d=1" % i for i in range(1001))
    arguments: dict[str, list[bytes]] = {}
    with contextlib.suppress(httputil.HTTPInputError):
        httputil.parse_body_arguments("application/x-www-form-urlencoded", body, arguments, {})
    assert len(arguments) <= 1000
