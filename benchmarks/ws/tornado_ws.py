"""Tornado 6 WebSocket benchmark server on uvloop: the same routes as ``asyncweb_ws.py``. The
fan-out loops over the room's handlers calling ``write_message``, Tornado's usual pattern."""

import argparse
import asyncio

import tornado.web
import tornado.websocket
import uvloop

room: set["FanoutHandler"] = set()


class MainHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class EchoHandler(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


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


async def main(port: int) -> None:
    app = tornado.web.Application(
        [(r"/", MainHandler), (r"/echo", EchoHandler), (r"/fanout", FanoutHandler)]
    )
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(args.port))
