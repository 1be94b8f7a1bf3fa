"""Twelve checks of sockjs-tornado (1.0.7) serving every SockJS transport, over loopback.

    /path/to/venv/bin/python compat/sockjs_check.py [--expect asyncweb|tornado]

The server is sockjs-tornado's ``SockJSRouter`` with three small connection classes written
here (echo, a chat room that broadcasts, and one that closes at once), run in a thread on
whatever ``tornado`` the environment gives (asyncweb's under compat/dropin_pth.py). The
clients are urllib/http.client and the ``websocket-client`` package, speaking the SockJS
wire protocol as its browser client would. Prints one line per check and ``N passed,
N failed``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import websocket  # websocket-client

HOST = "127.0.0.1"


def start_server() -> tuple[int, Any, str]:
    import tornado
    import tornado.httpserver
    import tornado.ioloop
    import tornado.netutil
    import tornado.web
    from sockjs.tornado import SockJSConnection, SockJSRouter

    class Echo(SockJSConnection):  # type: ignore[misc]
        def on_message(self, message: str) -> None:
            self.send(message)

    class Chat(SockJSConnection):  # type: ignore[misc]
        members: set[Any] = set()

        def on_open(self, info: Any) -> None:
            self.members.add(self)

        def on_message(self, message: str) -> None:
            self.broadcast(self.members, message)

        def on_close(self) -> None:
            self.members.discard(self)

    class Close(SockJSConnection):  # type: ignore[misc]
        def on_message(self, message: str) -> None:
            self.close()

    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        loop = tornado.ioloop.IOLoop(make_current=True)
        routes: list[Any] = []
        # disable_nagle (the default) reaches for ws_connection.stream.set_nodelay().
        for name, cls in (("echo", Echo), ("chat", Chat), ("close", Close)):
            settings = {"disconnect_delay": 2, "response_limit": 4096}
            routes += SockJSRouter(cls, f"/{name}", settings).urls
        app = tornado.web.Application(routes)

        async def listen() -> None:
            sockets = tornado.netutil.bind_sockets(0, HOST)
            tornado.httpserver.HTTPServer(app).add_sockets(sockets)
            state["port"] = sockets[0].getsockname()[1]
            ready.set()

        loop.add_callback(listen)
        state["loop"] = loop
        loop.start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the sockjs server did not start")
    return state["port"], state["loop"], tornado.__file__


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def http(
        self, method: str, path: str, body: bytes | None = None, read: int | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=15)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            data = resp.read(read) if read is not None else resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def ws(self, path: str) -> websocket.WebSocket:
        return websocket.create_connection(f"ws://{HOST}:{self.port}{path}", timeout=15)


def run_checks(client: Client) -> list[tuple[str, bool, str]]:
    results: list[tuple[str, bool, str]] = []
    counter = iter(range(1000))

    def session() -> str:
        return f"s{next(counter)}{os.getpid()}"

    def check(name: str, body: Callable[[], str]) -> None:
        try:
            results.append((name, True, body()))
        except Exception as e:
            results.append((name, False, f"{type(e).__name__}: {e}"))
            if os.environ.get("SMOKE_VERBOSE"):
                traceback.print_exc()

    def greeting() -> str:
        status, _headers, body = client.http("GET", "/echo")
        assert status == 200 and body == b"Welcome to SockJS!\n", (status, body)
        return "Welcome to SockJS!"

    def info() -> str:
        status, _headers, body = client.http("GET", "/echo/info")
        data = json.loads(body)
        assert status == 200 and data["websocket"] is True and "entropy" in data, data
        return f"websocket={data['websocket']}"

    def iframe() -> str:
        status, headers, body = client.http("GET", "/echo/iframe.html")
        assert status == 200 and b"SockJS" in body and "etag" in headers, (status, headers)
        status, _, _ = client.http("GET", "/echo/iframe-a.b.c.html")
        assert status == 200
        return "iframe page with ETag"

    def websocket_echo() -> str:
        conn = client.ws(f"/echo/000/{session()}/websocket")
        try:
            assert conn.recv() == "o"
            conn.send(json.dumps(["hello", "\u00e9t\u00e9"]))
            assert json.loads(conn.recv()[1:]) == ["hello"]
            assert json.loads(conn.recv()[1:]) == ["\u00e9t\u00e9"]
        finally:
            conn.close()
        return "open frame, two messages echoed (Nagle off through ws_connection.stream)"

    def raw_websocket() -> str:
        conn = client.ws("/echo/websocket")
        try:
            conn.send("raw text")
            assert conn.recv() == "raw text"
        finally:
            conn.close()
        return "raw text echoed"

    def xhr_polling() -> str:
        sid = session()
        status, _, body = client.http("POST", f"/echo/000/{sid}/xhr")
        assert (status, body) == (200, b"o\n"), (status, body)
        status, _, _ = client.http("POST", f"/echo/000/{sid}/xhr_send", b'["polled"]')
        assert status == 204, status
        status, _, body = client.http("POST", f"/echo/000/{sid}/xhr")
        assert body == b'a["polled"]\n', body
        return "open, send, poll"

    def xhr_streaming() -> str:
        sid = session()
        conn = http.client.HTTPConnection(HOST, client.port, timeout=15)
        try:
            conn.request("POST", f"/echo/000/{sid}/xhr_streaming")
            resp = conn.getresponse()
            prelude = resp.read(2049)
            assert prelude == b"h" * 2048 + b"\n", prelude[:20]
            assert resp.read(2) == b"o\n"
            status, _, _ = client.http("POST", f"/echo/000/{sid}/xhr_send", b'["streamed"]')
            assert status == 204
            expected = b'a["streamed"]\n'
            assert resp.read(len(expected)) == expected
        finally:
            conn.close()
        return "prelude, open, message streamed"

    def eventsource() -> str:
        sid = session()
        conn = http.client.HTTPConnection(HOST, client.port, timeout=15)
        try:
            conn.request("GET", f"/echo/000/{sid}/eventsource")
            resp = conn.getresponse()
            assert resp.getheader("Content-Type", "").startswith("text/event-stream")
            assert resp.read(2) == b"\r\n"
            assert resp.read(11) == b"data: o\r\n\r\n"
            client.http("POST", f"/echo/000/{sid}/xhr_send", b'["evented"]')
            expected = b'data: a["evented"]\r\n\r\n'
            assert resp.read(len(expected)) == expected
        finally:
            conn.close()
        return "open and message as server-sent events"

    def jsonp() -> str:
        sid = session()
        status, _, body = client.http("GET", f"/echo/000/{sid}/jsonp?c=callback")
        assert body == b'callback("o");\r\n', body
        status, _, body = client.http("POST", f"/echo/000/{sid}/jsonp_send", b'["jsonp"]')
        assert (status, body) == (200, b"ok"), (status, body)
        status, _, body = client.http("GET", f"/echo/000/{sid}/jsonp?c=callback")
        assert body == b'callback("a[\\"jsonp\\"]");\r\n', body
        return "open, send, poll"

    def htmlfile() -> str:
        sid = session()
        conn = http.client.HTTPConnection(HOST, client.port, timeout=15)
        try:
            conn.request("GET", f"/echo/000/{sid}/htmlfile?c=%63allback")
            resp = conn.getresponse()
            assert resp.getheader("Content-Type", "").startswith("text/html")
            head = b""
            while b'<script>\np("o");\n</script>\r\n' not in head:
                chunk = resp.read1(4096)
                assert chunk, head[-200:]
                head += chunk
            assert b"var c = parent.callback;" in head
        finally:
            conn.close()
        return "iframe document with the open frame"

    def chat_broadcast() -> str:
        first = client.ws(f"/chat/000/{session()}/websocket")
        second = client.ws(f"/chat/000/{session()}/websocket")
        try:
            assert first.recv() == "o" and second.recv() == "o"
            first.send(json.dumps(["to everyone"]))
            assert first.recv() == 'a["to everyone"]'
            assert second.recv() == 'a["to everyone"]'
        finally:
            first.close()
            second.close()
        return "one message, two receivers"

    def server_close() -> str:
        conn = client.ws(f"/close/000/{session()}/websocket")
        try:
            assert conn.recv() == "o"
            conn.send('["bye"]')
            assert conn.recv() == 'c[3000,"Go away!"]'
        finally:
            conn.close()
        sid = session()
        _status, _, body = client.http("POST", f"/close/000/{sid}/xhr")
        assert body == b"o\n", body
        client.http("POST", f"/close/000/{sid}/xhr_send", b'["bye"]')
        _status, _, body = client.http("POST", f"/close/000/{sid}/xhr")
        assert body == b'c[3000,"Go away!"]\n', body
        return "close frame over websocket and xhr"

    check("greeting", greeting)
    check("/info", info)
    check("iframe page", iframe)
    check("websocket transport", websocket_echo)
    check("raw websocket", raw_websocket)
    check("xhr polling", xhr_polling)
    check("xhr streaming", xhr_streaming)
    check("eventsource", eventsource)
    check("jsonp", jsonp)
    check("htmlfile", htmlfile)
    check("chat broadcast", chat_broadcast)
    check("server-side close", server_close)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", choices=("asyncweb", "tornado"), default="asyncweb")
    args = parser.parse_args()
    port, loop, tornado_file = start_server()
    runs_on = "tornado" if os.sep + "tornado" + os.sep in tornado_file else "asyncweb"
    results = [("runs on the expected tornado", runs_on == args.expect, tornado_file)]
    client = Client(port)
    # Connect once so a failed start shows as one clear failure.
    with socket.create_connection((HOST, port), timeout=10):
        pass
    results += run_checks(client)
    loop.add_callback(loop.stop)
    time.sleep(0.2)
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    passed = sum(1 for _, ok, _ in results if ok)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
