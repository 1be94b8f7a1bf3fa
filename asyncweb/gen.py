"""Generator-based coroutines and the callback-era helpers, on asyncio tasks.

``@gen.coroutine`` runs a generator function: each value it yields (a future, an awaitable,
a list or dict of them, ``None`` or ``gen.moment``) is awaited and the result sent back in.
The decorated function returns an ``asyncio.Future``. The first step runs synchronously, as in
Tornado, so code before the first ``yield`` has run when the call returns.

The Tornado 2/3 APIs (``engine``, ``Task``, ``Callback``/``Wait``/``WaitAll``) work too,
with one ``DeprecationWarning`` each.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime
import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from asyncweb import util
from asyncweb.concurrent import Future as Future  # gen.Future was a common import
from asyncweb.concurrent import chain_future, future_set_result_unless_cancelled
from asyncweb.log import app_log

_T = TypeVar("_T")

TimeoutError = util.TimeoutError

__all__ = [
    "Arguments",
    "BadYieldError",
    "Callback",
    "KeyReuseError",
    "LeakedCallbackError",
    "Return",
    "Task",
    "TimeoutError",
    "UnknownKeyError",
    "Wait",
    "WaitAll",
    "WaitIterator",
    "YieldPoint",
    "convert_yielded",
    "coroutine",
    "engine",
    "is_coroutine_function",
    "maybe_future",
    "moment",
    "multi",
    "multi_future",
    "sleep",
    "with_timeout",
]


class KeyReuseError(Exception):
    """A ``gen.Callback`` key was registered twice."""


class UnknownKeyError(Exception):
    """``gen.Wait`` named a key no ``gen.Callback`` registered."""


class LeakedCallbackError(Exception):
    """A coroutine finished while a ``gen.Callback`` it made was never waited for."""


class BadYieldError(Exception):
    """A coroutine yielded something that cannot be waited for."""


class Return(Exception):
    """``raise gen.Return(value)``: the result of a generator coroutine (``return value``
    does the same on Python 3)."""

    def __init__(self, value: Any = None) -> None:
        super().__init__()
        self.value = value
        self.args = (value,)


class Arguments(NamedTuple):
    """What a legacy callback received when it got more than one argument."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _callback_value(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if kwargs or len(args) > 1:
        return Arguments(args, kwargs)
    return args[0] if args else None


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        from asyncweb.ioloop import IOLoop

        return IOLoop.current().asyncio_loop


# -- moment ------------------------------------------------------------------------------------


class _Moment:
    """Yield (or await) this to let the loop run other callbacks for one iteration."""

    def __await__(self) -> Generator[None, None, None]:
        yield None  # a bare yield makes an asyncio task reschedule itself

    def __repr__(self) -> str:
        return "gen.moment"


moment = _Moment()


# -- converting what a coroutine yields ------------------------------------------------------


class YieldPoint:
    """Base of the legacy objects a coroutine can yield (``Callback``, ``Wait``, ``WaitAll``).

    The runner calls :meth:`start` with itself, then awaits :meth:`get_result`.
    """

    def start(self, runner: _Runner) -> None:
        raise NotImplementedError()

    async def get_result(self) -> Any:
        raise NotImplementedError()


@functools.singledispatch
def convert_yielded(yielded: Any) -> Awaitable[Any]:
    """Turn what a coroutine yields into something ``await`` takes (a future).

    Extend with ``convert_yielded.register(MyType)`` for other awaitable-like types.
    """
    if yielded is None or yielded is moment:
        return moment
    if isinstance(yielded, (list, dict)):
        return multi(yielded)
    if isinstance(yielded, concurrent.futures.Future):
        return asyncio.wrap_future(yielded, loop=_loop())
    if asyncio.isfuture(yielded):
        return yielded
    if inspect.isawaitable(yielded):
        return asyncio.ensure_future(yielded, loop=_loop())
    raise BadYieldError(f"yielded unknown object {yielded!r}")


def maybe_future(x: Any) -> asyncio.Future[Any]:
    """``x`` if it is a future, else a future already resolved to ``x`` (deprecated)."""
    util.warn_deprecated_once("gen.maybe_future", "await, or asyncio.ensure_future")
    if asyncio.isfuture(x):
        return x
    if isinstance(x, concurrent.futures.Future):
        return asyncio.wrap_future(x, loop=_loop())
    future: asyncio.Future[Any] = _loop().create_future()
    future.set_result(x)
    return future


def is_coroutine_function(func: Any) -> bool:
    """True for a ``@gen.coroutine`` function or a native ``async def`` one."""
    return bool(getattr(func, "__tornado_coroutine__", False)) or inspect.iscoroutinefunction(func)


# -- the runner ----------------------------------------------------------------------------------


class _Runner:
    """Drives one generator: sends results in, throws exceptions in, until it returns."""

    def __init__(self, gen: Generator[Any, Any, Any]) -> None:
        self.gen = gen
        self.pending_callbacks: dict[Any, asyncio.Future[Any]] = {}

    def step(self, value: Any = None, error: BaseException | None = None) -> tuple[bool, Any]:
        """Advance the generator once: (finished, its result) or (False, what it yielded)."""
        try:
            yielded = self.gen.throw(error) if error is not None else self.gen.send(value)
        except (StopIteration, Return) as done:
            return True, done.value
        return False, yielded

    async def run(self, yielded: Any) -> Any:
        while True:
            value: Any = None
            error: BaseException | None = None
            try:
                value = await self.resolve(yielded)
            except Exception as err:
                error = err
            except asyncio.CancelledError as err:
                # Cancelling the coroutine's future throws into the generator, like Tornado.
                error = err
            finished, result = self.step(value, error)
            if finished:
                if self.pending_callbacks:
                    raise LeakedCallbackError(
                        f"finished without waiting for callbacks {list(self.pending_callbacks)}"
                    )
                return result
            yielded = result

    async def resolve(self, yielded: Any) -> Any:
        if isinstance(yielded, YieldPoint):
            yielded.start(self)
            return await yielded.get_result()
        if isinstance(yielded, (list, dict)) and any(
            isinstance(item, YieldPoint)
            for item in (yielded.values() if isinstance(yielded, dict) else yielded)
        ):
            if isinstance(yielded, dict):
                return {key: await self.resolve(item) for key, item in yielded.items()}
            return [await self.resolve(item) for item in yielded]
        return await convert_yielded(yielded)

    def register_callback(self, key: Any) -> asyncio.Future[Any]:
        if key in self.pending_callbacks:
            raise KeyReuseError(f"key {key!r} is already pending")
        future: asyncio.Future[Any] = _loop().create_future()
        self.pending_callbacks[key] = future
        return future

    def pop_callback(self, key: Any) -> asyncio.Future[Any]:
        try:
            return self.pending_callbacks.pop(key)
        except KeyError:
            raise UnknownKeyError(f"key {key!r} is not pending") from None


def _start(func: Callable[..., Any], args: Any, kwargs: Any) -> asyncio.Future[Any]:
    """Call ``func``; run the generator it returns up to its first yield, then on a task."""
    loop = _loop()
    future: asyncio.Future[Any] = loop.create_future()
    try:
        result = func(*args, **kwargs)
    except (Return, StopIteration) as done:
        future.set_result(done.value)
        return future
    except Exception as err:
        future.set_exception(err)
        return future
    except asyncio.CancelledError:
        future.cancel()  # as a Task raising CancelledError ends cancelled
        return future
    if isinstance(result, types.GeneratorType):
        runner = _Runner(result)
        try:
            finished, value = runner.step()
            # Futures that are already done are answered at once, without a loop iteration
            # (as Tornado's runner does): the coroutine runs on until it really waits.
            while not finished and isinstance(value, asyncio.Future) and value.done():
                if value.cancelled() or value.exception() is not None:
                    error = asyncio.CancelledError() if value.cancelled() else value.exception()
                    finished, value = runner.step(None, error)
                else:
                    finished, value = runner.step(value.result())
        except Exception as err:
            future.set_exception(err)
            return future
        except asyncio.CancelledError:
            future.cancel()
            return future
        if finished:
            future.set_result(value)
            return future
        task = loop.create_task(runner.run(value))
        chain_future(task, future)
        # Cancelling the returned future cancels the generator's task.
        future.add_done_callback(lambda f: task.cancel() if f.cancelled() else None)
        return future
    if inspect.isawaitable(result):
        return asyncio.ensure_future(result, loop=loop)
    future.set_result(result)
    return future


def coroutine(func: Callable[..., Any]) -> Callable[..., asyncio.Future[Any]]:
    """Decorator for generator-based coroutines; the call returns an ``asyncio.Future``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        callback = kwargs.pop("callback", None)
        future = _start(func, args, kwargs)
        if callback is not None:
            # Tornado 3-5: a coroutine also reported its result to ``callback=``.
            util.warn_deprecated_once("the callback argument of coroutines", "await the result")

            def report(done: asyncio.Future[Any]) -> None:
                if not done.cancelled() and done.exception() is None:
                    from asyncweb.ioloop import IOLoop

                    IOLoop.current().add_callback(callback, done.result())

            future.add_done_callback(report)
        return future

    wrapper.__tornado_coroutine__ = True  # type: ignore[attr-defined]
    return wrapper


def engine(func: Callable[..., Any]) -> Callable[..., None]:
    """Tornado 2/3's callback-style coroutine: returns nothing; errors are logged.

    Deprecated: use ``@gen.coroutine`` or ``async def``.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        util.warn_deprecated_once("gen.engine", "gen.coroutine or async def")
        future = _start(func, args, kwargs)

        def report(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                return
            if done.exception() is not None:
                app_log.error("Exception in gen.engine %r", func, exc_info=done.exception())
            elif done.result() is not None:
                app_log.error("gen.engine function %r returned a value; use coroutine", func)

        future.add_done_callback(report)

    return wrapper


# -- legacy yield points -------------------------------------------------------------------------


class Callback(YieldPoint):
    """``yield gen.Callback(key)`` returns a callback; ``yield gen.Wait(key)`` its argument.

    Deprecated: use ``Future`` objects (or ``gen.Task``).
    """

    def __init__(self, key: Any) -> None:
        util.warn_deprecated_once("gen.Callback", "futures and gen.multi")
        self.key = key

    def start(self, runner: _Runner) -> None:
        self.future = runner.register_callback(self.key)

    async def get_result(self) -> Callable[..., None]:
        future = self.future

        def callback(*args: Any, **kwargs: Any) -> None:
            value = _callback_value(args, kwargs)
            loop = future.get_loop()
            loop.call_soon_threadsafe(future_set_result_unless_cancelled, future, value)

        return callback


class Wait(YieldPoint):
    """Wait for the callback registered with ``gen.Callback(key)``; deprecated."""

    def __init__(self, key: Any) -> None:
        util.warn_deprecated_once("gen.Wait", "futures and await")
        self.key = key

    def start(self, runner: _Runner) -> None:
        self.future = runner.pop_callback(self.key)

    async def get_result(self) -> Any:
        return await self.future


class WaitAll(YieldPoint):
    """Wait for several ``gen.Callback`` keys; the results come back as a list. Deprecated."""

    def __init__(self, keys: Sequence[Any]) -> None:
        util.warn_deprecated_once("gen.WaitAll", "gen.multi")
        self.keys = list(keys)

    def start(self, runner: _Runner) -> None:
        self.futures = [runner.pop_callback(key) for key in self.keys]

    async def get_result(self) -> list[Any]:
        return [await future for future in self.futures]


def Task(func: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """Call a callback-style function (``func(*args, callback=cb)``) and return a future
    of what it passes ``cb``. Deprecated: make ``func`` return a future instead."""
    util.warn_deprecated_once("gen.Task", "functions that return futures (async def)")
    loop = _loop()
    future: asyncio.Future[Any] = loop.create_future()

    def callback(*cb_args: Any, **cb_kwargs: Any) -> None:
        value = _callback_value(cb_args, cb_kwargs)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            future_set_result_unless_cancelled(future, value)
        else:
            loop.call_soon_threadsafe(future_set_result_unless_cancelled, future, value)

    try:
        func(*args, callback=callback, **kwargs)
    except Exception as err:
        if not future.done():
            future.set_exception(err)
    return future


# -- combining futures ---------------------------------------------------------------------------


def multi(
    children: Sequence[Any] | Mapping[Any, Any],
    quiet_exceptions: type[Exception] | tuple[type[Exception], ...] = (),
) -> asyncio.Future[Any]:
    """Wait for every child (awaitables, futures) in a list or dict; results in the same shape.

    If several fail, the first failure is raised and the others are logged unless they are
    instances of ``quiet_exceptions``.
    """
    return multi_future(children, quiet_exceptions=quiet_exceptions)


def multi_future(
    children: Sequence[Any] | Mapping[Any, Any],
    quiet_exceptions: type[Exception] | tuple[type[Exception], ...] = (),
) -> asyncio.Future[Any]:
    """:func:`multi`, under its older name."""
    loop = _loop()
    keys: list[Any] | None
    if isinstance(children, Mapping):
        keys = list(children.keys())
        items = list(children.values())
    else:
        keys = None
        items = list(children)
    futures = [_as_future(convert_yielded(item), loop) for item in items]
    result: asyncio.Future[Any] = loop.create_future()
    if not futures:
        result.set_result({} if keys is not None else [])
        return result
    remaining = set(futures)

    def child_done(child: asyncio.Future[Any]) -> None:
        remaining.discard(child)
        if remaining:
            return
        values: list[Any] = []
        for future in futures:
            try:
                values.append(future.result())
            except Exception as err:
                if result.done():
                    if not isinstance(err, quiet_exceptions):
                        app_log.error("Multiple exceptions in yield list", exc_info=err)
                else:
                    result.set_exception(err)
            except asyncio.CancelledError as err:
                # As asyncio.gather: the error is CancelledError, the multi future itself
                # is not cancelled.
                if not result.done():
                    result.set_exception(err)
        if not result.done():
            result.set_result(dict(zip(keys, values, strict=True)) if keys is not None else values)

    for future in set(futures):
        future.add_done_callback(child_done)
    return result


# Tornado's older name for multi.
Multi = multi


def _as_future(awaitable: Awaitable[Any], loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    if isinstance(awaitable, _Moment):
        future: asyncio.Future[Any] = loop.create_future()
        loop.call_soon(future_set_result_unless_cancelled, future, None)
        return future
    return asyncio.ensure_future(awaitable, loop=loop)


def _seconds_until(timeout: float | datetime.timedelta) -> float:
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    from asyncweb.ioloop import IOLoop

    return float(timeout) - IOLoop.current().time()


def with_timeout(
    timeout: float | datetime.timedelta,
    future: Any,
    quiet_exceptions: type[Exception] | tuple[type[Exception], ...] = (),
    *,
    message: str | Callable[[], str] | None = None,
) -> asyncio.Future[Any]:
    """A future for ``future``'s outcome that fails with ``gen.TimeoutError`` at ``timeout``.

    ``timeout`` is an absolute ``IOLoop.time()`` deadline or a ``timedelta``. As in Tornado
    the wrapped future is not cancelled on timeout; if it fails later, the failure is logged
    unless it is one of ``quiet_exceptions``. ``message`` (text, or a function called only
    on timeout) is the error's message instead of "Timeout".
    """
    loop = _loop()
    inner = _as_future(convert_yielded(future), loop)
    result: asyncio.Future[Any] = loop.create_future()

    def on_timeout() -> None:
        if result.done():
            return
        text = message() if callable(message) else message
        result.set_exception(TimeoutError(text if text is not None else "Timeout"))

        def log_late_failure(late: asyncio.Future[Any]) -> None:
            if late.cancelled():
                return
            err = late.exception()
            if err is not None and not isinstance(err, quiet_exceptions):
                app_log.error("Exception in Future %r after timeout", late, exc_info=err)

        inner.add_done_callback(log_late_failure)

    handle = loop.call_later(max(0.0, _seconds_until(timeout)), on_timeout)

    def on_done(done: asyncio.Future[Any]) -> None:
        handle.cancel()
        if not result.done():
            chain_future(done, result)

    inner.add_done_callback(on_done)
    return result


def sleep(duration: float) -> asyncio.Future[None]:
    """A future that resolves after ``duration`` seconds (``yield gen.sleep(0.5)``)."""
    loop = _loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.call_later(duration, future_set_result_unless_cancelled, future, None)
    return future


class WaitIterator:
    """Iterate over futures in the order they finish.

    ``while not it.done(): result = yield it.next()`` (or ``async for result in it``);
    ``current_index`` and ``current_future`` tell which one just finished. A failed future
    raises its exception from ``next()``; the iterator can go on afterwards.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("You must provide args or kwargs, not both")
        loop = _loop()
        self._keys: list[Any] = list(kwargs.keys()) if kwargs else list(range(len(args)))
        items = list(kwargs.values()) if kwargs else list(args)
        # Positions, not futures, are tracked: the same future may be given twice.
        self._futures = [_as_future(convert_yielded(item), loop) for item in items]
        self._unfinished: set[int] = set(range(len(self._futures)))
        self._finished: collections.deque[int] = collections.deque()
        self.current_index: Any = None
        self.current_future: asyncio.Future[Any] | None = None
        self._running_future: asyncio.Future[Any] | None = None
        for position, future in enumerate(self._futures):
            future.add_done_callback(functools.partial(self._done_callback, position))

    def done(self) -> bool:
        """True when every future has been returned by :meth:`next`."""
        if self._finished or self._unfinished:
            return False
        self.current_index = self.current_future = None
        return True

    def next(self) -> asyncio.Future[Any]:
        """A future for the outcome of the next future to finish."""
        self._running_future = _loop().create_future()
        if self._finished:
            self._return_result(self._finished.popleft())
        return self._running_future

    def _done_callback(self, position: int, done: asyncio.Future[Any]) -> None:
        if self._running_future is not None and not self._running_future.done():
            self._return_result(position)
        else:
            self._finished.append(position)

    def _return_result(self, position: int) -> None:
        assert self._running_future is not None
        future = self._futures[position]
        chain_future(future, self._running_future)
        self.current_future = future
        self.current_index = self._keys[position]
        self._unfinished.discard(position)

    def __aiter__(self) -> WaitIterator:
        return self

    async def __anext__(self) -> Any:
        if self.done():
            raise StopAsyncIteration
        return await self.next()
