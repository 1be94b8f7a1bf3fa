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
import string
import sys
import time
import traceback
import urllib.parse
import warnings
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asyncweb import escape, httputil
from asyncweb.log import app_log, gen_log
from asyncweb.protocol import StreamClosedError
from asyncweb.protocol.flow_control import quiet as _quiet
from asyncweb.protocol.response_head import HEADER_NAME_TOKEN as _HEADER_NAME
from asyncweb.protocol.response_head import status_has_no_body
from asyncweb.web.errors import Finish, HTTPError, MissingArgumentError
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

__all__ = ["ErrorHandler", "FallbackHandler", "RedirectHandler", "RequestHandler"]


class _CookieAttributeError(http.cookies.CookieError, ValueError):
    """A cookie attribute that would break the Set-Cookie header (both types, so code
    catching either the cookie module's error or ValueError sees it)."""


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
# A cookie attribute value ends at ";" and may hold no whitespace or control character.
_BAD_COOKIE_ATTRIBUTE = re.compile(r"[\x00-\x20;\x7f]")
_ETAG_LIST = re.compile(rb'\*|(?:W/)?"[^"]*"')
# The cookie names http.cookies.SimpleCookie accepts: no attribute name (any case), and only
# its legal characters. get_cookie answers as the Morsel jar would, without building one.
_RESERVED_COOKIE_NAMES = frozenset(http.cookies.Morsel._reserved)  # type: ignore[attr-defined]
_REQUEST_COOKIES = httputil.HTTPServerRequest.cookies
_REQUEST_ARGUMENTS = httputil.HTTPServerRequest.arguments
_JAR_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:]+")


@functools.lru_cache(maxsize=256)
def _jar_accepts(name: str) -> bool:
    """Whether SimpleCookie would take ``name`` (cached: handlers ask for a few fixed names)."""
    return name.lower() not in _RESERVED_COOKIE_NAMES and bool(_JAR_COOKIE_NAME.fullmatch(name))


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

# The Date header changes once a second: format it (and the default header set holding it)
# once per second, not per request. Each response copies the template, which skips name
# normalisation.
_date_second = -1
_date_value = ""
_default_headers = httputil.HTTPHeaders()


def _http_date() -> str:
    global _date_second, _date_value, _default_headers
    now = int(time.time())
    if now != _date_second:
        _date_value = email.utils.formatdate(now, usegmt=True)
        _date_second = now
        _default_headers = httputil.HTTPHeaders(
            {"Server": _SERVER_HEADER, "Content-Type": _DEFAULT_CONTENT_TYPE, "Date": _date_value}
        )
    return _date_value


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

# Per class: the value of the Allow header sent with a 405.
_allow_cache: dict[type, str] = {}


def _unimplemented_method(self: RequestHandler, *args: Any, **kwargs: Any) -> None:
    raise HTTPError(405)


class RequestHandler(_SecureCookiesMixin, _RenderingMixin):
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
        super().__init__()
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
        self._headers = _default_headers.copy()
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

    # -- cookies -------------------------------------------------------------------------------

    # The request's cookies as plain strings, parsed by the first get_cookie.
    _cookie_values: dict[str, str] | None = None

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        request = self.request
        if getattr(type(request), "cookies", None) is not _REQUEST_COOKIES or (
            request._cookies is not None
        ):
            # Someone built or replaced the Morsel jar: it is the truth.
            cookies = request.cookies
            if name in cookies:
                return cookies[name].value
            return default
        values = self._cookie_values
        if values is None:
            values = self._cookie_values = httputil.parse_cookie(request.headers.get("Cookie", ""))
        if name in values and _jar_accepts(name):
            return values[name]
        return default

    def set_cookie(
        self,
        name: str,
        value: str | bytes,
        domain: str | None = None,
        expires: float | tuple[Any, ...] | datetime.datetime | None = None,
        path: str = "/",
        expires_days: float | None = None,
        *,
        max_age: int | None = None,
        httponly: bool = False,
        secure: bool = False,
        samesite: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue a ``Set-Cookie`` header (sent with the response head)."""
        name = escape.native_str(name)
        value = escape.native_str(value)
        # Tornado's wording ("Invalid cookie attribute <key>"), which callers match on.
        if _BAD_COOKIE_ATTRIBUTE.search(name):
            raise _CookieAttributeError(f"Invalid cookie attribute name: {name!r}")
        if re.search(r"[\x00-\x20]", name + value):
            # Cookie syntax allows neither whitespace nor control characters unquoted.
            raise ValueError(f"Cookie {name!r} has whitespace or a control character: {value!r}")
        # Checked now, while the caller is on the stack: once in the head, a CR/LF or ";"
        # would inject headers or attributes (or make the whole response unsendable).
        attributes: list[tuple[str, Any]] = [
            ("domain", domain),
            ("path", path),
            ("samesite", samesite),
            ("max_age", max_age),
        ]
        attributes.extend(kwargs.items())
        for attribute, given in attributes:
            if given is not None and _BAD_COOKIE_ATTRIBUTE.search(str(given)):
                raise _CookieAttributeError(f"Invalid cookie attribute {attribute}: {given!r}")
        if self._new_cookie is None:
            self._new_cookie = http.cookies.SimpleCookie()
        if name in self._new_cookie:
            del self._new_cookie[name]
        self._new_cookie[name] = value
        morsel = self._new_cookie[name]
        if domain:
            morsel["domain"] = domain
        if expires_days is not None and not expires:
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                days=expires_days
            )
        if expires:
            morsel["expires"] = httputil.format_timestamp(expires)
        if path:
            morsel["path"] = path
        if max_age:
            morsel["max-age"] = str(max_age)
        if httponly:
            morsel["httponly"] = True
        if secure:
            morsel["secure"] = True
        if samesite:
            morsel["samesite"] = samesite
        for key, val in kwargs.items():
            if key == "max_age":
                key = "max-age"
            if key in ("httponly", "secure") and not val:
                continue
            morsel[key] = val

    def clear_cookie(self, name: str, **kwargs: Any) -> None:
        """Expire cookie ``name``; pass the ``path``/``domain`` it was set with."""
        for forbidden in ("expires", "max_age"):
            if forbidden in kwargs:
                raise TypeError(f"clear_cookie() sets {forbidden!r} itself; it can't be passed")
        expires = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=365)
        self.set_cookie(name, value="", expires=expires, **kwargs)

    def clear_all_cookies(self, **kwargs: Any) -> None:
        """Expire every cookie the request sent (same ``path``/``domain`` for all)."""
        for name in self.request.cookies:
            self.clear_cookie(name, **kwargs)

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
            if (
                status == 200
                and self.request.method in ("GET", "HEAD")
                and "Etag" not in self._headers
            ):
                self.set_etag_header()
                if self.check_etag_header():
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
            if status_has_no_body(status):
                if any(self._write_buffer):
                    raise RuntimeError(f"A {status} response can't have a body")
                self._write_buffer = []
                self._clear_representation_headers()
            elif "Content-Length" not in self._headers:
                self._headers["Content-Length"] = str(sum(map(len, self._write_buffer)))
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
        buffer = self._write_buffer
        if len(buffer) == 1:
            hasher = _sha1(buffer[0])  # the usual single write: no update() call
        else:
            hasher = _sha1()
            for part in buffer:
                hasher.update(part)
        return f'"{hasher.hexdigest()}"'

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

    # -- errors --------------------------------------------------------------------------------

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
                self.finish(debug_page.render(self, status_code, exc_info))
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
        except Exception as e:
            self._fail(e)
            prepared = self._prepared_future
            if prepared is not None and not prepared.done():
                prepared.set_result(None)
        return None

    def _fail(self, e: Exception) -> None:
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


# Browsers (WHATWG URL parsing) trim these from both ends of a URL...
_URL_TRIMMED = "".join(map(chr, range(0x21)))
# ...drop these anywhere in it...
_URL_DROPPED = str.maketrans("", "", "\t\n\r")


def _as_browser_reads(url: str) -> str:
    # ...and, for http(s), read a backslash as a slash. Redirect checks must see the same URL.
    return url.strip(_URL_TRIMMED).translate(_URL_DROPPED).replace("\\", "/")


def _names_other_host(url: str) -> bool:
    """Whether a browser would take ``url`` as scheme-relative (``//host/...``)."""
    return _as_browser_reads(url).startswith("//")


def _scheme_and_host(url: str) -> tuple[str, str]:
    """The scheme and authority (lower case) a browser would find in ``url``."""
    url = _as_browser_reads(url)
    if url.startswith("//"):
        # urlsplit finds no host in "///evil.com"; a browser skips the extra slashes.
        url = "//" + url.lstrip("/")
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _strip_weak(tag: bytes) -> bytes:
    return tag[2:] if tag.startswith(b"W/") else tag


def _check_header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"Invalid header name {name!r}")
    return name


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


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (the application's 404 handler)."""

    def initialize(self, status_code: int) -> None:  # type: ignore[override]
        self.set_status(status_code)

    def prepare(self) -> None:
        raise HTTPError(self._status_code)

    def check_xsrf_cookie(self) -> None:
        # An error page must not turn into a 403 because a form lacked its token.
        pass

    def _check_cross_origin(self) -> None:
        # Nor because the request came from another origin.
        pass


class RedirectHandler(RequestHandler):
    """Redirects to ``url`` (``{0}``/``{name}`` are filled from the path's groups), keeping
    the query string: ``(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})``."""

    def initialize(self, url: str, permanent: bool = True) -> None:  # type: ignore[override]
        self._url = url
        self._permanent = permanent

    def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        query = self.request.query_arguments
        try:
            if query:
                pairs = [(k, escape.to_unicode(v)) for k, values in query.items() for v in values]
                to_url = httputil.url_concat(to_url, pairs)
            same_site = self._keeps_destination(to_url)
        except ValueError:
            same_site = False
        if not same_site:
            # Tornado's wording, which log filters match on.
            raise HTTPError(400, "Redirect URL cannot change the scheme or netloc: %r", to_url)
        if _UNSAFE_HEADER_VALUE.search(to_url):
            raise HTTPError(400, "Redirect URL contains invalid characters: %r", to_url)
        self.redirect(to_url, permanent=self._permanent)

    def _keeps_destination(self, to_url: str) -> bool:
        """Whether ``to_url`` goes to the scheme and host the ``url`` template fixed before
        its first substitution: path groups come from the client and must not pick them."""
        fixed = ""
        substituted = False
        for literal, field, _, _ in string.Formatter().parse(self._url):
            fixed += literal
            if field is not None:
                substituted = True
                break
        scheme, host = _scheme_and_host(fixed)
        if substituted and scheme in ("http", "https") and not host:
            return False  # e.g. "https://{0}": the whole host is the client's choice
        return _scheme_and_host(to_url) == (scheme, host)


class FallbackHandler(RequestHandler):
    """Hands the request to another server's callable, e.g. a ``WSGIContainer``, so it can
    share an application with native handlers::

        wsgi_app = WSGIContainer(flask_app)
        Application([(r"/api/.*", ApiHandler), (r".*", FallbackHandler, {"fallback": wsgi_app})])

    The callable answers on ``request.connection`` itself; this handler writes nothing. An
    awaitable it returns is kept running (and its failure logged) after ``prepare``.
    """

    def initialize(  # type: ignore[override]
        self, fallback: Callable[[httputil.HTTPServerRequest], Any]
    ) -> None:
        self.fallback = fallback

    def prepare(self) -> None:
        result = self.fallback(self.request)
        self._finished = True
        self.on_finish()
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            _running[task] = None
            task.add_done_callback(_fallback_done)


def _fallback_done(task: asyncio.Future[Any]) -> None:
    _running.pop(task, None)
    if not task.cancelled() and task.exception() is not None:
        app_log.error("Uncaught exception in fallback", exc_info=task.exception())
