"""asyncweb WebSocket benchmark server: ``/`` hello, ``/echo`` echo, ``/fanout`` a room where
the text ``broadcast N SIZE`` makes the server send N messages of SIZE bytes to every member."""

import sys
from pathlib import Path

# _serve and the hello and echo handlers are in ../apps (see apps/*_websocket.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
from _serve import serve_asyncweb
from asyncweb_websocket import EchoHandler, MainHandler

from asyncweb.websocket import BroadcastGroup, WebSocketHandler

room = BroadcastGroup(max_buffer=64 * 1024 * 1024)


class FanoutHandler(WebSocketHandler):
    def open(self) -> None:
        room.add(self)

    def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        _, count, size = message.split()
        payload = "b" * int(size)
        for _ in range(int(count)):
            room.send(payload)

    def on_close(self) -> None:
        room.discard(self)


if __name__ == "__main__":
    serve_asyncweb([(r"/", MainHandler), (r"/echo", EchoHandler), (r"/fanout", FanoutHandler)])
