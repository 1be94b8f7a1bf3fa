"""WebSocket echo on Tornado 6 (``/ws``) next to hello world (``/``), on uvloop.

Every app named ``*_websocket.py`` serves exactly these two routes.
"""

import tornado.web
import tornado.websocket
from _serve import serve_tornado


class MainHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class EchoHandler(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


if __name__ == "__main__":
    serve_tornado([(r"/", MainHandler), (r"/ws", EchoHandler)])
