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
from tests.support.servers import Fetch, Serve


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


class Leaky(RequestHandler):
    """Fails with a local variable worth seeing (and escaping) on the debug page."""

    def get(self) -> None:
        order_note = "<script>alert('x')</script>"
        self.compute(order_note)

    def compute(self, note: str) -> None:
        count = len(note)
        raise KeyError(f"no price for <{count}>")


class Refusing(RequestHandler):
    def get(self) -> None:
        raise HTTPError(403, "not for you")


BROWSER = {
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Cookie": "session=s3cr3t-cookie",
    "Authorization": "Bearer s3cr3t-token",
    "X-Trace": "trace <42>",
}


async def test_debug_page_in_html_for_browsers(serve: Serve, fetch: Fetch) -> None:
    app = Application([("/leaky", Leaky)], debug=True, autoreload=False)
    base = await serve(app)
    response = await fetch(base + "/leaky?q=<i>", headers=BROWSER)
    assert response.status == 500
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<!DOCTYPE html>" in page and "<title>500: Internal Server Error</title>" in page
    # The exception, escaped.
    assert "KeyError: &#x27;no price for &lt;27&gt;&#x27;" in page
    assert "<27>" not in page
    # Frames: the application's with their locals (escaped), asyncweb's without.
    assert f"{__file__}:" in page and "<b>compute</b>" in page and "<b>get</b>" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "<td>count</td><td>27</td>" in page
    assert "asyncweb/web/handler.py:" in page
    handler_frame = page.split("asyncweb/web/handler.py:")[1].split('<div class="frame')[0]
    assert "<table>" not in handler_frame
    # The request: method, URI, headers, but no credentials.
    assert "<td>Method</td><td>GET</td>" in page
    assert "<td>URI</td><td>/leaky?q=&lt;i&gt;</td>" in page
    assert "<td>X-Trace</td><td>trace &lt;42&gt;</td>" in page
    assert "<td>Cookie</td><td>(hidden)</td>" in page
    assert "<td>Authorization</td><td>(hidden)</td>" in page
    assert "s3cr3t" not in page
    # The plain traceback too, for copying.
    assert "Traceback (most recent call last)" in page


async def test_debug_page_for_other_clients_is_text(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/leaky", Leaky)], debug=True, autoreload=False))
    response = await fetch(base + "/leaky", headers={"Accept": "application/json"})
    assert response.status == 500
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "KeyError: 'no price for <27>'" in response.text


@pytest.mark.parametrize("headers", [BROWSER, {}])
@pytest.mark.parametrize("settings", [{"debug": True, "autoreload": False}, {}])
async def test_http_errors_have_no_traceback(
    serve: Serve, fetch: Fetch, headers: dict[str, str], settings: dict[str, Any]
) -> None:
    """A 404 or a raised HTTPError is an answer, not a bug: the plain page in debug too."""
    base = await serve(Application([("/refuse", Refusing)], **settings))
    for path, status, reason in (("/nowhere", 404, "Not Found"), ("/refuse", 403, "Forbidden")):
        response = await fetch(base + path, headers=headers)
        assert response.status == status
        assert response.text == (
            f"<html><title>{status}: {reason}</title><body>{status}: {reason}</body></html>"
        )


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
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
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
