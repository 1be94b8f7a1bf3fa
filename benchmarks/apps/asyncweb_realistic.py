"""The realistic endpoint on asyncweb, written exactly as a Tornado app.

``GET /user/<name>?greeting=...`` with a ``session`` cookie answers
``{"user": name, "greeting": greeting, "session": session}`` as JSON and sets
``Cache-Control: no-store``. Every app named ``*_realistic.py`` does exactly this.
"""

from _serve import serve_asyncweb

from asyncweb import web


class UserHandler(web.RequestHandler):
    def get(self, name: str) -> None:
        greeting = self.get_argument("greeting", "hello")
        session = self.get_cookie("session", "anonymous")
        self.set_header("Cache-Control", "no-store")
        self.write({"user": name, "greeting": greeting, "session": session})


if __name__ == "__main__":
    serve_asyncweb([(r"/user/([^/]+)", UserHandler)])
