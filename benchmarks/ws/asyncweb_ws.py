"""asyncweb WebSocket benchmark server: ``/`` hello, ``/echo`` echo, ``/fanout`` a room where
the text ``broadcast N SIZE`` makes the server send N messages of SIZE bytes to every member."""

import argparse

from asyncweb import ioloop, web
from asyncweb.websocket import BroadcastGroup, WebSocketHandler

room = BroadcastGroup(max_buffer=64 * 1024 * 1024)


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class EchoHandler(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


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
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    app = web.Application(
        [(r"/", MainHandler), (r"/echo", EchoHandler), (r"/fanout", FanoutHandler)]
    )
    app.listen(args.port, address="127.0.0.1")
    ioloop.IOLoop.current().start()
