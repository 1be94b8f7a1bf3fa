"""An asyncweb application served through ``ASGIAdapter`` by uvicorn and hypercorn
(``python -m uvicorn tests.interop_apps.asgi_app:asgi_app``)."""

from __future__ import annotations

import asyncio
import os

from asyncweb.asgi import ASGIAdapter
from asyncweb.web import Application, HTTPError, RequestHandler, stream_request_body
from asyncweb.websocket import WebSocketHandler

# Written by the lifespan callbacks, so the tests can see they ran in the server process.
LIFESPAN_FILE = os.environ.get("ASGI_TEST_LIFESPAN_FILE", "")
started: list[str] = []


class Hello(RequestHandler):
    def get(self) -> None:
        self.set_header("X-Remote", self.request.remote_ip or "")
        self.write(f"Hello {self.request.protocol} {self.request.uri} {started}")


class Echo(RequestHandler):
    def post(self) -> None:
        self.write({"body": self.request.body.decode(), "arg": self.get_argument("a", None)})


@stream_request_body
class Upload(RequestHandler):
    def prepare(self) -> None:
        self.total = 0
        self.chunks = 0

    def data_received(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.chunks += 1

    def put(self) -> None:
        self.write({"total": self.total})


class Stream(RequestHandler):
    async def get(self) -> None:
        for i in range(4):
            self.write(f"tick{i}\n")
            await self.flush()
            await asyncio.sleep(0.01)


class Args(RequestHandler):
    def get(self, name: str) -> None:
        self.set_status(201)
        self.set_cookie("seen", name)
        self.write({"name": name})


class LongPoll(RequestHandler):
    """Waits until the client goes away; the ASGI server's http.disconnect must reach it."""

    async def get(self) -> None:
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.gone

    def on_connection_close(self) -> None:
        if LIFESPAN_FILE:
            with open(LIFESPAN_FILE, "a") as f:
                f.write("client gone\n")
        if not self.gone.done():
            self.gone.set_result(None)


class Fail(RequestHandler):
    def get(self) -> None:
        raise RuntimeError("handler failed")


class EchoSocket(WebSocketHandler):
    def open(self, room: str) -> None:
        self.room = room
        self.write_message(f"welcome to {room}")

    async def on_message(self, message: str | bytes) -> None:
        if message == "close":
            self.close(4001, "asked")
            return
        if isinstance(message, bytes):
            await self.write_message(message[::-1], binary=True)
        else:
            await self.write_message(f"{self.room}: {message}")

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chat" if "chat" in subprotocols else None


class GuardedSocket(WebSocketHandler):
    """prepare() guards the handshake, as it does under asyncweb's own server."""

    def prepare(self) -> None:
        if self.get_argument("token", "") != "s3cret":
            raise HTTPError(403)

    def open(self) -> None:
        self.write_message("let in")


def on_startup() -> None:
    started.append("up")
    if LIFESPAN_FILE:
        with open(LIFESPAN_FILE, "a") as f:
            f.write("startup\n")


async def on_shutdown() -> None:
    if LIFESPAN_FILE:
        with open(LIFESPAN_FILE, "a") as f:
            f.write("shutdown\n")


application = Application(
    [
        (r"/hello", Hello),
        (r"/echo", Echo),
        (r"/upload", Upload),
        (r"/stream", Stream),
        (r"/args/(\w+)", Args),
        (r"/fail", Fail),
        (r"/longpoll", LongPoll),
        (r"/ws/(\w+)", EchoSocket),
        (r"/guarded", GuardedSocket),
    ]
)
asgi_app = ASGIAdapter(application, on_startup=[on_startup], on_shutdown=[on_shutdown])
