"""Futures, named as in ``tornado.concurrent``: a Tornado ``Future`` *is* an ``asyncio.Future``.

Helpers here accept both asyncio futures and ``concurrent.futures.Future`` (from executors,
possibly finished on another thread) and always deliver results on the asyncio loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import types
from collections.abc import Callable
from typing import Any, TypeVar

from asyncweb.log import app_log

_T = TypeVar("_T")

Future = asyncio.Future
FUTURES = (asyncio.Future, concurrent.futures.Future)


class ReturnValueIgnoredError(Exception):
    """Kept for code that imports it; nothing in asyncweb raises it."""


def is_future(x: Any) -> bool:
    """True for an asyncio or a ``concurrent.futures`` future."""
    return isinstance(x, FUTURES)


class DummyExecutor(concurrent.futures.Executor):
    """An executor that runs each function at once, in the calling thread."""

    def submit(  # type: ignore[override]
        self, fn: Callable[..., _T], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        try:
            future_set_result_unless_cancelled(future, fn(*args, **kwargs))
        except Exception as err:
            future.set_exception(err)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


dummy_executor = DummyExecutor()


def _current_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        from asyncweb.ioloop import IOLoop

        return IOLoop.current().asyncio_loop


def run_on_executor(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Decorate a method to run it on ``self.executor`` and return an asyncio future.

    ``@run_on_executor(executor="_pool")`` names another attribute holding the executor.
    """

    def decorate(method: Callable[..., Any], executor_attr: str = "executor") -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, *call_args: Any, **call_kwargs: Any) -> asyncio.Future[Any]:
            executor = getattr(self, executor_attr)
            if not isinstance(executor, concurrent.futures.Executor):
                raise TypeError(f"{type(self).__name__}.{executor_attr} is not an Executor")
            inner = executor.submit(method, self, *call_args, **call_kwargs)
            outer: asyncio.Future[Any] = _current_loop().create_future()
            chain_future(inner, outer)
            return outer

        return wrapper

    if args and kwargs:
        raise ValueError("cannot combine positional and keyword args")
    if len(args) == 1:
        decorated: Callable[..., Any] = decorate(args[0])
        return decorated
    if args:
        raise ValueError(f"expected 1 argument, got {len(args)}")
    unknown = set(kwargs) - {"executor"}
    if unknown:
        raise ValueError(f"unexpected arguments {sorted(unknown)}")
    executor_attr = kwargs.get("executor", "executor")
    return lambda method: decorate(method, executor_attr)


def _copy_outcome(source: Any, target: Any) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


def chain_future(a: Any, b: Any) -> None:
    """When future ``a`` is done, give its outcome to ``b`` (unless ``b`` is already done).

    Either may be an asyncio or a ``concurrent.futures`` future; an asyncio ``b`` is
    completed on its own loop, whichever thread ``a`` finishes in.
    """

    def copy(done: Any) -> None:
        if isinstance(b, asyncio.Future):
            loop = b.get_loop()
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(_copy_outcome, done, b)
                return
        _copy_outcome(done, b)

    future_add_done_callback(a, copy)


def future_set_result_unless_cancelled(future: Any, value: Any) -> None:
    """``future.set_result(value)``, unless the future was cancelled meanwhile."""
    if not future.cancelled():
        future.set_result(value)


def future_set_exception_unless_cancelled(future: Any, exc: BaseException) -> None:
    """Set ``exc`` on ``future``; when it was cancelled, log ``exc`` instead of losing it."""
    if not future.cancelled():
        future.set_exception(exc)
    else:
        app_log.error("Exception after Future was cancelled", exc_info=exc)


def future_set_exc_info(
    future: Any,
    exc_info: tuple[type[BaseException] | None, BaseException | None, types.TracebackType | None],
) -> None:
    """Set the exception of a ``sys.exc_info()`` triple on ``future``."""
    if exc_info[1] is None:
        raise Exception("future_set_exc_info called with no exception")
    future_set_exception_unless_cancelled(future, exc_info[1])


def future_add_done_callback(future: Any, callback: Callable[[Any], None]) -> None:
    """``callback(future)`` when done; at once (not on the next loop turn) if already done."""
    if future.done():
        callback(future)
    else:
        future.add_done_callback(callback)
