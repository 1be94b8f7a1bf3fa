"""asyncweb.testing: Tornado-style test cases, run by pytest and by unittest itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import unittest
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncweb import gen, web
from asyncweb.ioloop import IOLoop
from asyncweb.testing import (
    AsyncHTTPSTestCase,
    AsyncHTTPTestCase,
    AsyncTestCase,
    ExpectLog,
    bind_unused_port,
    gen_test,
    get_async_test_timeout,
    setup_with_context_manager,
)
from asyncweb.websocket import WebSocketHandler, websocket_connect


class HelloHandler(web.RequestHandler):
    def get(self) -> None:
        self.write({"hello": self.get_argument("name", "world")})

    def post(self) -> None:
        self.write(self.request.body.upper())


class BrokenHandler(web.RequestHandler):
    def get(self) -> None:
        raise ValueError("handler broke")


def make_app() -> web.Application:
    return web.Application([("/", HelloHandler), ("/broken", BrokenHandler)])


# -- test cases collected and run by pytest ------------------------------------------------------


class CallbackStyleTest(AsyncTestCase):
    def test_stop_and_wait_return_the_stop_argument(self) -> None:
        self.io_loop.call_later(0.01, self.stop, "from a timer")
        self.assertEqual(self.wait(), "from a timer")
        self.io_loop.add_callback(lambda: self.stop(a=1, b=2))
        self.assertEqual(self.wait(), {"a": 1, "b": 2})

    def test_each_test_has_its_own_current_loop(self) -> None:
        self.assertIs(IOLoop.current(), self.io_loop)
        self.assertFalse(self.io_loop.asyncio_loop.is_closed())

    def test_wait_with_a_condition(self) -> None:
        count = [0]

        def bump() -> None:
            count[0] += 1
            self.stop()
            if count[0] < 3:
                self.io_loop.call_later(0.001, bump)

        self.io_loop.add_callback(bump)
        self.wait(condition=lambda: count[0] >= 3)
        self.assertEqual(count[0], 3)

    def test_stop_from_another_thread(self) -> None:
        timer = threading.Timer(0.01, lambda: self.io_loop.add_callback(self.stop, "thread"))
        timer.start()
        self.assertEqual(self.wait(), "thread")
        timer.join()


class CoroutineStyleTest(AsyncTestCase):
    @gen_test
    def test_generator(self) -> Generator[Any, Any, None]:
        value = yield gen.sleep(0.001)
        self.assertIsNone(value)
        results = yield [asyncio.sleep(0, "a"), gen.sleep(0)]
        self.assertEqual(results, ["a", None])

    @gen_test(timeout=30)
    async def test_async_def(self) -> None:
        await asyncio.sleep(0.001)
        self.assertIs(IOLoop.current(), self.io_loop)

    @gen_test
    async def test_leftover_tasks_are_cancelled_at_teardown(self) -> None:
        self.leftover = asyncio.ensure_future(asyncio.sleep(60))

    def tearDown(self) -> None:
        leftover = getattr(self, "leftover", None)
        super().tearDown()
        if leftover is not None:
            assert leftover.cancelled()


class HTTPTest(AsyncHTTPTestCase):
    def get_app(self) -> web.Application:
        return make_app()

    def test_fetch_relative_and_absolute(self) -> None:
        response = self.fetch("/?name=test")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b'{"hello": "test"}')
        response = self.fetch(self.get_url("/"), method="POST", body=b"shout")
        self.assertEqual(response.body, b"SHOUT")
        self.assertTrue(self.get_url("/x").startswith("http://127.0.0.1:"))
        self.assertEqual(self.get_url("/x"), f"http://127.0.0.1:{self.get_http_port()}/x")

    def test_errors_come_back_as_responses(self) -> None:
        with ExpectLog("asyncweb.application", "Uncaught exception"):
            response = self.fetch("/broken")
        self.assertEqual(response.code, 500)
        self.assertEqual(self.fetch("/missing").code, 404)

    @gen_test
    async def test_http_client_in_a_coroutine(self) -> None:
        response = await self.http_client.fetch(self.get_url("/?name=async"))
        self.assertEqual(response.code, 200)
        self.assertIn(b"async", response.body)


class EchoSocket(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


class WebSocketCallbacksTest(AsyncHTTPTestCase):
    """Callback-era client code: read_message(callback) called between IOLoop runs."""

    def get_app(self) -> web.Application:
        return web.Application([("/echo", EchoSocket)])

    def test_read_message_with_a_callback_outside_the_loop(self) -> None:
        url = f"ws://127.0.0.1:{self.get_http_port()}/echo"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # callback= is deprecated
            websocket_connect(url, callback=self.stop)
            ws = self.wait().result()
            ws.write_message("hello")
            ws.read_message(self.stop)  # no loop is running here
            self.assertEqual(self.wait().result(), "hello")
        ws.close()


class HTTPSTest(AsyncHTTPSTestCase):
    def get_app(self) -> web.Application:
        return make_app()

    def test_fetch_over_tls(self) -> None:
        response = self.fetch("/")
        self.assertEqual(response.code, 200)
        self.assertTrue(self.get_url("/").startswith("https://127.0.0.1:"))
        self.assertEqual(response.effective_url, self.get_url("/"))


class HTTPSWithDefaultOptionsTest(AsyncHTTPSTestCase):
    """Tornado's idiom: extend the test certificate's files with settings of one's own."""

    def get_app(self) -> web.Application:
        return make_app()

    def get_ssl_options(self) -> dict[str, Any]:
        return dict(ssl_version=ssl.PROTOCOL_TLS_SERVER, **self.default_ssl_options())

    def test_fetch_over_tls(self) -> None:
        options = self.default_ssl_options()
        self.assertTrue(os.path.isfile(options["certfile"]))
        self.assertTrue(os.path.isfile(options["keyfile"]))
        self.assertEqual(self.fetch("/?name=tls").body, b'{"hello": "tls"}')


class PlainMethodGenTest(AsyncTestCase):
    """@gen_test on a plain method, as Tornado allows: a future it returns is awaited."""

    @gen_test
    def test_plain_method_returning_a_future(self) -> Any:
        self.ran = True
        return gen.sleep(0.001)

    @gen_test
    def test_plain_method(self) -> None:
        self.ran = True

    def tearDown(self) -> None:
        super().tearDown()
        assert self.ran


def test_setup_with_context_manager() -> None:
    events: list[str] = []

    @contextlib.contextmanager
    def resource() -> Iterator[str]:
        events.append("enter")
        yield "value"
        events.append("exit")

    class Uses(unittest.TestCase):
        def setUp(self) -> None:
            self.value = setup_with_context_manager(self, resource())

        def test_it(self) -> None:
            events.append(f"test {self.value}")

    result = run_case(Uses, "test_it")
    assert result.wasSuccessful()
    assert events == ["enter", "test value", "exit"]


# -- behaviour that needs a failing inner test ----------------------------------------------------


def run_case(case: type[unittest.TestCase], name: str) -> unittest.TestResult:
    result = unittest.TestResult()
    case(name).run(result)
    return result


def test_wait_times_out_with_a_failure() -> None:
    class Slow(AsyncTestCase):
        def test_never_stopped(self) -> None:
            self.wait(timeout=0.05)

    result = run_case(Slow, "test_never_stopped")
    assert len(result.failures) == 1
    assert "timed out after 0.05 seconds" in result.failures[0][1]


def test_gen_test_timeout() -> None:
    class Slow(AsyncTestCase):
        @gen_test(timeout=0.05)
        async def test_sleeps(self) -> None:
            await asyncio.sleep(5)

    result = run_case(Slow, "test_sleeps")
    assert len(result.errors) == 1 and "TimeoutError" in result.errors[0][1]


def test_undecorated_generator_tests_fail_instead_of_passing() -> None:
    class Forgot(AsyncTestCase):
        def test_generator(self) -> Generator[Any, Any, None]:
            yield gen.sleep(0)

        async def test_coroutine(self) -> None:
            await asyncio.sleep(0)

    for name in ("test_generator", "test_coroutine"):
        result = run_case(Forgot, name)
        assert len(result.errors) == 1 and "gen_test" in result.errors[0][1]


def test_expect_log() -> None:
    logger = logging.getLogger("asyncweb.test.expectlog")
    with ExpectLog(logger, "expected .*") as expectation:
        logger.error("expected message")
        logger.error("expected again")
    assert expectation.matched == 2 and expectation.matched_any
    missing = pytest.raises(Exception, match="did not get expected log message")
    with missing, ExpectLog(logger, "never"):
        pass
    with ExpectLog(logger, "never", required=False):
        pass
    # With a level, the logger is opened up to it and only that level matches.
    logger.setLevel(logging.WARNING)
    try:
        with ExpectLog("asyncweb.test.expectlog", "debug detail", level=logging.DEBUG) as debug:
            logger.debug("debug detail")
        assert debug.matched == 1
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(logging.NOTSET)
    # Errors in the block propagate without the "did not get" complaint.
    with pytest.raises(KeyError), ExpectLog(logger, "never"):
        raise KeyError("inner")


def test_bind_unused_port_and_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    sock, port = bind_unused_port()
    try:
        assert sock.getsockname() == ("127.0.0.1", port)
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.close()
    finally:
        sock.close()
    monkeypatch.delenv("ASYNC_TEST_TIMEOUT", raising=False)
    assert get_async_test_timeout() == 5
    monkeypatch.setenv("ASYNC_TEST_TIMEOUT", "0.5")
    assert get_async_test_timeout() == 0.5
    monkeypatch.setenv("ASYNC_TEST_TIMEOUT", "soon")
    assert get_async_test_timeout() == 5


def test_main_runs_a_test_module(tmp_path: Path) -> None:
    (tmp_path / "my_tests.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            from asyncweb.testing import AsyncTestCase, gen_test, main

            class T(AsyncTestCase):
                @gen_test
                async def test_ok(self):
                    await asyncio.sleep(0)

            if __name__ == "__main__":
                main()
            """
        )
    )
    env = dict(os.environ, ASYNC_TEST_TIMEOUT="10")
    result = subprocess.run(
        [sys.executable, "my_tests.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 1 test" in result.stderr and "OK" in result.stderr
