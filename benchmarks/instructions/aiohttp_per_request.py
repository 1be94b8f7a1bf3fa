"""The peer of per_request.py for aiohttp: the same requests, one at a time over loopback, to
the wrk benchmark's aiohttp handlers (benchmarks/apps), for callgrind or cProfile.

    benchmarks/.venv/bin/python aiohttp_per_request.py N hello|realistic [uvloop]
"""

import asyncio
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
from aiohttp_hello import hello
from aiohttp_realistic import user

# The bytes per_request.py sends (not imported: that would load asyncweb into the count).
HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
REALISTIC = (
    b"GET /user/alice?greeting=hi HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; session=abc123\r\n"
    b"User-Agent: bench\r\nAccept: */*\r\n\r\n"
)


async def main(n: int, endpoint: str) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/user/{name}", user)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request, end = (HELLO, b"Hello, world") if endpoint == "hello" else (REALISTIC, b'"abc123"}')
    for _ in range(n):
        writer.write(request)
        await reader.readuntil(end)
    writer.close()
    await runner.cleanup()


if __name__ == "__main__":
    if sys.argv[3:] == ["uvloop"]:
        import uvloop

        uvloop.install()
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
