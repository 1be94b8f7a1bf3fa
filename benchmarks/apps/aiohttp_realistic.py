"""The realistic endpoint (see asyncweb_realistic.py) on aiohttp, on uvloop, access log off."""

from _serve import serve_aiohttp
from aiohttp import web


async def user(request: web.Request) -> web.Response:
    greeting = request.query.get("greeting", "hello")
    session = request.cookies.get("session", "anonymous")
    return web.json_response(
        {"user": request.match_info["name"], "greeting": greeting, "session": session},
        headers={"Cache-Control": "no-store"},
    )


if __name__ == "__main__":
    serve_aiohttp([("/user/{name}", user)])
