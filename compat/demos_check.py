"""Tornado's demos (GitHub master), unmodified, each as a real subprocess, checked over loopback.

    .venv/bin/python compat/demos_check.py [--demos DIR] [--tornado-python /tmp/tvenv/bin/python]
    .venv/bin/python compat/demos_check.py --python /tmp/tvenv/bin/python --real-tornado

By default each demo runs on asyncweb (``python -m asyncweb.dropin demo.py --port=N``); with
``--real-tornado`` it runs as ``python demo.py`` under ``--python`` (a venv with Tornado 6.6.1).
``--tornado-python PY`` runs both and prints a table, asyncweb next to Tornado; the demos' own
clients then also run crossed (asyncweb's client against Tornado's server, and the reverse).
The demos come from ``--demos`` (a checkout's ``demos/`` folder) or, by default, from the
Tornado mirror at /work/.mirror/tornadoweb+tornado/repo, extracted to a temporary folder.

The clients are this script's own (http.client, the ``websockets`` package) and the demos' own
clients (tcpecho/client.py, file_upload/file_uploader.py), run under the same interpreter and
tornado as the server. Only 127.0.0.1/::1 is contacted. file_receiver.py listens on 8888 (it
takes no port option), so that port must be free. Exit status 0 when every demo passes.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import websockets

HOST = "127.0.0.1"
MIRROR = Path("/work/.mirror/tornadoweb+tornado/repo")
ROOT = Path(__file__).resolve().parent.parent
DEMOS = ["helloworld", "chat", "websocket", "file_receiver", "tcpecho"]
TIMEOUT = 30.0
SHOW_LOGS = False


class Runner:
    """How a demo script is started: on the drop-in, or on real Tornado."""

    def __init__(self, python: str, real_tornado: bool) -> None:
        self.python = os.path.abspath(python)  # the demos run in their own folders
        self.real_tornado = real_tornado
        # The demos' own clients run under this runner and, when comparing, under the other too.
        self.clients: list[Runner] = [self]

    def argv(self, script: Path, *args: str) -> list[str]:
        if self.real_tornado:
            return [self.python, str(script), *args]
        return [self.python, "-m", "asyncweb.dropin", str(script), *args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if not self.real_tornado:
            env["PYTHONPATH"] = str(ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the servers bind it: connections in TIME_WAIT from an earlier run do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return False
        return True


@contextmanager
def serving(runner: Runner, script: Path, port: int, *args: str) -> Iterator[subprocess.Popen[str]]:
    """Starts the demo and waits until its port takes connections; stops it afterwards."""
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(
        runner.argv(script, *args),
        cwd=script.parent,
        env=runner.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.log = log  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {server_log(proc)[-2000:]}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("server never took connections") from None
                time.sleep(0.1)
        yield proc
    finally:
        if SHOW_LOGS:
            print(f"--- {' '.join(proc.args)}\n{server_log(proc)}---", flush=True)  # type: ignore[arg-type]
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def server_log(proc: subprocess.Popen[str]) -> str:
    log = proc.log  # type: ignore[attr-defined]
    log.flush()
    log.seek(0)
    return str(log.read())


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, list[str]], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        got: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            got.setdefault(name.lower(), []).append(value)
        return resp.status, got, resp.read()
    finally:
        conn.close()


def expect(cond: object, what: str) -> None:
    if not cond:
        raise AssertionError(what)


# -- the checks: each returns nothing or raises AssertionError with what went wrong -------------


def expect_clean_log(proc: subprocess.Popen[str]) -> None:
    log = server_log(proc)
    expect(
        "Traceback" not in log and "[E " not in log, f"the server logged an error: {log[-2000:]}"
    )


def wait_for_log(proc: subprocess.Popen[str], wanted: list[str]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        log = server_log(proc)
        missing = [w for w in wanted if w not in log]
        if not missing:
            return
        expect(time.monotonic() < deadline, f"the server did not log {missing}: {log[-1500:]}")
        time.sleep(0.1)


def check_helloworld(runner: Runner, demos: Path) -> None:
    port = free_port()
    with serving(runner, demos / "helloworld" / "helloworld.py", port, f"--port={port}"):
        status, _, body = request(port, "GET", "/")
        expect(status == 200 and body == b"Hello, world", f"GET / -> {status} {body[:80]!r}")
        status, _, _ = request(port, "GET", "/nowhere")
        expect(status == 404, f"GET /nowhere -> {status}")


def xsrf_from(headers: dict[str, list[str]]) -> str:
    for cookie in headers.get("set-cookie", []):
        m = re.match(r"_xsrf=([^;]+)", cookie)
        if m:
            return m.group(1)
    raise AssertionError(f"no _xsrf cookie in {headers.get('set-cookie')}")


def check_chat(runner: Runner, demos: Path) -> None:
    port = free_port()
    with serving(runner, demos / "chat" / "chatdemo.py", port, f"--port={port}") as proc:
        status, headers, page = request(port, "GET", "/")
        expect(status == 200, f"GET / -> {status} {page[:300]!r}")
        token = xsrf_from(headers)
        expect(b'name="_xsrf"' in page and b"/static/chat.js?v=" in page, "page lacks form/static")
        form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"_xsrf={token}"}
        status, _, _ = request(port, "POST", "/a/message/new", b"body=x", form)
        expect(status == 403, f"post without the xsrf token -> {status}")

        polled: dict[str, object] = {}

        def poll() -> None:
            try:
                enc = urllib.parse.urlencode({"_xsrf": token}).encode()
                polled["reply"] = request(port, "POST", "/a/message/updates", enc, form)
            except Exception as e:  # reported by the main thread
                polled["error"] = repr(e)

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(
            1.0
        )  # lets the poll reach the server and wait (its outcome does not depend on it)
        expect(waiter.is_alive(), f"the poll answered before any message: {polled}")
        text = "hi <b>there</b> http://example.com/"
        enc = urllib.parse.urlencode({"body": text, "_xsrf": token}).encode()
        status, _, body = request(port, "POST", "/a/message/new", enc, form)
        expect(status == 200, f"POST /a/message/new -> {status} {body[:200]!r}")
        message = json.loads(body)
        expect(message["body"] == text, f"message {message}")
        expect(
            "&lt;b&gt;" in message["html"] and '<a href="http://example.com/">' in message["html"],
            message["html"],
        )
        waiter.join(TIMEOUT)
        expect("reply" in polled, f"poll: {polled or 'no answer'}")
        status, _, body = polled["reply"]  # type: ignore[misc]
        expect(status == 200, f"poll -> {status} {body[:200]!r}")
        expect(json.loads(body)["messages"] == [message], f"poll got {body[:300]!r}")
        # A cursor at the last message waits again; one before it gets what came after.
        enc = urllib.parse.urlencode({"body": "next", "_xsrf": token, "next": "/"}).encode()
        status, headers, _ = request(port, "POST", "/a/message/new", enc, form)
        expect(status == 302 and headers.get("location") == ["/"], f"post with next -> {status}")
        enc = urllib.parse.urlencode({"_xsrf": token, "cursor": message["id"]}).encode()
        status, _, body = request(port, "POST", "/a/message/updates", enc, form)
        got = json.loads(body)["messages"]
        expect(
            status == 200 and [m["body"] for m in got] == ["next"], f"cursor poll -> {body[:200]!r}"
        )
        status, _, page = request(port, "GET", "/", headers={"Cookie": f"_xsrf={token}"})
        expect(status == 200 and page.count(b'class="message"') == 2, "page lacks the two messages")
        # A waiting poll whose client goes away: on_connection_close cancels its wait, and a
        # message posted afterwards reaches the next poll with nothing logged as an error.
        enc = urllib.parse.urlencode({"_xsrf": token, "cursor": got[-1]["id"]}).encode()
        gone = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        gone.request("POST", "/a/message/updates", enc, form)
        time.sleep(1.0)
        gone.close()
        time.sleep(1.0)
        enc = urllib.parse.urlencode({"body": "after", "_xsrf": token}).encode()
        status, _, _ = request(port, "POST", "/a/message/new", enc, form)
        enc = urllib.parse.urlencode({"_xsrf": token, "cursor": got[-1]["id"]}).encode()
        status, _, body = request(port, "POST", "/a/message/updates", enc, form)
        got = json.loads(body)["messages"]
        expect(
            status == 200 and [m["body"] for m in got] == ["after"],
            f"poll after a gone one -> {body[:200]!r}",
        )
        expect_clean_log(proc)


def check_websocket(runner: Runner, demos: Path) -> None:
    port = free_port()
    with serving(runner, demos / "websocket" / "chatdemo.py", port, f"--port={port}") as proc:
        status, _, page = request(port, "GET", "/")
        expect(status == 200 and b"/static/chat.js?v=" in page, f"GET / -> {status} {page[:200]!r}")

        async def talk() -> None:
            url = f"ws://{HOST}:{port}/chatsocket"
            async with websockets.connect(url) as a, websockets.connect(url) as b:
                assert a.response is not None
                extensions = a.response.headers.get("Sec-WebSocket-Extensions", "")
                expect(extensions.startswith("permessage-deflate"), "compression not negotiated")
                await a.send(json.dumps({"body": "hello <i>all</i>"}))
                for who in (a, b):
                    chat = json.loads(await asyncio.wait_for(who.recv(), TIMEOUT))
                    expect(chat["body"] == "hello <i>all</i>", f"got {chat}")
                    body = "hello &lt;i&gt;all&lt;/i&gt;"
                    want = f'<div class="message" id="m{chat["id"]}">{body}</div>'
                    expect(chat["html"].strip() == want, f"html {chat['html']!r}")
                await b.close()
                # b's on_close took it out of the waiters: the next message goes to a alone.
                await a.send(json.dumps({"body": "second"}))
                chat = json.loads(await asyncio.wait_for(a.recv(), TIMEOUT))
                expect(chat["body"] == "second", f"got {chat}")

        asyncio.run(talk())
        status, _, page = request(port, "GET", "/")
        expect(
            b"hello &lt;i&gt;all" in page and b">second<" in page,
            "the page lacks the cached messages",
        )
        wait_for_log(proc, ["sending message to 2 waiters", "sending message to 1 waiters"])
        expect_clean_log(proc)


def multipart(boundary: str, files: dict[str, bytes]) -> bytes:
    out = b""
    for name, data in files.items():
        out += (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


def check_file_receiver(runner: Runner, demos: Path) -> None:
    port = 8888  # the demo takes no port option
    expect(port_free(port), "port 8888 is busy (file_receiver.py listens there and nowhere else)")
    folder = demos / "file_upload"
    with (
        serving(runner, folder / "file_receiver.py", port) as proc,
        tempfile.TemporaryDirectory() as tmp,
    ):
        big = os.urandom(300_000)
        body = multipart("b0undary", {"a.bin": big, "b.txt": b"small"})
        headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
        status, _, reply = request(port, "POST", "/post", body, headers)
        expect(status == 200 and reply == b"OK", f"multipart POST -> {status} {reply[:200]!r}")
        # A streamed PUT in chunked encoding, as a client with no length up front sends it.
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        conn.request(
            "PUT",
            "/my%20file.bin",
            body=iter([big[:100_000], big[100_000:]]),
            headers={"Content-Type": "application/x-thing"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        reply = resp.read()
        conn.close()
        expect(
            resp.status == 200 and reply == b"OK", f"chunked PUT -> {resp.status} {reply[:200]!r}"
        )
        # The demo's own uploader (it always targets localhost:8888).
        paths = []
        for name, size in (("one.txt", 70_000), ("two.png", 1234)):
            path = Path(tmp) / name
            path.write_bytes(os.urandom(size))
            paths.append(str(path))
        for client, extra in [(c, e) for c in runner.clients for e in ([], ["--put"])]:
            done = subprocess.run(
                client.argv(folder / "file_uploader.py", *extra, *paths),
                cwd=folder,
                env=client.env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            out = done.stdout + done.stderr
            expect(
                done.returncode == 0 and out.count("code=200") == (2 if extra else 1),
                f"file_uploader.py {' '.join(extra)} -> {done.returncode}: {out[-1500:]}",
            )
        wait_for_log(
            proc,
            [
                'POST "a.bin" "application/octet-stream" 300000 bytes',
                'POST "b.txt" "application/octet-stream" 5 bytes',
                'PUT "my file.bin" "application/x-thing" 300000 bytes',
                'POST "' + paths[0] + '" "text/plain" 70000 bytes',
                'POST "' + paths[1] + '" "image/png" 1234 bytes',
                'PUT "one.txt" "text/plain" 70000 bytes',
                'PUT "two.png" "image/png" 1234 bytes',
            ],
        )
        expect_clean_log(proc)


def check_tcpecho(runner: Runner, demos: Path) -> None:
    port = free_port()
    folder = demos / "tcpecho"
    with serving(runner, folder / "server.py", port, f"--port={port}") as proc:
        for client, message in [(c, m) for c in runner.clients for m in ("ping", "hello there")]:
            done = subprocess.run(
                client.argv(folder / "client.py", f"--port={port}", f"--message={message}"),
                cwd=folder,
                env=client.env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            out = done.stdout + done.stderr
            expect(
                done.returncode == 0 and f"Response from server: {message}" in out,
                f"client.py -> {done.returncode}: {out[-1500:]}",
            )
        # Two lines in one packet, then a half-close with a line left unfinished: both lines come
        # back, the unfinished one does not (read_until fails at the end), and the server closes.
        with socket.create_connection((HOST, port), timeout=TIMEOUT) as s:
            s.sendall(b"one\ntwo\npart")
            s.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := s.recv(100):
                got += chunk
            expect(got == b"one\ntwo\n", f"echo {got!r}")
        # Each client's end (the readiness probe's, client.py's, the raw socket's) is a
        # StreamClosedError out of read_until, which the demo logs.
        deadline = time.monotonic() + TIMEOUT
        lost = 2 + 2 * len(runner.clients)
        while server_log(proc).count("Lost client at host") < lost:
            expect(
                time.monotonic() < deadline, f"not {lost} clients lost: {server_log(proc)[-1500:]}"
            )
            time.sleep(0.1)
        expect("Received bytes: b'ping\\n'" in server_log(proc), server_log(proc)[-1500:])
        expect_clean_log(proc)


CHECKS: dict[str, Callable[[Runner, Path], None]] = {
    "helloworld": check_helloworld,
    "chat": check_chat,
    "websocket": check_websocket,
    "file_receiver": check_file_receiver,
    "tcpecho": check_tcpecho,
}
WHAT = {
    "helloworld": "GET / says Hello, world",
    "chat": "long poll: xsrf cookie/form, waiting poll gets the posted message, cursor, redirect",
    "websocket": "2 websockets clients (deflate): a message comes back rendered to both",
    "file_receiver": "multipart POST + chunked PUT, and file_uploader.py (POST, --put)",
    "tcpecho": "client.py's lines echoed; raw socket lines echoed",
}


def run_all(runner: Runner, demos: Path, only: list[str]) -> dict[str, str]:
    results: dict[str, str] = {}
    label = "tornado" if runner.real_tornado else "asyncweb"
    for name in only:
        try:
            CHECKS[name](runner, demos)
            results[name] = "pass"
        except AssertionError as e:
            results[name] = f"FAIL: {e}"
        except Exception:
            results[name] = "FAIL: " + traceback.format_exc(limit=3)
        print(f"[{label}] {name}: {results[name]}", flush=True)
    return results


def demos_dir(arg: str | None, keep: list[tempfile.TemporaryDirectory[str]]) -> Path:
    if arg:
        path = Path(arg)
        return path / "demos" if (path / "demos" / "helloworld").is_dir() else path
    if not MIRROR.exists():
        sys.exit(f"no --demos given and no Tornado mirror at {MIRROR}")
    tmp = tempfile.TemporaryDirectory(prefix="tornado-demos-")
    keep.append(tmp)
    archive = subprocess.run(
        ["git", "-C", str(MIRROR), "archive", "HEAD", "demos"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", tmp.name], input=archive.stdout, check=True)
    return Path(tmp.name) / "demos"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demos", help="Tornado's demos/ folder (default: from the mirror)")
    parser.add_argument("--python", default=sys.executable, help="interpreter the demos run under")
    parser.add_argument(
        "--real-tornado", action="store_true", help="run `python demo.py` on real Tornado"
    )
    parser.add_argument(
        "--tornado-python", help="also run on real Tornado under this interpreter; print a table"
    )
    parser.add_argument("--logs", action="store_true", help="print each server's output")
    parser.add_argument(
        "only", nargs="*", metavar="DEMO", help=f"any of {', '.join(DEMOS)} (default: all)"
    )
    args = parser.parse_args()
    if unknown := set(args.only) - set(DEMOS):
        parser.error(f"unknown demo(s): {', '.join(sorted(unknown))}")
    global SHOW_LOGS
    SHOW_LOGS = args.logs
    keep: list[tempfile.TemporaryDirectory[str]] = []
    demos = demos_dir(args.demos, keep)
    only = args.only or DEMOS
    runner = Runner(args.python, args.real_tornado)
    tornado = Runner(args.tornado_python, True) if args.tornado_python else None
    if tornado is not None:
        # Crossed too: asyncweb's demo clients against Tornado's servers, and the other way.
        runner.clients.append(tornado)
        tornado.clients.append(runner)
    ours = run_all(runner, demos, only)
    theirs = run_all(tornado, demos, only) if tornado is not None else None
    first = "Tornado 6.6.1" if args.real_tornado else "asyncweb"
    print()
    print(f"| demo | checks | {first} |" + (" Tornado 6.6.1 |" if theirs else ""))
    print("|---|---|---|" + ("---|" if theirs else ""))
    for name in only:
        row = f"| {name} | {WHAT[name]} | {ours[name][:4]} |"
        print(row + (f" {theirs[name][:4]} |" if theirs else ""))
    passed = sum(r == "pass" for r in ours.values())
    print(f"\n{first}: {passed}/{len(only)} pass", end="")
    if theirs:
        print(
            f"; Tornado 6.6.1: {sum(r == 'pass' for r in theirs.values())}/{len(only)} pass", end=""
        )
    print()
    return 0 if passed == len(only) else 1


if __name__ == "__main__":
    sys.exit(main())
