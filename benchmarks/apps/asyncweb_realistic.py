"""The realistic endpoint on asyncweb, written exactly as a Tornado app.

``GET /user/<name>?greeting=...`` with a ``session`` cookie answers
``{"user": name, "greeting": greeting, "session": session}`` as JSON and sets
``Cache-Control: no-store``. Every app named ``*_realistic.py`` does exactly this.
"""

import argparse

from asyncweb import ioloop, web


class UserHandler(web.RequestHandler):
    def get(self, name: str) -> None:
        greeting = self.get_argument("greeting", "hello")
        session = self.get_cookie("session", "anonymous")
        self.set_header("Cache-Control", "no-store")
        self.write({"user": name, "greeting": greeting, "session": session})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    app = web.Application([(r"/user/([^/]+)", UserHandler)])
    app.listen(args.port, address="127.0.0.1")
    ioloop.IOLoop.current().start()
