"""Hello world as an importable ``app`` for ``asyncweb serve asyncweb_serve_app:app``."""

from asyncweb import web


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


app = web.Application([(r"/", MainHandler)])
