"""Tornado 6 WebSocket benchmark server on uvloop: the same routes as ``asyncweb_ws.py``. The
fan-out loops over the room's handlers calling ``write_message``, Tornado's usual pattern."""

import sys
from pathlib import Path

# _serve and the hello and echo handlers are in ../apps (see apps/*_websocket.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apps"))
import tornado.web
import tornado.websocket
from _serve import serve_tornado
from tornado_websocket import EchoHandler, MainHandler

room: set["FanoutHandler"] = set()


class FanoutHandler(tornado.websocket.WebSocketHandler):
    def open(self) -> None:
        room.add(self)

    def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        _, count, size = message.split()
        payload = "b" * int(size)
        for _ in range(int(count)):
            for handler in list(room):
                try:
                    handler.write_message(payload)
                except tornado.websocket.WebSocketClosedError:
                    room.discard(handler)

    def on_close(self) -> None:
        room.discard(self)


if __name__ == "__main__":
    serve_tornado([(r"/", MainHandler), (r"/echo", EchoHandler), (r"/fanout", FanoutHandler)])
