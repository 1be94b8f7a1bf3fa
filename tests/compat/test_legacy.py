"""examples/legacy: the Tornado 2.x-style app served two ways over real sockets.

``app.py`` imports ``asyncweb``; ``tornado_app.py`` is the same code with ``tornado`` names
and runs unmodified through ``python -m asyncweb.dropin``.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

LEGACY = Path(__file__).resolve().parents[2] / "examples" / "legacy"


def _code_without_docstring(path: Path) -> str:
    source = path.read_text()
    tree = ast.parse(source)
    first = tree.body[0]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    return "\n".join(source.splitlines()[first.end_lineno :])


def test_the_tornado_copy_is_the_renamed_app() -> None:
    renamed = _code_without_docstring(LEGACY / "app.py").replace("asyncweb", "tornado")
    assert renamed == _code_without_docstring(LEGACY / "tornado_app.py")


class Running:
    def __init__(self, args: list[str], use_uvloop: str = "1") -> None:
        env = dict(
            os.environ, PYTHONWARNINGS="default::DeprecationWarning", ASYNCWEB_UVLOOP=use_uvloop
        )
        self.proc = subprocess.Popen(
            [sys.executable, *args, "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on port"):
            self.proc.kill()
            _out, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"the app did not start: {line!r} {err}")
        self.base = f"http://127.0.0.1:{int(line.split()[-1])}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read()

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode, out, err


@pytest.fixture(
    params=[
        ("1", ["examples/legacy/app.py"]),
        ("1", ["-m", "asyncweb.dropin", "examples/legacy/tornado_app.py"]),
        ("0", ["-m", "asyncweb.dropin", "examples/legacy/tornado_app.py"]),
    ],
    ids=["renamed", "dropin", "dropin-asyncio-loop"],
)
def legacy_app(request: pytest.FixtureRequest) -> Iterator[Running]:
    use_uvloop, arguments = request.param
    root = LEGACY.parent.parent
    args = [str(root / a) if a.startswith("examples") else a for a in arguments]
    app = Running(args, use_uvloop)
    try:
        yield app
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.communicate()


def test_legacy_app_serves_every_callback_style(legacy_app: Running) -> None:
    assert legacy_app.get("/") == (200, b"Hello from the callback era")
    status, body = legacy_app.get("/delayed")
    assert (status, json.loads(body)) == (200, {"word": "late"})
    status, body = legacy_app.get("/upper?text=shout")
    assert (status, json.loads(body)) == (200, {"answer": "SHOUT"})
    status, body = legacy_app.get("/engine")
    assert (status, json.loads(body)) == (200, {"answer": "ENGINE"})
    # The PeriodicCallback (every 20 ms) keeps ticking.
    first = json.loads(legacy_app.get("/ticks")[1])["ticks"]
    deadline = time.monotonic() + 20  # a hang guard: it ticks every 20 ms
    while json.loads(legacy_app.get("/ticks")[1])["ticks"] <= first:
        assert time.monotonic() < deadline, "the periodic callback stopped"
        time.sleep(0.03)
    # An exception in a callback fails that request only.
    assert legacy_app.get("/fail")[0] == 500
    assert legacy_app.get("/") == (200, b"Hello from the callback era")
    returncode, out, err = legacy_app.stop()
    assert returncode == 0, err
    assert out.strip() == "stopped"
    assert "ValueError: this request fails; the server goes on" in err
    # Each legacy API announced itself once, naming its replacement.
    assert err.count("asynchronous is deprecated") == 1
    assert err.count("async_callback is deprecated") == 1


def test_tornado_names_need_the_dropin() -> None:
    """Without the drop-in, the unmodified app cannot even import (no Tornado here)."""
    result = subprocess.run(
        [sys.executable, str(LEGACY / "tornado_app.py"), "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "No module named 'tornado'" in result.stderr
