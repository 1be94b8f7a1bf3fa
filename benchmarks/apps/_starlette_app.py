"""The Starlette app shared by starlette_h11.py and starlette_httptools.py."""

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world")


app = Starlette(routes=[Route("/", homepage)])


def serve(http: str) -> None:
    """Run ``app`` under uvicorn: one worker, uvloop, access log off, the given HTTP parser."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        http=http,
        loop="uvloop",
        workers=1,
        access_log=False,
        log_level="warning",
    )
