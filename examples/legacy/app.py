"""A Tornado 2.x-style application: callbacks everywhere, no coroutines.

It uses the APIs of that era on purpose: ``@web.asynchronous`` handlers finished from
callbacks, ``IOLoop.instance()``, ``add_timeout`` with a ``time.time()`` deadline,
``PeriodicCallback``, ``gen.engine`` with ``gen.Task``, ``IOStream`` read callbacks, and a
raw non-blocking socket client driven by ``add_handler``.

This file is written against ``asyncweb``; ``tornado_app.py`` next to it is the same code
with the ``tornado`` names, run unmodified by ``python -m asyncweb.dropin tornado_app.py``.

    python examples/legacy/app.py [port]      # port 0 picks a free one
"""

import errno
import socket
import sys
import time

from asyncweb import gen, httpserver, ioloop, iostream, netutil, web

ticks = {"count": 0}


def tick():
    ticks["count"] += 1


# -- an upper-casing line service, written with IOStream callbacks ----------------------------


def serve_upper(connection, address):
    stream = iostream.IOStream(connection)

    def on_line(line):
        stream.write(line.upper())
        stream.read_until(b"\n", on_line)

    stream.read_until(b"\n", on_line)


def start_upper_service():
    listener = netutil.bind_sockets(0, "127.0.0.1")[0]
    netutil.add_accept_handler(listener, serve_upper)
    return listener.getsockname()[1]


# -- a raw socket client on add_handler ----------------------------------------------------------


def ask_upper_service(port, text, callback):
    """Send ``text`` to the line service; ``callback(answer)`` gets the reply line."""
    io_loop = ioloop.IOLoop.instance()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    err = sock.connect_ex(("127.0.0.1", port))
    if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
        sock.close()
        raise OSError(err, "connect failed")
    received = []

    def on_events(fd, events):
        if events & io_loop.WRITE:
            sock.send(text.encode() + b"\n")
            io_loop.update_handler(fd, io_loop.READ)
            return
        data = sock.recv(4096)
        received.append(data)
        if data.endswith(b"\n") or not data:
            io_loop.remove_handler(fd)
            sock.close()
            callback(b"".join(received).decode().strip())

    io_loop.add_handler(sock.fileno(), on_events, io_loop.WRITE)


# -- handlers ------------------------------------------------------------------------------------


class MainHandler(web.RequestHandler):
    def get(self):
        self.write("Hello from the callback era")


class DelayedHandler(web.RequestHandler):
    @web.asynchronous
    def get(self):
        deadline = time.time() + 0.05
        ioloop.IOLoop.instance().add_timeout(deadline, self.async_callback(self.on_time, "late"))

    def on_time(self, word):
        self.finish({"word": word})


class TicksHandler(web.RequestHandler):
    def get(self):
        self.write({"ticks": ticks["count"]})


class UpperHandler(web.RequestHandler):
    @web.asynchronous
    def get(self):
        port = self.application.settings["upper_port"]
        ask_upper_service(port, self.get_argument("text"), self.async_callback(self.on_answer))

    def on_answer(self, answer):
        self.finish({"answer": answer})


class EngineHandler(web.RequestHandler):
    @web.asynchronous
    @gen.engine
    def get(self):
        io_loop = ioloop.IOLoop.instance()
        yield gen.Task(io_loop.add_timeout, time.time() + 0.01)
        port = self.application.settings["upper_port"]
        answer = yield gen.Task(ask_upper_service, port, "engine")
        self.finish({"answer": answer})


class FailingHandler(web.RequestHandler):
    @web.asynchronous
    def get(self):
        ioloop.IOLoop.instance().add_callback(self.async_callback(self.explode))

    def explode(self):
        raise ValueError("this request fails; the server goes on")


def make_app(upper_port):
    return web.Application(
        [
            (r"/", MainHandler),
            (r"/delayed", DelayedHandler),
            (r"/ticks", TicksHandler),
            (r"/upper", UpperHandler),
            (r"/engine", EngineHandler),
            (r"/fail", FailingHandler),
        ],
        upper_port=upper_port,
    )


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8888
    io_loop = ioloop.IOLoop.instance()
    app = make_app(start_upper_service())
    sockets = netutil.bind_sockets(port, "127.0.0.1")
    server = httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    ioloop.PeriodicCallback(tick, 20).start()
    print("listening on port", sockets[0].getsockname()[1])
    sys.stdout.flush()
    try:
        io_loop.start()
    except KeyboardInterrupt:
        print("stopped")


if __name__ == "__main__":
    main()
