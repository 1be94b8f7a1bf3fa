"""Start-up and shut-down hooks and the graceful stop, in real server processes sent real
signals: ``asyncweb serve`` (one process and workers, with Redis) and ``app.listen()`` +
``IOLoop.current().start()``. Long polls must get an answer, a second Ctrl-C must stop at
once, and no run may leave a task pending or touch a closed loop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_apps.redis_process import REDIS_SERVER, RedisProcess
from tests.cli_apps.runner import TESTS, Server, kill_all
from tests.support.servers import Fetch, free_port

HANG_GUARD = 60.0  # only against hangs: nothing here measures speed
WARNINGS = ("Task was destroyed", "Event loop is closed", "Traceback", "never retrieved")


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    kill_all(started)


class Request:
    """A GET in a thread; ``result()`` is (status, headers, body) or the error."""

    def __init__(self, url: str) -> None:
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=HANG_GUARD) as resp:
                self.outcome.append((resp.status, dict(resp.headers), resp.read().decode()))
        except urllib.error.HTTPError as err:
            with err:
                self.outcome.append((err.code, dict(err.headers), err.read().decode()))
        except Exception as err:
            self.outcome.append(err)

    def result(self) -> Any:
        self.thread.join(HANG_GUARD)
        assert self.outcome, "no answer"
        return self.outcome[0]


def wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never written"
        time.sleep(0.02)


def events(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def exit_status(server: Server) -> int:
    """Wait for the exit of a server already signalled (without sending SIGTERM)."""
    server.terminated = True
    return server.stop(HANG_GUARD)


def assert_clean(stderr: str) -> None:
    for warning in WARNINGS:
        assert warning not in stderr, stderr


def test_serve_answers_a_long_poll_and_runs_the_hooks(
    servers: list[Server], tmp_path: Path
) -> None:
    log = tmp_path / "events"
    server = Server("cli_apps.shutdown_app:app", "--port", "0", env={"EVENTS": str(log)})
    servers.append(server)
    url = server.url()
    # "Serving on" comes after the start-up hooks.
    assert events(log) == ["startup"]
    poll = Request(url + "/poll")
    wait_for(log, "poll waiting")
    server.proc.send_signal(signal.SIGINT)
    status, _headers, body = poll.result()
    assert (status, json.loads(body)) == (200, {"messages": []})
    assert exit_status(server) == 0
    assert events(log)[-2:] == ["shutdown", "consumer cancelled"]
    assert_clean(server.text)


def test_second_sigint_stops_at_once(servers: list[Server], tmp_path: Path) -> None:
    log = tmp_path / "events"
    # The stuck request ignores the shutdown; the timeout alone would take an hour.
    server = Server(
        "cli_apps.shutdown_app:app",
        "--port",
        "0",
        "--shutdown-timeout",
        "3600",
        env={"EVENTS": str(log)},
    )
    servers.append(server)
    url = server.url()
    stuck = Request(url + "/stuck")
    wait_for(log, "stuck waiting")
    server.proc.send_signal(signal.SIGINT)
    server.wait_for_line("SIGINT received; finishing in-flight requests")
    assert stuck.thread.is_alive()  # the first Ctrl-C waits for it...
    server.proc.send_signal(signal.SIGINT)  # ...the second does not
    status, headers, _body = stuck.result()
    assert status == 503 and headers["Retry-After"] == "1"
    assert exit_status(server) == 0
    assert "1 connections still open; stopping now" in server.text
    assert events(log)[-1] == "consumer cancelled"
    assert_clean(server.text)


def test_no_clients_no_warnings(servers: list[Server], tmp_path: Path) -> None:
    log = tmp_path / "events"
    server = Server("cli_apps.shutdown_app:app", "--port", "0", env={"EVENTS": str(log)})
    servers.append(server)
    server.url()
    server.proc.send_signal(signal.SIGINT)
    assert exit_status(server) == 0
    assert events(log) == ["startup", "shutdown", "consumer cancelled"]
    assert_clean(server.text)


def start_listen_script(log: Path, shutdown_timeout: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "cli_apps" / "shutdown_app.py"), str(port)],
        cwd=TESTS,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "EVENTS": str(log),
            "PYTHONUNBUFFERED": "1",
            "SHUTDOWN_TIMEOUT": shutdown_timeout,
        },
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert f"Listening on http://127.0.0.1:{port}" in first, first
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("second_sigint", [False, True])
def test_listen_and_start(tmp_path: Path, second_sigint: bool) -> None:
    """The README's ``app.listen(port); IOLoop.current().start()``: one "Listening on" line
    (logging is not configured there), Ctrl-C stops gracefully and quietly."""
    log = tmp_path / "events"
    # With a second Ctrl-C the timeout would take an hour; without, it is what ends the wait.
    proc, url = start_listen_script(log, "3600" if second_sigint else "0.5")
    try:
        wait_for(log, "startup")
        poll = Request(url + "/poll")
        stuck = Request(url + "/stuck")
        wait_for(log, "poll waiting")
        wait_for(log, "stuck waiting")
        proc.send_signal(signal.SIGINT)
        status, _headers, body = poll.result()
        assert (status, json.loads(body)) == (200, {"messages": []})
        if second_sigint:
            proc.send_signal(signal.SIGINT)
        # The stuck request ignores on_shutdown(): it is answered when the wait ends.
        status, headers, _body = stuck.result()
        assert status == 503 and headers["Retry-After"] == "1"
        _out, stderr = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # An interrupted program: ended by SIGINT (status 130 in a shell), without a traceback.
    assert proc.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" not in stderr
    assert_clean(stderr)
    assert events(log)[-2:] == ["shutdown", "consumer cancelled"]


needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@needs_redis
def test_workers_with_redis_stop_cleanly(servers: list[Server], tmp_path: Path) -> None:
    """Each worker reads a Redis subscription in a task of its own (as the chat does)."""
    redis = RedisProcess()
    redis.start()
    log = tmp_path / "events"
    try:
        server = Server(
            "cli_apps.shutdown_app:app",
            "--port",
            "0",
            "--workers",
            "2",
            env={"ASYNCWEB_TEST_REDIS": redis.url, "EVENTS": str(log)},
        )
        servers.append(server)
        url = server.url()
        server.wait_for_line("worker 0 started")
        server.wait_for_line("worker 1 started")
        deadline = time.monotonic() + HANG_GUARD
        while events(log).count("startup") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        poll = Request(url + "/poll")
        wait_for(log, "poll waiting")
        # Ctrl-C in a terminal reaches the whole process group.
        os.killpg(server.proc.pid, signal.SIGINT)
        status, _headers, body = poll.result()
        assert (status, json.loads(body)) == (200, {"messages": []})
        assert exit_status(server) == 0
        assert_clean(server.text)
        assert sorted(events(log)).count("consumer cancelled") == 2
        assert sorted(events(log)).count("shutdown") == 2
    finally:
        redis.kill()


async def test_listen_in_a_running_loop_serves_once_started(fetch: Fetch) -> None:
    """Inside a running loop, listen() cannot wait for async start-up hooks: it accepts
    connections once they are done (a request sent at once waits in the backlog)."""
    from asyncweb.web import Application, RequestHandler

    started: list[str] = []

    async def slow_start() -> None:
        await asyncio.sleep(0.2)
        started.append("ready")

    class State(RequestHandler):
        def get(self) -> None:
            self.write(",".join(started))

    app = Application([("/", State)], on_startup=[slow_start])
    port = free_port()
    server = app.listen(port, "127.0.0.1")
    try:
        response = await fetch(f"http://127.0.0.1:{port}/")
        assert (response.status, response.text) == (200, "ready")
    finally:
        server.stop()
        await server.close_all_connections()
        await app.shutdown()
