"""An asyncweb application with its own start-up/shut-down hooks, served by uvicorn through
``ASGIAdapter`` (``python -m uvicorn tests.interop_apps.asgi_hooks_app:asgi_app``)."""

from __future__ import annotations

import os

from asyncweb.asgi import ASGIAdapter
from asyncweb.web import Application, HTTPError, RequestHandler

EVENTS = os.environ.get("ASGI_TEST_EVENTS", "")


def record(event: str) -> None:
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(event + "\n")


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


class Named(RequestHandler):
    def get(self) -> None:
        self.set_header("Server", "custom/1")
        self.write("named")


class Missing(RequestHandler):
    def get(self) -> None:
        raise HTTPError(404)


class Broken(RequestHandler):
    def get(self) -> None:
        raise RuntimeError("broken handler")


async def stopping() -> None:
    record("app shutdown")


application = Application(
    [(r"/hello", Hello), (r"/named", Named), (r"/gone", Missing), (r"/broken", Broken)],
    on_startup=[lambda: record("app startup")],
    on_shutdown=[stopping],
)
asgi_app = ASGIAdapter(
    application,
    on_startup=[lambda: record("adapter startup")],
    on_shutdown=[lambda: record("adapter shutdown")],
)
