"""``tornado.platform.asyncio``: the names Tornado software imports to bridge to asyncio.

In asyncweb every IOLoop already is an asyncio loop, so these are thin: the IOLoop classes
wrap an existing or a new asyncio loop, and Tornado futures are asyncio futures.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from asyncweb.ioloop import IOLoop, new_event_loop

__all__ = [
    "AddThreadSelectorEventLoop",
    "AsyncIOLoop",
    "AsyncIOMainLoop",
    "BaseAsyncIOLoop",
    "SelectorThread",
    "to_asyncio_future",
    "to_tornado_future",
]


class BaseAsyncIOLoop(IOLoop):
    """An IOLoop over the given asyncio loop."""

    def __init__(self, asyncio_loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(asyncio_loop, **kwargs)

    @property
    def selector_loop(self) -> asyncio.AbstractEventLoop:
        return self.asyncio_loop


class AsyncIOMainLoop(BaseAsyncIOLoop):
    """The IOLoop of the thread's asyncio event loop (``asyncio.get_event_loop()``)."""

    def __init__(self, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            # get_event_loop() outside a running loop warns on 3.12+; this is its documented use.
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop()
        super().__init__(loop, **kwargs)


class AsyncIOLoop(BaseAsyncIOLoop):
    """An IOLoop on a new asyncio loop of its own (uvloop when installed)."""

    def __init__(self, **kwargs: Any) -> None:
        loop = new_event_loop()
        try:
            super().__init__(loop, **kwargs)
        except BaseException:
            loop.close()
            raise


def to_tornado_future(asyncio_future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Tornado futures are asyncio futures: returned as is."""
    return asyncio_future


def to_asyncio_future(tornado_future: Any) -> asyncio.Future[Any]:
    """An asyncio future for any awaitable (a Tornado future already is one)."""
    future: asyncio.Future[Any] = asyncio.ensure_future(tornado_future)
    return future


class SelectorThread:
    """Tornado runs a selector in a thread for event loops without ``add_reader`` (Windows'
    proactor loop). asyncweb supports only loops that have it (the selector loops and uvloop),
    so there is no such thread: constructing one says so."""

    def __init__(self, real_loop: asyncio.AbstractEventLoop) -> None:
        raise NotImplementedError(
            "asyncweb needs an event loop with add_reader/add_writer; it runs no selector thread"
        )


class AddThreadSelectorEventLoop(asyncio.AbstractEventLoop):
    """Tornado's wrapper giving a loop ``add_reader``/``add_writer``. Every loop asyncweb runs
    on has them, so this is a transparent view of ``real_loop``; ``close()`` closes it (once).
    """

    def __init__(self, real_loop: asyncio.AbstractEventLoop) -> None:
        if not hasattr(real_loop, "add_reader"):
            SelectorThread(real_loop)  # explains why not
        self._real_loop = real_loop

    def __getattribute__(self, name: str) -> Any:
        if name in ("_real_loop", "close", "__class__", "__dict__"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "_real_loop"), name)

    def close(self) -> None:
        if not self._real_loop.is_closed():
            self._real_loop.close()


def _any_thread_policy() -> type[asyncio.AbstractEventLoopPolicy]:
    class AnyThreadEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
        """``get_event_loop()`` makes a loop in any thread, not only the main one.

        Deprecated, as in Tornado: start loops with ``asyncio.run`` or ``IOLoop.run_sync``.
        """

        def __init__(self) -> None:
            warnings.warn(
                "AnyThreadEventLoopPolicy is deprecated; use asyncio.run or "
                "asyncio.new_event_loop in the thread instead",
                DeprecationWarning,
                stacklevel=2,
            )
            super().__init__()

        def get_event_loop(self) -> asyncio.AbstractEventLoop:
            try:
                return super().get_event_loop()
            except RuntimeError:
                loop = self.new_event_loop()
                self.set_event_loop(loop)
                return loop

    return AnyThreadEventLoopPolicy


def __getattr__(name: str) -> Any:
    # Built on first use, so importing this module never touches the (deprecated in 3.14)
    # policy classes.
    if name == "AnyThreadEventLoopPolicy":
        policy = _any_thread_policy()
        globals()[name] = policy
        return policy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
