"""asyncweb.ioloop.IOLoop against Tornado 6's documented behaviour.

Tests that start a loop (``start()``, ``run_sync()``) run it in a fresh thread through
``in_thread``, so they never touch the event loop pytest-asyncio keeps for async tests, and
each one closes its loop: a thread's current IOLoop dies with the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from asyncweb import ioloop as ioloop_module
from asyncweb import util
from asyncweb.ioloop import IOLoop

_T = TypeVar("_T")

uvloop: Any
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is part of the "speed" extra
    uvloop = None


def in_thread(func: Callable[[], _T], timeout: float = 10.0) -> _T:
    """Run ``func`` in a new thread and return its result (or raise its exception)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = func()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the loop thread did not finish"
    if "error" in outcome:
        raise outcome["error"]
    result: _T = outcome["result"]
    return result


def with_loop(body: Callable[[IOLoop], _T]) -> _T:
    """Run ``body(io_loop)`` in a new thread with that thread's current IOLoop, then close it."""

    def run() -> _T:
        io_loop = IOLoop.current()
        try:
            return body(io_loop)
        finally:
            io_loop.close()

    return in_thread(run)


def record_then_stop(io_loop: IOLoop, record: list[str], value: str) -> Callable[[], None]:
    """A callback that appends ``value`` to ``record`` and stops ``io_loop``."""

    def callback() -> None:
        record.append(value)
        io_loop.stop()

    return callback


def start_with_guard(io_loop: IOLoop, limit: float = 30.0) -> None:
    """``io_loop.start()``, but a test that forgets to stop fails instead of hanging. Whether
    the guard stopped the loop is recorded, not guessed from the time it took."""
    fired: list[bool] = []

    def guard_stop() -> None:
        fired.append(True)
        io_loop.stop()

    guard = io_loop.call_later(limit, guard_stop)
    io_loop.start()
    io_loop.remove_timeout(guard)
    assert not fired, "the loop only stopped on the guard timer"


# -- IOLoop.current() ------------------------------------------------------------------------


def test_current_outside_a_running_loop_makes_one_and_keeps_it() -> None:
    def body() -> None:
        assert IOLoop.current(instance=False) is None
        io_loop = IOLoop.current()
        try:
            assert isinstance(io_loop, IOLoop)
            assert IOLoop.current() is io_loop
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # instance() is legacy
                assert IOLoop.instance() is io_loop
            assert IOLoop.current(instance=False) is io_loop
            assert not io_loop.asyncio_loop.is_closed()
            assert not io_loop.asyncio_loop.is_running()
            # It is also asyncio's current loop for this thread, as in Tornado.
            assert asyncio.get_event_loop() is io_loop.asyncio_loop
        finally:
            io_loop.close()
        assert io_loop.asyncio_loop.is_closed()
        # Closing the current IOLoop unsets it, for asyncio too.
        assert IOLoop.current(instance=False) is None
        with pytest.raises(RuntimeError):
            asyncio.get_event_loop()
        fresh = IOLoop.current()
        try:
            assert fresh is not io_loop
            assert not fresh.asyncio_loop.is_closed()
        finally:
            fresh.close()

    in_thread(body)


def test_each_thread_has_its_own_ioloop() -> None:
    def body(io_loop: IOLoop) -> None:
        other = with_loop(lambda other: other)
        assert other is not io_loop
        assert other.asyncio_loop is not io_loop.asyncio_loop
        assert IOLoop.current() is io_loop

    with_loop(body)


@pytest.mark.skipif(uvloop is None, reason="uvloop is not installed")
def test_current_uses_uvloop_unless_disabled() -> None:
    code = (
        "import asyncio, sys\n"
        "from asyncweb.ioloop import IOLoop\n"
        "io_loop = IOLoop.current()\n"
        "print(type(io_loop.asyncio_loop).__module__.split('.')[0])\n"
        "io_loop.close()\n"
    )
    kinds = {}
    for setting in ("1", "0"):
        env = {**os.environ, "ASYNCWEB_UVLOOP": setting}
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        kinds[setting] = proc.stdout.strip()
    assert kinds == {"1": "uvloop", "0": "asyncio"}


def test_new_event_loop_follows_the_setting() -> None:
    loop = ioloop_module.new_event_loop()
    try:
        if uvloop is not None and ioloop_module._use_uvloop:
            assert isinstance(loop, uvloop.Loop)
        else:
            assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


async def test_current_inside_a_running_loop_wraps_it() -> None:
    io_loop = IOLoop.current()
    assert io_loop is IOLoop.current()
    assert IOLoop.instance() is io_loop
    assert io_loop.asyncio_loop is asyncio.get_running_loop()
    # Tasks and threads' callbacks on the same loop see the same IOLoop.
    assert await asyncio.ensure_future(_current_in_task()) is io_loop
    # One IOLoop per asyncio loop.
    with pytest.raises(RuntimeError):
        IOLoop(asyncio.get_running_loop())


async def _current_in_task() -> IOLoop:
    return IOLoop.current()


def test_current_prefers_the_running_loop_to_the_threads_ioloop() -> None:
    def body(io_loop: IOLoop) -> None:
        async def inside() -> tuple[IOLoop, asyncio.AbstractEventLoop]:
            return IOLoop.current(), asyncio.get_running_loop()

        wrapped, running = asyncio.run(inside())
        assert wrapped is not io_loop
        assert wrapped.asyncio_loop is running
        # asyncio.run unset the loop; the thread's IOLoop is still there.
        assert IOLoop.current() is io_loop

    with_loop(body)


def test_current_inside_start_is_the_started_ioloop() -> None:
    def body(io_loop: IOLoop) -> None:
        seen: list[IOLoop] = []

        def callback() -> None:
            seen.append(IOLoop.current())
            io_loop.stop()

        io_loop.add_callback(callback)
        start_with_guard(io_loop)
        assert seen == [io_loop]

    with_loop(body)


# -- start() and stop() ----------------------------------------------------------------------


def test_stop_from_a_callback() -> None:
    def body(io_loop: IOLoop) -> list[str]:
        events: list[str] = []

        def first() -> None:
            events.append("first")
            io_loop.stop()

        io_loop.add_callback(first)
        start_with_guard(io_loop)
        events.append("returned")
        # The loop can be started again.
        io_loop.add_callback(record_then_stop(io_loop, events, "again"))
        start_with_guard(io_loop)
        return events

    assert with_loop(body) == ["first", "returned", "again"]


def test_stop_before_start_makes_start_return_at_once() -> None:
    def body(io_loop: IOLoop) -> None:
        io_loop.stop()
        start_with_guard(io_loop)

    with_loop(body)


def test_stop_from_another_thread() -> None:
    def body(io_loop: IOLoop) -> None:
        def stopper() -> None:
            time.sleep(0.05)
            io_loop.stop()

        thread = threading.Thread(target=stopper)
        thread.start()
        try:
            start_with_guard(io_loop)  # nothing else is scheduled: the stop must wake it
        finally:
            thread.join()

    with_loop(body)


def test_start_while_running_is_an_error() -> None:
    def body(io_loop: IOLoop) -> None:
        errors: list[BaseException] = []

        def nested() -> None:
            try:
                io_loop.start()
            except RuntimeError as err:
                errors.append(err)
            io_loop.stop()

        io_loop.add_callback(nested)
        start_with_guard(io_loop)
        assert len(errors) == 1

    with_loop(body)


# -- run_sync() ------------------------------------------------------------------------------


def test_run_sync_plain_function() -> None:
    def body(io_loop: IOLoop) -> None:
        calls: list[bool] = []

        def func() -> None:
            calls.append(io_loop.asyncio_loop.is_running())

        assert io_loop.run_sync(func) is None
        assert calls == [True]

    with_loop(body)


def test_run_sync_coroutine_function() -> None:
    def body(io_loop: IOLoop) -> None:
        async def func() -> str:
            await asyncio.sleep(0.01)
            assert IOLoop.current() is io_loop
            return "done"

        assert io_loop.run_sync(func) == "done"
        # Several runs on the same loop.
        assert io_loop.run_sync(func) == "done"

    with_loop(body)


def test_run_sync_function_returning_a_future() -> None:
    def body(io_loop: IOLoop) -> None:
        def func() -> asyncio.Future[int]:
            future: asyncio.Future[int] = io_loop.asyncio_loop.create_future()
            io_loop.call_later(0.01, future.set_result, 42)
            return future

        assert io_loop.run_sync(func) == 42

    with_loop(body)


def test_run_sync_reraises() -> None:
    def body(io_loop: IOLoop) -> None:
        async def failing() -> None:
            await asyncio.sleep(0)
            raise ZeroDivisionError("async")

        def failing_plain() -> None:
            raise KeyError("plain")

        with pytest.raises(ZeroDivisionError, match="async"):
            io_loop.run_sync(failing)
        with pytest.raises(KeyError, match="plain"):
            io_loop.run_sync(failing_plain)
        # The loop is still usable.
        assert io_loop.run_sync(_answer) == 42

    with_loop(body)


async def _answer() -> int:
    return 42


def test_run_sync_timeout() -> None:
    def body(io_loop: IOLoop) -> None:
        state: list[str] = []

        async def slow() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                state.append("cancelled")
                raise

        # Raised, where without the timeout slow() would return after 10 s.
        with pytest.raises(TimeoutError) as info:
            io_loop.run_sync(slow, timeout=0.05)
        # Tornado's TimeoutError is asyncio.TimeoutError (the builtin one on 3.11+); ours is
        # also asyncweb.util.TimeoutError, which documents itself as what run_sync raises.
        assert isinstance(info.value, util.TimeoutError)
        assert isinstance(info.value, asyncio.TimeoutError)
        assert "0.05" in str(info.value)
        # The coroutine was cancelled, not left pending.
        assert state == ["cancelled"]
        assert not asyncio.all_tasks(io_loop.asyncio_loop)
        # A timeout that does not expire changes nothing.
        assert io_loop.run_sync(_answer, timeout=5) == 42

    with_loop(body)


def test_run_sync_passes_the_functions_own_timeout_error_through() -> None:
    def body(io_loop: IOLoop) -> None:
        async def func() -> None:
            raise TimeoutError("the function's own")

        for timeout in (None, 5.0):
            with pytest.raises(TimeoutError, match="the function's own"):
                io_loop.run_sync(func, timeout=timeout)

    with_loop(body)


def test_run_sync_stopped_early() -> None:
    def body(io_loop: IOLoop) -> None:
        async def func() -> None:
            io_loop.stop()
            await asyncio.sleep(10)

        with pytest.raises(RuntimeError):
            io_loop.run_sync(func)
        # Tidy the abandoned coroutine up so the loop closes cleanly.
        for task in asyncio.all_tasks(io_loop.asyncio_loop):
            task.cancel()
        io_loop.run_sync(lambda: asyncio.sleep(0))

    with_loop(body)


# -- callbacks -------------------------------------------------------------------------------


def test_add_callback_order_args_and_kwargs() -> None:
    def body(io_loop: IOLoop) -> list[Any]:
        calls: list[Any] = []

        def record(*args: Any, **kwargs: Any) -> None:
            calls.append((args, kwargs))

        io_loop.add_callback(record, 1)
        io_loop.add_callback(record, 2, key="value")
        io_loop.spawn_callback(record, 3)
        io_loop.add_callback(record)
        io_loop.add_callback(io_loop.stop)
        start_with_guard(io_loop)
        return calls

    assert with_loop(body) == [((1,), {}), ((2,), {"key": "value"}), ((3,), {}), ((), {})]


def test_callbacks_added_by_callbacks_run_later() -> None:
    def body(io_loop: IOLoop) -> list[str]:
        order: list[str] = []

        def outer() -> None:
            order.append("outer")
            io_loop.add_callback(record_then_stop(io_loop, order, "inner"))

        io_loop.add_callback(outer)
        io_loop.add_callback(order.append, "second")
        start_with_guard(io_loop)
        return order

    assert with_loop(body) == ["outer", "second", "inner"]


def test_add_callback_from_another_thread_wakes_the_loop() -> None:
    def body(io_loop: IOLoop) -> None:
        ran: dict[str, Any] = {}

        def callback() -> None:
            ran["thread"] = threading.get_ident()
            io_loop.stop()

        def other_thread() -> None:
            time.sleep(0.05)  # let the loop go idle in its selector
            io_loop.add_callback(callback)

        thread = threading.Thread(target=other_thread)
        thread.start()
        try:
            start_with_guard(io_loop)  # nothing else is scheduled: only a wake-up helps
        finally:
            thread.join()
        assert ran["thread"] == threading.get_ident()

    with_loop(body)


def test_add_callback_after_close_is_ignored() -> None:
    def body() -> None:
        io_loop = IOLoop.current()
        io_loop.close()
        io_loop.add_callback(lambda: None)  # Tornado: safe "at any time"
        in_thread(lambda: io_loop.add_callback(lambda: None))

    in_thread(body)


# -- timeouts --------------------------------------------------------------------------------


def test_time_is_wall_clock_time() -> None:
    def body(io_loop: IOLoop) -> None:
        # Tornado documents IOLoop.time() as equivalent to time.time().
        before = time.time()
        now = io_loop.time()
        after = time.time()
        assert before - 0.5 <= now <= after + 0.5

    with_loop(body)


def test_call_later_with_args_and_remove_timeout() -> None:
    def body(io_loop: IOLoop) -> None:
        calls: list[Any] = []
        started = time.monotonic()

        def fire(*args: Any, **kwargs: Any) -> None:
            calls.append((args, kwargs, time.monotonic() - started))
            io_loop.stop()

        cancelled = io_loop.call_later(0.02, calls.append, "cancelled")
        io_loop.call_later(0.05, fire, "a", k=1)
        io_loop.remove_timeout(cancelled)
        start_with_guard(io_loop)
        assert len(calls) == 1
        args, kwargs, elapsed = calls[0]
        assert (args, kwargs) == (("a",), {"k": 1})
        assert elapsed >= 0.04  # and it fired before the guard: start_with_guard checks

    with_loop(body)


def test_timeouts_fire_in_deadline_order() -> None:
    def body(io_loop: IOLoop) -> list[str]:
        order: list[str] = []
        now = io_loop.time()
        io_loop.call_at(now + 0.06, record_then_stop(io_loop, order, "call_at"))
        io_loop.add_timeout(now + 0.04, order.append, "add_timeout float")
        io_loop.add_timeout(datetime.timedelta(milliseconds=20), order.append, "timedelta")
        io_loop.call_later(0.0, order.append, "call_later 0")
        start_with_guard(io_loop)
        return order

    assert with_loop(body) == ["call_later 0", "timedelta", "add_timeout float", "call_at"]


def test_add_timeout_with_a_time_time_deadline() -> None:
    # Ported Tornado code often writes add_timeout(time.time() + delay, ...).
    def body(io_loop: IOLoop) -> float:
        started = time.monotonic()
        io_loop.add_timeout(time.time() + 0.05, io_loop.stop)
        start_with_guard(io_loop)  # a deadline misread as the loop clock's would never come
        return time.monotonic() - started

    assert with_loop(body) >= 0.04  # nor was it taken as long past


def test_past_deadlines_run_soon() -> None:
    def body(io_loop: IOLoop) -> None:
        ran: list[str] = []
        io_loop.call_at(io_loop.time() - 100, ran.append, "call_at")
        io_loop.add_timeout(io_loop.time() - 100, ran.append, "add_timeout")
        io_loop.call_later(0.01, io_loop.stop)
        start_with_guard(io_loop)
        assert sorted(ran) == ["add_timeout", "call_at"]

    with_loop(body)


def test_remove_timeout_for_each_kind() -> None:
    def body(io_loop: IOLoop) -> list[str]:
        ran: list[str] = []
        handles = [
            io_loop.call_at(io_loop.time() + 0.01, ran.append, "call_at"),
            io_loop.add_timeout(io_loop.time() + 0.01, ran.append, "add_timeout"),
            io_loop.add_timeout(datetime.timedelta(seconds=0.01), ran.append, "timedelta"),
            io_loop.call_later(0.01, ran.append, "call_later"),
        ]
        for handle in handles:
            io_loop.remove_timeout(handle)
        io_loop.call_later(0.05, io_loop.stop)
        start_with_guard(io_loop)
        return ran

    assert with_loop(body) == []


def test_add_timeout_rejects_other_deadlines() -> None:
    def body(io_loop: IOLoop) -> None:
        with pytest.raises(TypeError):
            io_loop.add_timeout("soon", lambda: None)  # type: ignore[arg-type]

    with_loop(body)


# -- errors in callbacks ---------------------------------------------------------------------


def test_callback_errors_are_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def body(io_loop: IOLoop) -> list[str]:
        ran: list[str] = []

        def plain_failure() -> None:
            raise ValueError("plain boom")

        async def coroutine_failure() -> None:
            await asyncio.sleep(0)
            raise KeyError("coroutine boom")

        def timer_failure(arg: str) -> None:
            raise RuntimeError(f"timer {arg}")

        def future_callback_failure(future: asyncio.Future[int]) -> None:
            raise LookupError(f"future callback {future.result()}")

        async def cancelled() -> None:
            raise asyncio.CancelledError

        def plain_cancelled() -> None:
            raise asyncio.CancelledError

        io_loop.add_callback(plain_failure)
        io_loop.add_callback(coroutine_failure)
        io_loop.add_callback(cancelled)  # CancelledError is not logged, as in Tornado 6
        io_loop.add_callback(plain_cancelled)
        io_loop.call_later(0.01, timer_failure, "boom")
        future: asyncio.Future[int] = io_loop.asyncio_loop.create_future()
        io_loop.add_future(future, future_callback_failure)
        future.set_result(7)
        io_loop.add_callback(ran.append, "after the failures")
        io_loop.call_later(0.05, record_then_stop(io_loop, ran, "still running"))
        start_with_guard(io_loop)
        return ran

    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        ran = with_loop(body)
    assert ran == ["after the failures", "still running"]
    records = [r for r in caplog.records if r.name == "asyncweb.application"]
    errors = {repr(r.exc_info[1]) for r in records if r.exc_info}
    assert errors == {
        "ValueError('plain boom')",
        "KeyError('coroutine boom')",
        "RuntimeError('timer boom')",
        "LookupError('future callback 7')",
    }
    assert all(r.levelno == logging.ERROR for r in records)
    assert not [r for r in caplog.records if r.name == "asyncio"]


# -- futures and executors -------------------------------------------------------------------


def test_add_future_with_an_asyncio_future() -> None:
    def body(io_loop: IOLoop) -> None:
        received: list[Any] = []
        future: asyncio.Future[str] = io_loop.asyncio_loop.create_future()

        def callback(done: asyncio.Future[str]) -> None:
            received.append((done, done.result(), threading.get_ident()))
            io_loop.stop()

        io_loop.add_future(future, callback)
        io_loop.call_later(0.01, future.set_result, "value")
        start_with_guard(io_loop)
        assert received == [(future, "value", threading.get_ident())]

    with_loop(body)


def _slow_five() -> int:
    time.sleep(0.02)
    return 5


def test_add_future_with_a_concurrent_future() -> None:
    def body(io_loop: IOLoop) -> None:
        received: list[Any] = []

        def callback(done: concurrent.futures.Future[int]) -> None:
            received.append((done, done.result(), threading.get_ident()))
            io_loop.stop()

        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            future = executor.submit(_slow_five)
            io_loop.add_future(future, callback)
            start_with_guard(io_loop)
        assert received == [(future, 5, threading.get_ident())]

    with_loop(body)


def test_run_in_executor() -> None:
    def body(io_loop: IOLoop) -> None:
        loop_thread = threading.get_ident()

        def work(a: int, b: int) -> tuple[int, int]:
            return a + b, threading.get_ident()

        async def main() -> list[tuple[int, int]]:
            with concurrent.futures.ThreadPoolExecutor(1) as executor:
                own = await io_loop.run_in_executor(executor, work, 1, 2)
            default = await io_loop.run_in_executor(None, work, 3, 4)
            return [own, default]

        (own_sum, own_thread), (default_sum, default_thread) = io_loop.run_sync(main)
        assert (own_sum, default_sum) == (3, 7)
        assert loop_thread not in (own_thread, default_thread)

    with_loop(body)


def test_set_default_executor() -> None:
    def body(io_loop: IOLoop) -> None:
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aw-test") as executor:
            io_loop.set_default_executor(executor)

            async def main() -> str:
                return await io_loop.run_in_executor(None, lambda: threading.current_thread().name)

            assert io_loop.run_sync(main).startswith("aw-test")

    with_loop(body)


# -- close() ---------------------------------------------------------------------------------


def test_close() -> None:
    def body() -> None:
        io_loop = IOLoop.current()
        asyncio_loop = io_loop.asyncio_loop
        io_loop.close()
        assert asyncio_loop.is_closed()
        with pytest.raises(RuntimeError):
            io_loop.start()
        # The closed loop no longer has an IOLoop: a new one can wrap a fresh loop.
        other = IOLoop(ioloop_module.new_event_loop())
        other.close()

    in_thread(body)


def test_close_a_loop_that_is_not_current() -> None:
    def body(io_loop: IOLoop) -> None:
        other = IOLoop()
        other.close()
        assert other.asyncio_loop.is_closed()
        # The thread's current IOLoop is untouched.
        assert IOLoop.current() is io_loop
        assert asyncio.get_event_loop() is io_loop.asyncio_loop

    with_loop(body)


# -- file descriptors: add_handler / update_handler / remove_handler -------------------------


def test_add_handler_read_write_update_and_remove() -> None:
    import socket

    def body(io_loop: IOLoop) -> list[Any]:
        left, right = socket.socketpair()
        left.setblocking(False)
        right.setblocking(False)
        seen: list[Any] = []

        def on_left(fd: Any, events: int) -> None:
            seen.append((fd is left, events))
            if events & IOLoop.WRITE:
                # Writable at once: send one message, then watch for the reply only.
                left.send(b"ping")
                io_loop.update_handler(left, IOLoop.READ)
            elif events & IOLoop.READ:
                seen.append(left.recv(100))
                io_loop.remove_handler(left)
                io_loop.call_later(0.05, io_loop.stop)

        def on_right(fd: int, events: int) -> None:
            seen.append(("right", fd == right.fileno(), events))
            assert right.recv(100) == b"ping"
            right.send(b"pong")
            io_loop.remove_handler(fd)

        io_loop.add_handler(left, on_left, IOLoop.WRITE)
        io_loop.add_handler(right.fileno(), on_right, IOLoop.READ)
        with pytest.raises(ValueError):
            io_loop.add_handler(left, on_left, IOLoop.READ)
        start_with_guard(io_loop)
        # Removed handlers stay silent: more data arrives but nobody is called.
        right.send(b"unheard")
        io_loop.call_later(0.05, io_loop.stop)
        start_with_guard(io_loop)
        io_loop.remove_handler(left)  # removing twice is harmless
        left.close()
        right.close()
        return seen

    seen = with_loop(body)
    assert seen == [
        (True, IOLoop.WRITE),
        ("right", True, IOLoop.READ),
        (True, IOLoop.READ),
        b"pong",
    ]


def test_add_handler_error_events_and_failing_handlers(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    def body(io_loop: IOLoop) -> list[int]:
        left, right = socket.socketpair()
        left.setblocking(False)
        events_seen: list[int] = []

        def on_event(fd: socket.socket, events: int) -> None:
            events_seen.append(events)
            io_loop.remove_handler(fd)
            io_loop.add_callback(io_loop.stop)
            raise OSError("handler failed")

        io_loop.add_handler(left, on_event, IOLoop.ERROR)
        right.close()  # the peer hangs up: an error/hang-up condition for ``left``
        start_with_guard(io_loop)
        left.close()
        return events_seen

    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        assert with_loop(body) == [IOLoop.ERROR]
    assert any("handler failed" in repr(r.exc_info) for r in caplog.records if r.exc_info)


def test_close_all_fds_closes_watched_files() -> None:
    import socket

    def run() -> tuple[bool, bool]:
        io_loop = IOLoop.current()
        left, right = socket.socketpair()
        io_loop.add_handler(left, lambda fd, events: None, IOLoop.READ)
        io_loop.add_handler(right.fileno(), lambda fd, events: None, IOLoop.READ)
        right_fd = right.detach()
        io_loop.close(all_fds=True)
        try:
            os.fstat(right_fd)
            fd_open = True
        except OSError:
            fd_open = False
        return left.fileno() == -1, fd_open

    assert in_thread(run) == (True, False)


# -- many threads, one loop ------------------------------------------------------------------


def test_add_callback_from_many_threads_runs_each_once() -> None:
    def body(io_loop: IOLoop) -> list[int]:
        received: list[int] = []
        ready = threading.Event()

        def note(value: int) -> None:
            received.append(value)
            if len(received) == 400:
                io_loop.stop()

        def producer(base: int) -> None:
            ready.wait(5)
            for i in range(100):
                io_loop.add_callback(note, base + i)

        threads = [threading.Thread(target=producer, args=(n * 100,)) for n in range(4)]
        for thread in threads:
            thread.start()
        io_loop.add_callback(ready.set)
        start_with_guard(io_loop)
        for thread in threads:
            thread.join(5)
        return received

    assert sorted(with_loop(body)) == list(range(400))


# -- signals ---------------------------------------------------------------------------------

_SIGNAL_SCRIPT = """
import os, signal, sys
from asyncweb.ioloop import IOLoop

loop = IOLoop.current()

def on_usr1(signum, frame):
    loop.add_callback_from_signal(print, "usr1 handled", flush=True)

signal.signal(signal.SIGUSR1, on_usr1)
loop.add_callback(os.kill, os.getpid(), signal.SIGUSR1)
loop.call_later(0.2, print, "ready", flush=True)
loop.call_later(0.2, lambda: loop.asyncio_loop.call_soon(lambda: None))
try:
    loop.start()
except KeyboardInterrupt:
    print("stopped by KeyboardInterrupt", type(loop.asyncio_loop).__module__, flush=True)
loop.close()
"""


@pytest.mark.parametrize("use_uvloop", ["1", "0"])
def test_sigint_stops_start_cleanly(use_uvloop: str) -> None:
    import signal

    if use_uvloop == "1" and uvloop is None:
        pytest.skip("uvloop is not installed")
    env = dict(os.environ, ASYNCWEB_UVLOOP=use_uvloop)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIGNAL_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip(), proc.stdout.readline().strip()]
        assert sorted(lines) == ["ready", "usr1 handled"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    loop_module = "uvloop" if use_uvloop == "1" else "asyncio.unix_events"
    assert out.strip() == f"stopped by KeyboardInterrupt {loop_module}"


# -- PeriodicCallback --------------------------------------------------------------------------


def test_periodic_callback_runs_until_stopped() -> None:
    from asyncweb.ioloop import PeriodicCallback

    def body(io_loop: IOLoop) -> list[Any]:
        calls: list[int] = []

        def tick() -> None:
            calls.append(1)
            if len(calls) == 3:
                periodic.stop()
                io_loop.call_later(0.05, io_loop.stop)

        periodic = PeriodicCallback(tick, datetime.timedelta(milliseconds=10), jitter=0.5)
        assert not periodic.is_running()
        periodic.start()
        assert periodic.is_running()
        start_with_guard(io_loop)
        return [len(calls), periodic.is_running()]

    assert with_loop(body) == [3, False]


def test_periodic_callback_rejects_bad_intervals() -> None:
    from asyncweb.ioloop import PeriodicCallback

    with pytest.raises(ValueError):
        PeriodicCallback(lambda: None, 0)
    with pytest.raises(ValueError):
        PeriodicCallback(lambda: None, datetime.timedelta(0))


def test_periodic_callback_skips_missed_runs_instead_of_bursting() -> None:
    from asyncweb.ioloop import PeriodicCallback

    interval = 0.02

    def body(io_loop: IOLoop) -> tuple[list[float], float, float]:
        # For each run, the time it was scheduled for (read while it runs).
        scheduled: list[float] = []
        block_end = [0.0]

        def tick() -> None:
            scheduled.append(periodic._next_timeout)
            if len(scheduled) == 2:
                time.sleep(interval * 5.5)  # block the loop over five scheduled runs
                block_end[0] = io_loop.asyncio_loop.time()
            if len(scheduled) == 5:
                periodic.stop()
                io_loop.stop()

        periodic = PeriodicCallback(tick, interval * 1000)
        periodic.start()
        origin = periodic._next_timeout - interval  # the first run is one interval ahead
        start_with_guard(io_loop)
        return scheduled, origin, block_end[0]

    scheduled, origin, block_end = with_loop(body)
    slots = [round((t - origin) / interval, 6) for t in scheduled]
    # Every run is on the grid of the first one, each in a later slot than the one before.
    assert all(slot == int(slot) for slot in slots), slots
    assert slots == sorted(set(slots)), slots
    # The runs due while the loop was blocked were dropped: the next is after the block,
    # not the five overdue ones in a burst.
    assert scheduled[2] > block_end
    assert slots[2] - slots[1] >= 5, slots


def test_periodic_coroutine_callbacks_never_overlap(caplog: pytest.LogCaptureFixture) -> None:
    from asyncweb.ioloop import PeriodicCallback

    def body(io_loop: IOLoop) -> tuple[int, int]:
        active = [0]
        most = [0]
        runs = [0]

        async def slow_tick() -> None:
            active[0] += 1
            most[0] = max(most[0], active[0])
            await asyncio.sleep(0.035)  # longer than three intervals
            active[0] -= 1
            runs[0] += 1
            if runs[0] == 2:
                raise ValueError("tick failed")  # logged; the callback keeps running
            if runs[0] == 4:
                periodic.stop()
                io_loop.stop()

        periodic = PeriodicCallback(slow_tick, 10)
        periodic.start()
        start_with_guard(io_loop)
        return most[0], runs[0]

    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        assert with_loop(body) == (1, 4)
    assert any("tick failed" in repr(r.exc_info) for r in caplog.records if r.exc_info)


def test_legacy_instance_and_io_loop_arguments_warn_once_and_work() -> None:
    from asyncweb.ioloop import PeriodicCallback

    def body(io_loop: IOLoop) -> tuple[list[str], int]:
        util._warned_once.discard("IOLoop.instance()")
        util._warned_once.discard("the io_loop argument")
        calls: list[int] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert IOLoop.instance() is io_loop
            assert IOLoop.instance() is io_loop

            def tick() -> None:
                calls.append(1)
                periodic.stop()
                io_loop.stop()

            # Tornado 2-4: PeriodicCallback(callback, callback_time, io_loop)
            periodic = PeriodicCallback(tick, 5, io_loop)  # type: ignore[arg-type]
            periodic.start()
            start_with_guard(io_loop)
        return [str(w.message) for w in caught], len(calls)

    messages, runs = with_loop(body)
    assert messages == [
        "IOLoop.instance() is deprecated; use IOLoop.current()",
        "the io_loop argument is deprecated; use nothing (the current IOLoop)",
    ]
    assert runs == 1
