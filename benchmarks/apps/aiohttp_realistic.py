"""The realistic endpoint (see asyncweb_realistic.py) on aiohttp, on uvloop, access log off."""

import argparse
import asyncio

import uvloop
from aiohttp import web


async def user(request: web.Request) -> web.Response:
    greeting = request.query.get("greeting", "hello")
    session = request.cookies.get("session", "anonymous")
    return web.json_response(
        {"user": request.match_info["name"], "greeting": greeting, "session": session},
        headers={"Cache-Control": "no-store"},
    )


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_get("/user/{name}", user)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(args.port))
