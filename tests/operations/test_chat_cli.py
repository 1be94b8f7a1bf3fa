"""``python examples/chat/app.py`` on the command line: both option forms, one-line errors with
exit status 2, a taken port named, and a broker outage at start-up reported at WARNING with the
banner printed once serving. Also the option parser's ``--name value`` form on its own."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from asyncweb.options import Error, OptionParser
from tests.cli_apps.redis_process import REDIS_SERVER, RedisProcess
from tests.operations.test_chat import CHAT
from tests.support.servers import free_port

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_chat(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHAT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


class Lines:
    """A running process's output lines, read by threads, with waits on what they say."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[tuple[str, str]] = []
        self.readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("out", proc.stdout), ("err", proc.stderr))
        ]
        for reader in self.readers:
            reader.start()

    def stop(self) -> None:
        """End the process, let the readers reach the end of its output, close the pipes."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self.readers:
            reader.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _read(self, name: str, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            self.lines.put((name, line))

    def wait_for(self, text: str, deadline: float = 30) -> tuple[str, str]:
        end = time.monotonic() + deadline
        while True:
            try:
                item = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {self.seen}") from None
            self.seen.append(item)
            if text in item[1]:
                return item


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        return resp.status == 200


@pytest.fixture
def chat_process() -> Iterator[list[Lines]]:
    started: list[Lines] = []
    yield started
    for lines in started:
        lines.stop()


def start(chat_process: list[Lines], *args: str) -> Lines:
    proc = subprocess.Popen(
        [sys.executable, str(CHAT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    lines = Lines(proc)
    chat_process.append(lines)
    return lines


@pytest.mark.parametrize("form", ["space", "equals"])
def test_port_option_in_both_forms(chat_process: list[Lines], form: str) -> None:
    port = free_port()
    args = ["--port", str(port)] if form == "space" else [f"--port={port}"]
    lines = start(chat_process, *args, "--address", "127.0.0.1")
    stream, banner = lines.wait_for("Chat on http://")
    assert stream == "out" and f":{port}/" in banner
    assert healthy(port)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--nope=1"], "'nope'"),
        (["--port", "eighty"], "'eighty'"),
        (["--port"], "requires a value"),
        (["--port=99999"], "65535"),
        (["--broker=ftp://example"], "unknown broker"),
    ],
)
def test_bad_options_give_one_line_and_status_2(args: list[str], says: str) -> None:
    done = run_chat(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chat: ") and says in lines[0], lines


def test_help_still_exits_0() -> None:
    done = run_chat("--help")
    assert done.returncode == 0 and "--max-rooms" in done.stderr + done.stdout


def test_a_taken_port_is_named() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_chat(f"--port={port}")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert str(port) in last and "in use" in last
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_broker_outage_at_start_up_is_a_warning_and_the_banner_waits(
    chat_process: list[Lines],
) -> None:
    redis = RedisProcess()  # its port, not started yet
    port = free_port()
    lines = start(chat_process, "--port", str(port), "--broker", redis.url)
    stream, warning = lines.wait_for("no answer from the broker")
    assert stream == "err" and warning.startswith("[W ") and redis.url in warning
    assert not any(s == "out" for s, _ in lines.seen), "banner printed before serving"
    redis.start()
    try:
        stream, _banner = lines.wait_for("Chat on http://")
        assert stream == "out" and healthy(port)
    finally:
        lines.stop()  # before Redis goes, so the chat's shutdown finds it
        redis.kill()


# -- the option parser -------------------------------------------------------------------------


def parser() -> OptionParser:
    made = OptionParser()
    made.define("port", default=80)
    made.define("name", default="x")
    made.define("debug", default=False)
    made.define("ids", type=int, multiple=True)
    return made


def test_options_take_a_value_as_the_next_argument() -> None:
    options = parser()
    rest = options.parse_command_line(["prog", "--port", "8888", "--name", "-dash", "tail"])
    assert (options.port, options.name, rest) == (8888, "-dash", ["tail"])
    options.parse_command_line(["prog", "--ids", "1:3"])
    assert options.ids == [1, 2, 3]


def test_tornado_forms_keep_their_meaning() -> None:
    options = parser()
    # A flag never takes the next argument: "false" stays a positional argument.
    assert options.parse_command_line(["prog", "--debug", "false", "--port=1"]) == [
        "false",
        "--port=1",
    ]
    assert options.debug is True and options.port == 80
    assert options.parse_command_line(["prog", "--port=2", "--", "--port", "3"]) == ["--port", "3"]
    assert options.port == 2
    for args in (["prog", "--port"], ["prog", "--port", "--debug"]):
        with pytest.raises(Error, match="requires a value"):
            options.parse_command_line(args)
