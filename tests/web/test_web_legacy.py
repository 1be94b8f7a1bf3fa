"""asyncweb.web legacy APIs: ``@asynchronous`` and ``RequestHandler.async_callback`` with real
timers over a real server."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

import pytest

from asyncweb import web
from asyncweb.ioloop import IOLoop
from asyncweb.web import Application, RequestHandler
from tests.support.servers import Fetch, Serve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

    class TimerHandler(RequestHandler):
        @web.asynchronous
        def get(self) -> None:
            # Returns at once; the response is written by a timer 50 ms later.
            IOLoop.current().add_timeout(
                IOLoop.current().time() + 0.05, self.async_callback(self._done, "late")
            )

        def _done(self, word: str) -> None:
            self.finish(f"finished {word}")

    class FailingCallbackHandler(RequestHandler):
        @web.asynchronous
        def get(self) -> None:
            asyncio.get_running_loop().call_later(0.02, self.async_callback(self._explode))

        def _explode(self) -> None:
            raise ValueError("callback failed")

    class CoroutineHandler(RequestHandler):
        @web.asynchronous
        async def get(self) -> None:
            await asyncio.sleep(0.02)
            self.write("coroutine done")  # finished for us, as Tornado 5 did

    class CoroutineFinishesItself(RequestHandler):
        @web.asynchronous
        async def get(self) -> None:
            await asyncio.sleep(0.01)
            self.finish("explicit")

    class NeverFinished(RequestHandler):
        @web.asynchronous
        def get(self) -> None:
            self.write("partial")  # no finish(): the client must keep waiting


def make_app() -> Application:
    return Application(
        [
            ("/timer", TimerHandler),
            ("/fail", FailingCallbackHandler),
            ("/coro", CoroutineHandler),
            ("/coro-finish", CoroutineFinishesItself),
            ("/open", NeverFinished),
        ]
    )


async def test_asynchronous_waits_for_finish_from_a_timer(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    response = await fetch(base + "/timer")
    assert response.status == 200
    assert response.text == "finished late"


async def test_async_callback_exception_is_a_500_for_that_request_only(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(make_app())
    with caplog.at_level(logging.ERROR):
        failed, ok = await asyncio.gather(fetch(base + "/fail"), fetch(base + "/timer"))
    assert failed.status == 500
    assert ok.status == 200 and ok.text == "finished late"
    assert any("callback failed" in (r.exc_text or "") for r in caplog.records)
    # The server and loop survived: a later request is served normally.
    again = await fetch(base + "/timer")
    assert again.text == "finished late"


async def test_asynchronous_coroutine_is_finished_when_it_completes(
    serve: Serve, fetch: Fetch
) -> None:
    base = await serve(make_app())
    assert (await fetch(base + "/coro")).text == "coroutine done"
    assert (await fetch(base + "/coro-finish")).text == "explicit"


async def test_asynchronous_keeps_the_response_open(serve: Serve) -> None:
    base = await serve(make_app())
    host, port = base.rsplit("/", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
    finally:
        writer.close()
        await writer.wait_closed()


def test_legacy_apis_warn_once_naming_the_replacement() -> None:
    from asyncweb.web import handler as handler_module

    handler_module._legacy_warned.clear()
    with pytest.warns(DeprecationWarning, match="async def"):

        @web.asynchronous
        def get(self: Any) -> None:
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @web.asynchronous
        def get2(self: Any) -> None:  # a second use is silent
            pass


async def test_async_callback_warns_once(serve: Serve, fetch: Fetch) -> None:
    from asyncweb.web import handler as handler_module

    handler_module._legacy_warned.discard("RequestHandler.async_callback")
    with pytest.warns(DeprecationWarning, match="RequestHandler.async_callback"):
        base = await serve(make_app())
        assert (await fetch(base + "/timer")).status == 200
    assert "RequestHandler.async_callback" in handler_module._legacy_warned
