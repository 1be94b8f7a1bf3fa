"""The pytest plugin, run by pytest itself (pytester) in a fresh process per case."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

APP = """
import asyncio
import pytest
from asyncweb import web
from asyncweb.websocket import WebSocketHandler


class Hello(web.RequestHandler):
    def get(self):
        self.write("hello " + self.get_argument("name", "world"))

    def post(self):
        self.set_status(201)
        self.write(self.request.body)


class Missing(web.RequestHandler):
    def get(self):
        raise web.HTTPError(404)


class Echo(WebSocketHandler):
    def on_message(self, message):
        self.write_message("echo: " + message)


@pytest.fixture
def app():
    return web.Application([("/", Hello), ("/missing", Missing), ("/ws", Echo)])
"""


def run(pytester: pytest.Pytester, body: str, *args: str, mode: str = "auto") -> pytest.RunResult:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_app=APP + body)
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::ResourceWarning", *args
    )


def test_fixtures_against_a_real_server(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
async def test_fetch(fetch, base_url, http_server_port):
    assert base_url == f"http://127.0.0.1:{http_server_port}"
    response = await fetch("/?name=ann")
    assert response.code == 200 and response.body == b"hello ann"
    created = await fetch("/", method="POST", body="data")
    assert created.code == 201 and created.body == b"data"
    missing = await fetch("missing")
    assert missing.code == 404


async def test_http_client_and_server(http_server, http_client, base_url):
    assert http_server is not None
    response = await http_client.fetch(base_url + "/")
    assert response.body == b"hello world"


async def test_ws_connect(ws_connect):
    ws = await ws_connect("/ws")
    await ws.write_message("hi")
    assert await asyncio.wait_for(ws.read_message(), 20) == "echo: hi"
""",
    )
    result.assert_outcomes(passed=3)


def test_strict_mode_and_server_settings(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
@pytest.fixture
def http_server_settings():
    return {"max_body_size": 10}


@pytest.mark.asyncio
async def test_limit(fetch):
    response = await fetch("/", method="POST", body="x" * 100)
    assert response.code == 413
""",
        mode="strict",
    )
    result.assert_outcomes(passed=1)


def test_missing_app_fixture_is_explained(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(
        test_noapp="""
async def test_needs_app(fetch):
    await fetch("/")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*need an `app` fixture returning your asyncweb Application*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_plugin_is_registered_and_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
def test_plain(request):
    assert request.config.pluginmanager.has_plugin("asyncweb")
"""
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(
        test_plain="""
def test_plain(request):
    assert not request.config.pluginmanager.has_plugin("asyncweb")
"""
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncweb").assert_outcomes(
        passed=1
    )


def test_plugin_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, asyncweb.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('asyncweb')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "['asyncweb', 'asyncweb.pytest_plugin']"
