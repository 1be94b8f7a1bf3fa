"""The ``asyncweb`` command: real server processes started the way a user starts them."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.cli_apps.runner import TESTS, Server, kill_all


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    kill_all(started)


def get(url: str, timeout: float = 20.0, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
        return str(resp.read().decode())


def run_cli(*args: str, cwd: Path = TESTS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncweb", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("target", "module", "expected"),
    [
        ("cli_apps.pid_app:app", True, None),
        ("cli_apps.pid_app:make_app", False, None),
        ("cli_apps.pid_app:plain_callback", True, "plain callback"),
    ],
)
def test_serve_targets(
    servers: list[Server], target: str, module: bool, expected: str | None
) -> None:
    server = Server(target, "--port", "0", module=module)
    servers.append(server)
    url = server.url()
    assert url.startswith("http://127.0.0.1:")
    body = get(url + "/")
    assert body == (expected or str(server.proc.pid))
    assert server.stop() == 0


def test_access_log_and_loop_choice(servers: list[Server]) -> None:
    on = Server("cli_apps.pid_app:app", "--port", "0", "--uvloop")
    servers.append(on)
    assert get(on.url() + "/loop") == "uvloop"
    on.wait_for_line(r"\] 200 GET /loop \(127\.0\.0\.1\)")
    off = Server(
        "cli_apps.pid_app:app",
        "--port",
        "0",
        "--no-uvloop",
        "--no-access-log",
        "--log-level",
        "debug",
    )
    servers.append(off)
    assert get(off.url() + "/loop") == "asyncio.unix_events"
    assert off.stop() == 0 and on.stop() == 0
    assert "GET /loop" not in off.text
    assert "received; finishing" in off.text


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_http_parser_choice(servers: list[Server], parser: str) -> None:
    server = Server("cli_apps.pid_app:app", "--port", "0", "--http-parser", parser)
    servers.append(server)
    assert get(server.url() + "/parser") == parser
    assert get(server.url() + "/") == str(server.proc.pid)
    assert server.stop() == 0


def start_slow_request(url: str, marker: Path) -> tuple[threading.Thread, list[str]]:
    """GET ``/slow`` (one second) in a thread; return once the server has started on it
    (it creates ``marker``), with the thread and the list its body lands in."""
    result: list[str] = []
    thread = threading.Thread(
        target=lambda: result.append(get(f"{url}/slow?seconds=1&marker={marker}"))
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return thread, result


def test_sigterm_drains_in_flight_request(servers: list[Server], tmp_path: Path) -> None:
    server = Server("cli_apps.pid_app:app", "--port", "0")
    servers.append(server)
    url = server.url()
    marker = tmp_path / "started"
    thread, result = start_slow_request(url, marker)
    server.terminate()
    thread.join(20)
    assert result == [f"slow done {server.proc.pid}"]
    assert server.stop() == 0
    # New connections are refused once the server stops accepting.
    with pytest.raises(OSError):
        get(url + "/", timeout=5)


def worker_pids(
    url: str, want: int, exclude: frozenset[str] = frozenset(), tries: int = 400
) -> set[str]:
    """Distinct pids answering fresh connections (SO_REUSEPORT spreads them by hash)."""
    seen: set[str] = set()
    for _ in range(tries):
        seen.add(get(url + "/"))
        if len(seen - exclude) >= want:
            return seen
    raise AssertionError(f"only {seen} answered")


def test_workers_answer_restart_and_drain(servers: list[Server], tmp_path: Path) -> None:
    server = Server("cli_apps.pid_app:app", "--port", "0", "--workers", "2")
    servers.append(server)
    url = server.url()
    server.wait_for_line(r"with 2 workers")
    # Each worker binds its own SO_REUSEPORT socket after the fork.
    server.wait_for_line(r"worker 0 started")
    server.wait_for_line(r"worker 1 started")
    pids = worker_pids(url, 2)
    assert len(pids) == 2 and str(server.proc.pid) not in pids
    # A dead worker is replaced.
    victim = sorted(pids)[0]
    os.kill(int(victim), signal.SIGKILL)
    server.wait_for_line(rf"pid {victim}\) was killed by signal 9, restarting")
    fresh = worker_pids(url, 1, exclude=frozenset(pids)) - pids
    assert len(fresh) >= 1
    # SIGTERM to the parent: in-flight requests finish, every process exits 0.
    marker = tmp_path / "started"
    thread, result = start_slow_request(url, marker)
    worker = marker.read_text()
    server.terminate()
    thread.join(20)
    assert result == [f"slow done {worker}"]
    assert server.stop() == 0
    for pid in (pids | fresh) - {victim}:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
    assert "restarting" not in server.text.split("SIGTERM received")[-1]


def test_unix_socket(servers: list[Server], tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    server = Server("cli_apps.pid_app:app", "--uds", str(path))
    servers.append(server)
    assert server.url() == f"unix:{path}"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(str(server.proc.pid).encode())
    assert server.stop() == 0


def test_tls(servers: list[Server], tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        with open(certfile, "ab") as f:
            f.write(pem.bytes())
    cert.private_key_pem.write_to_path(str(keyfile))
    server = Server(
        "cli_apps.pid_app:app",
        "--port",
        "0",
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
    )
    servers.append(server)
    url = server.url()
    assert url.startswith("https://")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert get(url + "/", context=context) == str(server.proc.pid)
    assert server.stop() == 0


def touch_until(server: Server, module: Path, text: str) -> None:
    """Give ``module`` ever later mtimes until ``text`` shows in the server's output (the
    watcher's first pass only records the times, so one touch may go unseen)."""
    bump = 0
    deadline = time.monotonic() + 20
    while text not in server.text:
        assert time.monotonic() < deadline, server.text
        bump += 10
        os.utime(module, (time.time(), time.time() + bump))
        time.sleep(0.2)


def test_reload_on_code_change(servers: list[Server], tmp_path: Path) -> None:
    module = tmp_path / "reload_app.py"
    module.write_text(
        "from asyncweb import web\n"
        "class H(web.RequestHandler):\n"
        "    def get(self):\n"
        "        self.write('version 1')\n"
        "app = web.Application([('/', H)])\n"
    )
    server = Server("reload_app:app", "--port", "0", "--reload", cwd=tmp_path)
    servers.append(server)
    url = server.url()
    assert get(url + "/") == "version 1"
    port = url.rsplit(":", 1)[1]
    module.write_text(module.read_text().replace("version 1", "version 2"))
    touch_until(server, module, "modified; restarting")
    # The new run serves on the same port again.
    server.wait_for_line(rf"Serving on http://127\.0\.0\.1:{port} \(pid {server.proc.pid}\)")
    deadline = time.monotonic() + 20
    while True:
        try:
            if get(url + "/", timeout=5) == "version 2":
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, server.text
        time.sleep(0.1)
    assert server.stop() == 0


def test_reload_rereads_templates(servers: list[Server], tmp_path: Path) -> None:
    """--reload means templates too, without debug=True in the application."""
    (tmp_path / "page.html").write_text("template {{ 1 }}")
    (tmp_path / "tpl_app.py").write_text(
        "import os\n"
        "from asyncweb import web\n"
        "class H(web.RequestHandler):\n"
        "    def get(self):\n"
        "        self.render('page.html')\n"
        "app = web.Application([('/', H)], template_path=os.path.dirname(__file__))\n"
    )
    server = Server("tpl_app:app", "--port", "0", "--reload", cwd=tmp_path)
    servers.append(server)
    url = server.url()
    assert get(url + "/") == "template 1"
    (tmp_path / "page.html").write_text("template {{ 2 }}")
    # No restart is needed: the next request reads the edited template.
    assert get(url + "/") == "template 2"
    assert "restarting" not in server.text
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope_module:app"], "could not import module 'nope_module': No module named"),
        (["cli_apps.pid_app:nope"], "module 'cli_apps.pid_app' has no attribute 'nope'"),
        (["cli_apps.pid_app"], "expected MODULE:APP"),
        (["cli_apps.pid_app:not_an_app"], "is a int, not an Application"),
        (["cli_apps.pid_app:app", "--reload", "--workers", "2"], "--reload cannot be combined"),
        (["cli_apps.pid_app:app", "--certfile", "/nonexistent.pem"], "cannot load the TLS"),
        (["cli_apps.pid_app:app", "--workers", "-1"], "--workers must be"),
        (["cli_apps.pid_app:PidHandler"], "is a RequestHandler class, not an Application"),
        (["cli_apps.debug_app:app", "--workers", "2"], "cannot serve an Application with"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str) -> None:
    result = run_cli("serve", *args)
    assert result.returncode == 1
    assert "Serving on" not in result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asyncweb: error: ")
    assert message in lines[0]


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_bad_port_is_a_usage_error(port: str) -> None:
    result = run_cli("serve", "cli_apps.pid_app:app", "--port", port)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asyncweb: error: argument --port: ")


def test_version() -> None:
    from asyncweb import version

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"asyncweb {version}"


def test_port_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            result = run_cli(
                "serve", "cli_apps.pid_app:app", "--port", str(port), "--workers", workers
            )
            assert result.returncode == 1, result.stderr
            assert f"cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr
            assert "Traceback" not in result.stderr


def test_user_code_errors_keep_their_traceback() -> None:
    result = run_cli("serve", "cli_apps.broken_app:app")
    assert result.returncode == 1
    assert "RuntimeError: broken at import time" in result.stderr


def test_usage() -> None:
    result = run_cli()
    assert result.returncode == 2 and "usage: asyncweb" in result.stderr
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for option in (
        "--workers",
        "--reload",
        "--uds",
        "--certfile",
        "--no-access-log",
        "--no-uvloop",
        "--http-parser",
    ):
        assert option in result.stdout


def test_reload_waits_for_a_fix(servers: list[Server], tmp_path: Path) -> None:
    module = tmp_path / "fix_me.py"
    module.write_text("raise RuntimeError('not yet')\n")
    server = Server("fix_me:app", "--port", "0", "--reload", cwd=tmp_path)
    servers.append(server)
    server.wait_for_line("waiting for a change to restart")
    assert "RuntimeError: not yet" in server.text
    module.write_text(
        "from asyncweb import web\n"
        "class H(web.RequestHandler):\n"
        "    def get(self):\n"
        "        self.write('fixed')\n"
        "app = web.Application([('/', H)])\n"
    )
    touch_until(server, module, "Serving on")
    assert get(server.url() + "/") == "fixed"
    assert server.stop() == 0


def test_shutdown_timeout_answers_stuck_requests(servers: list[Server], tmp_path: Path) -> None:
    server = Server("cli_apps.pid_app:app", "--port", "0", "--shutdown-timeout", "0.3")
    servers.append(server)
    url = server.url()
    marker = tmp_path / "started"
    errors: list[BaseException] = []

    def stuck_request() -> None:
        try:
            get(f"{url}/slow?seconds=60&marker={marker}", timeout=30)
        except Exception as err:
            errors.append(err)

    thread = threading.Thread(target=stuck_request)
    thread.start()
    deadline = time.monotonic() + 15
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert server.stop() == 0
    thread.join(20)
    # The stuck request is answered (503, retry soon), not cut without a response.
    assert len(errors) == 1 and isinstance(errors[0], urllib.error.HTTPError)
    with errors[0] as refusal:
        assert refusal.code == 503 and refusal.headers["Retry-After"] == "1"
    server.wait_for_line(r"1 connections still open after 0.3s; closing them")
    assert "Task was destroyed" not in server.text
