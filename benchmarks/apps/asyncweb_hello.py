"""asyncweb hello world, written exactly as a Tornado app. asyncweb runs on uvloop when
it is installed (it is, in the benchmark venv). Content-Type: text/html; charset=UTF-8
(Tornado's default), if asyncweb follows Tornado."""

from _serve import serve_asyncweb

from asyncweb import web


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


if __name__ == "__main__":
    serve_asyncweb([(r"/", MainHandler)])
