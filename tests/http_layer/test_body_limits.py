"""Limits on form bodies (``httputil.ParseBodyConfig``, as Tornado 6.5.5/6.5.8) and RFC 2231
parameters with unusable charsets: the parsers directly, then over a real server with urllib,
``http.client`` (keep-alive) and curl."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from asyncweb import httputil
from asyncweb.httputil import (
    HTTPFile,
    HTTPInputError,
    HTTPServerRequest,
    ParseBodyConfig,
    ParseMultipartConfig,
    ParseUrlEncodedConfig,
    parse_body_arguments,
    parse_multipart_form_data,
    set_parse_body_config,
)
from asyncweb.web import Application, RequestHandler, stream_request_body
from tests.support.servers import Fetch, Serve

MULTIPART = "multipart/form-data; boundary=B"
URLENCODED = "application/x-www-form-urlencoded"


def multipart_body(count: int, header_padding: int = 0) -> bytes:
    pad = b"; x=" + b"y" * header_padding if header_padding else b""
    parts = (
        b'--B\r\nContent-Disposition: form-data; name="f%d"%s\r\n\r\nv%d\r\n' % (i, pad, i)
        for i in range(count)
    )
    return b"".join(parts) + b"--B--\r\n"


def urlencoded_body(count: int) -> bytes:
    return b"&".join(b"a%d=%d" % (i, i) for i in range(count))


@pytest.fixture
def restore_config() -> Iterator[None]:
    yield
    set_parse_body_config(ParseBodyConfig())


# -- the settings -------------------------------------------------------------------------------


def test_defaults_are_tornados() -> None:
    config = ParseBodyConfig()
    assert config.multipart == ParseMultipartConfig(
        enabled=True, max_parts=100, max_part_header_size=10 * 1024
    )
    assert config.urlencoded == ParseUrlEncodedConfig(max_arguments=1000)
    # Each config gets its own parts, so changing one never changes the defaults.
    config.multipart.max_parts = 5
    assert ParseBodyConfig().multipart.max_parts == 100


# -- finding 1: RFC 2231 charsets that cannot decode ------------------------------------------


@pytest.mark.parametrize(
    "charset",
    ["idna", "punycode", "UTF-\x008", "undefined", "rot13", "base64", "no-such-charset"],
)
def test_unusable_rfc2231_charset_keeps_the_text_as_sent(charset: str) -> None:
    key, params = httputil._parse_header(f"form-data; name*={charset}''ab%41%FF")
    assert (key, params) == ("form-data", {"name": "abA\xff"})


@pytest.mark.parametrize("charset", ["unicode_escape", "Raw-Unicode-Escape"])
def test_escape_codecs_are_not_charsets(charset: str) -> None:
    # They would read backslash escapes in the value (and warn about unknown ones).
    _, params = httputil._parse_header(f"form-data; name*={charset}''%5Cq%5Cu0041")
    assert params["name"] == "\\q\\u0041"


def test_usable_rfc2231_charsets_still_decode() -> None:
    _, params = httputil._parse_header("form-data; name*=UTF-8''%E2%82%AC%FF")
    assert params["name"] == "\u20ac\ufffd"  # the bad byte replaced, not an error
    _, params = httputil._parse_header("form-data; name*=iso-8859-1'en'%E9t%E9")
    assert params["name"] == "\u00e9t\u00e9"


def test_multipart_part_with_unusable_charset_is_stored() -> None:
    body = (
        b"--B\r\nContent-Disposition: form-data; name*=idna''%FF\r\n\r\nv\r\n"
        b'--B\r\nContent-Disposition: form-data; name="ok"\r\n\r\nw\r\n--B--\r\n'
    )
    arguments: dict[str, list[bytes]] = {}
    parse_body_arguments(MULTIPART, body, arguments, {})
    assert arguments == {"\xff": [b"v"], "ok": [b"w"]}


# -- finding 5: multipart parts and part headers ----------------------------------------------


def test_multipart_accepts_max_parts_and_refuses_one_more() -> None:
    arguments: dict[str, list[bytes]] = {}
    parse_multipart_form_data(b"B", multipart_body(100), arguments, {})
    assert len(arguments) == 100 and arguments["f99"] == [b"v99"]
    arguments, files = {}, {}
    with pytest.raises(HTTPInputError, match="more than 100 multipart parts"):
        parse_multipart_form_data(b"B", multipart_body(101), arguments, files)
    assert arguments == {} and files == {}  # nothing stored from a refused body


def test_multipart_limit_counts_empty_and_broken_parts_too() -> None:
    body = b"--B\r\n" * 101 + b"--B--\r\n"
    with pytest.raises(HTTPInputError):
        parse_multipart_form_data(b"B", body, {}, {})


def test_multipart_limits_from_an_explicit_config() -> None:
    config = ParseMultipartConfig(max_parts=3)
    arguments: dict[str, list[bytes]] = {}
    parse_multipart_form_data(b"B", multipart_body(3), arguments, {}, config=config)
    assert sorted(arguments) == ["f0", "f1", "f2"]
    with pytest.raises(HTTPInputError):
        parse_multipart_form_data(b"B", multipart_body(4), {}, {}, config=config)
    with pytest.raises(HTTPInputError):
        parse_body_arguments(
            MULTIPART,
            multipart_body(4),
            {},
            {},
            config=ParseBodyConfig(multipart=config),
        )
    big = ParseMultipartConfig(max_parts=1000)
    arguments = {}
    parse_multipart_form_data(b"B", multipart_body(1000), arguments, {}, config=big)
    assert len(arguments) == 1000


def test_disabled_multipart_is_refused() -> None:
    config = ParseMultipartConfig(enabled=False)
    with pytest.raises(HTTPInputError, match="disabled"):
        parse_multipart_form_data(b"B", multipart_body(1), {}, {}, config=config)


def test_part_header_over_the_limit_refuses_the_body() -> None:
    header = b'Content-Disposition: form-data; name="big"; x='
    config = ParseMultipartConfig(max_part_header_size=len(header) + 10)
    at_limit = b"--B\r\n" + header + b"y" * 10 + b"\r\n\r\nkept\r\n"
    over = b"--B\r\n" + header.replace(b"big", b"fat") + b"y" * 11 + b"\r\n\r\nlost\r\n"
    upload = b'--B\r\nContent-Disposition: form-data; name="u"; filename="a"\r\n\r\nF\r\n'
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    parse_multipart_form_data(
        b"B", at_limit + upload + b"--B--\r\n", arguments, files, config=config
    )
    assert arguments == {"big": [b"kept"]}
    assert files["u"][0].body == b"F"
    arguments, files = {}, {}
    # As in Tornado 6.5+, one part over the limit refuses the whole body.
    with pytest.raises(HTTPInputError, match=f"header too large \\(over {len(header) + 10} bytes"):
        parse_multipart_form_data(
            b"B", at_limit + over + upload + b"--B--\r\n", arguments, files, config=config
        )
    assert arguments == {} and files == {}


def test_default_part_header_limit_is_10_kib() -> None:
    arguments: dict[str, list[bytes]] = {}
    # name="fN"; x=yyy... : padding chosen to land just under and just over 10 KiB.
    base = len(b'Content-Disposition: form-data; name="f0"; x=')
    parse_multipart_form_data(b"B", multipart_body(1, 10 * 1024 - base), arguments, {})
    assert arguments == {"f0": [b"v0"]}
    arguments = {}
    with pytest.raises(HTTPInputError, match="header too large"):
        parse_multipart_form_data(b"B", multipart_body(1, 10 * 1024 - base + 1), arguments, {})
    assert arguments == {}


def test_set_parse_body_config_changes_the_default(restore_config: None) -> None:
    set_parse_body_config(ParseBodyConfig(multipart=ParseMultipartConfig(max_parts=2)))
    with pytest.raises(HTTPInputError):
        parse_multipart_form_data(b"B", multipart_body(3), {}, {})
    set_parse_body_config(ParseBodyConfig())
    parse_multipart_form_data(b"B", multipart_body(3), {}, {})


def test_parts_are_the_same_pieces_split_would_give() -> None:
    # Preamble, an empty piece between delimiters, an epilogue.
    body = (
        b"preamble\r\n--B\r\n"
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n--B-ish\r\n'
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n--B--\r\nepilogue'
    )
    arguments: dict[str, list[bytes]] = {}
    parse_multipart_form_data(b"B", body, arguments, {})
    assert arguments == {"a": [b"--B-ish", b""]}


# -- finding 6: urlencoded arguments ------------------------------------------------------------


def test_urlencoded_accepts_max_arguments_and_refuses_one_more() -> None:
    arguments: dict[str, list[bytes]] = {}
    parse_body_arguments(URLENCODED, urlencoded_body(1000), arguments, {})
    assert len(arguments) == 1000
    arguments = {}
    with pytest.raises(HTTPInputError, match="more than 1000 urlencoded arguments"):
        parse_body_arguments(URLENCODED, urlencoded_body(1001), arguments, {})
    assert arguments == {}


def test_urlencoded_counts_fields_as_parse_qs_does() -> None:
    # A trailing "&" is one more (empty) field, as in urllib.parse's max_num_fields.
    config = ParseBodyConfig(urlencoded=ParseUrlEncodedConfig(max_arguments=2))
    parse_body_arguments(URLENCODED, b"a=1&b=2", {}, {}, config=config)
    with pytest.raises(HTTPInputError):
        parse_body_arguments(URLENCODED, b"a=1&b=2&", {}, {}, config=config)
    with pytest.raises(HTTPInputError):
        parse_body_arguments(URLENCODED, b"&&", {}, {}, config=config)


def test_urlencoded_limit_from_set_parse_body_config(restore_config: None) -> None:
    set_parse_body_config(ParseBodyConfig(urlencoded=ParseUrlEncodedConfig(max_arguments=5000)))
    arguments: dict[str, list[bytes]] = {}
    parse_body_arguments(URLENCODED, urlencoded_body(5000), arguments, {})
    assert len(arguments) == 5000


def test_request_parse_body_ignores_an_over_limit_body_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = HTTPServerRequest(
        method="POST",
        uri="/?q=1",
        headers=httputil.HTTPHeaders({"Content-Type": URLENCODED}),
        body=urlencoded_body(1001),
    )
    with caplog.at_level(logging.WARNING, "asyncweb.general"):
        request._parse_body()
    assert request.body_arguments == {}
    assert request.arguments == {"q": [b"1"]}
    assert "more than 1000 urlencoded arguments" in caplog.text
    with pytest.raises(HTTPInputError):
        request._parse_body_or_refuse()


# -- the query string (Tornado 6.5.9: the urlencoded limit applies to URL arguments too) --------


def query_request(query: str) -> HTTPServerRequest:
    return HTTPServerRequest(method="GET", uri="/?" + query, headers=httputil.HTTPHeaders())


def test_parse_qs_bytes_max_num_fields() -> None:
    assert len(httputil.parse_qs_bytes(urlencoded_body(10), max_num_fields=10)) == 10
    with pytest.raises(ValueError, match="more than 9 fields"):
        httputil.parse_qs_bytes(urlencoded_body(10), max_num_fields=9)
    assert httputil.parse_qs_bytes("", max_num_fields=0) == {}


def test_query_arguments_over_the_limit_raise_when_first_read(restore_config: None) -> None:
    assert len(query_request(urlencoded_body(1000).decode()).query_arguments) == 1000
    request = query_request(urlencoded_body(1001).decode())  # building it costs nothing
    with pytest.raises(HTTPInputError, match="more than 1000 query arguments"):
        request.arguments  # noqa: B018
    set_parse_body_config(ParseBodyConfig(urlencoded=ParseUrlEncodedConfig(max_arguments=2000)))
    assert len(request.query_arguments) == 1001
    set_parse_body_config(ParseBodyConfig(urlencoded=ParseUrlEncodedConfig(max_arguments=0)))
    assert query_request("").query_arguments == {}


# -- over a real server ---------------------------------------------------------------------------

events: list[str] = []


class Fields(RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("X-Handler", "fields")

    def post(self) -> None:
        events.append("post")
        self.write(
            {
                "fields": len(self.request.body_arguments),
                "files": sorted(self.request.files),
                "first": {k: v[0].decode() for k, v in list(self.request.arguments.items())[:3]},
            }
        )

    def on_finish(self) -> None:
        events.append(f"on_finish {self.get_status()}")


@stream_request_body
class Streamed(RequestHandler):
    def prepare(self) -> None:
        self.received = 0

    def data_received(self, chunk: bytes) -> None:
        self.received += len(chunk)

    def post(self) -> None:
        self.write({"received": self.received, "fields": len(self.request.body_arguments)})


def limits_app(**settings: Any) -> Application:
    return Application([("/fields", Fields), ("/stream", Streamed)], **settings)


async def post(fetch: Fetch, url: str, body: bytes, content_type: str) -> Any:
    return await fetch(url, method="POST", body=body, headers={"Content-Type": content_type})


async def test_over_limit_bodies_get_400_with_a_reason(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    url = await serve(limits_app())
    events.clear()
    with caplog.at_level(logging.WARNING):
        parts = await post(fetch, url + "/fields", multipart_body(101), MULTIPART)
        args = await post(fetch, url + "/fields", urlencoded_body(1001), URLENCODED)
    assert parts.status == 400
    assert parts.reason == (
        "Invalid body: multipart/form-data has too many parts (more than 100 multipart parts)"
    )
    assert b"400: Invalid body: multipart/form-data has too many parts" in parts.body
    assert args.status == 400
    assert args.reason == (
        "Invalid body: Invalid x-www-form-urlencoded body: Max number of fields exceeded"
        " (more than 1000 urlencoded arguments)"
    )
    # The route's handler answered (its headers, its on_finish), but post() never ran.
    assert parts.headers["X-Handler"] == "fields"
    assert events == ["on_finish 400", "on_finish 400"]
    # One warning line each, no traceback, nothing at error level.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in caplog.records if r.name == "asyncweb.general"]
    assert any("400 POST /fields" in m and "Invalid body" in m for m in warnings)
    assert not any(r.exc_info for r in caplog.records)


class Query(RequestHandler):
    def get(self, reads: str) -> None:
        self.write(str(len(self.request.arguments)) if reads == "reads" else "untouched")


async def test_query_over_the_limit_is_a_400_once_read(serve: Serve, fetch: Fetch) -> None:
    url = await serve(Application([("/(reads|ignores)", Query)]))
    over = "?" + urlencoded_body(1001).decode()
    refused = await fetch(url + "/reads" + over)
    assert (refused.status, refused.reason) == (400, "Bad request: more than 1000 query arguments")
    assert (await fetch(url + "/ignores" + over)).text == "untouched"
    assert (await fetch(url + "/reads?" + urlencoded_body(1000).decode())).text == "1000"


async def test_bodies_at_the_limits_are_served(serve: Serve, fetch: Fetch) -> None:
    url = await serve(limits_app())
    parts = await post(fetch, url + "/fields?q=1", multipart_body(100), MULTIPART)
    assert parts.status == 200 and json.loads(parts.body)["fields"] == 100
    args = await post(fetch, url + "/fields", urlencoded_body(1000), URLENCODED)
    assert args.status == 200 and json.loads(args.body)["fields"] == 1000


async def test_unusable_charset_part_over_the_wire_is_a_400_not_a_500(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    url = await serve(limits_app())
    body = (
        b"--B\r\nContent-Disposition: form-data; name*=UTF-\x008''%FF\r\n\r\nv\r\n"
        b"--B\r\nContent-Disposition: form-data; name*=idna''%FF\r\n\r\nv\r\n"
        b'--B\r\nContent-Disposition: form-data; name="ok"\r\n\r\nw\r\n--B--\r\n'
    )
    with caplog.at_level(logging.ERROR):
        resp = await post(fetch, url + "/fields", body, MULTIPART)
    # The NUL in the first part's header refuses the body (Tornado 6.5+: HTTPInputError).
    assert resp.status == 400, resp.body
    assert "Invalid header value" in resp.reason
    assert not caplog.records
    # The charset that cannot decode alone is not an error: the part keeps its raw name.
    resp = await post(fetch, url + "/fields", body[body.index(b"--B", 4) :], MULTIPART)
    assert resp.status == 200, resp.body
    assert json.loads(resp.body)["fields"] == 2


async def test_a_400_keeps_the_connection_for_the_next_request(serve: Serve) -> None:
    url = await serve(limits_app())
    port = int(url.rsplit(":", 1)[1])

    def exchange() -> list[tuple[int, bytes]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            results = []
            for body in (urlencoded_body(1001), urlencoded_body(3)):
                conn.request("POST", "/fields", body, {"Content-Type": URLENCODED})
                resp = conn.getresponse()
                results.append((resp.status, resp.read()))
            return results
        finally:
            conn.close()

    (first, _), (second, body) = await asyncio.to_thread(exchange)
    assert first == 400
    assert second == 200 and json.loads(body)["fields"] == 3


async def test_streaming_handlers_get_the_raw_body_whatever_its_size(
    serve: Serve, fetch: Fetch
) -> None:
    url = await serve(limits_app())
    body = urlencoded_body(5000)
    resp = await post(fetch, url + "/stream", body, URLENCODED)
    assert resp.status == 200
    assert json.loads(resp.body) == {"received": len(body), "fields": 0}


async def test_raised_and_disabled_limits_reach_the_server(
    serve: Serve, fetch: Fetch, restore_config: None
) -> None:
    url = await serve(limits_app())
    set_parse_body_config(ParseBodyConfig(multipart=ParseMultipartConfig(max_parts=500)))
    resp = await post(fetch, url + "/fields", multipart_body(500), MULTIPART)
    assert resp.status == 200 and json.loads(resp.body)["fields"] == 500
    set_parse_body_config(ParseBodyConfig(multipart=ParseMultipartConfig(enabled=False)))
    resp = await post(fetch, url + "/fields", multipart_body(1), MULTIPART)
    assert resp.status == 400
    assert resp.reason == "Invalid body: multipart/form-data parsing is disabled"
    # urlencoded forms are not affected by the multipart switch.
    resp = await post(fetch, url + "/fields", b"a=1", URLENCODED)
    assert resp.status == 200


async def test_plain_callback_servers_ignore_an_over_limit_body(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    # HTTPServer(callback) parses forms too; there the body is dropped with a warning.
    seen: list[int] = []

    def callback(request: HTTPServerRequest) -> None:
        seen.append(len(request.body_arguments))
        body = b"ok"
        request.connection.write_headers(  # type: ignore[union-attr]
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            httputil.HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        request.connection.finish()  # type: ignore[union-attr]

    url = await serve(callback)
    with caplog.at_level(logging.WARNING, "asyncweb.general"):
        over = await post(fetch, url + "/", urlencoded_body(1001), URLENCODED)
        under = await post(fetch, url + "/", urlencoded_body(10), URLENCODED)
    assert over.status == under.status == 200
    assert seen == [0, 10]
    assert "more than 1000 urlencoded arguments" in caplog.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_curl_multipart_forms_at_and_over_the_limit(serve: Serve) -> None:
    url = await serve(limits_app())

    def curl(fields: int) -> tuple[str, bytes]:
        args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"]
        for i in range(fields - 1):
            args += ["-F", f"f{i}=v{i}"]
        args += ["-F", "upload=@-;filename=notes.txt"]  # a file part read from stdin
        done = subprocess.run([*args, url + "/fields"], input=b"file body", capture_output=True)
        body, _, status = done.stdout.rpartition(b"\n")
        return status.decode(), body

    status, body = await asyncio.to_thread(curl, 100)
    assert status == "200", body
    assert json.loads(body)["files"] == ["upload"] and json.loads(body)["fields"] == 99
    status, body = await asyncio.to_thread(curl, 101)
    assert status == "400"
    assert b"more than 100 multipart parts" in body
