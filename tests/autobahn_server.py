"""An echo WebSocket server for Autobahn|Testsuite's fuzzing client (``nox -s autobahn``):
``python tests/autobahn_server.py PORT``. Echoes every message as it came (text or binary),
permessage-deflate offered, the default 10 MiB message limit (so 9.1.6/9.2.6, 16 MiB
messages, close with 1009 by design)."""

from __future__ import annotations

import asyncio
import sys

from asyncweb import web
from asyncweb.websocket import WebSocketHandler


class Echo(WebSocketHandler):
    def get_compression_options(self) -> dict[str, object]:
        return {}

    async def on_message(self, message: str | bytes) -> None:
        await self.write_message(message, binary=isinstance(message, bytes))


async def main(port: int) -> None:
    app = web.Application([("/", Echo)])
    app.listen(port, "127.0.0.1")
    print(f"echo server on ws://127.0.0.1:{port}/", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
