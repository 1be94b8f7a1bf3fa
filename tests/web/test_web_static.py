"""asyncweb.web.StaticFileHandler over a real server: validators, ranges, versioned URLs,
streaming, directories and traversal attempts (urllib, curl and raw sockets)."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from asyncweb.web import Application, RequestHandler, StaticFileHandler
from tests.support.servers import Fetch, Serve, raw_exchange

HELLO = b"Hello, static world!\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A static root (with a sub-directory, assorted types) next to a secret file."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "style.css").write_text("body { color: red }\n")
    (root / "app.js").write_text("console.log(1);\n")
    (root / "data.unknownext").write_bytes(b"\x00\x01")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b fake")
    (root / "favicon.ico").write_bytes(b"ICON")
    (root / "robots.txt").write_text("User-agent: *\n")
    (root / "sub" / "index.html").write_text("<p>sub index</p>")
    (root / "sub" / "page.html").write_text("<p>page</p>")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (root / "escape_link").symlink_to(tmp_path / "secret.txt")
    (root / "inner_link.txt").symlink_to(root / "hello.txt")
    (root / "dir_link").symlink_to(tmp_path)
    return root


class Urls(RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "versioned": self.static_url("hello.txt"),
                "plain": self.static_url("hello.txt", include_version=False),
                "absolute": self.static_url("hello.txt", include_host=True),
                "missing": self.static_url("nope.txt"),
            }
        )


def make_app(root: Path, **settings: Any) -> Application:
    return Application([("/urls", Urls)], static_path=str(root), **settings)


async def test_plain_file_headers_and_body(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site))
    response = await fetch(base + "/static/hello.txt")
    assert response.status == 200
    assert response.body == HELLO
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Content-Length"] == str(len(HELLO))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Etag"] == f'"{hashlib.sha512(HELLO).hexdigest()}"'
    mtime = int((site / "hello.txt").stat().st_mtime)
    assert response.headers["Last-Modified"] == email.utils.formatdate(mtime, usegmt=True)
    assert "Cache-Control" not in response.headers  # unversioned: revalidate each time
    # The application also maps /favicon.ico and /robots.txt into static_path.
    assert (await fetch(base + "/favicon.ico")).body == b"ICON"
    assert (await fetch(base + "/robots.txt")).text == "User-agent: *\n"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("style.css", "text/css"),
        ("app.js", "javascript"),
        ("sub/page.html", "text/html"),
        ("archive.tar.gz", "application/gzip"),
        ("data.unknownext", "application/octet-stream"),
    ],
)
async def test_content_types(
    serve: Serve, fetch: Fetch, site: Path, name: str, content_type: str
) -> None:
    base = await serve(make_app(site))
    response = await fetch(f"{base}/static/{name}")
    assert response.status == 200
    assert content_type in response.headers["Content-Type"]


async def test_static_url_versions_and_long_caching(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site))
    urls = (await fetch(base + "/urls")).text
    digest = hashlib.sha512(HELLO).hexdigest()
    host = base.split("//")[1]
    assert f'"versioned": "/static/hello.txt?v={digest}"' in urls
    assert '"plain": "/static/hello.txt"' in urls
    assert f'"absolute": "http://{host}/static/hello.txt?v={digest}"' in urls
    assert '"missing": "/static/nope.txt"' in urls  # unreadable: no version
    response = await fetch(f"{base}/static/hello.txt?v={digest}")
    assert response.status == 200
    assert response.headers["Cache-Control"] == f"max-age={86400 * 365 * 10}"
    expires = email.utils.parsedate_to_datetime(response.headers["Expires"])
    assert expires.year >= 2030


async def test_conditional_requests(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site))
    url = base + "/static/hello.txt"
    first = await fetch(url)
    etag = first.headers["Etag"]
    modified = first.headers["Last-Modified"]

    for value in (etag, f'"x", {etag}', f"W/{etag}", "*"):
        response = await fetch(url, headers={"If-None-Match": value})
        assert response.status == 304, value
        assert response.body == b""
    assert (await fetch(url, headers={"If-None-Match": '"other"'})).status == 200

    assert (await fetch(url, headers={"If-Modified-Since": modified})).status == 304
    older = email.utils.formatdate(int((site / "hello.txt").stat().st_mtime) - 60, usegmt=True)
    response = await fetch(url, headers={"If-Modified-Since": older})
    assert response.status == 200 and response.body == HELLO
    assert (await fetch(url, headers={"If-Modified-Since": "not a date"})).status == 200
    # If-None-Match decides when both are present.
    both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
    assert (await fetch(url, headers=both)).status == 200


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=0-4", 206, HELLO[0:5], f"bytes 0-4/{len(HELLO)}"),
        ("bytes=7-", 206, HELLO[7:], f"bytes 7-{len(HELLO) - 1}/{len(HELLO)}"),
        ("bytes=-7", 206, HELLO[-7:], f"bytes {len(HELLO) - 7}-{len(HELLO) - 1}/{len(HELLO)}"),
        ("bytes=3-1000", 206, HELLO[3:], f"bytes 3-{len(HELLO) - 1}/{len(HELLO)}"),
        ("bytes=0-1000", 200, HELLO, None),  # the whole file: a plain 200
        ("bytes=-1000", 200, HELLO, None),
        (f"bytes={len(HELLO)}-", 416, b"", f"bytes */{len(HELLO)}"),
        ("bytes=-0", 416, b"", f"bytes */{len(HELLO)}"),
        ("bytes=5-2", 416, b"", f"bytes */{len(HELLO)}"),
        ("bytes=0-1,4-5", 200, HELLO, None),  # several ranges: served whole
        ("items=0-4", 200, HELLO, None),
        ("bytes=x-y", 200, HELLO, None),
    ],
)
async def test_ranges(
    serve: Serve,
    fetch: Fetch,
    site: Path,
    range_header: str,
    status: int,
    body: bytes,
    content_range: str | None,
) -> None:
    base = await serve(make_app(site))
    response = await fetch(base + "/static/hello.txt", headers={"Range": range_header})
    assert response.status == status
    assert response.body == body
    assert response.headers.get("Content-Range") == content_range
    if status != 416:
        assert response.headers["Content-Length"] == str(len(body))


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_range_with_curl(serve: Serve, site: Path) -> None:
    base = await serve(make_app(site))
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "-i",
        "--max-time",
        "10",
        "-r",
        "7-12",
        base + "/static/hello.txt",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206 Partial Content")
    assert b"Content-Range: bytes 7-12/" in head
    assert body == HELLO[7:13]


async def test_head_sends_headers_only(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site))
    response = await fetch(base + "/static/hello.txt", method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == str(len(HELLO))
    assert response.headers["Etag"]
    ranged = await fetch(base + "/static/hello.txt", method="HEAD", headers={"Range": "bytes=0-1"})
    assert ranged.status == 206 and ranged.headers["Content-Length"] == "2"


async def test_large_file_streams_in_chunks(serve: Serve, fetch: Fetch, site: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (site / "big.bin").write_bytes(data)
    base = await serve(make_app(site))
    response = await fetch(base + "/static/big.bin")
    assert response.status == 200 and response.body == data
    # A range across chunk boundaries.
    start, end = 65530, 200000
    response = await fetch(base + "/static/big.bin", headers={"Range": f"bytes={start}-{end}"})
    assert response.status == 206 and response.body == data[start : end + 1]
    # get_content reads lazily, CHUNK_SIZE at a time, never the whole file.
    content = StaticFileHandler.get_content(str(site / "big.bin"), 10, None)
    assert not isinstance(content, bytes)
    first = next(content)
    assert first == data[10 : 10 + StaticFileHandler.CHUNK_SIZE]
    sizes = [len(first)] + [len(chunk) for chunk in content]
    assert max(sizes) == StaticFileHandler.CHUNK_SIZE and sum(sizes) == len(data) - 10


async def test_directories_and_default_filename(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site))
    assert (await fetch(base + "/static/sub")).status == 403  # no default_filename
    assert (await fetch(base + "/static/sub/")).status == 403
    base = await serve(make_app(site, static_handler_args={"default_filename": "index.html"}))
    response = await fetch(base + "/static/sub")
    assert response.status == 301
    assert response.headers["Location"] == "/static/sub/"
    response = await fetch(base + "/static/sub/")
    assert response.status == 200 and response.text == "<p>sub index</p>"
    assert (await fetch(base + "/static/missing")).status == 404


async def test_no_open_redirect_for_double_slash(serve: Serve, site: Path) -> None:
    app = Application(
        [(r"/+(.*)", StaticFileHandler, {"path": str(site), "default_filename": "index.html"})]
    )
    base = await serve(app)
    reply = await raw_exchange(base, b"GET //sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403"), reply[:100]
    assert b"Location" not in reply
    reply = await raw_exchange(base, b"GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 301") and b"Location: /sub/\r\n" in reply


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub/..%2f..%2fsecret.txt",
        "/static/sub/%2E%2E/%2E%2E/secret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/escape_link",
        "/static/dir_link/secret.txt",
        "/static/hello.txt%00.png",
    ],
)
async def test_traversal_is_refused(serve: Serve, site: Path, path: str) -> None:
    base = await serve(make_app(site))
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    reply = await raw_exchange(base, request)
    status = int(reply.split(b" ", 2)[1])
    assert status in (403, 404), reply[:200]
    assert b"TOP SECRET" not in reply and b"root:" not in reply


async def test_symlink_inside_root_is_served(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site))
    response = await fetch(base + "/static/inner_link.txt")
    assert response.status == 200 and response.body == HELLO


class VersionedByMtime(StaticFileHandler):
    @classmethod
    def make_static_url(
        cls, settings: dict[str, Any], path: str, include_version: bool = True
    ) -> str:
        return "/assets/" + path + ("?v=custom" if include_version else "")

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Static", path)


async def test_custom_handler_class_and_prefix(serve: Serve, fetch: Fetch, site: Path) -> None:
    app = Application(
        [("/urls", Urls)],
        static_path=str(site),
        static_url_prefix="/assets/",
        static_handler_class=VersionedByMtime,
    )
    base = await serve(app)
    assert '"versioned": "/assets/hello.txt?v=custom"' in (await fetch(base + "/urls")).text
    response = await fetch(base + "/assets/hello.txt")
    assert response.body == HELLO and response.headers["X-Static"] == "hello.txt"
    assert (await fetch(base + "/static/hello.txt")).status == 404


async def test_debug_recomputes_versions(serve: Serve, fetch: Fetch, site: Path) -> None:
    base = await serve(make_app(site, static_hash_cache=False))
    first = re.search(r"v=(\w+)", (await fetch(base + "/urls")).text)
    (site / "hello.txt").write_bytes(b"changed\n")
    second = re.search(r"v=(\w+)", (await fetch(base + "/urls")).text)
    assert first and second and first.group(1) != second.group(1)
    assert second.group(1) == hashlib.sha512(b"changed\n").hexdigest()


async def test_gzip_whole_files_but_never_ranges(serve: Serve, fetch: Fetch, site: Path) -> None:
    text = ("line of compressible text\n" * 20000).encode()
    (site / "long.txt").write_bytes(text)
    base = await serve(make_app(site, compress_response=True))
    gzip_headers = {"Accept-Encoding": "gzip"}
    response = await fetch(base + "/static/long.txt", headers=gzip_headers)
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.body) == text
    ranged = await fetch(
        base + "/static/long.txt", headers={**gzip_headers, "Range": "bytes=100-199"}
    )
    assert ranged.status == 206
    assert "Content-Encoding" not in ranged.headers
    assert ranged.body == text[100:200]
