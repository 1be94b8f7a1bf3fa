"""asyncweb.queues: FIFO, priority and LIFO queues with Tornado's timeouts."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Generator
from typing import Any

import pytest

from asyncweb import gen, queues

SHORT = datetime.timedelta(milliseconds=10)


async def test_producer_consumer_with_join() -> None:
    queue: queues.Queue[int] = queues.Queue(maxsize=2)
    consumed: list[int] = []

    async def consumer() -> None:
        async for item in queue:
            await asyncio.sleep(0.001)
            consumed.append(item)
            queue.task_done()

    task = asyncio.ensure_future(consumer())
    for i in range(6):
        await queue.put(i)
    await queue.join(timeout=datetime.timedelta(seconds=5))
    assert consumed == list(range(6))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_timeouts_and_nowait_errors() -> None:
    queue: queues.Queue[str] = queues.Queue(maxsize=1)
    assert queue.empty() and not queue.full() and queue.maxsize == 1
    with pytest.raises(queues.QueueEmpty):
        queue.get_nowait()
    with pytest.raises(gen.TimeoutError):
        await queue.get(timeout=SHORT)
    queue.put_nowait("a")
    assert queue.full() and queue.qsize() == 1
    with pytest.raises(queues.QueueFull):
        queue.put_nowait("b")
    with pytest.raises(gen.TimeoutError):
        await queue.put("b", timeout=SHORT)
    # The timed-out put left nothing behind.
    assert queue.get_nowait() == "a"
    assert queue.empty()
    # QueueEmpty/QueueFull are also asyncio's.
    assert issubclass(queues.QueueEmpty, asyncio.QueueEmpty)
    with pytest.raises(ValueError):
        queues.Queue(-1)
    queue.task_done()
    with pytest.raises(ValueError):
        queue.task_done()
    with pytest.raises(gen.TimeoutError):
        queue.put_nowait("pending")
        await queue.join(timeout=SHORT)


async def test_waiting_putters_and_getters_hand_over() -> None:
    queue: queues.Queue[int] = queues.Queue(maxsize=1)
    getter = queue.get()
    queue.put_nowait(1)  # goes straight to the waiting getter
    assert await getter == 1
    queue.put_nowait(2)
    putter = queue.put(3)
    assert not putter.done()
    assert queue.get_nowait() == 2  # frees a slot: the waiting put goes in
    await asyncio.wait_for(putter, 20)
    assert queue.get_nowait() == 3
    assert "maxsize=1" in repr(queue)


async def test_priority_and_lifo_orders() -> None:
    priority: queues.PriorityQueue[tuple[int, str]] = queues.PriorityQueue()
    for item in [(3, "c"), (1, "a"), (2, "b")]:
        priority.put_nowait(item)
    assert [priority.get_nowait() for _ in range(3)] == [(1, "a"), (2, "b"), (3, "c")]
    lifo: queues.LifoQueue[int] = queues.LifoQueue()
    for i in range(3):
        await lifo.put(i)
    assert [await lifo.get() for _ in range(3)] == [2, 1, 0]


async def test_generator_coroutines_yield_queue_futures() -> None:
    queue: queues.Queue[int] = queues.Queue()

    @gen.coroutine
    def producer() -> Generator[Any, Any, None]:
        for i in range(3):
            yield queue.put(i)
            yield gen.sleep(0.001)

    @gen.coroutine
    def consumer() -> Generator[Any, Any, list[int]]:
        got = []
        for _ in range(3):
            got.append((yield queue.get(timeout=datetime.timedelta(seconds=5))))
        return got

    results = await gen.multi([consumer(), producer()])
    assert results[0] == [0, 1, 2]


async def test_repr_and_str_show_what_waits() -> None:
    q: queues.Queue[None] = queues.Queue(maxsize=1)
    assert hex(id(q)) in repr(q) and hex(id(q)) not in str(q)
    getter = q.get()
    assert "getters[1]" in str(q) and "putters" not in repr(q)
    q.put_nowait(None)
    await getter
    q.put_nowait(None)
    putter = q.put(None)
    assert "putters[1]" in repr(q) and "tasks=2" in str(q) and "getters" not in str(q)
    await q.get()
    await putter
