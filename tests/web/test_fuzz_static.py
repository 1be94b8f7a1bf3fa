"""Property-based path traversal against StaticFileHandler over a real server (hypothesis):
request paths built from traversal pieces (``..``, encoded dots and slashes, backslashes,
NULs, a symlink out of the root, doubled slashes) only ever serve files under the root, and
only the right bytes for them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets
from asyncweb.web import Application, StaticFileHandler
from tests.support.servers import raw_exchange

PIECES = [
    "..",
    ".",
    "%2e%2e",
    "%2E.",
    ".%2e",
    "%2f",
    "%5c",
    "\\",
    "%00",
    "",
    "docs",
    "index.html",
    "file.txt",
    "escape",
    "secret.txt",
    "public",
    "%2fetc%2fpasswd",
    "~",
    "%252e%252e",
]
PUBLIC = {"file.txt": b"public file\n", "docs/index.html": b"docs index\n"}


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    logging.getLogger("asyncweb").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("asyncweb").setLevel(logging.NOTSET)


@contextlib.contextmanager
def site() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "public"
        (root / "docs").mkdir(parents=True)
        for name, content in PUBLIC.items():
            (root / name).write_bytes(content)
        (Path(tmp) / "secret.txt").write_bytes(b"TOP SECRET\n")
        with contextlib.suppress(OSError):
            (root / "escape").symlink_to(Path(tmp) / "secret.txt")
        yield root


@settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8), min_size=8, max_size=8))
def test_static_paths_never_leave_the_root(paths: list[list[str]]) -> None:
    async def go() -> None:
        with site() as root:
            app = Application(
                [
                    (
                        r"/files/(.*)",
                        StaticFileHandler,
                        {"path": str(root), "default_filename": "index.html"},
                    )
                ],
                static_path=str(root),
            )
            server = HTTPServer(app)
            sockets = bind_sockets(0, "127.0.0.1")
            server.add_sockets(sockets)
            url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            try:
                for pieces in paths:
                    for prefix in ("/static/", "/files/"):
                        target = (prefix + "/".join(pieces)).encode()
                        response = await raw_exchange(
                            url,
                            b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        )
                        status = int(response.split(b" ", 2)[1])
                        assert b"TOP SECRET" not in response, target
                        assert status in (200, 301, 302, 400, 403, 404, 405), (
                            target,
                            response[:200],
                        )
                        if status in (301, 302):
                            location = re.search(rb"\r\nLocation: ([^\r]*)", response)
                            assert location is not None
                            where = location.group(1).decode("latin-1").replace("\\", "/")
                            assert where.startswith("/") and not where.startswith("//"), where
                        if status == 200:
                            body = response.split(b"\r\n\r\n", 1)[1]
                            assert body in PUBLIC.values(), (target, body[:100])
            finally:
                server.stop()
                await server.close_all_connections()

    asyncio.run(go())
