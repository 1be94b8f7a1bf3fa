"""Tornado-compatible unit testing: ``AsyncTestCase``, ``AsyncHTTPTestCase``, ``gen_test``.

Each test gets its own IOLoop (a new asyncio loop), made current for the test and closed
after it. ``stop()``/``wait()`` run the loop until a callback says the test can go on;
``@gen_test`` runs a generator or ``async def`` test method on the loop with a timeout
(``ASYNC_TEST_TIMEOUT`` seconds by default, else 5). ``AsyncHTTPTestCase`` serves
``get_app()`` on a free loopback port and fetches from it with
:class:`asyncweb.httpclient.AsyncHTTPClient`.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import logging
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import types
import unittest
from collections.abc import Callable
from typing import Any, TypeVar, overload

from asyncweb import gen, netutil
from asyncweb.httpclient import AsyncHTTPClient, HTTPResponse
from asyncweb.httpserver import HTTPServer
from asyncweb.ioloop import IOLoop, new_event_loop
from asyncweb.log import app_log

__all__ = [
    "AsyncHTTPSTestCase",
    "AsyncHTTPTestCase",
    "AsyncTestCase",
    "ExpectLog",
    "bind_unused_port",
    "gen_test",
    "get_async_test_timeout",
    "main",
    "setup_with_context_manager",
]

_T = TypeVar("_T")


def bind_unused_port(
    reuse_port: bool = False, address: str = "127.0.0.1"
) -> tuple[socket.socket, int]:
    """A listening socket on a free port of ``address``, and that port."""
    sock = netutil.bind_sockets(0, address, family=socket.AF_INET, reuse_port=reuse_port)[0]
    port: int = sock.getsockname()[1]
    return sock, port


def get_async_test_timeout() -> float:
    """``ASYNC_TEST_TIMEOUT`` from the environment (seconds), else 5."""
    value = os.environ.get("ASYNC_TEST_TIMEOUT")
    if value:
        try:
            return float(value)
        except ValueError:
            pass
    return 5.0


class _TestMethodWrapper:
    """Fails a test method that returns a generator or coroutine without ``@gen_test``:
    its body would otherwise never run and the test would pass vacuously."""

    def __init__(self, orig_method: Callable[..., Any]) -> None:
        self.orig_method = orig_method
        self.__wrapped__ = orig_method

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        result = self.orig_method(*args, **kwargs)
        if isinstance(result, types.GeneratorType) or inspect.iscoroutine(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(
                "Generator and coroutine test methods should be decorated with "
                "asyncweb.testing.gen_test"
            )
        if result is not None:
            raise ValueError(f"Return value from test method ignored: {result!r}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.orig_method, name)


class AsyncTestCase(unittest.TestCase):
    """A ``unittest.TestCase`` with its own IOLoop in ``self.io_loop``.

    Write callback tests with ``stop``/``wait``::

        self.io_loop.call_later(0.01, self.stop, "done")
        self.assertEqual(self.wait(), "done")

    or coroutine tests with ``@gen_test``.
    """

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self.__stopped = False
        self.__running = False
        self.__failure: Any = None
        self.__stop_args: Any = None
        self.__timeout: Any = None
        # Without this, a generator test method would silently do nothing.
        method = getattr(self, methodName, None)
        if method is not None:
            setattr(self, methodName, _TestMethodWrapper(method))

    def setUp(self) -> None:
        super().setUp()
        self.io_loop = self.get_new_ioloop()
        self.io_loop.make_current()

    def tearDown(self) -> None:
        loop = self.io_loop.asyncio_loop
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending and not loop.is_closed():

            async def finish_cancelled() -> None:
                await asyncio.wait(pending)

            self.io_loop.run_sync(finish_cancelled)
            for task in pending:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        IOLoop.clear_current()
        self.io_loop.close(all_fds=True)
        super().tearDown()
        # A failure recorded when no wait() was there to raise it.
        self.__rethrow()

    def get_new_ioloop(self) -> IOLoop:
        """The IOLoop for this test: a new one on a new asyncio loop."""
        return IOLoop(new_event_loop())

    def _handle_exception(self, typ: Any, value: BaseException, tb: Any) -> bool:
        if self.__failure is None:
            self.__failure = (typ, value, tb)
        else:
            app_log.error("multiple unhandled exceptions in test", exc_info=(typ, value, tb))
        self.stop()
        return True

    def __rethrow(self) -> None:
        if self.__failure is not None:
            failure, self.__failure = self.__failure, None
            raise failure[1].with_traceback(failure[2])

    def stop(self, _arg: Any = None, **kwargs: Any) -> None:
        """End the current :meth:`wait`; it returns ``_arg`` (or the keyword arguments)."""
        assert _arg is None or not kwargs
        self.__stop_args = kwargs or _arg
        if self.__running:
            self.io_loop.stop()
            self.__running = False
        self.__stopped = True

    def wait(
        self, condition: Callable[..., bool] | None = None, timeout: float | None = None
    ) -> Any:
        """Run the loop until :meth:`stop` is called (and ``condition()``, if given, is
        true); return what was passed to ``stop``. Fails after ``timeout`` seconds
        (``get_async_test_timeout()`` by default; 0 or negative waits forever)."""
        if timeout is None:
            timeout = get_async_test_timeout()
        if not self.__stopped:
            if timeout and timeout > 0:

                def timed_out() -> None:
                    try:
                        raise self.failureException(
                            f"Async operation timed out after {timeout} seconds"
                        )
                    except Exception:
                        self.__failure = sys.exc_info()
                    self.stop()

                self.__timeout = self.io_loop.call_later(timeout, timed_out)
            while True:
                self.__running = True
                self.io_loop.start()
                if self.__failure is not None or condition is None or condition():
                    break
            if self.__timeout is not None:
                self.io_loop.remove_timeout(self.__timeout)
                self.__timeout = None
        assert self.__stopped
        self.__stopped = False
        self.__rethrow()
        result, self.__stop_args = self.__stop_args, None
        return result


class AsyncHTTPTestCase(AsyncTestCase):
    """Serves ``get_app()`` on a free loopback port for each test.

    ``self.fetch(path)`` requests it (synchronously, by running the loop) and returns the
    ``HTTPResponse`` whatever its status (``raise_error=False`` by default, as in Tornado).
    """

    def setUp(self) -> None:
        super().setUp()
        sock, port = bind_unused_port()
        self.__port = port
        self.http_client = self.get_http_client()
        self._app = self.get_app()
        self.http_server = self.get_http_server()
        self.http_server.add_sockets([sock])

    def get_http_client(self) -> AsyncHTTPClient:
        return AsyncHTTPClient(force_instance=True)

    def get_http_server(self) -> HTTPServer:
        return HTTPServer(self._app, **self.get_httpserver_options())

    def get_app(self) -> Any:
        """The application to test (override)."""
        raise NotImplementedError()

    def get_httpserver_options(self) -> dict[str, Any]:
        """Extra ``HTTPServer`` keyword arguments (override)."""
        return {}

    def fetch(self, path: str, raise_error: bool = False, **kwargs: Any) -> HTTPResponse:
        """Fetch ``path`` (relative to this server, or an absolute URL) and return the
        response. Keyword arguments are ``HTTPRequest`` options."""
        is_absolute = path.lower().startswith(("http://", "https://"))
        url = path if is_absolute else self.get_url(path)
        response: HTTPResponse = self.io_loop.run_sync(
            lambda: self.http_client.fetch(url, raise_error=raise_error, **kwargs),
            timeout=get_async_test_timeout(),
        )
        return response

    def get_http_port(self) -> int:
        return self.__port

    def get_protocol(self) -> str:
        return "http"

    def get_url(self, path: str) -> str:
        """An absolute URL for ``path`` on the test server."""
        return f"{self.get_protocol()}://127.0.0.1:{self.get_http_port()}{path}"

    def tearDown(self) -> None:
        self.http_server.stop()
        self.io_loop.run_sync(
            self.http_server.close_all_connections, timeout=get_async_test_timeout()
        )
        self.http_client.close()
        del self.http_server
        del self._app
        super().tearDown()


class AsyncHTTPSTestCase(AsyncHTTPTestCase):
    """:class:`AsyncHTTPTestCase` over TLS, with a self-signed certificate for localhost
    (the client does not verify it)."""

    def get_http_client(self) -> AsyncHTTPClient:
        return AsyncHTTPClient(force_instance=True, defaults={"validate_cert": False})

    def get_httpserver_options(self) -> dict[str, Any]:
        return {"ssl_options": self.get_ssl_options()}

    def get_ssl_options(self) -> dict[str, Any] | ssl.SSLContext:
        """The server's TLS settings (override to use your own certificate)."""
        return _test_ssl_context()

    @staticmethod
    def default_ssl_options() -> dict[str, Any]:
        """``certfile``/``keyfile`` of the self-signed test certificate, for building on."""
        certfile, keyfile = _test_cert_files()
        return {"certfile": certfile, "keyfile": keyfile}

    def get_protocol(self) -> str:
        return "https"


@functools.lru_cache(maxsize=1)
def _test_cert_files() -> tuple[str, str]:
    """(certfile, keyfile) of the test pair, written once per process (ssl reads files only;
    the pair lives in this module, not in package data) and removed at exit."""
    directory = tempfile.mkdtemp(prefix="asyncweb-test-cert-")
    atexit.register(shutil.rmtree, directory, True)
    certfile = os.path.join(directory, "test.crt")
    keyfile = os.path.join(directory, "test.key")
    with open(certfile, "w") as f:
        f.write(_TEST_CERT)
    with open(keyfile, "w") as f:
        f.write(_TEST_KEY)
    return certfile, keyfile


@functools.lru_cache(maxsize=1)
def _test_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certfile, keyfile = _test_cert_files()
    context.load_cert_chain(certfile, keyfile)
    return context


@overload
def gen_test(
    *, timeout: float | None = None
) -> Callable[[Callable[..., Any]], Callable[..., None]]: ...


@overload
def gen_test(func: Callable[..., Any]) -> Callable[..., None]: ...


def gen_test(func: Callable[..., Any] | None = None, timeout: float | None = None) -> Any:
    """Run a generator or ``async def`` test method of an :class:`AsyncTestCase` to the end.

    ``@gen_test`` or ``@gen_test(timeout=30)``; without ``timeout``,
    ``get_async_test_timeout()``. Running out of time fails the test with
    ``asyncweb.util.TimeoutError``.
    """
    if timeout is None:
        timeout = get_async_test_timeout()

    def wrap(method: Callable[..., Any]) -> Callable[..., None]:
        if inspect.iscoroutinefunction(method):
            coroutine_method: Callable[..., Any] = method
        elif inspect.isgeneratorfunction(method):
            coroutine_method = gen.coroutine(method)
        else:
            # A plain method, as Tornado allows: a future or coroutine it returns is awaited.
            @functools.wraps(method)
            async def coroutine_method(*args: Any, **kwargs: Any) -> Any:
                result = method(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result

        @functools.wraps(method)
        def run(self: AsyncTestCase, *args: Any, **kwargs: Any) -> None:
            result = self.io_loop.run_sync(
                functools.partial(coroutine_method, self, *args, **kwargs), timeout=timeout
            )
            if result is not None:
                raise ValueError(f"Return value from test method ignored: {result!r}")

        return run

    if func is not None:
        return wrap(func)
    return wrap


def setup_with_context_manager(testcase: unittest.TestCase, cm: Any) -> Any:
    """Enter ``cm`` for the rest of ``testcase`` (exited by a cleanup); returns what it gave."""
    value = cm.__enter__()
    testcase.addCleanup(cm.__exit__, None, None, None)
    return value


class ExpectLog(logging.Filter):
    """Context manager: swallow log messages matching ``regex`` on ``logger``.

    Fails (on exit) when ``required`` and no message matched. With ``level``, only records
    of that level match, and the logger is opened up to that level for the duration.
    """

    def __init__(
        self,
        logger: logging.Logger | str,
        regex: str,
        required: bool = True,
        level: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        self.logger = logger
        self.regex = re.compile(regex)
        self.required = required
        self.matched = 0
        self.logged_stack = False
        self.level = level
        self.orig_level: int | None = None

    @property
    def matched_any(self) -> bool:
        return self.matched > 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            self.logged_stack = True
        message = record.getMessage()
        if self.regex.match(message):
            if self.level is not None and record.levelno != self.level:
                app_log.warning(
                    "Got expected log message %r at unexpected level (%s vs %s)",
                    message,
                    logging.getLevelName(self.level),
                    record.levelname,
                )
                return True
            self.matched += 1
            return False
        return True

    def __enter__(self) -> ExpectLog:
        if self.level is not None and self.level < self.logger.getEffectiveLevel():
            self.orig_level = self.logger.level
            self.logger.setLevel(self.level)
        self.logger.addFilter(self)
        return self

    def __exit__(self, typ: Any, value: Any, tb: Any) -> None:
        self.logger.removeFilter(self)
        if self.orig_level is not None:
            self.logger.setLevel(self.orig_level)
        if not typ and self.required and not self.matched:
            raise Exception("did not get expected log message")


def main(**kwargs: Any) -> None:
    """Run tests like ``unittest.main``: the test names on the command line, else the
    ``all()`` function of ``__main__`` (as Tornado's test runner does) if there is one."""
    argv = kwargs.pop("argv", sys.argv)
    logging.basicConfig(level=logging.INFO)
    if len(argv) > 1 or not hasattr(sys.modules.get("__main__"), "all"):
        unittest.main(module=None if len(argv) > 1 else "__main__", argv=argv, **kwargs)
    else:
        unittest.main(defaultTest="all", argv=argv, **kwargs)


# A self-signed certificate for localhost and 127.0.0.1 (good until 2126), for
# AsyncHTTPSTestCase only: the key is public, never use it for anything real.
_TEST_KEY = """\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCR92Y394UaqGcj
+NeMysqQSmUCQADyHQSv4rjFM9b2jXeipc8F7La/E9Oqg7uuvJbkIDYYxtw/Wj1U
XcbF+23MoALZYOJeeAGJ8ntIwCMrNwjaK4TiB/VKAf9MYI0Z31Czz0OBlWlt9UxA
nFO1PSWaD4yLwSCIL4UpipQt6URv77A/7nYZyAOjfP4M1Db4PjIlipBd0pZZ9UiW
H0ikEKgWgGbj4ORSE9D7GsLweN/JklpRFnbjIdJuGJNT7rfUXLk1V/6uCeZOlhzD
0WPl2Wruj2m5Nr+zZNtsvjCd+eE0zZYYQoRSkp6M35XGr1KBOU+Oc1czBehyTgit
SMYQk9JLAgMBAAECggEAEqM0OhEwvaajBMTRQPjjxGi7XP4vILrzzkF0tjlYSULm
862YMXl4HA28CRmo7TbHTXmPbrp1hOFQ02Tl7IGeE3Ka6oakYMuR5rs/Ypql4u60
Aqdr4DCD8V8v6eCqI5OQCmV8iR86xv97LQTI62tTUciKeY2/SaRHrHY1VWdjhacz
zA34UHPerbxAO1p00wi3/Jzmo5lXB7KImSWLGJ80N3bFebe6pzvqsKKs2ySZfOWC
h21nm2SQN0zj5BfGcn/oRHFnjHBJAFxQlXQDbXnvtbAO9Lejl5Wthp8d5f613Mfg
zpimLfVN2V24F1WbJg52qIqxJHv98cDbq2GmTOPkAQKBgQDDBiOe70VaSR0h56qC
/kZ20O10h+7fF5QfdvXahTuFodPBqcE6gEneU2qqgabFREoenPfFHvAuDS+QtXOL
hJbbgz2FighMbE38NnaMyGz73xUfyEgIOqX+7tfx+Kz4VwFikL9Lanu5Xc4rV6Vr
OFgvhtt4pfqxRMJJfh7AkXez4QKBgQC/mqf0GAbZRfikHIPDOipNCJgdSeXWjfT5
xiH1Ripmx4zsL+4Xft135mwiShCdqBDwarMJmrR39kqQig4vbHVC4sGCgb9auINT
Z4Yh9dskq6FOM0zuzpxw6ygvzggE56gNpBpToEYDkpGdrMi55ThajaukU9yj6YtW
D24CHWQLqwKBgQCJeCZbveVxAuCaKaazt3EMB7GZ1se2UfSDSWN7qTaPt8aAWJxw
FEX9hWdG0SUxIDXu5k5wkKJUk87Xfk/4JHoCObyACRBYbm96PRnLmuvXjyRgxtif
lFe2H73wPo4Ob6X2SHnPOzwDKfBN9PYRYiInPjQuEzFnC0S4cUJUEzYBgQKBgHbr
onqZvwZzq1MQb6doHoEZaHAlQYXdLcMo+kKlfgO0rv6Y8QmcMBEO7uaJWa7AdWMC
loTLhF9Aeh8j0JIWmuEcpEZACWhhRQErK9FAKvejnsZOiN1fVzGugo7JLaj9rwxo
Yf6tZ0coXUCj0SGv5z4s1+9yLWt+tICBqyGc5E9pAoGBAMG3D9cuQNTlZqBcc7xT
Wn1ojJWzbQZ3JcRCMvmuxlXIL+uTsjm0wlx7Rea46X3prcFWHaB3UPxJQkCCAI6w
0M0jfltNxV++9Phu/66yXwTU3DAQ5nCuGOdR33ZBBX2aZOnzNodetp5pFUeiJYmK
hiorbQTuu1IA73o7AfmM6J1L
-----END PRIVATE KEY-----
"""

_TEST_CERT = """\
-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUDwhoCcOwx1sAylY+iZ3FEeem6qkwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMTA3MjU1MFoYDzIxMjYx
MDI4MDcyNTUwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQCR92Y394UaqGcj+NeMysqQSmUCQADyHQSv4rjFM9b2
jXeipc8F7La/E9Oqg7uuvJbkIDYYxtw/Wj1UXcbF+23MoALZYOJeeAGJ8ntIwCMr
NwjaK4TiB/VKAf9MYI0Z31Czz0OBlWlt9UxAnFO1PSWaD4yLwSCIL4UpipQt6URv
77A/7nYZyAOjfP4M1Db4PjIlipBd0pZZ9UiWH0ikEKgWgGbj4ORSE9D7GsLweN/J
klpRFnbjIdJuGJNT7rfUXLk1V/6uCeZOlhzD0WPl2Wruj2m5Nr+zZNtsvjCd+eE0
zZYYQoRSkp6M35XGr1KBOU+Oc1czBehyTgitSMYQk9JLAgMBAAGjbzBtMB0GA1Ud
DgQWBBT5dyhNBkCtU2g3kacJBMAEmggwDjAfBgNVHSMEGDAWgBT5dyhNBkCtU2g3
kacJBMAEmggwDjAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9z
dIcEfwAAATANBgkqhkiG9w0BAQsFAAOCAQEAcwzbZF9IjjKooYLHUhteXR9eRFR5
T+97fiMJ31CEglTuimCxN16pPmbd0ltER3gi8aGI1GCQmUh5hGwjUCJeXutqEQwe
Z2eHs4c/8w7L1GoUmkFld9ZiecZC0HznWROSd8vJhmPhkiNrAWtFDiIyb4YwFNXM
n+MzAkgX6i+FQi1jFym0u4I8FNZUi739DmJcYGYxXJGzEkDav/zbULoPrHAX9UaI
H3YYzPSUzupbTtI1HcpVcPUKfVb/PveumxsNvdNvmXRI+dQWDkPALrlohARQmtVQ
nqsOmT8MNOw40jgqCdN/ye2UFTxhRj+9HwoYj+3po6eWHt70QQA5ifriTQ==
-----END CERTIFICATE-----
"""


if __name__ == "__main__":
    main()
