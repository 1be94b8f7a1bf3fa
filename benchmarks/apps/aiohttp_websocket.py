"""WebSocket echo on aiohttp (``/ws``) next to hello world (``/``), on uvloop, access log off."""

from _serve import serve_aiohttp
from aiohttp import WSMsgType, web


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


if __name__ == "__main__":
    serve_aiohttp([("/", hello), ("/ws", echo)])
