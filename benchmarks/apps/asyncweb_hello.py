"""asyncweb hello world, written exactly as a Tornado app. asyncweb runs on uvloop when
it is installed (it is, in the benchmark venv). Content-Type: text/html; charset=UTF-8
(Tornado's default), if asyncweb follows Tornado."""

import argparse

from asyncweb import ioloop, web


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args()
    app = web.Application([(r"/", MainHandler)])
    app.listen(args.port, address="127.0.0.1")
    ioloop.IOLoop.current().start()
