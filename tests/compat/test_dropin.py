"""asyncweb.dropin: ``tornado`` imports resolve to asyncweb's own module objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncweb import dropin


@pytest.fixture
def installed() -> Iterator[None]:
    assert "tornado" not in sys.modules
    dropin.install()
    dropin.install()  # idempotent
    try:
        yield
    finally:
        dropin.uninstall()
    assert not dropin.installed()
    assert not [name for name in sys.modules if name.split(".")[0] == "tornado"]


def test_tornado_modules_are_asyncweb_modules(installed: None) -> None:
    import tornado  # type: ignore[import-not-found]
    import tornado.gen  # type: ignore[import-not-found]
    import tornado.web  # type: ignore[import-not-found]
    from tornado.ioloop import IOLoop  # type: ignore[import-not-found]

    import asyncweb
    import asyncweb.gen
    import asyncweb.ioloop
    import asyncweb.web

    assert dropin.installed()
    assert tornado.web is asyncweb.web
    assert tornado.gen is asyncweb.gen
    assert IOLoop is asyncweb.ioloop.IOLoop
    # tornado is a package of its own only for its version: the API level implemented.
    assert tornado is not asyncweb
    assert tornado.__file__ == asyncweb.__file__
    assert (tornado.version, tornado.version_info) == ("6.6.1", (6, 6, 1, 0))
    assert (asyncweb.version, asyncweb.version_info) == ("0.1.0", (0, 1, 0, 0))
    assert tornado.SUBMODULES is asyncweb.SUBMODULES
    # The real modules keep their own names and specs.
    assert asyncweb.web.__name__ == "asyncweb.web"
    assert asyncweb.web.__spec__ is not None and asyncweb.web.__spec__.name == "asyncweb.web"
    assert sys.modules["tornado.web"] is asyncweb.web


LAZY_SCRIPT = """
import sys
import {package}
assert "{package}.websocket" not in sys.modules, "imported too early"
assert "websocket" in dir({package})
handler = {package}.websocket.WebSocketHandler
assert sys.modules["{package}.websocket"] is {package}.websocket
assert {package}.httpserver.HTTPServer and {package}.platform.__name__ == "asyncweb.platform"
try:
    {package}.no_such_module
except AttributeError as exc:
    print("AttributeError", exc)
print({package}.version_info >= (6, 1), handler.__module__)
"""


@pytest.mark.parametrize("package", ["tornado", "asyncweb"])
def test_submodules_load_on_attribute_access(package: str, tmp_path: Path) -> None:
    # A fresh process, so nothing has imported the submodules before.
    script = tmp_path / "lazy.py"
    script.write_text(LAZY_SCRIPT.format(package=package))
    proc = run([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"AttributeError module '{package}' has no attribute 'no_such_module'"
    # Version checks in Tornado software see Tornado's API level; asyncweb its own release.
    assert lines[1] == f"{package == 'tornado'} asyncweb.websocket"


def test_missing_tornado_modules_say_what_is_missing(installed: None) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"tornado\.curl_httpclient.*asyncweb"):
        import tornado.curl_httpclient  # type: ignore[import-not-found]  # noqa: F401


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncweb.dropin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


TORNADO6_SCRIPT = textwrap.dedent(
    """
    import sys

    import tornado.httpclient
    import tornado.ioloop
    import tornado.netutil
    import tornado.web
    from tornado.httpserver import HTTPServer


    class Hello(tornado.web.RequestHandler):
        async def get(self, name):
            self.write({"hello": name, "argv": sys.argv[1:]})


    async def main():
        app = tornado.web.Application([(r"/hello/(\\w+)", Hello)])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(f"http://127.0.0.1:{port}/hello/tornado")
        print(__name__, response.code, response.body.decode())
        server.stop()


    if __name__ == "__main__":
        tornado.ioloop.IOLoop.current().run_sync(main)
    """
)


def test_unmodified_tornado6_script_runs(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("VALUE = 'imported next to the script'\n")
    script = tmp_path / "server.py"
    script.write_text("import helper_mod\n" + TORNADO6_SCRIPT)
    result = run([str(script), "--flag", "x"], cwd=Path("/"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ('__main__ 200 {"hello": "tornado", "argv": ["--flag", "x"]}')


def test_module_mode_and_usage(tmp_path: Path) -> None:
    (tmp_path / "tornado_style_module.py").write_text(
        "import sys, tornado.escape\nprint(__name__, tornado.escape.json_encode(sys.argv[1:]))\n"
    )
    result = run(["-m", "tornado_style_module", "a"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '__main__ ["a"]'
    usage = run([], cwd=tmp_path)
    assert usage.returncode == 2 and "usage" in usage.stderr
    assert run(["-m"], cwd=tmp_path).returncode == 2
    assert run(["--help"], cwd=tmp_path).returncode == 0
