"""A real ``HTTPServer`` connection driven byte-chunk by byte-chunk.

Each exchange builds the server's own protocol object on one end of a ``socket.socketpair()``
with ``loop.connect_accepted_socket`` (a real asyncio transport), calls its ``data_received``
with exactly the chunks given, and reads what the server wrote from the other end until the
server closes it. Nothing of ours is mocked; the chunking is just exact instead of left to TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
from collections.abc import Iterable
from typing import Any

from asyncweb.httpserver import HTTPServer
from asyncweb.web import Application, HTTPError, RequestHandler

# Small timeouts so that any connection left waiting is closed quickly by the server itself.
FAST_TIMEOUTS: dict[str, Any] = {
    "idle_connection_timeout": 0.05,
    "header_timeout": 0.05,
    "body_timeout": 0.05,
}

ERROR_STATUSES = frozenset((400, 408, 413, 431, 501, 505))
_DATE = re.compile(rb"\r\nDate: [^\r]*", re.IGNORECASE)


class Echo(RequestHandler):
    """Describes the request it got: method, URI, body size and digest, form fields, cookies."""

    def _describe(self) -> None:
        digest = hashlib.sha1(self.request.body).hexdigest()[:12]
        fields = sorted((name, len(values)) for name, values in self.request.body_arguments.items())
        cookies = sorted(self.request.cookies)
        self.write(
            f"{self.request.method} {self.request.uri} {len(self.request.body)} {digest} "
            f"{fields} {cookies}\n"
        )

    def get(self, *args: Any) -> None:
        self._describe()

    def head(self, *args: Any) -> None:
        self._describe()

    async def post(self, *args: Any) -> None:
        await asyncio.sleep(0)
        self._describe()

    put = post
    delete = get

    def patch(self, *args: Any) -> None:
        raise HTTPError(418)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # One line, like the success bodies, so responses can be told apart in a stream.
        self.finish(f"error {status_code}\n")


def fuzz_app() -> Application:
    return Application([(r"/async/(.*)", Echo), (r"/(.*)", Echo)])


async def exchange(
    server: HTTPServer,
    chunks: Iterable[bytes],
    *,
    close_within: float = 5.0,
    half_close: bool = False,
) -> tuple[bytes, bool]:
    """Feed ``chunks`` to a fresh connection of ``server``; return (bytes written back,
    whether the server closed the connection within ``close_within`` seconds). Chunks go to
    whatever protocol the transport has now (a WebSocket one after an upgrade). With
    ``half_close`` the client then shuts down its sending side (a real EOF on the socket)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport: asyncio.BaseTransport | None = None
    try:
        # The server's own protocol factory: the connection is exactly one it would accept.
        transport, _ = await loop.connect_accepted_socket(server._make_protocol, ours)
        for chunk in chunks:
            if transport.is_closing():
                break
            # Any exception from here is a finding: data_received must never raise.
            protocol: Any = transport.get_protocol()
            protocol.data_received(chunk)
            await asyncio.sleep(0)
        if half_close:
            theirs.shutdown(socket.SHUT_WR)
        received: list[bytes] = []
        closed = False
        deadline = loop.time() + close_within
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                data = await asyncio.wait_for(loop.sock_recv(theirs, 65536), remaining)
            except (asyncio.TimeoutError, ConnectionError):
                break
            if not data:
                closed = True
                break
            received.append(data)
        return b"".join(received), closed
    finally:
        theirs.close()
        if transport is not None and not transport.is_closing():
            transport.close()
        # Let connection_lost run so no transport outlives the exchange.
        for _ in range(3):
            await asyncio.sleep(0)


def without_dates(data: bytes) -> bytes:
    return _DATE.sub(b"", data)


def status_codes(data: bytes) -> list[int]:
    """Status codes of the responses in ``data`` (status lines at the start of a head)."""
    return [int(code) for code in re.findall(rb"(?:^|\n)HTTP/1\.1 (\d{3}) ", data)]


def run(coro: Any) -> Any:
    """Run one coroutine on a fresh loop (what each hypothesis example and fuzz input uses)."""
    with contextlib.closing(asyncio.new_event_loop()) as loop:
        return loop.run_until_complete(coro)
