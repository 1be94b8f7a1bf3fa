"""Requests over loopback in one process, for counting instructions per request with callgrind.

The client sends one request and waits for its response (the pattern wrk uses), so per-read and
per-loop-iteration costs are counted too. Run twice with two request counts and take the
difference, which cancels start-up: see count.sh beside this file.

    python per_request.py N hello|realistic h11|httptools [uvloop]
"""

import asyncio
import sys
from pathlib import Path

from asyncweb import web
from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets

# The handlers are the wrk benchmark's own (benchmarks/apps), so both measure the same code.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
from asyncweb_hello import MainHandler
from asyncweb_realistic import UserHandler

HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
REALISTIC = (
    b"GET /user/alice?greeting=hi HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; session=abc123\r\n"
    b"User-Agent: bench\r\nAccept: */*\r\n\r\n"
)


async def main(n: int, endpoint: str, parser: str) -> None:
    app = web.Application(
        [(r"/", MainHandler), (r"/user/([^/]+)", UserHandler)], log_function=lambda handler: None
    )
    server = HTTPServer(app, http_parser=parser)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    reader, writer = await asyncio.open_connection("127.0.0.1", sockets[0].getsockname()[1])
    request, end = (HELLO, b"Hello, world") if endpoint == "hello" else (REALISTIC, b'"abc123"}')
    for _ in range(n):
        writer.write(request)
        await reader.readuntil(end)
    writer.close()
    server.stop()


if __name__ == "__main__":
    if sys.argv[4:] == ["uvloop"]:
        import uvloop

        uvloop.install()
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
