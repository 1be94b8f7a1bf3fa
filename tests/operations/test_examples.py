"""The examples run: each is started as its own process and asked real HTTP questions."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _wait_until_listening(proc: subprocess.Popen[str], port: int, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"the example exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail("the example did not start listening")


@pytest.fixture
def hello_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "hello.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_listening(proc, port)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def test_hello_example(hello_server: tuple[subprocess.Popen[str], str]) -> None:
    proc, base = hello_server

    status, content_type, body = _get(f"{base}/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert body == b"Hello, world"

    status, content_type, body = _get(f"{base}/greet/Ada?lang=de")
    assert status == 200
    assert content_type.startswith("application/json")
    assert json.loads(body) == {"hello": "Ada", "lang": "de"}

    status, _content_type, body = _get(f"{base}/greet/Grace")
    assert json.loads(body) == {"hello": "Grace", "lang": "en"}

    with pytest.raises(urllib.error.HTTPError) as info:
        _get(f"{base}/missing")
    assert info.value.code == 404
    info.value.close()

    # Ctrl-C stops it cleanly: no traceback, exit status 0.
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out.startswith(f"Serving on {base}/")
