"""aiohttp hello world on uvloop, access log off. Content-Type: text/plain; charset=utf-8."""

from _serve import serve_aiohttp
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


if __name__ == "__main__":
    serve_aiohttp([("/", hello)])
