"""WebSocket echo on asyncweb (``/ws``) next to hello world (``/``), written as a Tornado app."""

import argparse

from asyncweb import ioloop, web, websocket


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class EchoHandler(websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    app = web.Application([(r"/", MainHandler), (r"/ws", EchoHandler)])
    app.listen(args.port, address="127.0.0.1")
    ioloop.IOLoop.current().start()
