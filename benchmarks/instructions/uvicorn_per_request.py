"""The peer of per_request.py for uvicorn+Starlette (httptools parser): the same requests, one at
a time over loopback, to the wrk benchmark's Starlette apps (benchmarks/apps), for callgrind.

    benchmarks/.venv/bin/python uvicorn_per_request.py N hello|realistic [uvloop]
"""

import asyncio
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
from _starlette_app import app, realistic_app

# The bytes per_request.py sends (not imported: that would load asyncweb into the count).
HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
REALISTIC = (
    b"GET /user/alice?greeting=hi HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; session=abc123\r\n"
    b"User-Agent: bench\r\nAccept: */*\r\n\r\n"
)


async def main(n: int, endpoint: str) -> None:
    config = uvicorn.Config(
        app if endpoint == "hello" else realistic_app,
        host="127.0.0.1",
        port=0,
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request, end = (HELLO, b"Hello, world") if endpoint == "hello" else (REALISTIC, b'"abc123"}')
    for _ in range(n):
        writer.write(request)
        await reader.readuntil(end)
    writer.close()
    server.should_exit = True
    await serving


if __name__ == "__main__":
    if sys.argv[3:] == ["uvloop"]:
        import uvloop

        uvloop.install()
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
