"""Coroutine queues with Tornado's API: ``put``/``get`` return futures and take ``timeout=``.

``timeout`` is an absolute ``IOLoop.time()`` deadline or a ``datetime.timedelta``; when it
passes, the future fails with ``gen.TimeoutError``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import heapq
from typing import Any, Generic, TypeVar

from asyncweb import gen
from asyncweb.concurrent import future_set_result_unless_cancelled
from asyncweb.locks import Event, _arm_timeout

__all__ = ["LifoQueue", "PriorityQueue", "Queue", "QueueEmpty", "QueueFull"]

_T = TypeVar("_T")
Timeout = float | datetime.timedelta | None


class QueueEmpty(asyncio.QueueEmpty):
    """Raised by ``get_nowait`` when the queue has no items."""


class QueueFull(asyncio.QueueFull):
    """Raised by ``put_nowait`` when the queue is at its maxsize."""


class _QueueIterator(Generic[_T]):
    def __init__(self, queue: Queue[_T]) -> None:
        self.queue = queue

    def __anext__(self) -> asyncio.Future[_T]:
        return self.queue.get()


class Queue(Generic[_T]):
    """A FIFO queue of at most ``maxsize`` items (0 means unbounded).

    ``put`` waits while the queue is full, ``get`` while it is empty; ``task_done`` and
    ``join`` track when every item taken has been processed. ``async for item in q`` takes
    items forever.
    """

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize is None:
            raise TypeError("maxsize can't be None")
        if maxsize < 0:
            raise ValueError("maxsize can't be negative")
        self._maxsize = maxsize
        self._init()
        self._getters: collections.deque[asyncio.Future[_T]] = collections.deque()
        self._putters: collections.deque[tuple[_T, asyncio.Future[None]]] = collections.deque()
        self._unfinished_tasks = 0
        self._finished = Event()
        self._finished.set()

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def qsize(self) -> int:
        return len(self._queue)

    def empty(self) -> bool:
        return not self._queue

    def full(self) -> bool:
        return 0 < self._maxsize <= self.qsize()

    def put(self, item: _T, timeout: Timeout = None) -> asyncio.Future[None]:
        """Put ``item``, waiting while the queue is full."""
        future: asyncio.Future[None] = gen._loop().create_future()
        try:
            self.put_nowait(item)
        except QueueFull:
            self._putters.append((item, future))
            _arm_timeout(future, timeout)
        else:
            future.set_result(None)
        return future

    def put_nowait(self, item: _T) -> None:
        """Put ``item`` now, or raise :class:`QueueFull`."""
        self._consume_expired()
        if self._getters:
            assert self.empty(), "queue non-empty, why are getters waiting?"
            getter = self._getters.popleft()
            self.__put_internal(item)
            future_set_result_unless_cancelled(getter, self._get())
        elif self.full():
            raise QueueFull
        else:
            self.__put_internal(item)

    def get(self, timeout: Timeout = None) -> asyncio.Future[_T]:
        """Take an item, waiting while the queue is empty."""
        future: asyncio.Future[_T] = gen._loop().create_future()
        try:
            future.set_result(self.get_nowait())
        except QueueEmpty:
            self._getters.append(future)
            _arm_timeout(future, timeout)
        return future

    def get_nowait(self) -> _T:
        """Take an item now, or raise :class:`QueueEmpty`."""
        self._consume_expired()
        if self._putters:
            assert self.full(), "queue not full, why are putters waiting?"
            item, putter = self._putters.popleft()
            self.__put_internal(item)
            future_set_result_unless_cancelled(putter, None)
            return self._get()
        if self.qsize():
            return self._get()
        raise QueueEmpty

    def task_done(self) -> None:
        """Mark one taken item as processed; ``join()`` resolves when none are left."""
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0:
            self._finished.set()

    def join(self, timeout: Timeout = None) -> asyncio.Future[None]:
        """Resolve once every item put has been taken and marked ``task_done``."""
        return self._finished.wait(timeout)

    def __aiter__(self) -> _QueueIterator[_T]:
        return _QueueIterator(self)

    # Overridden by subclasses for other orders.
    def _init(self) -> None:
        self._queue: Any = collections.deque()

    def _get(self) -> _T:
        item: _T = self._queue.popleft()
        return item

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def __put_internal(self, item: _T) -> None:
        self._unfinished_tasks += 1
        self._finished.clear()
        self._put(item)

    def _consume_expired(self) -> None:
        # Waiters that timed out or were cancelled stay in the deques until seen here.
        while self._putters and self._putters[0][1].done():
            self._putters.popleft()
        while self._getters and self._getters[0].done():
            self._getters.popleft()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {hex(id(self))} {self._format()}>"

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        # What is waiting on the queue, as Tornado shows it (handy when a program hangs).
        parts = [f"maxsize={self.maxsize!r}"]
        if getattr(self, "_queue", None):
            parts.append(f"queue={self._queue!r}")
        if self._getters:
            parts.append(f"getters[{len(self._getters)}]")
        if self._putters:
            parts.append(f"putters[{len(self._putters)}]")
        if self._unfinished_tasks:
            parts.append(f"tasks={self._unfinished_tasks}")
        return " ".join(parts)


class PriorityQueue(Queue[_T]):
    """Items come out lowest first (usually ``(priority, item)`` tuples)."""

    def _init(self) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        heapq.heappush(self._queue, item)

    def _get(self) -> _T:
        item: _T = heapq.heappop(self._queue)
        return item


class LifoQueue(Queue[_T]):
    """Items come out most recently put first."""

    def _init(self) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _get(self) -> _T:
        item: _T = self._queue.pop()
        return item
