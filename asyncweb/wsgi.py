"""Run WSGI applications (Flask, Django, ...) on asyncweb's server, as ``tornado.wsgi``.

``WSGIContainer(app)`` is a request callable: give it to ``HTTPServer``, or use it as a rule
target in an ``Application`` to serve it under a path next to native handlers::

    container = WSGIContainer(flask_app)
    app = Application([(r"/api/.*", ApiHandler), (r"/.*", container)])

Unlike Tornado's (which runs the application on the event loop thread unless given an
executor), the WSGI application always runs in a thread pool: ``executor`` if given, else the
event loop's default executor. Calling the application, pulling each chunk from its response
iterable and closing it all happen in the pool, so a slow or blocking view never stalls the
loop. The steps of one request may land on different pool threads, so they all run in one
``contextvars.Context`` per request (copied from the request's task): what one step sets, such
as Flask's ``stream_with_context`` contexts, the next sees, and nothing leaks to the next
request on that thread. Chunks are sent as they come (streaming responses), with the
server's flow control.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from io import BytesIO
from types import TracebackType
from typing import Any, TypeVar

from asyncweb import escape, httputil
from asyncweb.log import access_log, app_log

__all__ = ["WSGIContainer"]

_T = TypeVar("_T")
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGIContainer:
    """Adapts a WSGI application to asyncweb's ``request -> response`` callable interface."""

    def __init__(
        self, wsgi_application: WSGIApp, executor: concurrent.futures.Executor | None = None
    ) -> None:
        self.wsgi_application = wsgi_application
        self.executor = executor

    def __call__(self, request: httputil.HTTPServerRequest) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self.handle_request(request))
        return task

    async def handle_request(self, request: httputil.HTTPServerRequest) -> None:
        loop = asyncio.get_running_loop()
        conn = request.connection
        assert conn is not None
        steps = _RequestSteps(loop, self.executor)
        started: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []
        headers_sent = False

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None:
                if headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
                started.clear()  # an error page replaces the response not yet sent
            elif started:
                raise AssertionError("start_response called twice without exc_info")
            started.append((status, headers))
            return written.append  # PEP 3333's legacy write(); sent before the iterable

        def run_app() -> _Response:
            result = self.wsgi_application(self.environ(request), start_response)
            return _Response(result)

        try:
            response = await steps.run(run_app)
        except Exception:
            app_log.error("Uncaught exception in WSGI application %s", request, exc_info=True)
            self._send_error(request)
            return
        status_code = 500
        try:
            # PEP 3333: headers go out with the first non-empty chunk (or at the end).
            first = b""
            while not first:
                chunk = await steps.run(response.next_chunk)
                if chunk is None:
                    break
                first = b"".join(written) + chunk
                written.clear()
            if not started:
                raise RuntimeError("WSGI application did not call start_response")
            status, header_list = started[-1]
            first = b"".join(written) + first
            written.clear()
            code_text, _, reason = status.partition(" ")
            status_code = int(code_text)
            headers = httputil.HTTPHeaders()
            for name, value in header_list:
                headers.add(name, value)
            start_line = httputil.ResponseStartLine("HTTP/1.1", status_code, reason)
            headers_sent = True
            await conn.write_headers(start_line, headers, first or None)
            if chunk is not None:
                while True:
                    chunk = await steps.run(response.next_chunk)
                    if chunk is None:
                        break
                    if written:
                        await conn.write(b"".join(written))
                        written.clear()
                    if chunk:
                        await conn.write(chunk)
            if written:
                await conn.write(b"".join(written))
            # close() before the response ends, so the client sees its effects (PEP 3333).
            await steps.run(response.close)
            conn.finish()
        except Exception:
            app_log.error("Uncaught exception in WSGI application %s", request, exc_info=True)
            if headers_sent:
                _abort(conn)
            else:
                self._send_error(request)
                status_code = 500
        finally:
            await steps.run(response.close)  # no-op when closed
        self._log(status_code, request)

    @staticmethod
    def environ(request: httputil.HTTPServerRequest) -> dict[str, Any]:
        """The PEP 3333 ``environ`` for ``request``."""
        host, port = httputil.split_host_and_port(request.host)
        if port is None:
            port = 443 if request.protocol == "https" else 80
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            # PEP 3333: the unquoted path as bytes carried in a latin-1 str.
            "PATH_INFO": escape.url_unescape(request.path, encoding=None, plus=False).decode(
                "latin-1"
            ),
            "QUERY_STRING": request.query,
            "REMOTE_ADDR": request.remote_ip,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": request.version,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.protocol,
            "wsgi.input": BytesIO(escape.utf8(request.body)),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if "Content-Type" in request.headers:
            environ["CONTENT_TYPE"] = request.headers["Content-Type"]
        if "Content-Length" in request.headers:
            environ["CONTENT_LENGTH"] = request.headers["Content-Length"]
        for name in request.headers:
            if name in ("Content-Type", "Content-Length"):
                continue
            key = "HTTP_" + name.replace("-", "_").upper()
            environ[key] = ",".join(request.headers.get_list(name))
        return environ

    def _send_error(self, request: httputil.HTTPServerRequest) -> None:
        conn = request.connection
        assert conn is not None
        body = b"<html><title>500: Internal Server Error</title></html>"
        headers = httputil.HTTPHeaders(
            {"Content-Type": "text/html; charset=UTF-8", "Content-Length": str(len(body))}
        )
        conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 500, "Internal Server Error"), headers, body
        )
        conn.finish()
        self._log(500, request)

    def _log(self, status_code: int, request: httputil.HTTPServerRequest) -> None:
        if status_code < 400:
            log_method = access_log.info
        elif status_code < 500:
            log_method = access_log.warning
        else:
            log_method = access_log.error
        request_time = 1000.0 * request.request_time()
        summary = f"{request.method} {request.uri} ({request.remote_ip})"
        log_method("%d %s %.2fms", status_code, summary, request_time)


class _RequestSteps:
    """Runs the steps of one WSGI request (the call, each chunk, close) in the pool, all in
    one ``contextvars.Context`` of their own.

    The pool may run consecutive steps on different threads; without a shared context a
    variable set in one step (Flask's ``stream_with_context`` pushes its app and request
    contexts inside the generator) is missing in the next, and one that a request leaves
    set would leak into whatever request runs next on that thread. The lock keeps a step
    from entering the context while an earlier one still runs in it (possible only if the
    request's task was cancelled mid-step): a context cannot be entered twice at once.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, executor: concurrent.futures.Executor | None
    ) -> None:
        self._loop = loop
        self._executor = executor
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()

    def run(self, step: Callable[[], _T]) -> asyncio.Future[_T]:
        return self._loop.run_in_executor(self._executor, self._run_in_context, step)

    def _run_in_context(self, step: Callable[[], _T]) -> _T:
        with self._lock:
            return self._context.run(step)


class _Response(Iterator[bytes]):
    """The application's response iterable, iterated one chunk per call from the pool."""

    def __init__(self, result: Iterable[bytes]) -> None:
        self._result = result
        self._iterator = iter(result)

    def __next__(self) -> bytes:
        return next(self._iterator)

    def next_chunk(self) -> bytes | None:
        """The next chunk, or None at the end."""
        for chunk in self._iterator:
            return bytes(chunk)
        return None

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        self._result = ()
        if close is not None:
            close()


def _abort(conn: httputil.HTTPConnection) -> None:
    # Headers are out: the only honest signal left is closing the connection mid-body.
    close = getattr(conn, "close", None)
    if close is not None:
        close()
