"""The start-up every benchmark app shares: ``--port`` from the command line, 127.0.0.1 only,
uvloop, access logs off. Each ``serve_*`` runs until the process is killed; the frameworks are
imported inside them so an app only loads its own."""

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

HOST = "127.0.0.1"


def port_from_args() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    return int(parser.parse_args().port)


def run_on_uvloop(main: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main(port))`` on uvloop."""
    import uvloop

    port = port_from_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(port))


def serve_asyncweb(handlers: list[Any], **server_settings: Any) -> None:
    """A Tornado-style ``Application(handlers)`` on asyncweb (which picks uvloop itself);
    ``server_settings`` go to its HTTPServer (``http_parser="httptools"``, say)."""
    from asyncweb import ioloop, web

    port = port_from_args()
    web.Application(handlers).listen(port, address=HOST, **server_settings)
    ioloop.IOLoop.current().start()


def serve_tornado(handlers: list[Any]) -> None:
    """``tornado.web.Application(handlers)`` on uvloop."""
    import tornado.web

    async def main(port: int) -> None:
        tornado.web.Application(handlers).listen(port, address=HOST)
        await asyncio.Event().wait()

    run_on_uvloop(main)


def serve_aiohttp(routes: list[tuple[str, Any]]) -> None:
    """An aiohttp app answering GET on each ``(path, handler)``, on uvloop, access log off."""
    from aiohttp import web

    async def main(port: int) -> None:
        app = web.Application()
        for path, handler in routes:
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    run_on_uvloop(main)
