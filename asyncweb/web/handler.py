"""``RequestHandler``: one instance per request, subclassed by applications.

The hot path: ``_execute`` is a plain function. When ``prepare()`` and the HTTP method return
without an awaitable it runs to the end in the server's callback (no Task, no coroutine) and
``finish()`` writes the head and body with one ``write_headers(..., chunk)``. Only the first
awaitable moves the remainder into a Task.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import functools
import hashlib
import http.cookies
import inspect
import numbers
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from asyncweb import escape, httputil
from asyncweb.log import app_log
from asyncweb.protocol import StreamClosedError
from asyncweb.protocol.flow_control import quiet as _quiet
from asyncweb.protocol.response_head import BODYLESS_STATUSES as _BODYLESS_STATUSES
from asyncweb.protocol.response_head import HEADER_NAME_TOKEN as _HEADER_NAME
from asyncweb.web.cookies import _CookiesMixin
from asyncweb.web.errors import HTTPError, MissingArgumentError
from asyncweb.web.failures import _ErrorsMixin, _unimplemented_method
from asyncweb.web.rendering import _RenderingMixin
from asyncweb.web.signing import _SecureCookiesMixin

try:
    # CPython's own SHA-1 is cheaper than OpenSSL's for the small bodies Etags usually cover.
    from _sha1 import sha1 as _sha1
except ImportError:  # pragma: no cover - other interpreters
    _sha1 = hashlib.sha1

if TYPE_CHECKING:
    from asyncweb.web.application import Application
    from asyncweb.web.transforms import OutputTransform

__all__ = ["RequestHandler"]


class _ArgDefaultMarker:
    """Sentinel type: "no default given" for the get_argument family."""


_ARG_DEFAULT: Any = _ArgDefaultMarker()

_SERVER_HEADER = "AsyncwebServer/0.1.0"
_DEFAULT_CONTENT_TYPE = "text/html; charset=UTF-8"
_JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
_NO_TRANSFORMS: Sequence[OutputTransform] = ()

# Control characters would split or corrupt the response head (header injection).
# RFC 9110 5.5: field values may hold HTAB but no other control character.
_UNSAFE_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")
# RFC 9112 4: what a status line's reason may hold (HTAB, SP, visible ASCII, obs-text).
_REASON_PHRASE = re.compile(r"[\t\x20-\x7e\x80-\xff]+")
_ETAG_LIST = re.compile(rb'\*|(?:W/)?"[^"]*"')
_REQUEST_ARGUMENTS = httputil.HTTPServerRequest.arguments
_HTTPHeaders = httputil.HTTPHeaders
# Headers describing a body, dropped when the response (204, 304) has none.
_REPRESENTATION_HEADERS = (
    "Allow",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-MD5",
    "Content-Range",
    "Content-Type",
    "Last-Modified",
)

# The Date header changes once a second: format it once per second, not per request.
_date_second = -1
_date_value = ""
_new_object = object.__new__


def _http_date() -> str:
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value = email.utils.formatdate(now, usegmt=True)
        _date_second = now
    return _date_value


# Handler classes whose MRO after RequestHandler has no __init__ but object's: for them
# super().__init__() (about 1.4k instructions) does nothing. Bounded, as classes can be made
# at run time.
_NOTHING_TO_INIT_AFTER: set[type] = set()


def _note_init_chain(cls: type) -> None:
    mro = cls.__mro__
    after = mro[mro.index(RequestHandler) + 1 : -1]  # up to object, excluded
    if len(_NOTHING_TO_INIT_AFTER) < 1024 and not any("__init__" in vars(k) for k in after):
        _NOTHING_TO_INIT_AFTER.add(cls)


# Legacy APIs already warned about (each warns once per process).
_legacy_warned: set[str] = set()


def _warn_legacy(name: str, replacement: str) -> None:
    if name not in _legacy_warned:
        _legacy_warned.add(name)
        warnings.warn(
            f"{name} is deprecated; use {replacement} instead",
            DeprecationWarning,
            stacklevel=3,
        )


# Tasks running async handlers (the loop keeps only weak references to tasks), with their
# handler (None for a fallback's task): a shutdown finds the requests still in progress here.
_running: dict[asyncio.Future[Any], RequestHandler | None] = {}


def _forget_task(task: asyncio.Future[Any]) -> None:
    _running.pop(task, None)


# Start lines are immutable tuples and handlers use few (status, reason) pairs: share them.
# Bounded, since a reason may come from the application.
_START_LINES_CACHED = 100
_start_lines: dict[tuple[int, str], httputil.ResponseStartLine] = {}

# Methods that must not change state, so need no XSRF token.
_XSRF_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


class RequestHandler(_CookiesMixin, _ErrorsMixin, _SecureCookiesMixin, _RenderingMixin):
    """Base class for HTTP request handlers: override ``get``, ``post``... (plain or async)."""

    SUPPORTED_METHODS: tuple[str, ...] = (
        "GET",
        "HEAD",
        "POST",
        "DELETE",
        "PATCH",
        "PUT",
        "OPTIONS",
    )

    _stream_request_body = False
    _remove_control_chars_regex = _CONTROL_CHARS

    path_args: list[Any]
    path_kwargs: dict[str, Any]
    _current_user: Any

    def __init__(
        self,
        application: Application,
        request: httputil.HTTPServerRequest,
        **kwargs: Any,
    ) -> None:
        cls = type(self)
        if cls not in _NOTHING_TO_INIT_AFTER:
            super().__init__()
            _note_init_chain(cls)
        self.application = application
        self.request = request
        self.path_args = []
        self.path_kwargs = {}
        self._headers_written = False
        self._finished = False
        self._auto_finish = True
        self._prepared_future: asyncio.Future[None] | None = None
        self._body_future: asyncio.Future[None] | None = None
        self._transforms: Sequence[OutputTransform] = _NO_TRANSFORMS
        self._new_cookie: http.cookies.SimpleCookie | None = None
        self.clear()
        connection: Any = request.connection
        if connection is not None:
            connection.set_close_callback(self.on_connection_close)
        # A call with **kwargs costs about twice a plain one, and most rules have no kwargs.
        if kwargs:
            self.initialize(**kwargs)
        else:
            self.initialize()

    # -- hooks ---------------------------------------------------------------------------------

    def initialize(self, **kwargs: Any) -> None:
        """Receives the third item of the URL rule as keyword arguments."""

    def prepare(self) -> Awaitable[None] | None:
        """Runs before the HTTP method; may be async. Finishing here skips the method."""
        return None

    def on_finish(self) -> None:
        """Runs after the response was sent: clean up, log."""

    def on_connection_close(self) -> None:
        """The client went away before the response was finished (long polls care)."""
        body = self._body_future
        if self._stream_request_body and body is not None and not body.done():
            body.set_exception(StreamClosedError())
            body.exception()  # mark retrieved: nobody may be waiting

    def on_shutdown(self) -> Awaitable[None] | None:
        """The server is shutting down while this request is still in progress. Long polls
        should answer now (``self.finish(...)`` with an empty update, or ``send_error(503)``).
        By default nothing happens: the request may finish within the shutdown timeout,
        after which it gets a 503 with ``Retry-After`` (see ``asyncweb.web.lifecycle``)."""
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """Body chunks for ``@stream_request_body`` handlers; may return an awaitable to
        slow the client down."""
        raise NotImplementedError()

    def set_default_headers(self) -> None:
        """Set headers every response of this handler starts with (also error responses)."""

    get: Callable[..., Awaitable[None] | None] = _unimplemented_method
    head: Callable[..., Awaitable[None] | None] = _unimplemented_method
    post: Callable[..., Awaitable[None] | None] = _unimplemented_method
    delete: Callable[..., Awaitable[None] | None] = _unimplemented_method
    patch: Callable[..., Awaitable[None] | None] = _unimplemented_method
    put: Callable[..., Awaitable[None] | None] = _unimplemented_method
    options: Callable[..., Awaitable[None] | None] = _unimplemented_method
    # Tornado's name for the 405 stub (Jupyter compares handlers' methods to it).
    _unimplemented_method = _unimplemented_method

    # -- properties ----------------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        return self.application.settings

    @property
    def cookies(self) -> dict[str, http.cookies.Morsel[str]]:
        return self.request.cookies

    @property
    def current_user(self) -> Any:
        """The logged-in user, from :meth:`get_current_user` (called once), or assigned."""
        if not hasattr(self, "_current_user"):
            self._current_user = self.get_current_user()
        return self._current_user

    @current_user.setter
    def current_user(self, value: Any) -> None:
        self._current_user = value

    def get_current_user(self) -> Any:
        return None

    def get_login_url(self) -> str:
        self.require_setting("login_url", "@asyncweb.web.authenticated")
        return str(self.application.settings["login_url"])

    def require_setting(self, name: str, feature: str = "this feature") -> None:
        if not self.application.settings.get(name):
            raise Exception(f"{feature} needs the '{name}' application setting")

    def reverse_url(self, name: str, *args: Any) -> str:
        return self.application.reverse_url(name, *args)

    # -- status and headers --------------------------------------------------------------------

    def clear(self) -> None:
        """Reset headers, status and buffered body to their defaults (not cookies)."""
        if int(time.time()) != _date_second:
            _http_date()  # a new second: new Date, new template
        # The default headers' map built in place, names already canonical: cheaper than
        # constructing an HTTPHeaders or copying a template.
        headers = self._headers = _new_object(_HTTPHeaders)
        headers._as_list = {
            "Server": [_SERVER_HEADER],
            "Content-Type": [_DEFAULT_CONTENT_TYPE],
            "Date": [_date_value],
        }
        headers._raw = None
        self.set_default_headers()
        self._write_buffer: list[bytes] = []
        self._status_code = 200
        self._reason = "OK"

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        """Set the status; ``reason`` defaults to the standard phrase (``Unknown`` for codes
        without one). A reason that can't go in a status line, or that holds ``<``, is
        replaced by ``Unknown``: raising here would break the error paths that call this."""
        if reason is None:
            self._reason = httputil.responses.get(status_code, "Unknown")
        else:
            reason = escape.native_str(reason)
            if "<" in reason or not _REASON_PHRASE.fullmatch(reason):
                reason = "Unknown"
            self._reason = reason
        self._status_code = status_code

    def get_status(self) -> int:
        return self._status_code

    def set_header(self, name: str, value: Any) -> None:
        """Set a response header, replacing any earlier value. ``value`` may be str, bytes,
        an int, or a datetime (formatted as an HTTP date)."""
        self._headers[_check_header_name(name)] = self._convert_header_value(value)

    def add_header(self, name: str, value: Any) -> None:
        """Add a response header without replacing earlier ones (e.g. several Set-Cookie)."""
        self._headers.add(_check_header_name(name), self._convert_header_value(value))

    def clear_header(self, name: str) -> None:
        if name in self._headers:
            del self._headers[name]

    def _convert_header_value(self, value: Any) -> str:
        if isinstance(value, str):
            text = value
        elif isinstance(value, bytes):
            # Latin-1 maps every byte to one character, so this never fails.
            text = value.decode("latin1")
        elif isinstance(value, numbers.Integral):
            return str(value)
        elif isinstance(value, datetime.datetime):
            return httputil.format_timestamp(value)
        else:
            raise TypeError(f"Unsupported header value {value!r}")
        # isprintable() is false for every control character and much cheaper than the
        # regex, which is left to decide only the rare values with a tab or non-ASCII.
        if not text.isprintable() and _UNSAFE_HEADER_VALUE.search(text):
            raise ValueError(f"Unsafe header value {text!r}")
        return text

    # -- arguments -----------------------------------------------------------------------------

    def get_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        """The last value of query-or-body argument ``name``; without a default a missing
        argument is a 400 (:class:`MissingArgumentError`)."""
        request = self.request
        if (
            getattr(type(request), "arguments", None) is _REQUEST_ARGUMENTS
            and request._arguments is None
            and not request.body_arguments
        ):
            # Without body arguments the merged map holds just the query's values: read
            # those rather than building the merged copy.
            return self._get_argument(name, default, request.query_arguments, strip)
        return self._get_argument(name, default, request.arguments, strip)

    def get_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Every value of argument ``name`` (maybe none)."""
        return self._get_arguments(name, self.request.arguments, strip)

    def get_body_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        return self._get_argument(name, default, self.request.body_arguments, strip)

    def get_body_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_arguments(name, self.request.body_arguments, strip)

    def get_query_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        return self._get_argument(name, default, self.request.query_arguments, strip)

    def get_query_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_arguments(name, self.request.query_arguments, strip)

    def _get_argument(
        self, name: str, default: Any, source: dict[str, list[bytes]], strip: bool
    ) -> Any:
        values = self._get_arguments(name, source, strip)
        if not values:
            if default is _ARG_DEFAULT:
                raise MissingArgumentError(name)
            return default
        return values[-1]

    def _get_arguments(self, name: str, source: dict[str, list[bytes]], strip: bool) -> list[str]:
        values = []
        for raw in source.get(name, ()):
            value = self.decode_argument(raw, name=name)
            if isinstance(value, str):
                # Form values are text: control characters (not whitespace) become spaces.
                if not value.isprintable():  # false for every control character
                    value = _CONTROL_CHARS.sub(" ", value)
                if strip:
                    value = value.strip()
            values.append(value)
        return values

    def decode_argument(self, value: bytes, name: str | None = None) -> Any:
        """Decode an argument (or path group) from bytes; override for other encodings."""
        try:
            if value.__class__ is bytes:
                return value.decode("utf-8")  # the usual case, without to_unicode's checks
            return escape.to_unicode(value)
        except UnicodeDecodeError:
            raise HTTPError(400, "Invalid unicode in %s: %r", name or "url", value[:40]) from None

    # -- output --------------------------------------------------------------------------------

    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        """Buffer output. A dict is sent as JSON (with a JSON Content-Type); lists are refused
        because top-level JSON arrays could be read cross-site by old browsers."""
        if self._finished:
            raise RuntimeError("write() after finish(): the response is complete")
        if isinstance(chunk, bytes):
            self._write_buffer.append(chunk)
            return
        if isinstance(chunk, str):
            self._write_buffer.append(chunk.encode("utf-8"))
            return
        if isinstance(chunk, dict):
            self._headers["Content-Type"] = _JSON_CONTENT_TYPE
            self._write_buffer.append(escape.json_encode(chunk).encode("utf-8"))
            return
        message = f"write() takes str, bytes or dict, not {type(chunk).__name__}"
        if isinstance(chunk, list):
            message += " (a top-level JSON array can be read by other sites: wrap it in a dict)"
        raise TypeError(message)

    def flush(self, include_footers: bool = False) -> asyncio.Future[None]:
        """Send what is buffered; the first flush sends the head too (chunked framing when no
        Content-Length was set). The future resolves once the output buffer has drained."""
        connection = self.request.connection
        assert connection is not None
        buffer = self._write_buffer
        chunk = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        self._write_buffer = []
        if not self._headers_written:
            for transform in self._transforms:
                self._status_code, self._headers, chunk = transform.transform_first_chunk(
                    self._status_code, self._headers, chunk, include_footers
                )
            if self.request.method == "HEAD":
                chunk = b""
            if self._new_cookie is not None:
                for cookie in self._new_cookie.values():
                    self._headers.add("Set-Cookie", cookie.OutputString(None))
            key = (self._status_code, self._reason)
            start_line = _start_lines.get(key)
            if start_line is None:
                start_line = httputil.ResponseStartLine("", *key)
                if len(_start_lines) < _START_LINES_CACHED:
                    _start_lines[key] = start_line
            # Marked written only once the protocol took the head: when it refuses one (a bad
            # name, a line break), send_error can still replace it with a 500.
            written = connection.write_headers(start_line, self._headers, chunk)
            self._headers_written = True
            return _quiet(written)
        for transform in self._transforms:
            chunk = transform.transform_chunk(chunk, include_footers)
        if self.request.method != "HEAD" and chunk:
            return _quiet(connection.write(chunk))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> asyncio.Future[None]:
        """End the response (writing ``chunk`` first). Called for you after the HTTP method
        returns unless the handler was detached."""
        if self._finished:
            raise RuntimeError("finish() was already called")
        if chunk is not None:
            self.write(chunk)
        if not self._headers_written:
            status = self._status_code
            request = self.request
            headers = self._headers
            # A handler's own headers are usually the plain map copied from the defaults: read
            # and set the names finish() needs on it directly, not through a call each.
            plain = type(headers) is _HTTPHeaders and headers._raw is None
            if (
                status == 200
                and request.method in ("GET", "HEAD")
                and ("Etag" not in headers._as_list if plain else "Etag" not in headers)
            ):
                cls = type(self)
                if (
                    cls.compute_etag is _COMPUTE_ETAG
                    and cls.set_etag_header is _SET_ETAG_HEADER
                    and cls.check_etag_header is _CHECK_ETAG_HEADER
                ):
                    # The default hooks, inlined: the same hash, and a hex digest in quotes
                    # needs no header-value check; without If-None-Match nothing can match.
                    etag = _default_etag(self._write_buffer)
                    if plain:
                        headers._as_list["Etag"] = [etag]
                    else:
                        headers["Etag"] = etag
                    matched = bool(request.headers.get("If-None-Match")) and (
                        self.check_etag_header()
                    )
                else:
                    self.set_etag_header()
                    matched = self.check_etag_header()
                    # The hooks may have replaced the headers.
                    headers = self._headers
                    plain = type(headers) is _HTTPHeaders and headers._raw is None
                if matched:
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
            if status < 200 or status in _BODYLESS_STATUSES:
                if any(self._write_buffer):
                    raise RuntimeError(f"A {status} response can't have a body")
                self._write_buffer = []
                self._clear_representation_headers()
            elif plain:
                if "Content-Length" not in headers._as_list:
                    headers._as_list["Content-Length"] = [str(sum(map(len, self._write_buffer)))]
            elif "Content-Length" not in headers:
                headers["Content-Length"] = str(sum(map(len, self._write_buffer)))
        connection: Any = self.request.connection
        future = self.flush(include_footers=True)
        connection.finish()
        connection.set_close_callback(None)
        self._log()
        self._finished = True
        self.on_finish()
        return future

    def _clear_representation_headers(self) -> None:
        headers = self._headers
        for name in _REPRESENTATION_HEADERS:
            if name in headers:
                del headers[name]

    def redirect(self, url: str, permanent: bool = False, status: int | None = None) -> None:
        """Redirect to ``url`` (302, or 301 when permanent, or ``status`` in 3xx) and finish."""
        if self._headers_written:
            raise Exception("Too late to redirect: the response head was already sent")
        if status is None:
            status = 301 if permanent else 302
        elif not 300 <= status <= 399:
            raise ValueError(f"redirect status must be 3xx, not {status}")
        self.set_header("Location", escape.utf8(url))
        self.set_status(status)
        self.finish()

    # -- etags ---------------------------------------------------------------------------------

    def compute_etag(self) -> str | None:
        """The Etag for the buffered body (a SHA-1 of it); return None to send none."""
        return _default_etag(self._write_buffer)

    def set_etag_header(self) -> None:
        etag = self.compute_etag()
        if etag is not None:
            self._headers["Etag"] = self._convert_header_value(etag)

    def check_etag_header(self) -> bool:
        """Whether the request's If-None-Match matches our Etag (weak comparison, ``*``)."""
        header = self.request.headers.get("If-None-Match")
        if not header:
            return False
        computed = escape.utf8(self._headers.get("Etag", ""))
        etags = _ETAG_LIST.findall(escape.utf8(header))
        if not computed or not etags:
            return False
        if etags[0] == b"*":
            return True
        ours = _strip_weak(computed)
        return any(_strip_weak(tag) == ours for tag in etags)

    def async_callback(
        self, callback: Callable[..., Any] | None, *args: Any, **kwargs: Any
    ) -> Callable[..., Any] | None:
        """Legacy (Tornado < 3): wrap ``callback`` (with ``args`` bound) so an exception it
        raises answers this request with a 500 (or ends it, once the head was sent) instead
        of escaping into the loop. Prefer awaiting in an ``async def`` method."""
        _warn_legacy("RequestHandler.async_callback", "await inside an async def handler method")
        if callback is None:
            return None
        if args or kwargs:
            callback = functools.partial(callback, *args, **kwargs)
        bound = callback

        def wrapper(*cb_args: Any, **cb_kwargs: Any) -> Any:
            try:
                return bound(*cb_args, **cb_kwargs)
            except Exception as e:
                if self._finished:
                    app_log.error("Exception in a callback after the response ended", exc_info=True)
                else:
                    self._fail(e)
                return None

        return wrapper

    # -- execution -----------------------------------------------------------------------------

    def _execute(
        self, transforms: Sequence[OutputTransform], *args: bytes | None, **kwargs: bytes | None
    ) -> asyncio.Future[None] | None:
        """Run the request; returns a Task only if some step had to await."""
        self._transforms = transforms
        try:
            method = self.request.method
            if method not in self.SUPPORTED_METHODS:
                raise HTTPError(405)
            if method not in _XSRF_SAFE_METHODS:
                settings = self.application.settings
                if settings.get("cross_origin_protection"):
                    self._check_cross_origin()
                if settings.get("xsrf_cookies"):
                    self.check_xsrf_cookie()
            if args:
                self.path_args = [self.decode_argument(a) for a in args]  # type: ignore[arg-type]
            if kwargs:
                self.path_kwargs = {
                    k: self.decode_argument(v, name=k)  # type: ignore[arg-type]
                    for k, v in kwargs.items()
                }
            result = self.prepare()
            if result is not None and inspect.isawaitable(result):
                return self._go_async(result, True)
            if self._prepared_future is not None:
                self._prepared_future.set_result(None)
            if self._finished:
                return None
            if self._stream_request_body:
                return self._go_async(None, True)
            handle = getattr(self, method.lower())
            # Most routes have no groups, and spreading empty arguments is not free.
            if self.path_kwargs:
                result = handle(*self.path_args, **self.path_kwargs)
            elif self.path_args:
                result = handle(*self.path_args)
            else:
                result = handle()
            if result is not None and inspect.isawaitable(result):
                return self._go_async(result, False)
            if self._auto_finish and not self._finished:
                self.finish()
        except (Exception, asyncio.CancelledError) as e:
            self._fail(e)
            prepared = self._prepared_future
            if prepared is not None and not prepared.done():
                prepared.set_result(None)
        return None

    def _fail(self, e: BaseException) -> None:
        """Answer an exception from the handler's code; if even that fails, give up cleanly."""
        try:
            self._handle_request_exception(e)
        except Exception:
            app_log.error("Handling an exception failed", exc_info=True)
            self._abandon_response()

    def _go_async(self, pending: Awaitable[Any] | None, preparing: bool) -> asyncio.Future[None]:
        task = asyncio.ensure_future(self._execute_async(pending, preparing))
        _running[task] = self
        task.add_done_callback(_forget_task)
        return task

    async def _execute_async(self, pending: Awaitable[Any] | None, preparing: bool) -> None:
        try:
            if preparing:
                if pending is not None:
                    await pending
                prepared = self._prepared_future
                if prepared is not None and not prepared.done():
                    prepared.set_result(None)
                if self._finished:
                    return
                if self._body_future is not None:
                    await self._body_future
                assert self.request.method is not None
                method = getattr(self, self.request.method.lower())
                pending = method(*self.path_args, **self.path_kwargs)
            if pending is not None and inspect.isawaitable(pending):
                await pending
            if self._auto_finish and not self._finished:
                self.finish()
        except asyncio.CancelledError as e:
            if not _own_task_cancelled():
                self._fail(e)  # the handler's code raised it: an uncaught exception
                return
            # This task was cancelled (a shutdown, a timeout): answer 500 without logging an
            # error, and end cancelled, as Tornado does.
            try:
                if not self._finished:
                    self.send_error(500)
            except Exception:
                self._abandon_response()
            raise
        except Exception as e:
            self._fail(e)
        finally:
            prepared = self._prepared_future
            if prepared is not None and not prepared.done():
                prepared.set_result(None)

    def _log(self) -> None:
        self.application.log_request(self)

    def _request_summary(self) -> str:
        request = self.request
        return f"{request.method} {request.uri} ({request.remote_ip})"


def _own_task_cancelled() -> bool:
    """Whether the running task was asked to cancel (Python 3.11+; on 3.10 a CancelledError
    is always taken for the handler's own)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


_COMPUTE_ETAG = RequestHandler.compute_etag
_SET_ETAG_HEADER = RequestHandler.set_etag_header
_CHECK_ETAG_HEADER = RequestHandler.check_etag_header


def _default_etag(buffer: list[bytes]) -> str:
    """The default Etag: a quoted SHA-1 of the buffered body."""
    if len(buffer) == 1:
        hasher = _sha1(buffer[0])  # the usual single write: no update() call
    else:
        hasher = _sha1()
        for part in buffer:
            hasher.update(part)
    return f'"{hasher.hexdigest()}"'


def _strip_weak(tag: bytes) -> bytes:
    return tag[2:] if tag.startswith(b"W/") else tag


# Names already found valid: handlers set the same few, so the regex runs once per name.
# Bounded, since a name may come from the client.
_VALID_HEADER_NAMES: set[str] = set()


def _check_header_name(name: str) -> str:
    if name in _VALID_HEADER_NAMES:
        return name
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"Invalid header name {name!r}")
    if len(_VALID_HEADER_NAMES) < 256 and type(name) is str:
        _VALID_HEADER_NAMES.add(name)
    return name
