"""Back-pressure for one transport, written once for every protocol of this layer.

The transport calls its protocol's ``pause_writing``/``resume_writing`` around its high-water
mark; a protocol forwards them to its :class:`FlowControl`, whose :meth:`~FlowControl.drain_waiter`
futures resolve on the resume and fail (quietly: nobody may be waiting) when the connection
closes. Reading is paused and resumed through it too, so the flag and the transport agree.

The futures a write returns when it need not wait come from here as well: one shared done
future per loop (:func:`shared_done_future`), one that resolves on the loop's next iteration
(:func:`next_tick_future`), one failed with ``StreamClosedError`` for a closed connection
(:func:`closed_future`), and :func:`quiet` for a write's future nobody will look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable
from typing import Any, TypeVar

from asyncweb.protocol.errors import StreamClosedError


class FlowControl:
    """Write and read pausing of one transport, and the futures waiting for a drain."""

    __slots__ = ("_loop", "_waiters", "read_paused", "transport", "write_paused")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # Without a loop, waiters belong to the loop running when they are made.
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self.read_paused = False
        self._waiters: list[asyncio.Future[Any]] | None = None

    # -- writing (the transport's calls) --------------------------------------------------------

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def drain_waiter(self, waiter: asyncio.Future[Any] | None = None) -> asyncio.Future[Any]:
        """A future (``waiter``, or a new one) that resolves at the next ``resume_writing``."""
        if waiter is None:
            waiter = (self._loop or asyncio.get_running_loop()).create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        return waiter

    def close(self, error: BaseException | None) -> None:
        """The connection is gone: waiters fail with ``error`` (resolve when it is None, so
        that the next write reports the close)."""
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
                waiter.exception()  # nobody may be waiting: don't warn

    # -- reading --------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            with contextlib.suppress(RuntimeError):  # a closing transport
                self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            if self.transport is not None:
                with contextlib.suppress(RuntimeError):
                    self.transport.resume_reading()


# One already-done future per event loop, returned by writes that need not wait.
_done_futures: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
    weakref.WeakKeyDictionary()
)


def shared_done_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """An already-done future of ``loop``, shared: what writes that need not wait return."""
    future = _done_futures.get(loop)
    if future is None:
        future = _done_futures[loop] = loop.create_future()
        future.set_result(None)
    return future


def closed_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """What a write on a closed connection or stream returns: a failed future."""
    future: asyncio.Future[None] = loop.create_future()
    future.set_exception(StreamClosedError())
    return future


def next_tick_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """A future of ``loop`` that resolves on its next iteration: what a streaming write that
    need not wait for a drain returns, so that ``await`` on it yields to the loop."""
    future = loop.create_future()
    loop.call_soon(_resolve, future)
    return future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # it may have been cancelled
        future.set_result(None)


_Written = TypeVar("_Written", bound=Awaitable[Any])


def quiet(written: _Written) -> _Written:
    """Mark a write's failure as seen, now or when it comes: callers often drop a write's
    future, and a vanished peer is not worth an "exception was never retrieved" report."""
    if isinstance(written, asyncio.Future):
        if written.done():
            if not written.cancelled():
                written.exception()
        else:
            written.add_done_callback(_retrieve)
    return written


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
