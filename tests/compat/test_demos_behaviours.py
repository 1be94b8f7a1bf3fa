"""What Tornado's demos lean on, checked on the drop-in without Tornado's files: an app written
Tornado's way (``import tornado`` and nothing else for the submodules it reaches) runs as a
subprocess under ``python -m asyncweb.dropin`` and real clients talk to it over loopback.
compat/demos_check.py runs the demos themselves."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
TIMEOUT = 30.0

# The demos' shapes in one process: a hello page, a long-poll room with xsrf, a WebSocket room
# with compression, multipart and streamed uploads, a line echo over TCP.
SERVER = """
import asyncio
import sys

import tornado
import tornado.websocket  # Tornado 6.6's lazy attributes leave this one out (asyncweb's do not)
from tornado import options

STATS = {"cancelled": 0, "closed_seen": 0, "lost": 0}
ROOM = []
PAGE = (
    "<form method=post action=/say>{% module xsrf_form_html() %}</form>"
    "{% for m in messages %}{% module Template('item.html', m=m) %}{% end %}"
)
ITEM = "<p id='m{{ m['id'] }}'>{% module linkify(m['text']) %}</p>"


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


class Stats(tornado.web.RequestHandler):
    def get(self):
        self.write(dict(STATS, waiters=len(Socket.waiters), room=len(ROOM)))


class Room(tornado.web.RequestHandler):
    def get(self):
        self.render("page.html", messages=ROOM)


class Say(tornado.web.RequestHandler):
    def post(self):
        m = {"id": str(len(ROOM)), "text": self.get_argument("text")}
        m["html"] = tornado.escape.to_unicode(self.render_string("item.html", m=m))
        ROOM.append(m)
        CHANGED.notify_all()
        self.write(m)


class Wait(tornado.web.RequestHandler):
    async def post(self):
        seen = int(self.get_argument("seen", "0"))
        while len(ROOM) <= seen:
            self.waiting = CHANGED.wait()
            try:
                await self.waiting
            except asyncio.CancelledError:
                STATS["cancelled"] += 1
                return
        if self.request.connection.stream.closed():
            STATS["closed_seen"] += 1
            return
        self.write({"messages": ROOM[seen:]})

    def on_connection_close(self):
        self.waiting.cancel()


class Socket(tornado.websocket.WebSocketHandler):
    waiters = set()

    def get_compression_options(self):
        return {}

    def open(self):
        Socket.waiters.add(self)

    def on_close(self):
        Socket.waiters.discard(self)

    def on_message(self, message):
        text = tornado.escape.json_decode(message)["text"]
        m = {"text": text, "id": "ws"}
        m["html"] = tornado.escape.to_basestring(self.render_string("item.html", m=m))
        for waiter in Socket.waiters:
            waiter.write_message(m)


class NoXsrf(tornado.web.RequestHandler):
    def check_xsrf_cookie(self):
        pass  # uploads come from scripts, as in file_receiver.py (which has no xsrf)


class Post(NoXsrf):
    def post(self):
        got = []
        for field, files in self.request.files.items():
            for f in files:
                got.append([field, f["filename"], f["content_type"], len(f["body"])])
        self.write({"files": got})


@tornado.web.stream_request_body
class Put(NoXsrf):
    def initialize(self):
        self.size = 0

    def data_received(self, chunk):
        self.size += len(chunk)

    def put(self, name):
        ctype = self.request.headers.get("Content-Type")
        self.write({"name": name, "size": self.size, "type": ctype})


class Echo(tornado.tcpserver.TCPServer):
    @tornado.gen.coroutine
    def handle_stream(self, stream, address):
        while True:
            try:
                line = yield stream.read_until(b"\\n")
                yield stream.write(line)
            except tornado.iostream.StreamClosedError:
                STATS["lost"] += 1
                return


async def main():
    global CHANGED
    options.parse_command_line()
    CHANGED = tornado.locks.Condition()
    loader = tornado.template.DictLoader({"page.html": PAGE, "item.html": ITEM})
    app = tornado.web.Application(
        [
            (r"/", Hello), (r"/stats", Stats), (r"/room", Room), (r"/say", Say),
            (r"/wait", Wait), (r"/socket", Socket), (r"/post", Post), (r"/put/(.*)", Put),
        ],
        template_loader=loader, xsrf_cookies=True, cookie_secret="not secret",
    )
    web = tornado.netutil.bind_sockets(0, "127.0.0.1")
    tornado.httpserver.HTTPServer(app).add_sockets(web)
    tcp = tornado.netutil.bind_sockets(0, "127.0.0.1")
    Echo().add_sockets(tcp)
    print("PORTS", web[0].getsockname()[1], tcp[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
"""

# The demos' clients: TCPClient for a line, AsyncHTTPClient with a body producer for uploads.
CLIENT = """
import asyncio
import sys

import tornado
from tornado.httpclient import AsyncHTTPClient
from tornado.tcpclient import TCPClient


async def main(http_port, tcp_port):
    stream = await TCPClient().connect("localhost", tcp_port)
    await stream.write(b"over tcp\\n")
    print("ECHO", (await stream.read_until(b"\\n")).decode().strip())
    stream.close()

    async def produce(write):
        for i in range(5):
            await write(bytes([65 + i]) * 20000)

    response = await AsyncHTTPClient().fetch(
        f"http://localhost:{http_port}/put/a%20b.txt", method="PUT",
        headers={"Content-Type": "text/plain"}, body_producer=produce,
    )
    print("PUT", response.code, response.body.decode())


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


# To check these expectations against real Tornado: DEMOS_TORNADO_PYTHON=/tmp/tvenv/bin/python
# (a venv with tornado and websockets) runs the scripts there as plain ``python script.py``.
TORNADO_PYTHON = os.environ.get("DEMOS_TORNADO_PYTHON")


def dropin_argv(script: Path, *args: str) -> list[str]:
    if TORNADO_PYTHON:
        return [TORNADO_PYTHON, str(script), *args]
    return [sys.executable, "-m", "asyncweb.dropin", str(script), *args]


def dropin_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("demo")
    (folder / "server.py").write_text(textwrap.dedent(SERVER))
    (folder / "client.py").write_text(textwrap.dedent(CLIENT))
    proc = subprocess.Popen(
        dropin_argv(folder / "server.py", "--logging=warning"),
        cwd=folder,
        env=dropin_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORTS"):
            proc.kill()
            pytest.fail(f"server did not start: {line} {proc.communicate()[1][-3000:]}")
        _, http_port, tcp_port = line.split()
        yield {"http": int(http_port), "tcp": int(tcp_port), "folder": folder, "proc": proc}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=TIMEOUT)
    # Nothing the clients did was an error on the server's side.
    assert "Traceback" not in err and "[E " not in err, err[-3000:]


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def stats(port: int) -> dict[str, int]:
    result: dict[str, int] = json.loads(call(port, "GET", "/stats")[2])
    return result


def wait_for_stat(port: int, name: str, value: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while stats(port)[name] != value:
        assert time.monotonic() < deadline, f"{name} never reached {value}: {stats(port)}"
        time.sleep(0.05)


def test_hello_through_lazy_submodules(demo: dict[str, Any]) -> None:
    assert call(demo["http"], "GET", "/")[::2] == (200, b"Hello, world")
    assert call(demo["http"], "GET", "/nowhere")[0] == 404


def room_session(port: int) -> tuple[str, dict[str, str]]:
    status, headers, page = call(port, "GET", "/room")
    assert status == 200
    cookie = headers["Set-Cookie"]
    match = re.match(r"_xsrf=([^;]+)", cookie)
    assert match, cookie
    token = match.group(1)
    assert f'name="_xsrf" value="{token}"'.encode() in page
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"_xsrf={token}"}
    return token, form


def test_long_poll_gets_message_posted_with_xsrf_token(demo: dict[str, Any]) -> None:
    port = demo["http"]
    token, form = room_session(port)
    assert call(port, "POST", "/say", b"text=x", form)[0] == 403
    seen = stats(port)["room"]
    polled: dict[str, Any] = {}

    def poll() -> None:
        body = urllib.parse.urlencode({"_xsrf": token, "seen": seen}).encode()
        polled["reply"] = call(port, "POST", "/wait", body, form)

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.3)  # the poll usually waits on the server by now; the outcome is the same if not
    text = "see <b>http://example.com/</b>"
    body = urllib.parse.urlencode({"_xsrf": token, "text": text}).encode()
    status, _, reply = call(port, "POST", "/say", body, form)
    assert status == 200
    message = json.loads(reply)
    assert message["text"] == text
    assert '<a href="http://example.com/">http://example.com/</a>' in message["html"]
    assert "&lt;b&gt;" in message["html"]
    waiter.join(TIMEOUT)
    status, _, reply = polled["reply"]
    assert status == 200
    assert json.loads(reply)["messages"] == [message]
    status, _, page = call(port, "GET", "/room")
    assert message["html"].encode() in page


def test_poll_whose_client_leaves_is_cancelled(demo: dict[str, Any]) -> None:
    port = demo["http"]
    token, form = room_session(port)
    before = stats(port)["cancelled"]
    # A cursor far ahead keeps this poll waiting whatever else is posted.
    body = urllib.parse.urlencode({"_xsrf": token, "seen": 10**6}).encode()
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    conn.request("POST", "/wait", body, form)
    time.sleep(0.3)  # lets the request reach its handler before the client leaves
    conn.close()
    # on_connection_close cancelled the wait: the handler saw CancelledError and returned.
    wait_for_stat(port, "cancelled", before + 1)


def test_websocket_room_broadcasts_rendered_messages(demo: dict[str, Any]) -> None:
    port = demo["http"]

    async def talk() -> None:
        url = f"ws://{HOST}:{port}/socket"
        async with websockets.connect(url) as a, websockets.connect(url) as b:
            assert a.response is not None
            assert a.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            await asyncio.to_thread(wait_for_stat, port, "waiters", 2)
            await a.send(json.dumps({"text": "hi <i>both</i>" + "x" * 3000}))
            for who in (a, b):
                got = json.loads(await asyncio.wait_for(who.recv(), TIMEOUT))
                want = f"<p id='mws'>hi &lt;i&gt;both&lt;/i&gt;{'x' * 3000}</p>"
                assert got["html"] == want
            await b.close()
            await asyncio.to_thread(wait_for_stat, port, "waiters", 1)
            await a.send(json.dumps({"text": "alone"}))
            got = json.loads(await asyncio.wait_for(a.recv(), TIMEOUT))
            assert got["text"] == "alone"

    asyncio.run(talk())
    wait_for_stat(port, "waiters", 0)


def test_multipart_and_streamed_uploads(demo: dict[str, Any]) -> None:
    port = demo["http"]
    big = os.urandom(200_000)
    parts = b""
    for name, data, ctype in (
        ("a.bin", big, "application/octet-stream"),
        ("b.png", b"png", "image/png"),
    ):
        parts += (
            (
                f'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="{name}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    parts += b"--XyZ--\r\n"
    status, _, reply = call(
        port, "POST", "/post", parts, {"Content-Type": "multipart/form-data; boundary=XyZ"}
    )
    assert status == 200, reply
    assert json.loads(reply)["files"] == [
        ["f", "a.bin", "application/octet-stream", 200_000],
        ["f", "b.png", "image/png", 3],
    ]
    # Chunked, as a client without the length up front sends it, and with a Content-Length.
    # Path arguments arrive percent-decoded, as in Tornado.
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    chunks = iter([big[:70_000], big[70_000:140_000], big[140_000:]])
    conn.request("PUT", "/put/x%20y.bin", chunks, {"Content-Type": "x/y"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read()) == {"name": "x y.bin", "size": 200_000, "type": "x/y"}
    conn.close()
    status, _, reply = call(port, "PUT", "/put/z", big, {"Content-Type": "a/b"})
    assert json.loads(reply) == {"name": "z", "size": 200_000, "type": "a/b"}


def test_tcp_echo_lines_and_half_close(demo: dict[str, Any]) -> None:
    port, http_port = demo["tcp"], demo["http"]
    lost = stats(http_port)["lost"]
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as s:
        s.sendall(b"one\ntwo\nunfinished")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(1000):
            got += chunk
    # Whole lines come back; the unfinished one ends the loop with StreamClosedError.
    assert got == b"one\ntwo\n"
    wait_for_stat(http_port, "lost", lost + 1)


def test_demo_style_clients_on_the_dropin(demo: dict[str, Any]) -> None:
    done = subprocess.run(
        dropin_argv(demo["folder"] / "client.py", str(demo["http"]), str(demo["tcp"])),
        cwd=demo["folder"],
        env=dropin_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "ECHO over tcp"
    code, body = lines[1].split(" ", 2)[1:]
    assert code == "200"
    assert json.loads(body) == {"name": "a b.txt", "size": 100_000, "type": "text/plain"}
