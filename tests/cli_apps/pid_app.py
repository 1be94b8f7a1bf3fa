"""Fixture app for the process and CLI tests: answers with its pid; ``/block?seconds=&marker=``
blocks its whole process (a plain ``time.sleep``) after touching ``marker``; ``/slow`` awaits."""

from __future__ import annotations

import asyncio
import os
import time

from asyncweb import httputil, web


class PidHandler(web.RequestHandler):
    def get(self) -> None:
        self.write(str(os.getpid()))


class BlockHandler(web.RequestHandler):
    def get(self) -> None:
        with open(self.get_argument("marker"), "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(float(self.get_argument("seconds")))
        self.write(str(os.getpid()))


class SlowHandler(web.RequestHandler):
    async def get(self) -> None:
        with open(self.get_argument("marker"), "w") as marker:
            marker.write(str(os.getpid()))
        await asyncio.sleep(float(self.get_argument("seconds")))
        self.write(f"slow done {os.getpid()}")


class LoopHandler(web.RequestHandler):
    def get(self) -> None:
        self.write(type(asyncio.get_running_loop()).__module__)


class ParserHandler(web.RequestHandler):
    """Which request parser the server was started with (``--http-parser``)."""

    def get(self) -> None:
        self.write(self.request.connection.params.http_parser)  # type: ignore[union-attr]


def make_app() -> web.Application:
    return web.Application(
        [
            (r"/", PidHandler),
            (r"/block", BlockHandler),
            (r"/slow", SlowHandler),
            (r"/loop", LoopHandler),
            (r"/parser", ParserHandler),
        ]
    )


app = make_app()


def plain_callback(request: httputil.HTTPServerRequest) -> None:
    """An HTTPServer-style request callback (takes the request)."""
    body = b"plain callback"
    assert request.connection is not None
    request.connection.write_headers(
        httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
        httputil.HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


not_an_app = 42
