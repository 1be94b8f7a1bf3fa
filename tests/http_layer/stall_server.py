"""A server for tests/http_layer/test_stall.py, run in its own process (a stalled loop there
can't hang the test runner): ``python tests/http_layer/stall_server.py asyncio|uvloop``.
Prints its port, then serves until killed.

- ``/sse``: writes and flushes in a ``while True`` loop until the write fails.
- ``/ws``: a WebSocket that sends messages in a loop, awaiting each, until it fails.
- ``/status``: JSON counters: how each loop ended, and the log records the process made
  (apart from the access log).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from asyncweb import web
from asyncweb.httpserver import HTTPServer
from asyncweb.netutil import bind_sockets
from asyncweb.protocol import StreamClosedError
from asyncweb.websocket import WebSocketClosedError, WebSocketHandler

state: dict[str, Any] = {
    "sse_started": 0,
    "sse_closed": 0,
    "sse_other_error": 0,
    "ws_started": 0,
    "ws_closed": 0,
    "ws_other_error": 0,
    "log_records": 0,
    "log_bytes": 0,
    "log_messages": [],
}


class Counting(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "asyncweb.access":
            return
        message = record.getMessage()
        state["log_records"] += 1
        state["log_bytes"] += len(message)
        if len(state["log_messages"]) < 10:
            state["log_messages"].append(f"{record.name}: {message[:200]}")


class SSE(web.RequestHandler):
    async def get(self) -> None:
        state["sse_started"] += 1
        self.set_header("Content-Type", "text/event-stream")
        # Small chunks: a client that reads keeps the transport's buffer empty, so every write
        # goes straight to send() and nothing ever waits for a drain.
        chunk = b"data: " + b"x" * int(self.get_argument("size", "10")) + b"\n\n"
        try:
            while True:
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            state["sse_closed"] += 1
            raise  # the framework must take it quietly: the client left
        except Exception:
            state["sse_other_error"] += 1
            raise


class Flood(WebSocketHandler):
    def open(self) -> None:
        state["ws_started"] += 1
        self._size = int(self.get_argument("size", "10"))
        self._task = asyncio.ensure_future(self._flood())

    async def _flood(self) -> None:
        message = "y" * self._size
        try:
            while True:
                await self.write_message(message)
        except WebSocketClosedError:
            state["ws_closed"] += 1
        except Exception:
            state["ws_other_error"] += 1
            raise


class Status(web.RequestHandler):
    def get(self) -> None:
        self.write(dict(state))


def main() -> None:
    kind = sys.argv[1]
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(Counting())

    async def serve() -> None:
        app = web.Application([("/sse", SSE), ("/ws", Flood), ("/status", Status)])
        server = HTTPServer(app)
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        print(sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    loop.run_until_complete(serve())


if __name__ == "__main__":
    main()
