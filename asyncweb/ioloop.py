"""``IOLoop``: Tornado's event-loop interface as a thin face on an asyncio loop.

There is exactly one ``IOLoop`` per asyncio loop and never a second loop: inside a running
loop ``IOLoop.current()`` wraps it; outside one, it makes (once per thread) the loop that
``start()`` or ``run_sync()`` will run, on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import functools
import math
import os
import random
import signal
import sys
import threading
import time
import types
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from asyncweb import util
from asyncweb.log import app_log

_T = TypeVar("_T")


class _Selectable(Protocol):
    def fileno(self) -> int: ...


# What ``add_handler`` accepts: a file descriptor or an object with ``fileno()``.
FileDescriptor = int | _Selectable


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


def _quiet_keyboard_interrupt(
    kind: type[BaseException], value: BaseException, tb: types.TracebackType | None
) -> None:
    # Ctrl-C through IOLoop.start() is how a server is stopped, not a crash.
    if not issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)


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

    def __init__(
        self,
        asyncio_loop: asyncio.AbstractEventLoop | None = None,
        make_current: bool | None = None,
    ) -> None:
        """Wrap ``asyncio_loop`` (a new loop when None). ``make_current=True`` also makes it
        this thread's current IOLoop; by default (None, or False) the current one stays."""
        loop = asyncio_loop if asyncio_loop is not None else new_event_loop()
        if loop in IOLoop._by_loop:
            raise RuntimeError("this asyncio loop already has an IOLoop")
        self.asyncio_loop = loop
        self._thread_ident: int | None = None
        # fd -> (the object given to add_handler, its handler, the events it watches)
        self._handlers: dict[int, tuple[FileDescriptor, Callable[..., Any], int]] = {}
        # Set by Application.listen(): takes a Ctrl-C in start() (a graceful stop) unless it
        # returns False, and then the loop stops at once.
        self._on_interrupt: Callable[[], bool] | None = None
        IOLoop._by_loop[loop] = self
        if make_current:
            self.make_current()

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
        """Legacy name for :meth:`current` (warns once)."""
        util.warn_deprecated_once("IOLoop.instance()", "IOLoop.current()")
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
        """Run until :meth:`stop` is called.

        In the main thread, Ctrl-C (SIGINT) stops the loop between callbacks and ``start()``
        then raises ``KeyboardInterrupt``, as a Tornado loop would. Raising it from inside a
        callback instead can leave uvloop hung, so the signal goes through the loop. With
        servers from ``Application.listen()``, the first Ctrl-C stops them gracefully and a
        second one at once. Tasks left on the loop are then cancelled, and the
        ``KeyboardInterrupt``, if nothing catches it, ends the program without a traceback.
        """
        self.make_current()
        self._thread_ident = threading.get_ident()
        interrupted: list[bool] = []
        watching_sigint = self._watch_sigint(interrupted)
        try:
            self.asyncio_loop.run_forever()
        finally:
            self._thread_ident = None
            if watching_sigint:
                self._unwatch_sigint(watching_sigint)
        if interrupted:
            self._cancel_tasks()
            if sys.excepthook is sys.__excepthook__:
                sys.excepthook = _quiet_keyboard_interrupt
            raise KeyboardInterrupt

    def _cancel_tasks(self) -> None:
        """After a Ctrl-C: cancel what is left, so no task is destroyed while pending."""
        loop = self.asyncio_loop
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks and not loop.is_closed():
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))

    def _watch_sigint(self, interrupted: list[bool]) -> Any:
        """Route SIGINT to a loop callback while :meth:`start` runs; returns the old handler."""
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            return None  # the application installed its own handler (or ignores SIGINT)

        def on_sigint() -> None:
            interrupted.append(True)
            hook = self._on_interrupt
            if hook is not None and hook():
                return
            self.asyncio_loop.stop()

        try:
            self.asyncio_loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):
            return None
        return previous

    def _unwatch_sigint(self, previous: Any) -> None:
        if not self.asyncio_loop.is_closed():
            self.asyncio_loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, previous)

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
        """Close the asyncio loop; ``all_fds`` also closes every file given to add_handler."""
        for fd, (fileobj, _handler, _events) in list(self._handlers.items()):
            self.remove_handler(fd)
            if all_fds:
                try:
                    if isinstance(fileobj, int):
                        os.close(fileobj)
                    else:
                        fileobj.close()  # type: ignore[attr-defined]
                except OSError:
                    pass
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

    # -- file descriptors --------------------------------------------------------------------

    def add_handler(self, fd: FileDescriptor, handler: Callable[..., Any], events: int) -> None:
        """Call ``handler(fd, events)`` whenever ``fd`` is ready for ``events``.

        ``fd`` is a file descriptor or an object with ``fileno()``; the handler receives it
        back as given. ``READ`` and ``WRITE`` map to the loop's ``add_reader``/``add_writer``;
        errors and hang-ups show up as readiness (a read then returns the error or EOF), so
        ``ERROR`` alone watches for readability.
        """
        fileno = fd if isinstance(fd, int) else fd.fileno()
        if fileno in self._handlers:
            raise ValueError(f"fd {fileno} already has a handler; use update_handler")
        self._handlers[fileno] = (fd, handler, 0)
        self.update_handler(fd, events)

    def update_handler(self, fd: FileDescriptor, events: int) -> None:
        """Change the events ``fd`` is watched for."""
        fileno = fd if isinstance(fd, int) else fd.fileno()
        fileobj, handler, old = self._handlers[fileno]
        loop = self.asyncio_loop
        # Watching must not change the file: uvloop (libuv) makes a watched fd non-blocking,
        # asyncio's own loops don't, and code such as terminado writes to a pty it watches
        # with blocking writes. Whatever the loop does, the fd keeps the mode it had.
        try:
            was_blocking: bool | None = os.get_blocking(fileno)
        except OSError:
            was_blocking = None
        wants_read = bool(events & (IOLoop.READ | IOLoop.ERROR))
        if wants_read and not old & (IOLoop.READ | IOLoop.ERROR):
            loop.add_reader(fileno, self._fd_ready, fileno, IOLoop.READ)
        elif not wants_read and old & (IOLoop.READ | IOLoop.ERROR):
            loop.remove_reader(fileno)
        if events & IOLoop.WRITE and not old & IOLoop.WRITE:
            loop.add_writer(fileno, self._fd_ready, fileno, IOLoop.WRITE)
        elif not events & IOLoop.WRITE and old & IOLoop.WRITE:
            loop.remove_writer(fileno)
        self._handlers[fileno] = (fileobj, handler, events)
        if was_blocking:
            with contextlib.suppress(OSError):
                if not os.get_blocking(fileno):
                    os.set_blocking(fileno, True)

    def remove_handler(self, fd: FileDescriptor) -> None:
        """Stop watching ``fd`` (no error if it was not watched)."""
        try:
            fileno = fd if isinstance(fd, int) else fd.fileno()
        except (OSError, ValueError):
            # A closed file object no longer has a number: find it by identity.
            found = [n for n, (obj, _h, _e) in self._handlers.items() if obj is fd]
            if not found:
                return
            fileno = found[0]
        entry = self._handlers.pop(fileno, None)
        if entry is None or self.asyncio_loop.is_closed():
            return
        self.asyncio_loop.remove_reader(fileno)
        self.asyncio_loop.remove_writer(fileno)

    def _fd_ready(self, fileno: int, events: int) -> None:
        entry = self._handlers.get(fileno)
        if entry is None:
            return
        fileobj, handler, watched = entry
        if events == IOLoop.READ and not watched & IOLoop.READ:
            events = IOLoop.ERROR  # watched for errors only
        self._run_callback(handler, (fileobj, events), {})

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

    def add_callback_from_signal(
        self, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """Like :meth:`add_callback`, safe to call from a Python signal handler."""
        call = functools.partial(self._run_callback, callback, args, kwargs)
        try:
            self.asyncio_loop.call_soon_threadsafe(call)
        except RuntimeError:
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


class PeriodicCallback:
    """Call ``callback`` every ``callback_time`` (milliseconds, or a ``timedelta``).

    Runs are scheduled on the loop's monotonic clock. When a run is late (a slow callback,
    a busy loop), the runs missed meanwhile are skipped rather than made up in a burst. A
    callback returning an awaitable is awaited before the next run is scheduled, so runs of
    a coroutine callback never overlap. ``jitter`` (0..1) varies each interval by up to
    ``jitter * callback_time / 2`` either way, spreading callbacks that start together.
    """

    def __init__(
        self,
        callback: Callable[[], Any],
        callback_time: float | datetime.timedelta,
        jitter: float = 0,
        io_loop: IOLoop | None = None,
    ) -> None:
        if isinstance(jitter, IOLoop) or io_loop is not None:
            # Tornado 2-4 took ``io_loop`` third; the loop is always the current one now.
            util.warn_deprecated_once("the io_loop argument", "nothing (the current IOLoop)")
            if isinstance(jitter, IOLoop):
                jitter = 0
        self.callback = callback
        if isinstance(callback_time, datetime.timedelta):
            self.callback_time = callback_time.total_seconds() * 1000
        else:
            if callback_time <= 0:
                raise ValueError("Periodic callback must have a positive callback_time")
            self.callback_time = float(callback_time)
        if self.callback_time <= 0:
            raise ValueError("Periodic callback must have a positive callback_time")
        self.jitter = jitter
        self._running = False
        self._timeout: asyncio.TimerHandle | None = None
        self._next_timeout = 0.0
        self.io_loop: IOLoop | None = None

    def start(self) -> None:
        """Start calling; the first run is one interval from now."""
        self.io_loop = IOLoop.current()
        self._running = True
        self._next_timeout = self.io_loop.asyncio_loop.time()
        self._schedule_next()

    def stop(self) -> None:
        """Stop calling; a run already in progress finishes."""
        self._running = False
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None

    def is_running(self) -> bool:
        return self._running

    def _run(self) -> None:
        self._timeout = None
        if not self._running:
            return
        try:
            result = self.callback()
        except Exception:
            app_log.error("Exception in callback %r", self.callback, exc_info=True)
            self._schedule_next()
            return
        if result is not None and isinstance(result, Awaitable):
            future = asyncio.ensure_future(result)
            future.add_done_callback(self._awaited)
        else:
            self._schedule_next()

    def _awaited(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            app_log.error("Exception in callback %r", self.callback, exc_info=future.exception())
        self._schedule_next()

    def _schedule_next(self) -> None:
        if not self._running or self.io_loop is None:
            return
        loop = self.io_loop.asyncio_loop
        if loop.is_closed():
            return
        interval = self.callback_time / 1000.0
        if self.jitter:
            interval *= 1 + self.jitter * (random.random() - 0.5)
        now = loop.time()
        if self._next_timeout <= now:
            # Skip every run whose time has passed; the next is the first one still ahead.
            missed = math.floor((now - self._next_timeout) / interval) + 1
            self._next_timeout += missed * interval
        else:
            # The timer fired a little early by the loop's clock (uvloop rounds to ms).
            self._next_timeout += interval
        self._timeout = loop.call_at(self._next_timeout, self._run)
