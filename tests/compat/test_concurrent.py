"""asyncweb.concurrent: futures are asyncio's; executors and cross-thread completion."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from typing import Any

import pytest

from asyncweb import concurrent as aw_concurrent
from asyncweb.concurrent import (
    DummyExecutor,
    Future,
    chain_future,
    future_add_done_callback,
    future_set_exc_info,
    future_set_exception_unless_cancelled,
    future_set_result_unless_cancelled,
    is_future,
    run_on_executor,
)


class Worker:
    def __init__(self) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(2)
        self._other = DummyExecutor()

    @run_on_executor
    def thread_name(self, suffix: str) -> str:
        return threading.current_thread().name + suffix

    @run_on_executor(executor="_other")
    def inline(self, value: int) -> int:
        return value * 2

    @run_on_executor
    def fail(self) -> None:
        raise ValueError("worker failed")


async def test_future_is_asyncio_future() -> None:
    assert Future is asyncio.Future
    assert is_future(asyncio.get_running_loop().create_future())
    assert is_future(concurrent.futures.Future())
    assert not is_future(object())


async def test_run_on_executor_runs_in_a_thread_and_returns_an_asyncio_future() -> None:
    worker = Worker()
    try:
        future = worker.thread_name("!")
        assert isinstance(future, asyncio.Future)
        name = await future
        assert name.endswith("!") and name != threading.current_thread().name + "!"
        assert await worker.inline(21) == 42
        with pytest.raises(ValueError, match="worker failed"):
            await worker.fail()
    finally:
        worker.executor.shutdown()


def test_run_on_executor_argument_errors() -> None:
    with pytest.raises(ValueError):
        run_on_executor(lambda self: None, executor="x")
    with pytest.raises(ValueError):
        run_on_executor(1, 2)


async def test_run_on_executor_needs_an_executor() -> None:
    class NoExecutor:
        executor = None

        @run_on_executor
        def work(self) -> None:
            pass

    with pytest.raises(TypeError, match="not an Executor"):
        NoExecutor().work()


async def test_chain_future_across_threads_and_kinds() -> None:
    loop = asyncio.get_running_loop()
    source: concurrent.futures.Future[int] = concurrent.futures.Future()
    target: asyncio.Future[int] = loop.create_future()
    chain_future(source, target)
    threading.Thread(target=source.set_result, args=(5,)).start()
    assert await asyncio.wait_for(target, 20) == 5

    failing: asyncio.Future[int] = loop.create_future()
    copy: asyncio.Future[int] = loop.create_future()
    chain_future(failing, copy)
    failing.set_exception(KeyError("k"))
    with pytest.raises(KeyError):
        await copy

    # A target that is already done keeps its own outcome.
    done_target: asyncio.Future[int] = loop.create_future()
    done_target.set_result(1)
    other: asyncio.Future[int] = loop.create_future()
    chain_future(other, done_target)
    other.set_result(2)
    await asyncio.sleep(0)
    assert done_target.result() == 1

    cancelled: asyncio.Future[int] = loop.create_future()
    follower: asyncio.Future[int] = loop.create_future()
    chain_future(cancelled, follower)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert follower.cancelled()


async def test_set_helpers_respect_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    future.cancel()
    future_set_result_unless_cancelled(future, 1)  # no InvalidStateError
    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        future_set_exception_unless_cancelled(future, ValueError("late"))
    assert "late" in caplog.text

    failed: asyncio.Future[int] = loop.create_future()
    try:
        raise OSError("from exc_info")
    except OSError:
        future_set_exc_info(failed, sys.exc_info())
    with pytest.raises(OSError, match="from exc_info"):
        await failed
    with pytest.raises(Exception, match="no exception"):
        future_set_exc_info(loop.create_future(), (None, None, None))


async def test_future_add_done_callback_runs_at_once_when_done() -> None:
    loop = asyncio.get_running_loop()
    calls: list[Any] = []
    done: asyncio.Future[int] = loop.create_future()
    done.set_result(3)
    future_add_done_callback(done, lambda f: calls.append(f.result()))
    assert calls == [3]  # synchronously
    pending: asyncio.Future[int] = loop.create_future()
    future_add_done_callback(pending, lambda f: calls.append(f.result()))
    pending.set_result(4)
    await asyncio.sleep(0)
    assert calls == [3, 4]


def test_dummy_executor_runs_inline() -> None:
    executor = aw_concurrent.dummy_executor
    assert executor.submit(lambda: threading.current_thread()).result() is (
        threading.current_thread()
    )
    failed = executor.submit(lambda: 1 / 0)
    assert isinstance(failed.exception(), ZeroDivisionError)
    executor.shutdown()
