"""A real Starlette application, mounted inside an asyncweb Application by ``ASGIContainer``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

# What the lifespan saw, for the tests.
events: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    events.append("startup")
    yield {"greeting": "from lifespan"}
    events.append("shutdown")


async def home(request: Request) -> Response:
    return PlainTextResponse(
        f"{request.scope['root_path']}|{request.url.path}|{request.state.greeting}"
    )


async def item(request: Request) -> Response:
    return JSONResponse(
        {
            "id": int(request.path_params["item_id"]),
            "q": request.query_params.get("q"),
            "client": request.client.host if request.client else None,
            "header": request.headers.get("x-test"),
            "url_for": str(request.url_for("item", item_id=7)),
        }
    )


async def upload(request: Request) -> Response:
    total = 0
    chunks = 0
    async for chunk in request.stream():
        total += len(chunk)
        chunks += 1 if chunk else 0
    return JSONResponse({"total": total, "chunks": chunks})


async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body[::-1], status_code=201, headers={"X-Echo": "yes"})


async def stream(request: Request) -> Response:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"n{i}\n".encode()

    return StreamingResponse(numbers(), media_type="text/plain")


async def fail(request: Request) -> Response:
    raise RuntimeError("starlette view failed")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept(
        subprotocol="echo" if "echo" in websocket.scope["subprotocols"] else None
    )
    await websocket.send_text(f"hello {websocket.path_params['name']}")
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "bye":
                await websocket.close(code=4002, reason="bye")
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"].upper())
            else:
                await websocket.send_bytes(message["bytes"] * 2)
    except WebSocketDisconnect:
        return


async def ws_refuse(websocket: WebSocket) -> None:
    await websocket.close()


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item, name="item"),
        Route("/upload", upload, methods=["POST"]),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/fail", fail),
        WebSocketRoute("/ws/{name}", ws_echo),
        WebSocketRoute("/refuse", ws_refuse),
    ],
    lifespan=lifespan,
)
