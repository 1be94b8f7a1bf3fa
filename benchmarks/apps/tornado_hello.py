"""Tornado 6 hello world on uvloop. Content-Type: Tornado's default text/html; charset=UTF-8."""

import argparse
import asyncio

import tornado.web
import uvloop


class MainHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/", MainHandler)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(args.port))
