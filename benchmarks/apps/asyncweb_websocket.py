"""WebSocket echo on asyncweb (``/ws``) next to hello world (``/``), written as a Tornado app."""

from _serve import serve_asyncweb

from asyncweb import web, websocket


class MainHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class EchoHandler(websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


if __name__ == "__main__":
    serve_asyncweb([(r"/", MainHandler), (r"/ws", EchoHandler)])
