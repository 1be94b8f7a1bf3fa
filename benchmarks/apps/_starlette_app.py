"""The Starlette apps shared by the starlette_*.py scripts: hello world and the realistic
endpoint (see asyncweb_realistic.py)."""

import uvicorn
from _serve import HOST, port_from_args
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world")


async def user(request: Request) -> JSONResponse:
    greeting = request.query_params.get("greeting", "hello")
    session = request.cookies.get("session", "anonymous")
    return JSONResponse(
        {"user": request.path_params["name"], "greeting": greeting, "session": session},
        headers={"Cache-Control": "no-store"},
    )


app = Starlette(routes=[Route("/", homepage)])
realistic_app = Starlette(routes=[Route("/user/{name}", user)])


def serve(http: str, realistic: bool = False) -> None:
    """Run an app under uvicorn: one worker, uvloop, access log off, the given HTTP parser."""
    uvicorn.run(
        realistic_app if realistic else app,
        host=HOST,
        port=port_from_args(),
        http=http,
        loop="uvloop",
        workers=1,
        access_log=False,
        log_level="warning",
    )
