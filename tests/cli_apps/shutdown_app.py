"""Fixture app for the shut-down tests: start-up and shut-down hooks that record themselves in
the file named by ``$EVENTS`` (and a background task that runs until cancelled), a long poll
that answers when the server shuts down (``/poll``), and one that ignores it (``/stuck``).

Run as a script (``python shutdown_app.py PORT``) it serves with ``app.listen()`` and
``IOLoop.current().start()``, the way Tornado programs do."""

from __future__ import annotations

import asyncio
import os
import sys

from asyncweb import web
from asyncweb.ioloop import IOLoop
from asyncweb.pubsub import MemoryBroker, RedisBroker

_forever: asyncio.Event | None = None


def record(event: str) -> None:
    path = os.environ.get("EVENTS")
    if path:
        with open(path, "a") as events:
            events.write(event + "\n")


async def start_consumer() -> None:
    # Like the chat's pub/sub consumer: a task of the application's own that runs until shut
    # down, reading a Redis subscription when $ASYNCWEB_TEST_REDIS names a server.
    url = os.environ.get("ASYNCWEB_TEST_REDIS")
    broker = RedisBroker(url) if url else MemoryBroker()
    subscription = broker.subscribe("events")
    await subscription.ready()

    async def consume() -> None:
        try:
            async for _message in subscription:
                pass
        finally:
            record("consumer cancelled")

    global _consumer
    _consumer = asyncio.ensure_future(consume())
    record("startup")


_consumer: asyncio.Future[None] | None = None


async def stop() -> None:
    await asyncio.sleep(0)
    record("shutdown")


class PollHandler(web.RequestHandler):
    async def get(self) -> None:
        self.waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        record("poll waiting")
        await self.waiting
        self.write({"messages": []})

    def on_shutdown(self) -> None:
        if not self.waiting.done():
            self.waiting.set_result(None)


class StuckHandler(web.RequestHandler):
    async def get(self) -> None:
        record("stuck waiting")
        await asyncio.Event().wait()


app = web.Application(
    [(r"/poll", PollHandler), (r"/stuck", StuckHandler)],
    on_startup=[start_consumer],
    shutdown_timeout=float(os.environ.get("SHUTDOWN_TIMEOUT", "30")),
)
app.add_shutdown_hook(stop)


if __name__ == "__main__":
    app.listen(int(sys.argv[1]), "127.0.0.1")
    IOLoop.current().start()
