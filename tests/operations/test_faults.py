"""Faults: a graceful stop under load loses no accepted request, and handlers that raise, block
or leak tasks never take the server down. Real servers, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets
from asyncweb.web import Application, RequestHandler
from tests.support.servers import Fetch, Serve, raw_exchange, wait_until


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    logging.getLogger("asyncweb").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("asyncweb").setLevel(logging.NOTSET)


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One Content-Length-framed response, or raise if the connection ends before it is whole."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


async def test_graceful_stop_under_load_answers_every_accepted_request(
    protocol_settings: dict[str, Any],
) -> None:
    started = 0

    class Work(RequestHandler):
        async def get(self, delay: str) -> None:
            nonlocal started
            started += 1
            await asyncio.sleep(int(delay) / 1000)
            self.write("done " + delay)

    server = HTTPServer(Application([(r"/work/(\d+)", Work)]), **protocol_settings)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    answered = 0
    truncated = 0
    refused = 0
    stopping = asyncio.Event()

    async def client(number: int) -> None:
        nonlocal answered, truncated, refused
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                refused += 1  # after stop(): no new connections, as expected
                return
            try:
                while True:
                    delay = (number * 7 + answered) % 40
                    writer.write(b"GET /work/%d HTTP/1.1\r\nHost: x\r\n\r\n" % delay)
                    try:
                        response = await read_response(reader)
                    except asyncio.IncompleteReadError as err:
                        if err.partial:
                            truncated += 1  # a response cut short: never acceptable
                        break  # closed between requests: that request was never accepted
                    except ConnectionError:
                        break
                    assert response.startswith(b"HTTP/1.1 200 OK"), response
                    assert response.endswith(b"done %d" % delay)
                    answered += 1
                    if stopping.is_set() and b"Connection: close" in response:
                        break
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()
            if stopping.is_set():
                return

    clients = [asyncio.create_task(client(n)) for n in range(40)]
    await wait_until(lambda: answered > 40)  # steady load: counted, not timed
    stopping.set()
    server.stop()
    await asyncio.wait_for(server.close_all_connections(), 10)
    await asyncio.wait_for(asyncio.gather(*clients), 10)
    assert truncated == 0
    # Every request a handler started was answered in full before the connections closed.
    assert answered == started, (answered, started, refused)


class Faulty(RequestHandler):
    leaked: set[asyncio.Task[None]] = set()
    forever: list[asyncio.Task[None]] = []

    async def _explode_later(self) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("nobody awaits this task")

    async def get(self, how: str) -> None:
        if how == "raise":
            raise RuntimeError("handler bug")
        if how == "raise-after-flush":
            self.write("partial")
            await self.flush()
            raise RuntimeError("handler bug after the head went out")
        if how == "block":
            time.sleep(0.3)  # a blocking call in a handler: everything waits, nothing breaks
        if how == "leak-task":
            # Fire and forget: the exception is never retrieved by anyone.
            task = asyncio.get_running_loop().create_task(self._explode_later())
            Faulty.leaked.add(task)
            task.add_done_callback(Faulty.leaked.discard)
        if how == "leak-forever":
            Faulty.forever.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))
        if how == "bad-on-finish":
            self.write("ok")
            return
        self.write("ok")

    def on_finish(self) -> None:
        if self.path_kwargs.get("how") == "bad-on-finish" or self.path_args == ["bad-on-finish"]:
            raise RuntimeError("on_finish bug")


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("raise", 500),
        # The head is out: as Tornado does, the error is logged and the response ended as is.
        ("raise-after-flush", None),
        ("block", 200),
        ("leak-task", 200),
        ("leak-forever", 200),
        ("bad-on-finish", 200),
    ],
)
async def test_faulty_handlers_do_not_take_the_server_down(
    serve: Serve, fetch: Fetch, how: str, expected: int | None
) -> None:
    url = await serve(Application([(r"/faulty/(.*)", Faulty), (r"/ok", OK)]))
    # A request that is in the middle of being served on another connection when it happens.
    slow = asyncio.ensure_future(fetch(url + "/ok?delay=0.1"))
    if expected is None:
        response = await raw_exchange(
            url,
            b"GET /faulty/" + how.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        assert response.startswith(b"HTTP/1.1 200 OK")
        assert response.endswith(b"7\r\npartial\r\n0\r\n\r\n")
    else:
        assert (await fetch(url + "/faulty/" + how)).status == expected
    assert (await slow).status == 200
    for _ in range(3):
        after = await fetch(url + "/ok")
        assert after.status == 200 and after.body == b"fine"
    await asyncio.sleep(0.05)
    gc.collect()
    for task in Faulty.forever:
        task.cancel()


class OK(RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(float(self.get_argument("delay", "0")))
        self.write("fine")


async def test_many_concurrent_failures_leave_the_server_serving(serve: Serve) -> None:
    class Boom(RequestHandler):
        def get(self) -> None:
            raise ValueError("boom")

    url = await serve(Application([(r"/boom", Boom), (r"/ok", OK)]))

    async def one() -> bytes:
        return await raw_exchange(
            url, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )

    responses = await asyncio.gather(*(one() for _ in range(100)))
    assert all(r.startswith(b"HTTP/1.1 500") for r in responses)
    ok = await raw_exchange(url, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"fine")
