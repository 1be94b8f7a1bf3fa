"""docs/deploy.md's nginx configuration, run as it is written (ports and paths replaced) with
Debian's nginx started by the test on loopback, in front of ``asyncweb serve --xheaders``."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, LAUNCH_ARGS
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed")

APP = """
import asyncio, hashlib, json, os
from asyncweb import web, websocket

class Page(web.RequestHandler):
    def get(self):
        self.write('<link rel="stylesheet" href="%s">' % self.static_url("site.css"))

class WhoAmI(web.RequestHandler):
    def get(self):
        self.write({"remote_ip": self.request.remote_ip, "protocol": self.request.protocol,
                    "pid": os.getpid()})

class Work(web.RequestHandler):
    async def get(self):
        await asyncio.sleep(0.01)
        self.write("pid %d" % os.getpid())

class Upload(web.RequestHandler):
    def post(self):
        body = self.request.body
        self.write({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})

class Echo(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message("echo: " + message)

app = web.Application(
    [("/", Page), ("/whoami", WhoAmI), ("/work", Work), ("/upload", Upload), ("/ws", Echo)],
    static_path=os.path.join(os.path.dirname(__file__), "static"),
)
"""

SERVE = [sys.executable, "-m", "asyncweb", "serve", "app:app", "--host", "127.0.0.1"]
SECRET = "--cookie_secret=nginx-test"
CSS = "body { color: #123456; }\n"


def deploy_config() -> str:
    """The ```nginx block of docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    match = re.search(r"### nginx\n.*?```nginx\n(.*?)```", text, re.DOTALL)
    assert match, "docs/deploy.md has no nginx configuration"
    return match.group(1)


@dataclass
class Nginx:
    port: int
    tls_port: int
    ca: object
    directory: Path
    process: subprocess.Popen[bytes]

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)  # type: ignore[attr-defined]
        return context


def start_app(app_dir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*SERVE, "--app-dir", str(app_dir), "--port", str(port), "--xheaders", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            assert time.monotonic() < deadline, "asyncweb serve did not start"
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> bytes:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=30)[1] or b""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1] or b""


def start_nginx(directory: Path, upstream_ports: tuple[int, int], static: Path) -> Nginx:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
    port, tls_port = free_port(), free_port()
    site = deploy_config()
    for old, new in [
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
        ("127.0.0.1:8001", f"127.0.0.1:{upstream_ports[0]}"),
        ("127.0.0.1:8002", f"127.0.0.1:{upstream_ports[1]}"),
        ("/etc/ssl/example.org.pem", str(directory / "server.pem")),
        ("/etc/ssl/example.org.key", str(directory / "server.pem")),
        ("/srv/myapp/static/", f"{static}/"),
    ]:
        assert old in site, old
        site = site.replace(old, new)
    temp = directory / "temp"
    temp.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""
        {user}
        daemon off;
        worker_processes 1;
        pid {directory}/nginx.pid;
        error_log {directory}/error.log info;
        events {{ worker_connections 512; }}
        http {{
            include /etc/nginx/mime.types;
            default_type application/octet-stream;
            access_log {directory}/access.log;
            client_body_temp_path {temp}/body;
            proxy_temp_path {temp}/proxy;
            fastcgi_temp_path {temp}/fastcgi;
            uwsgi_temp_path {temp}/uwsgi;
            scgi_temp_path {temp}/scgi;
        """)
        + textwrap.indent(site, "    ")
        + "}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
    return Nginx(port, tls_port, ca, directory, process)


@dataclass
class Site:
    nginx: Nginx
    app_ports: tuple[int, int]
    app_dir: Path
    apps: list[subprocess.Popen[bytes]]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    app_dir = tmp_path / "app"
    (app_dir / "static").mkdir(parents=True)
    (app_dir / "app.py").write_text(APP)
    (app_dir / "static" / "site.css").write_text(CSS)
    ports = (free_port(), free_port())
    apps = [start_app(app_dir, port) for port in ports]
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    running = Site(start_nginx(nginx_dir, ports, app_dir / "static"), ports, app_dir, apps)
    try:
        yield running
    finally:
        running.nginx.process.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            running.nginx.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            running.nginx.process.kill()
            running.nginx.process.communicate()
        for app in running.apps:
            stop(app)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    context: ssl.SSLContext | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    if context is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, source_address=(source, 0), context=context
        )
    else:
        conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
        )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# -- the tests -------------------------------------------------------------------------------


def test_xheaders_give_the_client_address_and_scheme(site: Site) -> None:
    # The client comes from 127.0.0.2; nginx itself talks to the app from 127.0.0.1.
    status, _, body = request(site.nginx.port, "GET", "/whoami", source="127.0.0.2")
    assert status == 200
    assert json.loads(body)["remote_ip"] == "127.0.0.2"
    assert json.loads(body)["protocol"] == "http"
    context = site.nginx.tls_context()
    status, _, body = request(
        site.nginx.tls_port, "GET", "/whoami", source="127.0.0.3", context=context
    )
    assert status == 200
    assert json.loads(body) | {"pid": 0} == {
        "remote_ip": "127.0.0.3",
        "protocol": "https",
        "pid": 0,
    }


def test_upstream_connections_are_kept_alive(site: Site) -> None:
    # 30 requests on fresh client connections reuse a few upstream connections: the app
    # sees far fewer connections than requests. Counted from the app's side (ss).
    for _ in range(30):
        assert request(site.nginx.port, "GET", "/whoami")[0] == 200
    first, second = site.app_ports
    ss = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{first} or sport = :{second} )"],
        capture_output=True,
        text=True,
    )
    if ss.returncode != 0:
        pytest.skip("ss (iproute2) is not installed")
    connections = [line for line in ss.stdout.splitlines() if line.strip()]
    assert 1 <= len(connections) <= 6


def test_static_files_come_from_nginx_with_versioned_urls(site: Site) -> None:
    status, _, page = request(site.nginx.port, "GET", "/")
    assert status == 200
    match = re.search(rb'href="(/static/site\.css\?v=([0-9a-f]+))"', page)
    assert match, page
    url, version = match.group(1).decode(), match.group(2).decode()
    assert version == hashlib.sha512(CSS.encode()).hexdigest()  # StaticFileHandler's version
    status, headers, body = request(site.nginx.port, "GET", url)
    assert status == 200 and body == CSS.encode()
    assert headers["content-type"].startswith("text/css")
    assert "immutable" in headers["cache-control"]
    # nginx's own ETag ("mtime-size" in hex), not asyncweb's hash of the content.
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', headers["etag"])
    # The app was never asked for it: its access log has the page and not the file.
    stderr = "".join(stop(app).decode() for app in site.apps)
    assert "GET / " in stderr and "/static/" not in stderr


def test_large_uploads_within_client_max_body_size(site: Site) -> None:
    body = os.urandom(1024) * (40 * 1024)  # 40 MiB
    status, _, answer = request(
        site.nginx.port, "POST", "/upload", body, {"Content-Type": "application/octet-stream"}
    )
    assert status == 200
    assert json.loads(answer) == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    # Over the limit: nginx answers 413 from the Content-Length alone.
    conn = http.client.HTTPConnection("127.0.0.1", site.nginx.port, timeout=30)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(60 * 1024 * 1024))
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_websocket_through_the_proxy(site: Site) -> None:
    import websockets

    async def talk() -> list[str]:
        url = f"ws://127.0.0.1:{site.nginx.port}/ws"
        async with websockets.connect(url) as ws:
            answers = []
            for text in ("one", "two", "x" * 100_000):
                await ws.send(text)
                answers.append(await ws.recv())
            return [str(a)[:12] for a in answers]

    assert asyncio.run(talk()) == ["echo: one", "echo: two", "echo: xxxxxx"]


def test_graceful_restart_under_load_through_the_proxy(site: Site) -> None:
    """Both asyncweb servers are restarted, one after the other, as docs/deploy.md says,
    while four clients keep requesting through nginx: every request succeeds."""
    statuses: list[int] = []
    failures: list[str] = []
    pids: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()
    limit = 6000  # requests in all, at most

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", site.nginx.port, timeout=30)
        while not done.is_set():
            with lock:
                if len(statuses) + len(failures) >= limit:
                    return
            try:
                conn.request("GET", "/work")
                response = conn.getresponse()
                body = response.read()
                with lock:
                    statuses.append(response.status)
                    if response.status == 200:
                        pids.add(body.decode())
                    else:
                        failures.append(f"{response.status} {body[:80]!r}")
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    failures.append(repr(err))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", site.nginx.port, timeout=30)
        conn.close()

    def served() -> int:
        with lock:
            return len(statuses)

    def wait_for(check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not check():
            assert time.monotonic() < deadline, (what, served(), failures[:5], pids)
            time.sleep(0.02)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: served() >= 100, "no load through nginx")
        old_pids = set(pids)
        for index, port in enumerate(site.app_ports):
            stop(site.apps[index])
            mark = served()
            # The other server carries the load meanwhile.
            wait_for(lambda m=mark: served() >= m + 100, "no load while one server is away")
            site.apps[index] = start_app(site.app_dir, port)
            mark = served()
            wait_for(lambda m=mark: served() >= m + 100, "no load after the restart")
        wait_for(lambda: len(pids - old_pids) >= 2, "the new servers never answered")
    finally:
        done.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert len(statuses) >= 500 and set(statuses) == {200}


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_the_chat_works_through_nginx_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chat_port = free_port()
    chat = subprocess.Popen(
        [sys.executable, str(ROOT / "examples/chat/app.py"), f"--port={chat_port}", SECRET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    nginx = None
    try:
        deadline = time.monotonic() + 20
        while True:
            assert chat.poll() is None, chat.communicate()[1]
            try:
                socket.create_connection(("127.0.0.1", chat_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        static = ROOT / "examples" / "chat" / "static"
        nginx = start_nginx(tmp_path, (chat_port, chat_port), static)
        base = f"http://127.0.0.1:{nginx.port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            try:
                page = browser.new_context(locale="en-US").new_page()
                page.goto(base + "/room/lobby")
                page.fill("#name", "Proxy Ann")
                page.click("#login button[type=submit]")
                page.wait_for_url("**/room/lobby")
                expect(page.locator("#status")).to_have_text("live", timeout=15_000)
                page.fill("#body", "through nginx")
                page.press("#body", "Enter")
                expect(page.locator("#inbox .message").last).to_contain_text(
                    "Proxy Ann: through nginx"
                )
            finally:
                browser.close()
        # The page's WebSocket went through nginx: its access log has the 101.
        log = (tmp_path / "access.log").read_text()
        assert re.search(r'"GET /ws/lobby[^"]*" 101 ', log), log[-2000:]
    finally:
        if nginx is not None:
            nginx.process.send_signal(signal.SIGQUIT)
            nginx.process.communicate(timeout=30)
        chat.terminate()
        chat.communicate(timeout=30)
