"""aiohttp WebSocket benchmark server on uvloop, access log off: the same routes as
``asyncweb_ws.py``. The fan-out awaits ``send_str`` per member, aiohttp's usual pattern."""

import sys
from pathlib import Path

# _serve and the hello and echo handlers are in ../apps (see apps/*_websocket.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
from _serve import serve_aiohttp
from aiohttp import WSMsgType, web
from aiohttp_websocket import echo, hello

room: set[web.WebSocketResponse] = set()


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


if __name__ == "__main__":
    serve_aiohttp([("/", hello), ("/echo", echo), ("/fanout", fanout)])
