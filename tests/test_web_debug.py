"""asyncweb.web debug mode: tracebacks only in debug, custom 404 pages through write_error,
and ``Application(debug=True)`` starting the autoreloader in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from asyncweb.web import Application, HTTPError, RequestHandler
from tests.conftest import Fetch, Serve


class Broken(RequestHandler):
    def get(self) -> None:
        raise ValueError("secret internals <b>")


class PageNotFound(RequestHandler):
    """A site's 404 page: every unknown URL, rendered by write_error from a template."""

    def prepare(self) -> None:
        raise HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.render("error.html", code=status_code, path=self.request.path)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    (tmp_path / "error.html").write_text(
        "<html><head></head><body><h1>{{ code }}</h1><p>No page at {{ path }}</p></body></html>"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("settings", "shows_traceback"),
    [
        ({}, False),
        ({"debug": False}, False),
        ({"debug": True, "autoreload": False}, True),
        ({"debug": True, "autoreload": False, "serve_traceback": False}, False),
    ],
)
async def test_traceback_only_in_debug(
    serve: Serve, fetch: Fetch, settings: dict[str, Any], shows_traceback: bool
) -> None:
    base = await serve(Application([("/broken", Broken)], **settings))
    response = await fetch(base + "/broken")
    assert response.status == 500
    if shows_traceback:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "Traceback (most recent call last)" in response.text
        assert "ValueError: secret internals <b>" in response.text
    else:
        assert "secret internals" not in response.text
        assert "Traceback" not in response.text
        assert "500: Internal Server Error" in response.text


async def test_default_handler_renders_404_page(
    serve: Serve, fetch: Fetch, templates: Path
) -> None:
    app = Application(
        [("/broken", Broken)],
        default_handler_class=PageNotFound,
        template_path=str(templates),
    )
    base = await serve(app)
    for method in ("GET", "POST", "DELETE"):
        body = b"" if method == "POST" else None
        response = await fetch(base + "/no/such<page>", method=method, body=body)
        assert response.status == 404
        assert "<h1>404</h1>" in response.text
        assert "No page at /no/such&lt;page&gt;" in response.text
    assert (await fetch(base + "/broken")).status == 500


SCRIPT = """
import os, sys
from asyncweb import autoreload
from asyncweb.ioloop import IOLoop
from asyncweb.web import Application

log = sys.argv[1]
with open(log, "a") as f:
    f.write(f"run {os.getpid()}\\n")
autoreload.watch(os.path.join(os.path.dirname(log), "watched.txt"))


def create():
    Application([], debug=True)  # debug implies autoreload: the watcher starts here


loop = IOLoop.current()
loop.add_callback(create)
loop.call_later(30, loop.stop)  # never outlive the test
loop.start()
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_debug_application_starts_autoreload(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    watched = tmp_path / "watched.txt"
    watched.write_text("a")
    log = tmp_path / "log.txt"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    proc = subprocess.Popen([sys.executable, str(script), str(log)], env=env)
    try:
        deadline = time.monotonic() + 20
        while not _lines(log):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        # Keep moving the watched file's mtime forward until the process re-runs itself.
        bump = 0
        while len(_lines(log)) < 2:
            assert proc.poll() is None, "the app exited instead of reloading"
            assert time.monotonic() < deadline, _lines(log)
            bump += 10
            os.utime(watched, (time.time(), time.time() + bump))
            time.sleep(0.1)
        first, second = _lines(log)[:2]
        assert first.split()[1] == second.split()[1]  # execv: same process, fresh run
    finally:
        proc.kill()
        proc.wait()
