"""Start-up and shut-down, the same for ``asyncweb serve``, ``Application.listen()`` with
``IOLoop.current().start()``, and the ASGI lifespan (``asyncweb.asgi.ASGIAdapter``).

An application's start-up hooks (``Application(on_startup=[...])`` or
``app.add_startup_hook(fn)``; plain or async callables without arguments) run once before it
serves; its shut-down hooks run once after the last request ended.

A graceful stop (:func:`stop_serving`, which SIGINT/SIGTERM start):

1. the servers stop accepting and idle keep-alive connections close;
2. every request still in progress gets ``RequestHandler.on_shutdown()`` (long polls answer
   there); the others have up to ``timeout`` seconds to finish;
3. when the time is up, or a second signal asks to stop now, each request still in progress
   is answered ``503`` with ``Retry-After`` (if its head was not sent yet), its task is
   cancelled and the connections are closed;
4. the shut-down hooks run, then every task still on the loop is cancelled and awaited, so
   nothing is left pending when the loop closes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from asyncweb.log import LogFormatter, app_log, gen_log

if TYPE_CHECKING:
    from asyncweb.httpserver import HTTPServer
    from asyncweb.ioloop import IOLoop
    from asyncweb.web.application import Application
    from asyncweb.web.handler import RequestHandler

__all__ = ["stop_serving"]

# Told to clients answered 503 during a shutdown: a restarted server is usually back soon.
RETRY_AFTER_SECONDS = 1


def say(level: int, message: str, *args: Any) -> None:
    """Log ``message`` on ``asyncweb.general``; when logging was never configured (no
    handler anywhere), print this one record on stderr anyway, so ``listen()`` users see it."""
    if _logging_configured():
        gen_log.log(level, message, *args)
        return
    record = gen_log.makeRecord(gen_log.name, level, __file__, 0, message, args, None)
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter(_BARE_FORMAT, color=False))
    handler.handle(record)


_BARE_FORMAT = "%(color)s[%(levelname)1.1s %(asctime)s]%(end_color)s %(message)s"


def _logging_configured() -> bool:
    logger: logging.Logger | None = gen_log
    while logger is not None:
        if logger.handlers:
            return True
        logger = logger.parent if logger.propagate else None
    return False


async def run_hooks(hooks: Iterable[Callable[[], Any]], what: str, raise_errors: bool) -> None:
    for hook in list(hooks):
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            if raise_errors:
                raise
            app_log.error("Error in %s hook %r", what, hook, exc_info=True)


def _in_flight() -> list[tuple[asyncio.Future[Any], RequestHandler]]:
    from asyncweb.web.handler import _running

    loop = asyncio.get_running_loop()
    return [
        (task, handler)
        for task, handler in list(_running.items())
        if handler is not None and not task.done() and task.get_loop() is loop
    ]


def _tell_handlers() -> list[asyncio.Future[Any]]:
    """Call ``on_shutdown()`` on every request in progress; returns what they started."""
    started: list[asyncio.Future[Any]] = []
    for _task, handler in _in_flight():
        try:
            result = handler.on_shutdown()
            if result is not None and inspect.isawaitable(result):
                started.append(asyncio.ensure_future(result))
        except Exception:
            app_log.error("Error in %s.on_shutdown()", type(handler).__name__, exc_info=True)
    return started


def _answer_and_cancel() -> int:
    """Answer every request still in progress with a 503 and cancel its task."""
    count = 0
    for task, handler in _in_flight():
        count += 1
        if not handler._finished and not handler._headers_written:
            try:
                handler.clear()
                handler.set_status(503)
                handler.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
                handler.write_error(503)
                if not handler._finished:
                    handler.finish()
            except Exception:
                app_log.error("Could not answer 503 during shutdown", exc_info=True)
        task.cancel()
    return count


async def _wait(awaitables: Iterable[asyncio.Future[Any]], timeout: float | None) -> None:
    pending = [a for a in awaitables if not a.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


async def stop_serving(
    servers: Iterable[HTTPServer],
    applications: Iterable[Application],
    timeout: float,
    force: asyncio.Event,
) -> None:
    """Stop ``servers`` gracefully (see the module docstring), run the ``applications``'
    shut-down hooks, then cancel and await every other task of the loop. Setting ``force``
    skips what is left of the waiting."""
    servers = list(servers)
    loop = asyncio.get_running_loop()
    for server in servers:
        server.stop()
    forced = loop.create_task(force.wait())
    helpers: list[asyncio.Future[Any]] = _tell_handlers()
    closing = [loop.create_task(server.close_all_connections()) for server in servers]
    all_closed = asyncio.gather(*closing)
    try:
        await asyncio.wait((all_closed, forced), timeout=timeout, return_when="FIRST_COMPLETED")
        if not all_closed.done():
            open_count = sum(len(server._connections) for server in servers)
            if force.is_set():
                say(logging.WARNING, "%d connections still open; stopping now", open_count)
            else:
                say(
                    logging.WARNING,
                    "%d connections still open after %gs; closing them",
                    open_count,
                    timeout,
                )
            answered = _answer_and_cancel()
            if answered:
                say(logging.INFO, "answered %d requests in progress with 503", answered)
            await asyncio.sleep(0)  # let the 503s reach the transports
            for server in servers:
                server._abort_connections()
            await _wait([all_closed], 1.0)
        hooks = asyncio.gather(*(app.shutdown() for app in applications))
        await asyncio.wait((hooks, forced), return_when="FIRST_COMPLETED")
    finally:
        forced.cancel()
        all_closed.cancel()
        for helper in helpers:
            helper.cancel()
        await cancel_other_tasks(1.0 if force.is_set() else 5.0)


async def cancel_other_tasks(timeout: float) -> None:
    """Cancel every task on this loop but the current one and wait (up to ``timeout``)."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                app_log.error("Task failed during shutdown", exc_info=task.exception())
        if pending:
            gen_log.warning("%d tasks did not end when cancelled", len(pending))


class _Serving:
    """What ``Application.listen()`` started on one IOLoop: stopped on Ctrl-C by ``start()``."""

    def __init__(self, io_loop: IOLoop) -> None:
        self.io_loop = io_loop
        self.servers: list[HTTPServer] = []
        self.applications: list[Application] = []
        self.force = asyncio.Event()
        self.signals = 0
        self.task: asyncio.Task[None] | None = None

    def on_interrupt(self) -> bool:
        """Called by ``IOLoop.start()`` on SIGINT; False lets it stop the loop at once."""
        self.signals += 1
        if self.signals == 1:
            say(
                logging.INFO,
                "%s received; finishing requests in progress (Ctrl-C again to stop now)",
                signal.SIGINT.name,
            )
            self.task = self.io_loop.asyncio_loop.create_task(self._stop())
            return True
        if self.signals == 2:
            self.force.set()
            return True
        return False

    async def _stop(self) -> None:
        timeout = max(
            (app.settings.get("shutdown_timeout", 30.0) for app in self.applications),
            default=30.0,
        )
        try:
            await stop_serving(self.servers, self.applications, timeout, self.force)
        finally:
            self.io_loop.asyncio_loop.stop()


def register(io_loop: IOLoop, application: Application, server: HTTPServer) -> None:
    """Make Ctrl-C in ``io_loop.start()`` stop ``server`` gracefully."""
    # Kept by the IOLoop itself (through its hook), so both go together.
    serving = getattr(io_loop._on_interrupt, "__self__", None)
    if not isinstance(serving, _Serving):
        serving = _Serving(io_loop)
        io_loop._on_interrupt = serving.on_interrupt
    serving.servers.append(server)
    if application not in serving.applications:
        serving.applications.append(application)


def run_startup(io_loop: IOLoop, application: Application) -> Awaitable[None] | None:
    """Run ``application``'s start-up hooks: now when the loop is not running (errors raise
    here), else as a task (returned)."""
    if application._started:
        return None
    if not application._startup_hooks:
        application._started = True  # nothing to wait for: serve at once, as Tornado does
        return None
    if io_loop.asyncio_loop.is_running():
        return asyncio.ensure_future(application.startup())
    io_loop.run_sync(application.startup)
    return None
