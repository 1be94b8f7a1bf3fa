"""Tornado 6 hello world on uvloop. Content-Type: Tornado's default text/html; charset=UTF-8."""

import tornado.web
from _serve import serve_tornado


class MainHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


if __name__ == "__main__":
    serve_tornado([(r"/", MainHandler)])
