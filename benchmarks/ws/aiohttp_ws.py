"""aiohttp WebSocket benchmark server on uvloop, access log off: the same routes as
``asyncweb_ws.py``. The fan-out awaits ``send_str`` per member, aiohttp's usual pattern."""

import argparse
import asyncio

import uvloop
from aiohttp import WSMsgType, web

room: set[web.WebSocketResponse] = set()


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def fanout(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    room.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                _, count, size = msg.data.split()
                payload = "b" * int(size)
                for _ in range(int(count)):
                    for member in list(room):
                        if member.closed:
                            room.discard(member)
                            continue
                        await member.send_str(payload)
    finally:
        room.discard(ws)
    return ws


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/echo", echo)
    app.router.add_get("/fanout", fanout)
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
