"""asyncweb.web: errors, logging, redirects, decorators and connection-close notification."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from asyncweb import gen
from asyncweb.web import (
    Application,
    ErrorHandler,
    Finish,
    HTTPError,
    RedirectHandler,
    RequestHandler,
    addslash,
    authenticated,
    removeslash,
)
from tests.support.servers import Fetch, Serve, raw_exchange


class Raising(RequestHandler):
    def get(self, kind: str) -> None:
        if kind == "http":
            raise HTTPError(403, "no access for %s", "bob")
        if kind == "reason":
            raise HTTPError(499, reason='Custom & "Quoted"')
        if kind == "markup-reason":
            raise HTTPError(499, reason="<b>Custom</b>")
        if kind == "plain":
            raise ZeroDivisionError("boom")
        if kind == "finish":
            self.set_status(401)
            self.set_header("WWW-Authenticate", "Basic")
            raise Finish("denied")
        if kind == "finish-empty":
            self.write("partial")
            raise Finish()
        if kind == "send":
            self.send_error(418, reason="Teapot")
            return
        if kind == "after-flush":
            self.write("started")
            self.flush()
            raise ValueError("too late")
        if kind == "crlf-redirect":
            self.redirect("/x\r\nSet-Cookie: a=b")

    async def post(self, kind: str) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async boom")


async def test_http_error(serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    with caplog.at_level(logging.WARNING):
        resp = await fetch(base + "/http")
    assert resp.status == 403
    assert resp.body == b"<html><title>403: Forbidden</title><body>403: Forbidden</body></html>"
    records = [r for r in caplog.records if r.name == "asyncweb.general"]
    assert records and records[0].levelno == logging.WARNING
    assert "403 GET /http (127.0.0.1): no access for bob" in records[0].getMessage()
    assert records[0].exc_info is None  # no traceback for HTTPError


async def test_custom_reason_is_escaped_in_page(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    resp = await fetch(base + "/reason")
    assert (resp.status, resp.reason) == (499, 'Custom & "Quoted"')
    assert b"499: Custom &amp; &quot;Quoted&quot;</body>" in resp.body
    # Markup never reaches the status line or the page (Tornado 6.6 substitutes "Unknown").
    resp = await fetch(base + "/markup-reason")
    assert (resp.status, resp.reason) == (499, "Unknown")
    assert resp.body == b"<html><title>499: Unknown</title><body>499: Unknown</body></html>"


async def test_unhandled_exception_is_500_and_server_survives(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    with caplog.at_level(logging.ERROR):
        resp = await fetch(base + "/plain")
        resp2 = await fetch(base + "/x", method="POST", body=b"")
    assert resp.status == 500
    assert b"500: Internal Server Error" in resp.body
    assert b"ZeroDivisionError" not in resp.body  # no traceback without serve_traceback
    assert resp2.status == 500
    errors = [r for r in caplog.records if r.name == "asyncweb.application"]
    assert len(errors) == 2 and all(r.exc_info for r in errors)
    assert "Uncaught exception GET /plain (127.0.0.1)" in errors[0].getMessage()
    # Still serving.
    assert (await fetch(base + "/send")).status == 418


def _cancelled_future() -> asyncio.Future[None]:
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    return future


class Cancelling(RequestHandler):
    """Handlers whose own code meets a CancelledError, in the ways Tornado's tests try."""

    started: asyncio.Event | None = None
    task: asyncio.Task[Any] | None = None

    def get(self, kind: str) -> Any:
        if kind == "sync":
            raise asyncio.CancelledError()
        return self.later(kind)

    async def later(self, kind: str) -> None:
        if kind == "raise":
            raise asyncio.CancelledError()
        if kind == "await":
            await _cancelled_future()
        if kind == "own-task":
            Cancelling.task = asyncio.current_task()
            assert Cancelling.started is not None
            Cancelling.started.set()
            await asyncio.get_running_loop().create_future()  # until cancelled

    @gen.coroutine
    def post(self, kind: str) -> Any:
        yield _cancelled_future()


@pytest.mark.parametrize(
    ("method", "kind"), [("GET", "sync"), ("GET", "raise"), ("GET", "await"), ("POST", "gen")]
)
async def test_a_cancelled_error_in_the_handler_is_an_uncaught_exception(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture, method: str, kind: str
) -> None:
    # As in Tornado 6.6; these requests used to get no answer at all.
    base = await serve(Application([(r"/(.*)", Cancelling)]))
    with caplog.at_level(logging.ERROR):
        resp = await fetch(f"{base}/{kind}", method=method, body=b"" if method == "POST" else None)
    assert resp.status == 500
    errors = [r.getMessage() for r in caplog.records if r.name == "asyncweb.application"]
    assert len(errors) == 1 and errors[0].startswith(f"Uncaught exception {method} /{kind}")


async def test_a_cancelled_handler_task_answers_500_quietly_and_ends_cancelled(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(Application([(r"/(.*)", Cancelling)]))
    Cancelling.started = asyncio.Event()
    with caplog.at_level(logging.ERROR):
        response = asyncio.ensure_future(fetch(base + "/own-task"))
        await asyncio.wait_for(Cancelling.started.wait(), 20)
        assert Cancelling.task is not None
        Cancelling.task.cancel()
        resp = await asyncio.wait_for(response, 20)
    assert resp.status == 500
    assert not [r for r in caplog.records if r.name == "asyncweb.application"]
    await asyncio.wait([Cancelling.task], timeout=20)
    assert Cancelling.task.cancelled()


@pytest.mark.parametrize(
    "settings", [{"serve_traceback": True}, {"debug": True, "autoreload": False}]
)
async def test_serve_traceback(serve: Serve, fetch: Fetch, settings: dict[str, Any]) -> None:
    app = Application([(r"/(.*)", Raising)], **settings)
    assert app.settings["serve_traceback"] is True
    base = await serve(app)
    resp = await fetch(base + "/plain")
    assert resp.status == 500
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert b"Traceback" in resp.body and b"ZeroDivisionError: boom" in resp.body


async def test_finish_exception(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    resp = await fetch(base + "/finish")
    assert (resp.status, resp.body) == (401, b"denied")
    assert resp.headers["WWW-Authenticate"] == "Basic"
    resp = await fetch(base + "/finish-empty")
    assert (resp.status, resp.body) == (200, b"partial")


async def test_send_error_with_reason(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    resp = await fetch(base + "/send")
    assert (resp.status, resp.reason) == (418, "Teapot")
    assert b"418: Teapot" in resp.body


async def test_error_after_headers_sent_ends_response(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    with caplog.at_level(logging.ERROR):
        out = await raw_exchange(
            base, b"GET /after-flush HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.endswith(b"7\r\nstarted\r\n0\r\n\r\n")
    assert "Error after the response head was sent" in caplog.text


async def test_redirect_with_crlf_refused(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/(.*)", Raising)]))
    resp = await fetch(base + "/crlf-redirect")
    assert resp.status == 500
    assert "Set-Cookie" not in resp.headers
    assert "Location" not in resp.headers


class CustomErrors(RequestHandler):
    def get(self) -> None:
        raise HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write({"error": status_code, "exc": type(kwargs["exc_info"][1]).__name__})


async def test_write_error_override(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", CustomErrors)]))
    resp = await fetch(base + "/")
    assert resp.status == 404
    assert resp.body == b'{"error": 404, "exc": "HTTPError"}'


class BrokenWriteError(RequestHandler):
    def get(self) -> None:
        raise ValueError("first")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        raise RuntimeError("second")


async def test_broken_write_error_still_answers(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", BrokenWriteError)]))
    resp = await fetch(base + "/")
    assert (resp.status, resp.body) == (500, b"")


class BrokenInit(RequestHandler):
    def initialize(self) -> None:
        raise RuntimeError("cannot build")


async def test_handler_constructor_failure_is_500(serve: Serve, fetch: Fetch) -> None:
    base = await serve(
        Application([("/", BrokenInit), ("/ok", ErrorHandler, {"status_code": 410})])
    )
    assert (await fetch(base + "/")).status == 500
    assert (await fetch(base + "/ok")).status == 410


async def test_default_handler_class(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [("/", CustomErrors)],
        default_handler_class=ErrorHandler,
        default_handler_args={"status_code": 410},
    )
    base = await serve(app)
    resp = await fetch(base + "/nothing-here")
    assert resp.status == 410
    assert b"410: Gone" in resp.body


# -- redirects -------------------------------------------------------------------------------


class Redirecting(RequestHandler):
    def get(self) -> None:
        kind = self.get_argument("kind")
        if kind == "temp":
            self.redirect("/target")
        elif kind == "perm":
            self.redirect("/target", permanent=True)
        elif kind == "303":
            self.redirect("/target", status=303)
        elif kind == "bad":
            self.redirect("/target", status=200)


async def test_redirect(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/", Redirecting)]))
    for kind, code in (("temp", 302), ("perm", 301), ("303", 303)):
        resp = await fetch(base + "/?kind=" + kind)
        assert resp.status == code
        assert resp.headers["Location"] == "/target"
        assert resp.body == b""
    assert (await fetch(base + "/?kind=bad")).status == 500


async def test_redirect_handler(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            (r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"}),
            (r"/tmp/(?P<name>.*)", RedirectHandler, {"url": "/n/{name}", "permanent": False}),
        ]
    )
    base = await serve(app)
    resp = await fetch(base + "/old/page?x=1&y=2")
    assert resp.status == 301
    assert resp.headers["Location"] == "/new/page?x=1&y=2"
    resp = await fetch(base + "/tmp/abc")
    assert (resp.status, resp.headers["Location"]) == (302, "/n/abc")


# -- decorators --------------------------------------------------------------------------------


class Slashes(RequestHandler):
    @removeslash
    def get(self) -> None:
        self.write("no-slash:" + self.request.path)

    @addslash
    def post(self) -> None:
        self.write("slash:" + self.request.path)

    @removeslash
    async def put(self) -> None:
        await asyncio.sleep(0)
        self.write("async put")


async def test_removeslash_addslash(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/.*", Slashes)]))
    resp = await fetch(base + "/dir/?q=1")
    assert (resp.status, resp.headers["Location"]) == (301, "/dir?q=1")
    assert (await fetch(base + "/dir")).body == b"no-slash:/dir"
    assert (await fetch(base + "/")).body == b"no-slash:/"  # nothing to strip to
    assert (await fetch(base + "/dir/", method="PUT", body=b"")).status == 404
    assert (await fetch(base + "/dir", method="PUT", body=b"")).body == b"async put"
    assert (await fetch(base + "/dir", method="POST", body=b"")).status == 404
    assert (await fetch(base + "/dir/", method="POST", body=b"")).body == b"slash:/dir/"


class AddSlashGet(RequestHandler):
    @addslash
    def get(self) -> None:
        self.write("ok")


async def test_addslash_get_redirects(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([(r"/.*", AddSlashGet)]))
    resp = await fetch(base + "/dir?q=1")
    assert (resp.status, resp.headers["Location"]) == (301, "/dir/?q=1")
    assert (await fetch(base + "/dir/", method="HEAD")).status == 405


class Private(RequestHandler):
    def get_current_user(self) -> Any:
        return self.get_cookie("user")

    @authenticated
    def get(self) -> None:
        self.write("hello " + self.current_user)

    @authenticated
    def post(self) -> None:
        self.write("posted")


class Assigned(RequestHandler):
    def prepare(self) -> None:
        self.current_user = "assigned"

    def get(self) -> None:
        self.write(self.current_user)


async def test_authenticated_and_current_user(serve: Serve, fetch: Fetch) -> None:
    app = Application([("/private", Private), ("/assigned", Assigned)], login_url="/login")
    base = await serve(app)
    resp = await fetch(base + "/private?a=1")
    assert resp.status == 302
    assert resp.headers["Location"] == "/login?next=%2Fprivate%3Fa%3D1"
    assert (await fetch(base + "/private", method="POST", body=b"")).status == 403
    resp = await fetch(base + "/private", headers={"Cookie": "user=ann"})
    assert resp.body == b"hello ann"
    assert (await fetch(base + "/assigned")).body == b"assigned"


async def test_authenticated_without_login_url_is_500(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/private", Private)]))
    assert (await fetch(base + "/private")).status == 500


# -- connection close ----------------------------------------------------------------------


class LongPoll(RequestHandler):
    closed: asyncio.Event
    waiting: asyncio.Event

    async def get(self) -> None:
        LongPoll.waiting.set()
        await asyncio.sleep(10)

    def on_connection_close(self) -> None:
        LongPoll.closed.set()


async def test_on_connection_close(serve: Serve) -> None:
    LongPoll.closed = asyncio.Event()
    LongPoll.waiting = asyncio.Event()
    base = await serve(Application([("/", LongPoll)]))
    host, port = base.rsplit("//", 1)[1].split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(LongPoll.waiting.wait(), 20)
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(LongPoll.closed.wait(), 20)


class CloseAfterFinish(RequestHandler):
    calls: list[str] = []

    def get(self) -> None:
        self.write("done")

    def on_connection_close(self) -> None:
        CloseAfterFinish.calls.append("closed")


async def test_no_close_callback_after_finish(serve: Serve) -> None:
    base = await serve(Application([("/", CloseAfterFinish)]))
    host, port = base.rsplit("//", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    out = await asyncio.wait_for(reader.readuntil(b"done"), 20)
    assert out.startswith(b"HTTP/1.1 200 ")
    # The keep-alive connection closed afterwards: the finished handler is not told.
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.05)
    assert CloseAfterFinish.calls == []


# -- logging -----------------------------------------------------------------------------------


async def test_access_log_levels(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(Application([(r"/(.*)", Raising), ("/", Redirecting)]))
    with caplog.at_level(logging.INFO, logger="asyncweb.access"):
        await fetch(base + "/send")
        await fetch(base + "/plain")
        await fetch(base + "/finish")
    access = [r for r in caplog.records if r.name == "asyncweb.access"]
    assert [r.levelno for r in access] == [logging.WARNING, logging.ERROR, logging.WARNING]
    assert access[0].getMessage().startswith("418 GET /send (127.0.0.1) ")
    assert access[0].getMessage().endswith("ms")


async def test_access_log_info_for_success(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(Application([("/", Redirecting)]))
    with caplog.at_level(logging.INFO, logger="asyncweb.access"):
        await fetch(base + "/?kind=temp")
    access = [r for r in caplog.records if r.name == "asyncweb.access"]
    assert access[0].levelno == logging.INFO
    assert access[0].getMessage().startswith("302 GET /?kind=temp (127.0.0.1) ")


async def test_log_function_setting(serve: Serve, fetch: Fetch) -> None:
    seen: list[tuple[int, str]] = []
    app = Application(
        [("/", Redirecting)],
        log_function=lambda h: seen.append((h.get_status(), h.request.uri)),
    )
    base = await serve(app)
    await fetch(base + "/?kind=perm")
    assert seen == [(301, "/?kind=perm")]


def test_log_request_skips_work_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fake:
        def get_status(self) -> int:
            return 200

        def _request_summary(self) -> str:
            raise AssertionError("summary built although the level is disabled")

    logger = logging.getLogger("asyncweb.access")
    monkeypatch.setattr(logger, "disabled", False)
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        Application().log_request(Fake())  # type: ignore[arg-type]
    finally:
        logger.setLevel(old)
