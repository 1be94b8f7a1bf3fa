"""WSGIContainer runs each request's steps (the call, every chunk, close) in one context of
their own, whichever pool threads they land on.

The executor here hands consecutive tasks to different threads, in turn, so the thread switch
between steps that a busy default pool makes only sometimes happens on every step.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, Response, g, request, stream_with_context

from asyncweb.httpclient import AsyncHTTPClient
from asyncweb.wsgi import WSGIContainer
from tests.support.servers import Fetch, Serve

STEP = contextvars.ContextVar[str]("STEP")


class RoundRobinExecutor(concurrent.futures.Executor):
    """Each task goes to the next of ``threads`` single-thread pools, so two consecutive
    tasks never share a thread."""

    def __init__(self, threads: int) -> None:
        self._pools = [concurrent.futures.ThreadPoolExecutor(1) for _ in range(threads)]
        self._next = 0
        self._lock = threading.Lock()

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        with self._lock:
            pool = self._pools[self._next % len(self._pools)]
            self._next += 1
        return pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for pool in self._pools:
            pool.shutdown(wait, cancel_futures=cancel_futures)


@pytest.fixture
def executor() -> Iterator[RoundRobinExecutor]:
    pool = RoundRobinExecutor(4)
    yield pool
    pool.shutdown()


def flask_streaming_app() -> Flask:
    app = Flask(__name__)

    @app.route("/stream")
    def stream() -> Response:
        g.prefix = request.args["prefix"]

        def generate() -> Iterator[str]:
            # request and g are the view's, on whichever thread each chunk is pulled.
            for i in range(5):
                yield f"{g.prefix}{request.args['prefix']}{i}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    return app


async def test_flask_stream_with_context_survives_thread_switches(
    serve: Serve, executor: RoundRobinExecutor
) -> None:
    base = await serve(WSGIContainer(flask_streaming_app(), executor=executor))
    client = AsyncHTTPClient(force_instance=True)
    try:
        for prefix in ("a", "b", "c"):
            chunks: list[bytes] = []
            response = await client.fetch(
                f"{base}/stream?prefix={prefix}", streaming_callback=chunks.append
            )
            assert response.code == 200
            assert response.headers["Transfer-Encoding"] == "chunked"
            assert b"".join(chunks) == b"".join(f"{prefix}{prefix}{i}\n".encode() for i in range(5))
    finally:
        client.close()


class _Steps:
    """A WSGI response iterable that checks each step sees what the previous one set."""

    def __init__(self, seen: list[tuple[str, str, int]]) -> None:
        self._seen = seen

    def __iter__(self) -> Iterator[bytes]:
        self._seen.append(("chunk1", STEP.get("unset"), threading.get_ident()))
        STEP.set("chunk1")
        yield b"one "
        self._seen.append(("chunk2", STEP.get("unset"), threading.get_ident()))
        STEP.set("chunk2")
        yield b"two"

    def close(self) -> None:
        self._seen.append(("close", STEP.get("unset"), threading.get_ident()))


async def test_context_variable_set_in_one_step_is_seen_in_the_next(
    serve: Serve, fetch: Fetch, executor: RoundRobinExecutor
) -> None:
    seen: list[tuple[str, str, int]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> _Steps:
        seen.append(("call", STEP.get("unset"), threading.get_ident()))
        STEP.set("call")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Steps(seen)

    base = await serve(WSGIContainer(app, executor=executor))
    response = await fetch(base + "/")
    assert response.status == 200 and response.body == b"one two"
    # What each step saw: the value the step before it set, never another request's.
    assert [(step, value) for step, value, _ in seen] == [
        ("call", "unset"),
        ("chunk1", "call"),
        ("chunk2", "chunk1"),
        ("close", "chunk2"),
    ]
    # The steps really ran on different threads (the executor guarantees consecutive ones do).
    threads = [thread for _, _, thread in seen]
    assert all(a != b for a, b in itertools.pairwise(threads))


async def test_context_variable_does_not_leak_into_the_next_request(
    serve: Serve, fetch: Fetch
) -> None:
    # One thread serves every request: without a context per request, the value the first
    # request set would still be there for the second.
    with concurrent.futures.ThreadPoolExecutor(1) as single:

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            before = STEP.get("unset")
            STEP.set(environ["PATH_INFO"])
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [before.encode()]

        base = await serve(WSGIContainer(app, executor=single))
        assert (await fetch(base + "/first")).body == b"unset"
        assert (await fetch(base + "/second")).body == b"unset"
