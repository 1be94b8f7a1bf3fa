"""Handler delegates: what the server feeds a request to once its handler class is known.

``Application.get_handler_delegate`` picks one of two kinds, once per request: a
``_BufferedDelegate`` collects the body and runs the handler when the request is complete; a
``_StreamingDelegate`` (``@stream_request_body`` handlers) runs ``prepare()`` as soon as the
head is in and hands each body chunk to ``data_received``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from asyncweb import httputil
from asyncweb.httputil.body import BodySpool
from asyncweb.log import app_log
from asyncweb.web.errors import HTTPError
from asyncweb.web.failures import _bare_error
from asyncweb.web.rendering import _reset_template_loaders
from asyncweb.web.static import StaticFileHandler

if TYPE_CHECKING:
    from asyncweb.web.application import Application
    from asyncweb.web.handler import RequestHandler
    from asyncweb.web.transforms import OutputTransform

__all__ = ["_BufferedDelegate", "_HandlerDelegate", "_StreamingDelegate"]


class _HandlerDelegate(httputil.HTTPMessageDelegate):
    """What both kinds share: the route's handler class and arguments, and running it."""

    __slots__ = (
        "application",
        "handler",
        "handler_class",
        "handler_kwargs",
        "path_args",
        "path_kwargs",
        "request",
    )

    def __init__(
        self,
        application: Application,
        request: httputil.HTTPServerRequest,
        handler_class: type[RequestHandler],
        handler_kwargs: dict[str, Any] | None,
        path_args: Sequence[bytes | None] | None,
        path_kwargs: dict[str, bytes | None] | None,
    ) -> None:
        self.application = application
        self.request = request
        self.handler_class = handler_class
        # Kept as given (maybe None): most requests have none, and execute() tests for that.
        self.handler_kwargs = handler_kwargs
        self.path_args = path_args
        self.path_kwargs = path_kwargs
        self.handler: RequestHandler | None = None

    def execute(self) -> asyncio.Future[None] | None:
        """Create the handler and run it; returns a Task only when it went async."""
        handler = self._create_handler()
        if handler is None:
            return None
        transform_classes = self.application.transforms
        transforms: Sequence[OutputTransform] = (
            [t(self.request) for t in transform_classes] if transform_classes else ()
        )
        path_args = self.path_args
        path_kwargs = self.path_kwargs
        if path_kwargs:
            return handler._execute(transforms, *(path_args or ()), **path_kwargs)
        if path_args:
            # Unnamed groups (the usual kind) come with an empty path_kwargs: don't spread it.
            return handler._execute(transforms, *path_args)
        return handler._execute(transforms)

    def _create_handler(self) -> RequestHandler | None:
        """The request's handler, or None when its constructor failed (then answered)."""
        application = self.application
        request = self.request
        kwargs = self.handler_kwargs
        if application._reset_caches_per_request:
            _reset_caches(application)
        try:
            # Plain calls when there is nothing to spread: ** on an empty dict is not free.
            if kwargs:
                handler = self.handler_class(application, request, **kwargs)
            else:
                handler = self.handler_class(application, request)
        except Exception:
            self._creation_failed()
            return None
        self.handler = handler
        return handler

    def _creation_failed(self) -> None:
        """The handler's constructor raised (the current exception): log it and, with no
        handler to send an error page, answer with constants or hang up."""
        app_log.error("Error creating %s", self.handler_class.__name__, exc_info=True)
        connection: Any = self.request.connection
        if not _bare_error(connection):
            connection.close()

    def on_connection_close(self) -> None:
        # A handler hears of the close through the close callback it registered with the
        # connection; calling it from here as well would notify it twice.
        pass


class _BufferedDelegate(_HandlerDelegate):
    """Collects the body (large ones in a temporary file), then runs the handler."""

    __slots__ = ("chunks",)

    def __init__(
        self,
        application: Application,
        request: httputil.HTTPServerRequest,
        handler_class: type[RequestHandler],
        handler_kwargs: dict[str, Any] | None,
        path_args: Sequence[bytes | None] | None,
        path_kwargs: dict[str, bytes | None] | None,
    ) -> None:
        # The base's assignments written out: one call per request less.
        self.application = application
        self.request = request
        self.handler_class = handler_class
        self.handler_kwargs = handler_kwargs
        self.path_args = path_args
        self.path_kwargs = path_kwargs
        self.handler: RequestHandler | None = None
        self.chunks: list[bytes] | BodySpool | None = []

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        chunks = self.chunks
        if chunks is not None:
            if type(chunks) is list:  # the first chunk: large bodies go to a file
                chunks = self.chunks = BodySpool()
            chunks.append(chunk)
        return None

    def finish(self) -> None:
        chunks = self.chunks
        if chunks:
            # h11 may hand over bytearrays; handlers expect immutable bytes.
            self.request.body = (
                chunks.getvalue() if isinstance(chunks, BodySpool) else b"".join(chunks)
            )
            try:
                self.request._parse_body_or_refuse()
            except httputil.HTTPInputError as e:
                self.chunks = None
                self.refuse_body(e)
                return
        self.chunks = None
        self.execute()

    def refuse_body(self, error: httputil.HTTPInputError) -> None:
        """Answer a body over a parse-body limit with 400, through a handler of the route
        (its headers, ``write_error`` and ``on_finish``) without running its methods."""
        request = self.request
        kwargs = self.handler_kwargs or {}
        try:
            handler = self.handler_class(self.application, request, **kwargs)
        except Exception:
            self._creation_failed()
            return
        self.handler = handler
        handler._transforms = [t(request) for t in self.application.transforms]
        try:
            # Raised, so that log_exception and write_error see it as the current exception.
            raise HTTPError(400, "Invalid body: %s", error, reason=f"Invalid body: {error}")
        except HTTPError as refusal:
            handler._fail(refusal)

    def on_connection_close(self) -> None:
        self.chunks = None


class _StreamingDelegate(_HandlerDelegate):
    """For ``@stream_request_body`` handlers: ``prepare()`` runs when the head is in (the
    server holds the body back until it is done), chunks go to ``data_received`` and the
    HTTP method runs once the body has ended."""

    __slots__ = ()

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.execute()
        prepared = self.handler._prepared_future if self.handler is not None else None
        if prepared is not None and not prepared.done():
            return prepared
        return None

    def _create_handler(self) -> RequestHandler | None:
        handler = super()._create_handler()
        if handler is not None:
            # Resolved by _execute once prepare() is done, and by finish() below.
            loop = asyncio.get_running_loop()
            handler._prepared_future = loop.create_future()
            handler._body_future = loop.create_future()
        return handler

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        handler = self.handler
        if handler is None or handler._finished:
            return None  # e.g. prepare() answered already: discard the rest
        if type(chunk) is not bytes:
            chunk = bytes(chunk)  # h11 may hand over bytearrays
        try:
            result = handler.data_received(chunk)
        except Exception as e:
            handler._handle_request_exception(e)
            return None
        if result is not None:
            return _guard_data_received(handler, result)
        return None

    def finish(self) -> None:
        body = self.handler._body_future if self.handler is not None else None
        if body is not None and not body.done():
            body.set_result(None)


def _reset_caches(application: Application) -> None:
    settings = application.settings
    if not settings.get("compiled_template_cache", True):
        _reset_template_loaders(application)
    if not settings.get("static_hash_cache", True):
        settings.get("static_handler_class", StaticFileHandler).reset()


async def _guard_data_received(handler: RequestHandler, pending: Awaitable[None]) -> None:
    try:
        await pending
    except Exception as e:
        handler._handle_request_exception(e)
