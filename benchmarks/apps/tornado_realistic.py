"""The realistic endpoint (see asyncweb_realistic.py) on Tornado 6, on uvloop."""

import argparse
import asyncio

import tornado.web
import uvloop


class UserHandler(tornado.web.RequestHandler):
    def get(self, name: str) -> None:
        greeting = self.get_argument("greeting", "hello")
        session = self.get_cookie("session", "anonymous")
        self.set_header("Cache-Control", "no-store")
        self.write({"user": name, "greeting": greeting, "session": session})


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/user/([^/]+)", UserHandler)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(args.port))
