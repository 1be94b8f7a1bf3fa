"""ASGIAdapter under a real uvicorn process with its default logging: one ``Server`` and one
``Date`` header per response, one access line per request (uvicorn's), and the
application's own start-up/shut-down hooks run by the lifespan protocol."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def fetch(url: str) -> tuple[int, list[tuple[str, str]]]:
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            resp.read()
            return resp.status, resp.getheaders()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, list(err.headers.items())


def test_headers_logs_and_hooks_under_uvicorn(tmp_path: Path) -> None:
    events = tmp_path / "events"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.interop_apps.asgi_hooks_app:asgi_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={**os.environ, "ASGI_TEST_EVENTS": str(events)},
        stdout=subprocess.PIPE,  # uvicorn's access lines
        stderr=subprocess.STDOUT,  # its other logs, and asyncweb's
        text=True,
    )
    lines: list[str] = []
    output_stream = proc.stdout
    assert output_stream is not None
    reader = threading.Thread(target=lambda: lines.extend(output_stream), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
                time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        for path, status in (("/hello", 200), ("/gone", 404), ("/broken", 500), ("/nope", 404)):
            code, headers = fetch(base + path)
            assert code == status
            names = [name.lower() for name, _value in headers]
            assert names.count("server") == 1 and names.count("date") == 1, headers
            assert dict((n.lower(), v) for n, v in headers)["server"] == "uvicorn"
        # A Server header the application chose stays (uvicorn adds its own beside it).
        _code, headers = fetch(base + "/named")
        assert ("server", "custom/1") in [(n.lower(), v) for n, v in headers]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(10)
        output_stream.close()
    output = "".join(lines)
    for path in ("/hello", "/gone", "/broken", "/nope"):
        # uvicorn's access line, and none of asyncweb's ("404 GET /gone (127.0.0.1) 0.3ms").
        assert output.count(f'"GET {path} HTTP/1.1"') == 1, output
        assert not re.search(rf"\d{{3}} GET {path} \(", output), output
    # The 500's traceback is logged once, by the application.
    assert output.count("RuntimeError: broken handler") == 1, output
    assert events.read_text().split("\n")[:-1] == [
        "app startup",
        "adapter startup",
        "adapter shutdown",
        "app shutdown",
    ]
