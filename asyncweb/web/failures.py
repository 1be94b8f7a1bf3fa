"""What ``RequestHandler`` does when a request fails: error pages (``send_error``,
``write_error``), logging (``log_exception``), turning exceptions into answers, and the bare
500 sent when nothing else can be."""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from asyncweb import escape, httputil
from asyncweb.log import app_log, gen_log
from asyncweb.protocol import StreamClosedError
from asyncweb.protocol.response_head import status_has_no_body
from asyncweb.web.errors import Finish, HTTPError

if TYPE_CHECKING:
    from asyncweb.web.application import Application
    from asyncweb.web.handler import RequestHandler

__all__ = ["_ErrorsMixin", "_bare_error"]

_DEFAULT_CONTENT_TYPE = "text/html; charset=UTF-8"

# Per class: the value of the Allow header sent with a 405.
_allow_cache: dict[type, str] = {}


def _unimplemented_method(self: RequestHandler, *args: Any, **kwargs: Any) -> None:
    raise HTTPError(405)


class _ErrorsMixin:
    """``send_error``, ``write_error`` and ``log_exception`` (as Tornado's), and the paths
    that lead from an exception to them."""

    if TYPE_CHECKING:
        # What this mixin uses of RequestHandler.
        application: Application
        request: httputil.HTTPServerRequest
        _headers: httputil.HTTPHeaders
        _headers_written: bool
        _finished: bool
        _status_code: int
        _reason: str

        @property
        def settings(self) -> dict[str, Any]: ...
        def clear(self) -> None: ...
        def set_status(self, status_code: int, reason: str | None = None) -> None: ...
        def set_header(self, name: str, value: Any) -> None: ...
        def write(self, chunk: str | bytes | dict[str, Any]) -> None: ...
        def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Any: ...
        def _log(self) -> None: ...
        def _request_summary(self) -> str: ...

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Replace the response with an error page from :meth:`write_error` and finish.
        Statuses that carry no body (1xx, 204, 304) are sent without calling write_error."""
        if self._headers_written:
            gen_log.error("Error after the response head was sent; ending the response as is")
            if not self._finished:
                try:
                    self.finish()
                except Exception:
                    gen_log.error("Could not end the partial response", exc_info=True)
                    self._abandon_response()
            return
        self.clear()
        reason = kwargs.get("reason")
        exc_info = kwargs.get("exc_info")
        if exc_info is not None:
            exception = exc_info[1]
            if isinstance(exception, HTTPError) and exception.reason:
                reason = exception.reason
        self.set_status(status_code, reason=reason)
        if status_code == 405:
            self._headers["Allow"] = _allowed_methods(type(self))
        if not status_has_no_body(status_code):
            try:
                self.write_error(status_code, **kwargs)
            except Exception:
                app_log.error("write_error() failed", exc_info=True)
        if not self._finished:
            try:
                self.finish()
            except Exception:
                app_log.error("Could not send the error response", exc_info=True)
                self._abandon_response()

    def _abandon_response(self) -> None:
        """Last resort when even the error response failed: a bare 500 if no head went out,
        else close the connection. The client must never be left waiting."""
        if self._finished:
            return
        self._finished = True
        self._status_code = 500
        connection: Any = self.request.connection
        if connection is None:
            return
        connection.set_close_callback(None)
        if self._headers_written or not _bare_error(connection):
            connection.close()
        self._log()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write the error page; ``kwargs["exc_info"]`` is set when an exception caused it.
        The traceback is shown only with the ``serve_traceback`` (or ``debug``) setting, and
        not for an ``HTTPError`` (an answer, not a bug). In debug mode a client that accepts
        HTML gets ``asyncweb.web.debug_page``; others get the traceback as text."""
        exc_info = kwargs.get("exc_info")
        if (
            exc_info is not None
            and self.settings.get("serve_traceback")
            and not isinstance(exc_info[1], HTTPError)
        ):
            if self.settings.get("debug") and "text/html" in self.request.headers.get("Accept", ""):
                from asyncweb.web import debug_page

                self.set_header("Content-Type", "text/html; charset=UTF-8")
                self.finish(debug_page.render(cast("RequestHandler", self), status_code, exc_info))
                return
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            for line in traceback.format_exception(*exc_info):
                self.write(line)
            self.finish()
            return
        message = escape.xhtml_escape(self._reason)
        self.finish(
            f"<html><title>{status_code}: {message}</title>"
            f"<body>{status_code}: {message}</body></html>"
        )

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Log an exception from a handler: an ``HTTPError`` as a one-line warning (when it
        has a log message), anything else as an error with its traceback."""
        if isinstance(value, HTTPError):
            if value.log_message:
                args = [value.status_code, self._request_summary(), *value.args]
                gen_log.warning("%d %s: " + value.log_message, *args)
            return
        app_log.error(
            "Uncaught exception %s\n%r",
            self._request_summary(),
            self.request,
            exc_info=(typ, value, tb),  # type: ignore[arg-type]
        )

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, httputil._LazyInputError):
            # The request itself is at fault (found when its arguments were first read).
            try:
                raise HTTPError(400, "Bad request: %s", e, reason=f"Bad request: {e}") from e
            except HTTPError as refusal:
                self._handle_request_exception(refusal)
            return
        if isinstance(e, Finish):
            if not self._finished:
                try:
                    self.finish(*e.args)
                except Exception:
                    # e.g. the protocol refused the head: answer 500 instead.
                    app_log.error("Could not finish the response", exc_info=True)
                    self.send_error(500)
            return
        if isinstance(e, StreamClosedError) and self._connection_closed():
            # The client left; there is nobody to send an error page to.
            self._finished = True
            return
        try:
            self.log_exception(*sys.exc_info())
        except Exception:
            app_log.error("log_exception() failed", exc_info=True)
        if self._finished:
            return
        if isinstance(e, HTTPError):
            self.send_error(e.status_code, exc_info=sys.exc_info())
        else:
            self.send_error(500, exc_info=sys.exc_info())

    def _connection_closed(self) -> bool:
        connection: Any = self.request.connection
        if getattr(connection, "_closed", False):
            return True
        # A failed send closes the transport at once; connection_lost comes an iteration later.
        transport = getattr(connection, "transport", None)
        return transport is not None and bool(transport.is_closing())


_BARE_500_BODY = b"<html><title>500: Internal Server Error</title><body>500</body></html>"


def _bare_error(connection: Any) -> bool:
    """Send a minimal 500 built from constants (nothing a handler set can break it);
    False when even that failed."""
    try:
        connection.write_headers(
            httputil.ResponseStartLine("", 500, "Internal Server Error"),
            httputil.HTTPHeaders(
                {
                    "Content-Type": _DEFAULT_CONTENT_TYPE,
                    "Content-Length": str(len(_BARE_500_BODY)),
                }
            ),
            _BARE_500_BODY,
        )
        connection.finish()
    except Exception:
        app_log.error("Could not send a 500 response", exc_info=True)
        return False
    return True


def _allowed_methods(cls: type) -> str:
    allowed = _allow_cache.get(cls)
    if allowed is None:
        names = [
            m
            for m in getattr(cls, "SUPPORTED_METHODS", ())
            if getattr(cls, m.lower(), _unimplemented_method) is not _unimplemented_method
        ]
        allowed = _allow_cache[cls] = ", ".join(names)
    return allowed
