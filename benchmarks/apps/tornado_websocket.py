"""WebSocket echo on Tornado 6 (``/ws``) next to hello world (``/``), on uvloop.

Every app named ``*_websocket.py`` serves exactly these two routes.
"""

import argparse
import asyncio

import tornado.web
import tornado.websocket
import uvloop


class MainHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class EchoHandler(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/", MainHandler), (r"/ws", EchoHandler)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(args.port))
