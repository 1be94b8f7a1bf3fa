"""The realistic endpoint (see asyncweb_realistic.py) on Tornado 6, on uvloop."""

import tornado.web
from _serve import serve_tornado


class UserHandler(tornado.web.RequestHandler):
    def get(self, name: str) -> None:
        greeting = self.get_argument("greeting", "hello")
        session = self.get_cookie("session", "anonymous")
        self.set_header("Cache-Control", "no-store")
        self.write({"user": name, "greeting": greeting, "session": session})


if __name__ == "__main__":
    serve_tornado([(r"/user/([^/]+)", UserHandler)])
