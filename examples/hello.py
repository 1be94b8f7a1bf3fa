"""Hello, world: the smallest asyncweb application.

python examples/hello.py --port 8888
"""

import argparse
import signal

from asyncweb import ioloop, web


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class GreetHandler(web.RequestHandler):
    async def get(self, name: str) -> None:
        self.write({"hello": name, "lang": self.get_argument("lang", "en")})


def make_app() -> web.Application:
    return web.Application([(r"/", MainHandler), (r"/greet/([^/]+)", GreetHandler)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()
    make_app().listen(args.port, address=args.address)
    loop = ioloop.IOLoop.current()
    # Stop between callbacks on Ctrl-C or SIGTERM: a KeyboardInterrupt raised inside a
    # protocol callback could leave a connection half-handled.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.asyncio_loop.add_signal_handler(signum, loop.stop)
    print(f"Serving on http://{args.address}:{args.port}/ (Ctrl-C to stop)", flush=True)
    loop.start()


if __name__ == "__main__":
    main()
