"""An application in debug mode (autoreload on), which cannot run in several workers."""

from asyncweb import web


class Hello(web.RequestHandler):
    def get(self) -> None:
        self.write("hello")


app = web.Application([(r"/", Hello)], debug=True)
