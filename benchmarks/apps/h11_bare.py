"""The ceiling: a bare ``asyncio.Protocol`` driving an ``h11.Connection``, on uvloop.

No framework at all: h11 parses every request and serializes every response, each request
gets a fixed 200 ``Hello, world`` (text/plain) with keep-alive, and pipelined requests are
answered in order by calling ``start_next_cycle`` and reading on from h11's buffer. Whatever
a framework built on h11 adds on top of this is its own cost.
"""

import asyncio
import time
from email.utils import formatdate
from typing import cast

import h11
from _serve import run_on_uvloop

BODY = b"Hello, world"
_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The ``Date`` header value, formatted at most once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


class HelloProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.conn = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None
        self.request: h11.Request | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        self.conn.receive_data(b"")
        self._process()
        return None

    def _process(self) -> None:
        conn = self.conn
        transport = self.transport
        assert transport is not None
        out: list[bytes] = []
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    break
                if event is h11.PAUSED:
                    # The previous exchange is complete on both sides: go on to the next
                    # pipelined request already sitting in h11's buffer.
                    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                        conn.start_next_cycle()
                        continue
                    break
                if isinstance(event, h11.Request):
                    self.request = event
                elif isinstance(event, h11.EndOfMessage):
                    out.append(self._response())
                elif isinstance(event, h11.ConnectionClosed):
                    break
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                out.append(
                    conn.send(
                        h11.Response(
                            status_code=exc.error_status_hint,
                            headers=[(b"content-length", b"0"), (b"connection", b"close")],
                        )
                    )
                    or b""
                )
            if out:
                transport.write(b"".join(out))
            transport.close()
            return
        if out:
            transport.write(b"".join(out))
        if conn.our_state is h11.MUST_CLOSE or conn.their_state in (h11.CLOSED, h11.MUST_CLOSE):
            transport.close()
        elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()

    def _response(self) -> bytes:
        conn = self.conn
        head = conn.send(
            h11.Response(
                status_code=200,
                reason=b"OK",
                headers=[
                    (b"server", b"h11_bare"),
                    (b"date", http_date()),
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"12"),
                ],
            )
        )
        body = conn.send(h11.Data(data=BODY))
        end = conn.send(h11.EndOfMessage())
        return (head or b"") + (body or b"") + (end or b"")


async def main(port: int, protocol: type[asyncio.Protocol] = HelloProtocol) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_on_uvloop(main)
