"""Decorators for handler classes and HTTP methods.

The method wrappers are plain functions returning whatever the method returns, so a plain
``def get`` stays on the synchronous fast path and an ``async def`` still gets awaited.
"""

from __future__ import annotations

import functools
import inspect
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asyncweb.web.builtin_handlers import _names_other_host
from asyncweb.web.errors import HTTPError
from asyncweb.web.handler import RequestHandler, _warn_legacy

_Method = Callable[..., Awaitable[None] | None]
_HandlerType = TypeVar("_HandlerType", bound=type[RequestHandler])


def stream_request_body(cls: _HandlerType) -> _HandlerType:
    """Class decorator: the body is passed to ``data_received(chunk)`` as it arrives instead
    of being buffered. ``prepare()`` runs once the headers are in (it may raise the size limit
    with ``request.connection.set_max_body_size``); the HTTP method runs after the last chunk.
    """
    if not isinstance(cls, type) or not issubclass(cls, RequestHandler):
        raise TypeError(f"@stream_request_body takes a RequestHandler subclass, not {cls!r}")
    cls._stream_request_body = True
    return cls


def removeslash(method: _Method) -> _Method:
    """Redirect ``/path/`` to ``/path`` for GET and HEAD (301); other methods get a 404."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        path = self.request.path
        if path.endswith("/"):
            if self.request.method in ("GET", "HEAD"):
                uri = path.rstrip("/")
                if _names_other_host(uri):
                    # "//evil.com//" would redirect to "//evil.com": another site.
                    raise HTTPError(
                        403, "cannot redirect path to %r: it would name another host", uri
                    )
                if uri:  # "/" itself has nowhere shorter to go
                    if self.request.query:
                        uri += "?" + self.request.query
                    self.redirect(uri, permanent=True)
                    return None
            else:
                raise HTTPError(404)
        return method(self, *args, **kwargs)

    return wrapper


def addslash(method: _Method) -> _Method:
    """Redirect ``/path`` to ``/path/`` for GET and HEAD (301); other methods get a 404."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        path = self.request.path
        if not path.endswith("/"):
            if self.request.method in ("GET", "HEAD"):
                uri = path + "/"
                if _names_other_host(uri):
                    # "//evil.com" would redirect to "//evil.com/": another site.
                    raise HTTPError(
                        403, "cannot redirect path to %r: it would name another host", uri
                    )
                if self.request.query:
                    uri += "?" + self.request.query
                self.redirect(uri, permanent=True)
                return None
            raise HTTPError(404)
        return method(self, *args, **kwargs)

    return wrapper


def authenticated(method: _Method) -> _Method:
    """Require ``current_user``: GET/HEAD redirect to the ``login_url`` setting (with
    ``next=``), other methods get a 403."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        if not self.current_user:
            if self.request.method in ("GET", "HEAD"):
                url = self.get_login_url()
                if "?" not in url:
                    if urllib.parse.urlsplit(url).scheme:
                        # An absolute login URL is another host: it needs our full URL back.
                        next_url = self.request.full_url()
                    else:
                        next_url = self.request.uri or "/"
                    url += "?" + urllib.parse.urlencode({"next": next_url})
                self.redirect(url)
                return None
            raise HTTPError(403)
        return method(self, *args, **kwargs)

    return wrapper


def asynchronous(method: _Method) -> _Method:
    """Legacy (Tornado < 6): the response stays open after the method returns, until the
    handler calls ``finish()``. A coroutine method is finished for you when it completes,
    as in Tornado 5. Prefer an ``async def`` method, which needs no decorator."""
    _warn_legacy("@asyncweb.web.asynchronous", "an async def handler method (no decorator)")

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        self._auto_finish = False
        result = method(self, *args, **kwargs)
        if result is not None and inspect.isawaitable(result):
            return _finish_when_done(self, result)
        return None

    return wrapper


async def _finish_when_done(handler: RequestHandler, pending: Awaitable[Any]) -> None:
    await pending
    if not handler._finished:
        handler.finish()
