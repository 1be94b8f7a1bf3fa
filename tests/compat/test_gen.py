"""asyncweb.gen: generator coroutines and the legacy callback helpers, on real loop timers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import threading
import warnings
from collections.abc import Callable, Generator
from typing import Any

import pytest

from asyncweb import gen, util
from asyncweb.ioloop import IOLoop


@pytest.fixture(autouse=True)
def fresh_deprecations() -> None:
    util._warned_once.clear()


def later(value: Any, delay: float = 0.01) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    loop.call_later(delay, future.set_result, value)
    return future


def failing_later(error: BaseException, delay: float = 0.01) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    loop.call_later(delay, future.set_exception, error)
    return future


async def test_coroutine_yields_futures_lists_dicts_none_and_moment() -> None:
    steps: list[str] = []

    @gen.coroutine
    def work(x: int) -> Generator[Any, Any, int]:
        steps.append("started")
        a = yield later(x)
        b = yield [later(1), later(2), gen.sleep(0.01)]
        c = yield {"k": later("v"), "j": asyncio.sleep(0, "w")}
        d = yield None
        e = yield gen.moment
        f = yield concurrent.futures.ThreadPoolExecutor(1).submit(lambda: "thread")
        return_value: int = a + sum(b[:2])
        steps.append(repr((c, d, e, f)))
        raise gen.Return(return_value)

    future = work(10)
    # The generator ran up to its first yield before the call returned.
    assert steps == ["started"]
    assert isinstance(future, asyncio.Future)
    assert await future == 13
    assert steps[1] == "({'k': 'v', 'j': 'w'}, None, None, 'thread')"
    assert gen.is_coroutine_function(work)
    assert not gen.is_coroutine_function(later)


async def test_coroutine_plain_return_and_exceptions_in_and_out() -> None:
    @gen.coroutine
    def catches() -> Generator[Any, Any, str]:
        try:
            yield failing_later(KeyError("inner"))
        except KeyError as err:
            return f"caught {err}"
        return "not reached"

    @gen.coroutine
    def raises() -> Generator[Any, Any, None]:
        yield later(None)
        raise ValueError("outer")

    @gen.coroutine
    def not_a_generator(x: int) -> int:
        return x + 1

    @gen.coroutine
    def raises_at_once() -> None:
        raise OSError("immediate")

    @gen.coroutine
    def wraps_async_def() -> Any:
        return asyncio.sleep(0, "native")

    assert await catches() == "caught 'inner'"
    with pytest.raises(ValueError, match="outer"):
        await raises()
    assert await not_a_generator(1) == 2
    with pytest.raises(OSError):
        await raises_at_once()
    assert await wraps_async_def() == "native"


async def test_coroutines_call_coroutines_and_async_def_awaits_them() -> None:
    @gen.coroutine
    def inner(x: int) -> Generator[Any, Any, int]:
        yield gen.sleep(0.001)
        return x * 2

    @gen.coroutine
    def outer() -> Generator[Any, Any, list[int]]:
        results = yield [inner(1), inner(2)]
        return list(results)

    async def native() -> list[int]:
        return await outer()  # type: ignore[no-any-return]

    assert await native() == [2, 4]


async def test_bad_yield_is_an_error_inside_the_coroutine() -> None:
    @gen.coroutine
    def bad() -> Generator[Any, Any, None]:
        yield object()

    with pytest.raises(gen.BadYieldError):
        await bad()


async def test_cancelling_the_future_throws_into_the_generator() -> None:
    cleaned = asyncio.Event()

    @gen.coroutine
    def slow() -> Generator[Any, Any, None]:
        try:
            yield gen.sleep(10)
        finally:
            cleaned.set()

    future = slow()
    await asyncio.sleep(0.01)
    future.cancel()
    await asyncio.wait_for(cleaned.wait(), 20)


async def test_multi_returns_same_shape_and_logs_extra_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await gen.multi([later(1), later(2)]) == [1, 2]
    assert await gen.multi({"a": later(1), "b": asyncio.sleep(0, 2)}) == {"a": 1, "b": 2}
    assert await gen.multi([]) == []
    assert await gen.multi_future({}) == {}
    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        with pytest.raises(ValueError):
            await gen.multi([failing_later(ValueError("first"), 0.001), failing_later(OSError())])
        assert "Multiple exceptions" in caplog.text
        caplog.clear()
        with pytest.raises(ValueError):
            await gen.multi(
                [failing_later(ValueError("first"), 0.001), failing_later(OSError())],
                quiet_exceptions=OSError,
            )
        assert "Multiple exceptions" not in caplog.text


async def test_sleep_and_with_timeout(caplog: pytest.LogCaptureFixture) -> None:
    napping = gen.sleep(0.001)
    await napping
    assert napping.done() and napping.result() is None
    assert await gen.with_timeout(datetime.timedelta(seconds=5), later("fast")) == "fast"
    deadline = IOLoop.current().time() + 5
    assert await gen.with_timeout(deadline, asyncio.sleep(0, "coro")) == "coro"
    slow = later("slow", 0.2)
    with pytest.raises(gen.TimeoutError):
        await gen.with_timeout(datetime.timedelta(seconds=0.01), slow)
    # gen.TimeoutError is asyncio's (and, on 3.11+, the builtin) TimeoutError.
    assert gen.TimeoutError is asyncio.TimeoutError
    assert not slow.cancelled()  # Tornado leaves the wrapped future alone
    assert await slow == "slow"
    with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
        late_failure = failing_later(KeyError("late"), 0.05)
        with pytest.raises(gen.TimeoutError):
            await gen.with_timeout(datetime.timedelta(seconds=0.001), late_failure)
        with pytest.raises(KeyError):
            await late_failure
        await asyncio.sleep(0)
    assert "after timeout" in caplog.text
    with pytest.raises(KeyError):
        await gen.with_timeout(datetime.timedelta(seconds=5), failing_later(KeyError("x")))
    # message=: text, or a function called only when the timeout happens (Tornado 6.6).
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(gen.TimeoutError, match=r"^custom$"):
        await gen.with_timeout(datetime.timedelta(seconds=0.001), never, message="custom")
    calls: list[int] = []

    def lazy() -> str:
        calls.append(1)
        return "lazy"

    with pytest.raises(gen.TimeoutError, match=r"^lazy$"):
        await gen.with_timeout(datetime.timedelta(seconds=0.001), never, message=lazy)
    assert await gen.with_timeout(datetime.timedelta(seconds=5), later("ok"), message=lazy) == "ok"
    assert calls == [1]
    assert gen.Multi is gen.multi


async def test_convert_yielded_and_maybe_future() -> None:
    assert await gen.convert_yielded(later(3)) == 3
    assert await gen.convert_yielded([later(1)]) == [1]
    with pytest.raises(gen.BadYieldError):
        gen.convert_yielded(42)

    class Custom:
        pass

    @gen.convert_yielded.register(Custom)
    def _(value: Custom) -> asyncio.Future[str]:
        return later("custom")

    assert await gen.convert_yielded(Custom()) == "custom"
    with pytest.warns(DeprecationWarning, match="maybe_future"):
        assert await gen.maybe_future(5) == 5
    future = later(6)
    assert gen.maybe_future(future) is future


async def test_wait_iterator_returns_a_future_given_twice_once_per_position() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(42)
    for waiter, keys in [
        (gen.WaitIterator(future, future, future), [0, 1, 2]),
        (gen.WaitIterator(first=future, second=future), ["first", "second"]),
    ]:
        seen = []
        while not waiter.done():
            result = await waiter.next()
            seen.append((waiter.current_index, result))
        assert seen == [(key, 42) for key in keys]


async def test_wait_iterator_in_completion_order() -> None:
    @gen.coroutine
    def collect() -> Generator[Any, Any, list[Any]]:
        seen = []
        waiter = gen.WaitIterator(later("slow", 0.05), later("fast", 0.001))
        while not waiter.done():
            try:
                result = yield waiter.next()
            except KeyError:
                result = "error"
            seen.append((waiter.current_index, result))
        return seen

    assert await collect() == [(1, "fast"), (0, "slow")]
    seen = []
    async for result in gen.WaitIterator(a=later("a", 0.03), c=later("c", 0.001)):
        seen.append(result)
    assert seen == ["c", "a"]
    waiter = gen.WaitIterator(a=later("a", 0.02), b=failing_later(KeyError("b"), 0.001))
    with pytest.raises(KeyError):
        await waiter.next()
    assert waiter.current_index == "b"
    assert await waiter.next() == "a"
    assert waiter.done()
    with pytest.raises(ValueError):
        gen.WaitIterator(later(1), a=later(2))


# -- the legacy callback era --------------------------------------------------------------------


def callback_style_add(a: int, b: int, callback: Callable[[int], None]) -> None:
    """A Tornado 2 style API: the answer arrives later through ``callback``."""
    IOLoop.current().add_timeout(datetime.timedelta(milliseconds=5), callback, a + b)


def callback_from_thread(callback: Callable[..., None]) -> None:
    threading.Timer(0.005, callback, args=("x", "y"), kwargs={"z": 1}).start()


async def test_task_turns_callback_functions_into_futures() -> None:
    with pytest.warns(DeprecationWarning, match=r"gen.Task is deprecated; use functions"):
        assert await gen.Task(callback_style_add, 2, 3) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once already: silent now
        result = await gen.Task(callback_from_thread)
    assert result == gen.Arguments(("x", "y"), {"z": 1})
    assert await gen.Task(lambda callback: callback()) is None

    def broken(callback: Callable[[], None]) -> None:
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError):
        await gen.Task(broken)


async def test_engine_callback_and_wait() -> None:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @gen.engine
    def legacy(callback: Callable[[Any], None]) -> Generator[Any, Any, None]:
        callback_style_add(1, 2, (yield gen.Callback("sum")))
        callback_style_add(3, 4, (yield gen.Callback("other")))
        total = yield gen.Wait("sum")
        callback_from_thread((yield gen.Callback("thread")))
        rest = yield gen.WaitAll(["other", "thread"])
        callback((total, rest))

    with pytest.warns(DeprecationWarning) as record:
        assert legacy(done.set_result) is None
        result = await asyncio.wait_for(done, 20)
    assert result == (3, [7, gen.Arguments(("x", "y"), {"z": 1})])
    messages = sorted(str(w.message) for w in record)
    assert messages == [
        "gen.Callback is deprecated; use futures and gen.multi",
        "gen.Wait is deprecated; use futures and await",
        "gen.WaitAll is deprecated; use gen.multi",
        "gen.engine is deprecated; use gen.coroutine or async def",
    ]


async def test_engine_errors_and_key_misuse_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    finished = asyncio.Event()

    @gen.engine
    def reuses_key() -> Generator[Any, Any, None]:
        try:
            yield gen.Callback("k")
            yield gen.Callback("k")
        finally:
            finished.set()

    @gen.engine
    def unknown_key() -> Generator[Any, Any, None]:
        yield gen.Wait("nobody")

    @gen.engine
    def leaks() -> Generator[Any, Any, None]:
        yield gen.Callback("never waited")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with caplog.at_level(logging.ERROR, logger="asyncweb.application"):
            reuses_key()
            unknown_key()
            leaks()
            await asyncio.wait_for(finished.wait(), 20)
            for _ in range(5):
                await asyncio.sleep(0)
    text = caplog.text
    assert "KeyReuseError" in text
    assert "UnknownKeyError" in text
    assert "LeakedCallbackError" in text


def test_coroutine_outside_a_running_loop_uses_the_current_ioloop() -> None:
    def run() -> Any:
        io_loop = IOLoop.current()
        try:

            @gen.coroutine
            def work() -> Generator[Any, Any, str]:
                yield gen.sleep(0.001)
                return "ran on run_sync"

            return io_loop.run_sync(work, timeout=5)
        finally:
            io_loop.close()

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(run()))
    thread.start()
    thread.join(10)
    assert result == ["ran on run_sync"]


async def test_legacy_callback_argument_of_coroutines() -> None:
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @gen.coroutine
    def compute(x: int) -> Generator[Any, Any, int]:
        yield gen.sleep(0.001)
        return x * 3

    with pytest.warns(DeprecationWarning, match="callback argument of coroutines"):
        future = compute(2, callback=received.set_result)
    assert await future == 6
    assert await asyncio.wait_for(received, 20) == 6


# -- generator coroutines as handler methods, over a real server ---------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy decorators are the point
async def test_generator_coroutine_handlers_over_http(serve: Any, fetch: Any) -> None:
    from asyncweb import web

    class Tornado3Handler(web.RequestHandler):
        @gen.coroutine
        def get(self) -> Generator[Any, Any, None]:
            first = yield gen.sleep(0.001)
            parts = yield {"a": later("A"), "b": later("B")}
            self.write({"first": first, "parts": parts})

    class Tornado3AsynchronousHandler(web.RequestHandler):
        @web.asynchronous
        @gen.coroutine
        def get(self) -> Generator[Any, Any, None]:
            value = yield gen.Task(callback_style_add, 20, 22)
            self.write(str(value))  # finished for us when the coroutine ends

    class FailingHandler(web.RequestHandler):
        @gen.coroutine
        def get(self) -> Generator[Any, Any, None]:
            yield gen.sleep(0.001)
            raise web.HTTPError(418)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app = web.Application(
            [
                ("/t3", Tornado3Handler),
                ("/t3a", Tornado3AsynchronousHandler),
                ("/f", FailingHandler),
            ]
        )
        base = await serve(app)
        response = await fetch(base + "/t3")
        assert response.status == 200
        assert response.body == b'{"first": null, "parts": {"a": "A", "b": "B"}}'
        response = await fetch(base + "/t3a")
        assert (response.status, response.body) == (200, b"42")
        assert (await fetch(base + "/f")).status == 418
