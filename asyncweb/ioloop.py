"""``IOLoop``: Tornado's event-loop interface as a thin face on an asyncio loop.

There is exactly one ``IOLoop`` per asyncio loop and never a second loop: inside a running
loop ``IOLoop.current()`` wraps it; outside one, it makes (once per thread) the loop that
``start()`` or ``run_sync()`` will run, on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asyncweb import util
from asyncweb.log import app_log

_T = TypeVar("_T")


# Set ASYNCWEB_UVLOOP=0 to run on the standard asyncio loop even when uvloop is installed.
_use_uvloop = os.environ.get("ASYNCWEB_UVLOOP", "1") != "0"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop: uvloop's when installed (and not disabled), else asyncio's."""
    if _use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


class _ThreadState(threading.local):
    ioloop: IOLoop | None = None


class IOLoop:
    """Tornado's IOLoop on an asyncio loop. Construct with ``IOLoop.current()``."""

    NONE = 0
    READ = 0x001
    WRITE = 0x004
    ERROR = 0x018

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IOLoop] = (
        weakref.WeakKeyDictionary()
    )
    _thread_state = _ThreadState()

    def __init__(self, asyncio_loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = asyncio_loop if asyncio_loop is not None else new_event_loop()
        if loop in IOLoop._by_loop:
            raise RuntimeError("this asyncio loop already has an IOLoop")
        self.asyncio_loop = loop
        self._thread_ident: int | None = None
        IOLoop._by_loop[loop] = self

    # -- finding the current loop -------------------------------------------------------------

    @staticmethod
    def current(instance: bool = True) -> IOLoop:
        """The IOLoop of the running asyncio loop, else this thread's (made if ``instance``)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            state = IOLoop._thread_state
            if state.ioloop is not None and not state.ioloop.asyncio_loop.is_closed():
                return state.ioloop
            if not instance:
                return None  # type: ignore[return-value]
            ioloop = IOLoop()
            ioloop.make_current()
            return ioloop
        existing = IOLoop._by_loop.get(loop)
        return existing if existing is not None else IOLoop(loop)

    @staticmethod
    def instance() -> IOLoop:
        """Legacy name for :meth:`current`."""
        return IOLoop.current()

    def make_current(self) -> None:
        IOLoop._thread_state.ioloop = self
        asyncio.set_event_loop(self.asyncio_loop)

    @staticmethod
    def clear_current() -> None:
        """Forget this thread's current IOLoop (and unset the asyncio loop it had set)."""
        state = IOLoop._thread_state
        if state.ioloop is not None:
            state.ioloop = None
            asyncio.set_event_loop(None)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Run until :meth:`stop` is called."""
        self.make_current()
        self._thread_ident = threading.get_ident()
        try:
            self.asyncio_loop.run_forever()
        finally:
            self._thread_ident = None

    def stop(self) -> None:
        """Stop the loop once the callbacks already due have run. Safe from other threads."""
        self.asyncio_loop.call_soon_threadsafe(self.asyncio_loop.stop)

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Run ``func`` (plain, coroutine function, or returning an awaitable) to completion.

        When ``timeout`` seconds pass first, the awaitable is cancelled and
        ``asyncweb.util.TimeoutError`` (which is ``asyncio.TimeoutError``) is raised.
        """

        async def runner() -> Any:
            result = func()
            if not isinstance(result, Awaitable):
                return result
            if timeout is None:
                return await result
            task = asyncio.ensure_future(result)
            done, _pending = await asyncio.wait((task,), timeout=timeout)
            if not done:
                task.cancel()
                # Let the cancellation run its course so no task is left pending.
                await asyncio.wait((task,))
                if task.cancelled():
                    raise util.TimeoutError(f"Operation timed out after {timeout} seconds")
            return task.result()

        self.make_current()
        self._thread_ident = threading.get_ident()
        try:
            return self.asyncio_loop.run_until_complete(runner())
        finally:
            self._thread_ident = None

    def close(self, all_fds: bool = False) -> None:
        if IOLoop._thread_state.ioloop is self:
            # Like Tornado: closing the current loop also stops it being asyncio's current loop.
            IOLoop.clear_current()
        IOLoop._by_loop.pop(self.asyncio_loop, None)
        self.asyncio_loop.close()

    def time(self) -> float:
        """The clock of ``add_timeout`` and ``call_at`` deadlines: ``time.time()``, as in Tornado.

        Tornado documents this as equivalent to ``time.time()``, and ported code often writes
        ``add_timeout(time.time() + 5, ...)``; deadlines are turned into delays for asyncio.
        """
        return time.time()

    # -- callbacks ---------------------------------------------------------------------------

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the next loop iteration. Safe to call from any thread."""
        call = functools.partial(self._run_callback, callback, args, kwargs)
        try:
            if self._in_loop_thread():
                self.asyncio_loop.call_soon(call)
            else:
                self.asyncio_loop.call_soon_threadsafe(call)
        except RuntimeError:
            # Tornado allows add_callback "at any time": on a closed loop it is dropped.
            if not self.asyncio_loop.is_closed():
                raise

    def spawn_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.add_callback(callback, *args, **kwargs)

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        return self.asyncio_loop.call_later(
            delay, functools.partial(self._run_callback, callback, args, kwargs)
        )

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        # ``when`` is on the time.time() scale of :meth:`time`, not on the asyncio loop's clock.
        return self.asyncio_loop.call_later(
            max(0.0, when - self.time()),
            functools.partial(self._run_callback, callback, args, kwargs),
        )

    def add_timeout(
        self,
        deadline: float | datetime.timedelta,
        callback: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> asyncio.TimerHandle:
        """``deadline`` is a :meth:`time`-based float or a ``timedelta`` from now."""
        if isinstance(deadline, datetime.timedelta):
            return self.call_later(deadline.total_seconds(), callback, *args, **kwargs)
        if isinstance(deadline, (int, float)):
            return self.call_at(deadline, callback, *args, **kwargs)
        raise TypeError(f"Unsupported deadline {deadline!r}")

    def remove_timeout(self, timeout: asyncio.Handle) -> None:
        timeout.cancel()

    def add_future(
        self,
        future: Awaitable[_T] | concurrent.futures.Future[_T],
        callback: Callable[[Any], Any],
    ) -> None:
        """Run ``callback(future)`` on the loop once ``future`` is done.

        ``future`` may be an asyncio future (or other awaitable) or a
        ``concurrent.futures.Future``, which may finish in another thread.
        """
        if isinstance(future, concurrent.futures.Future):
            future.add_done_callback(lambda done: self.add_callback(callback, done))
            return
        fut = asyncio.ensure_future(future, loop=self.asyncio_loop)
        fut.add_done_callback(lambda done: self.add_callback(callback, done))

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[..., _T],
        *args: Any,
    ) -> asyncio.Future[_T]:
        return self.asyncio_loop.run_in_executor(executor, func, *args)

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        self.asyncio_loop.set_default_executor(executor)

    # -- internals ----------------------------------------------------------------------------

    def _in_loop_thread(self) -> bool:
        if self._thread_ident is not None:
            return self._thread_ident == threading.get_ident()
        try:
            return asyncio.get_running_loop() is self.asyncio_loop
        except RuntimeError:
            # Not running anywhere yet: call_soon is safe from the owning thread.
            return IOLoop._thread_state.ioloop is self

    def _run_callback(
        self, callback: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Callbacks never stop the loop: their errors are logged, awaitables are watched."""
        try:
            result = callback(*args, **kwargs)
            if result is not None and isinstance(result, Awaitable):
                future = asyncio.ensure_future(result)
                future.add_done_callback(self._log_future_error)
        except asyncio.CancelledError:
            pass
        except Exception:
            app_log.error("Exception in callback %r", callback, exc_info=True)

    @staticmethod
    def _log_future_error(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            app_log.error("Exception in callback", exc_info=future.exception())
