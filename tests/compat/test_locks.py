"""asyncweb.locks: Condition, Event, Semaphore, BoundedSemaphore, Lock with real timers."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Generator
from typing import Any

import pytest

from asyncweb import gen, locks
from asyncweb.ioloop import IOLoop

SHORT = datetime.timedelta(milliseconds=10)


async def test_condition_notify_notify_all_and_timeout() -> None:
    condition = locks.Condition()
    woken: list[str] = []

    async def waiter(name: str) -> None:
        woken.append(f"{name}:{await condition.wait()}")

    tasks = [asyncio.ensure_future(waiter(n)) for n in "abc"]
    await asyncio.sleep(0)
    assert "waiters[3]" in repr(condition)
    condition.notify()
    await asyncio.sleep(0)
    assert woken == ["a:True"]
    condition.notify_all()
    await asyncio.gather(*tasks)
    assert woken == ["a:True", "b:True", "c:True"]
    # A timed-out wait resolves to False and is not woken later.
    assert await condition.wait(timeout=SHORT) is False
    deadline = IOLoop.current().time() + 0.01
    assert await condition.wait(timeout=deadline) is False
    condition.notify()  # nobody left: harmless


async def test_event_set_clear_wait_and_timeout() -> None:
    event = locks.Event()
    assert not event.is_set() and "clear" in repr(event)
    waiting = event.wait()
    with pytest.raises(gen.TimeoutError):
        await event.wait(timeout=SHORT)
    asyncio.get_running_loop().call_later(0.01, event.set)
    await asyncio.wait_for(waiting, 20)
    assert event.is_set()
    await event.wait()  # set: returns at once
    event.clear()
    assert not event.is_set()


async def test_semaphore_limits_concurrency_and_times_out() -> None:
    semaphore = locks.Semaphore(2)
    active = [0]
    most = [0]

    async def worker() -> None:
        async with semaphore:
            active[0] += 1
            most[0] = max(most[0], active[0])
            await asyncio.sleep(0.005)
            active[0] -= 1

    await asyncio.gather(*(worker() for _ in range(6)))
    assert most[0] == 2
    first = semaphore.acquire()
    second = semaphore.acquire()
    assert first.done() and second.done()  # resolved at once: nothing had to wait
    assert "locked" in repr(semaphore)
    with pytest.raises(gen.TimeoutError):
        await semaphore.acquire(timeout=SHORT)
    third = semaphore.acquire()
    semaphore.release()  # goes to the waiter, not to the timed-out one
    await asyncio.wait_for(third, 20)
    with pytest.raises(RuntimeError, match="async with"), semaphore:
        pass
    with pytest.raises(ValueError):
        locks.Semaphore(-1)


async def test_generator_coroutines_use_with_yield_acquire() -> None:
    semaphore = locks.Semaphore(1)
    order: list[str] = []

    @gen.coroutine
    def user(name: str) -> Generator[Any, Any, None]:
        with (yield semaphore.acquire()):
            order.append(f"{name} in")
            yield gen.sleep(0.005)
            order.append(f"{name} out")

    yield_users = [user("a"), user("b")]
    await asyncio.gather(*yield_users)
    assert order == ["a in", "a out", "b in", "b out"]


async def test_bounded_semaphore_refuses_extra_release() -> None:
    semaphore = locks.BoundedSemaphore(1)
    with pytest.raises(ValueError, match="too many"):
        semaphore.release()
    await semaphore.acquire()
    semaphore.release()


async def test_lock_is_exclusive_and_times_out() -> None:
    lock = locks.Lock()
    inside = [0]

    async def critical() -> None:
        async with lock:
            inside[0] += 1
            assert inside[0] == 1
            await asyncio.sleep(0.002)
            inside[0] -= 1

    await asyncio.gather(*(critical() for _ in range(5)))
    await lock.acquire()
    assert lock.locked()
    with pytest.raises(gen.TimeoutError):
        await lock.acquire(timeout=SHORT)
    # A cancelled acquire does not keep the lock once it is released.
    cancelled = lock.acquire()
    cancelled.cancel()
    lock.release()
    for _ in range(3):
        await asyncio.sleep(0)  # the cancellation reaches the lock on the next turns
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    with pytest.raises(RuntimeError), lock:
        pass
    assert "unlocked" in repr(lock)


@pytest.mark.parametrize("make", [locks.Semaphore, locks.Lock], ids=["Semaphore", "Lock"])
async def test_plain_with_is_refused_and_async_with_releases(make: Any) -> None:
    primitive = make()
    with pytest.raises(RuntimeError, match="async with"), primitive:
        pass
    async with primitive:
        pass
    # Released: acquiring again does not wait.
    await asyncio.wait_for(primitive.acquire(), 20)
    primitive.release()
