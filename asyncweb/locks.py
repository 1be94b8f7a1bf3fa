"""Coroutine synchronisation primitives with Tornado's API (and its ``timeout=`` arguments).

Each waiting method returns a future at once (already resolved when nothing has to wait), so
``yield lock.acquire()`` in a generator coroutine and ``await lock.acquire()`` both work.
A ``timeout`` is an absolute ``IOLoop.time()`` deadline or a ``datetime.timedelta``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import types
from collections.abc import Awaitable, Callable
from typing import Any

from asyncweb import gen
from asyncweb.concurrent import future_set_result_unless_cancelled

__all__ = ["BoundedSemaphore", "Condition", "Event", "Lock", "Semaphore"]

Timeout = float | datetime.timedelta | None


def _arm_timeout(
    future: asyncio.Future[Any], timeout: Timeout, on_timeout: Any = None
) -> asyncio.TimerHandle | None:
    """Fail ``future`` with ``gen.TimeoutError`` (or call ``on_timeout``) at ``timeout``."""
    if timeout is None:
        return None

    def expire() -> None:
        if future.done():
            return
        if on_timeout is not None:
            on_timeout()
        else:
            future.set_exception(gen.TimeoutError())

    handle = future.get_loop().call_later(max(0.0, gen._seconds_until(timeout)), expire)
    future.add_done_callback(lambda _f: handle.cancel())
    return handle


class _TimeoutGarbageCollector:
    """Holds waiters; drops the ones that timed out or were cancelled now and then."""

    def __init__(self) -> None:
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._timeouts = 0

    def _garbage_collect(self) -> None:
        self._timeouts += 1
        if self._timeouts > 100:
            self._timeouts = 0
            self._waiters = collections.deque(w for w in self._waiters if not w.done())


class Condition(_TimeoutGarbageCollector):
    """Coroutines ``wait()`` until another ``notify()``-s them.

    ``wait(timeout)`` resolves to True when notified, False when the timeout passed first.
    """

    def __repr__(self) -> str:
        waiting = f" waiters[{len(self._waiters)}]" if self._waiters else ""
        return f"<{type(self).__name__}{waiting}>"

    def wait(self, timeout: Timeout = None) -> asyncio.Future[bool]:
        waiter: asyncio.Future[bool] = gen._loop().create_future()
        self._waiters.append(waiter)

        def on_timeout() -> None:
            waiter.set_result(False)
            self._garbage_collect()

        _arm_timeout(waiter, timeout, on_timeout)
        return waiter

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters."""
        woken = []
        while n and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                n -= 1
                woken.append(waiter)
        for waiter in woken:
            future_set_result_unless_cancelled(waiter, True)

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


class Event:
    """A flag coroutines can wait for: ``wait()`` resolves once ``set()`` is called."""

    def __init__(self) -> None:
        self._value = False
        self._waiters: set[asyncio.Future[None]] = set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'set' if self.is_set() else 'clear'}>"

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiter; later ``wait()`` calls return at once."""
        if not self._value:
            self._value = True
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    def wait(self, timeout: Timeout = None) -> asyncio.Future[None]:
        """Resolve when the flag is set; fail with ``gen.TimeoutError`` at ``timeout``."""
        waiter: asyncio.Future[None] = gen._loop().create_future()
        if self._value:
            waiter.set_result(None)
            return waiter
        self._waiters.add(waiter)
        waiter.add_done_callback(self._waiters.discard)
        _arm_timeout(waiter, timeout)
        return waiter


class _ReleasingContextManager:
    """What ``acquire()`` resolves to: ``with (yield sem.acquire()):`` releases on exit."""

    def __init__(self, obj: Semaphore | Lock) -> None:
        self._obj = obj

    def __enter__(self) -> None:
        pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: types.TracebackType | None,
    ) -> None:
        self._obj.release()


class _AsyncWithOnly:
    """``async with`` acquires and releases; a plain ``with`` raises ``_with_error``."""

    _with_error: str
    acquire: Callable[[], Awaitable[Any]]
    release: Callable[[], None]

    def __enter__(self) -> None:
        raise RuntimeError(self._with_error)

    def __exit__(self, *args: Any) -> None:
        self.__enter__()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *args: Any) -> None:
        self.release()


class Semaphore(_AsyncWithOnly, _TimeoutGarbageCollector):
    """A counter: ``acquire()`` waits while it is zero, ``release()`` increments it.

    Use ``async with sem:`` (or, in generator coroutines, ``with (yield sem.acquire()):``).
    """

    _with_error = "Use 'async with' instead of 'with' for Semaphore"

    def __init__(self, value: int = 1) -> None:
        super().__init__()
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value

    def __repr__(self) -> str:
        state = "locked" if self._value == 0 else f"unlocked,value:{self._value}"
        waiting = f",waiters:{len(self._waiters)}" if self._waiters else ""
        return f"<{type(self).__name__} [{state}{waiting}]>"

    def release(self) -> None:
        self._value += 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._value -= 1
                waiter.set_result(_ReleasingContextManager(self))
                break

    def acquire(self, timeout: Timeout = None) -> asyncio.Future[_ReleasingContextManager]:
        """Decrement the counter, waiting while it is zero (``gen.TimeoutError`` at timeout)."""
        waiter: asyncio.Future[_ReleasingContextManager] = gen._loop().create_future()
        if self._value > 0:
            self._value -= 1
            waiter.set_result(_ReleasingContextManager(self))
            return waiter
        self._waiters.append(waiter)

        def on_timeout() -> None:
            waiter.set_exception(gen.TimeoutError())
            self._garbage_collect()

        _arm_timeout(waiter, timeout, on_timeout)
        return waiter


class BoundedSemaphore(Semaphore):
    """A semaphore that refuses to be released above its initial value (ValueError)."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value=value)
        self._initial_value = value

    def release(self) -> None:
        if self._value >= self._initial_value:
            raise ValueError("Semaphore released too many times")
        super().release()


class Lock(_AsyncWithOnly):
    """A coroutine mutex: ``async with lock:``; ``release()`` of an unlocked lock raises."""

    _with_error = "Use `async with` instead of `with` for Lock"

    def __init__(self) -> None:
        self._block = BoundedSemaphore(value=1)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} _block={self._block}>"

    def acquire(self, timeout: Timeout = None) -> asyncio.Future[_ReleasingContextManager]:
        waiter: asyncio.Future[_ReleasingContextManager] = gen._loop().create_future()
        inner = self._block.acquire(timeout)

        def done(acquired: asyncio.Future[_ReleasingContextManager]) -> None:
            if waiter.cancelled():
                if not acquired.cancelled() and acquired.exception() is None:
                    self.release()
            elif acquired.cancelled():
                waiter.cancel()
            elif acquired.exception() is not None:
                waiter.set_exception(acquired.exception())  # type: ignore[arg-type]
            else:
                waiter.set_result(_ReleasingContextManager(self))

        if inner.done():
            done(inner)
        else:
            inner.add_done_callback(done)
            waiter.add_done_callback(lambda w: inner.cancel() if w.cancelled() else None)
        return waiter

    def release(self) -> None:
        try:
            self._block.release()
        except ValueError:
            raise RuntimeError("release unlocked lock") from None

    def locked(self) -> bool:
        return self._block._value == 0
