"""Fixture app for the cross-process pub/sub test: every process shares one RedisBroker.

``POST /publish/<channel>`` publishes the JSON body (plus this process's pid);
``/ws/<channel>`` is a WebSocket that first says ``{"ready": pid}`` once subscribed, then
relays every message of the channel.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from asyncweb import web
from asyncweb.pubsub import Broker, MemoryBroker, RedisBroker
from asyncweb.websocket import WebSocketHandler

url = os.environ.get("ASYNCWEB_TEST_REDIS")
broker: Broker = RedisBroker(url) if url else MemoryBroker()


class PublishHandler(web.RequestHandler):
    async def post(self, channel: str) -> None:
        message = json.loads(self.request.body)
        message["via"] = os.getpid()
        await broker.publish(channel, message)
        self.write({"published": True})


class FeedSocket(WebSocketHandler):
    pump: asyncio.Task[None] | None = None

    async def open(self, channel: str) -> None:  # type: ignore[override]
        self.subscription = broker.subscribe(channel)
        await self.subscription.ready()
        self.write_message({"ready": os.getpid()})
        self.pump = asyncio.ensure_future(self._relay())

    async def _relay(self) -> None:
        async for message in self.subscription:
            self.write_message(json.dumps(message) if not isinstance(message, str) else message)

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        self.subscription.close()
        if self.pump is not None:
            self.pump.cancel()


def make_app() -> web.Application:
    return web.Application([(r"/publish/([^/]+)", PublishHandler), (r"/ws/([^/]+)", FeedSocket)])


app: Any = make_app()
