"""A non-blocking HTTP client, as ``tornado.httpclient``.

``AsyncHTTPClient`` is the interface; the default implementation,
:class:`asyncweb.simple_httpclient.SimpleAsyncHTTPClient`, speaks HTTP/1.1 through h11 inside
an ``asyncio.Protocol`` (``asyncweb.protocol.client``) and keeps idle connections for reuse.

    async def main():
        client = AsyncHTTPClient()
        try:
            response = await client.fetch("http://example.com/")
        except HTTPClientError as e:
            print("HTTP error:", e.code)   # a non-2xx response
        except Exception as e:
            print("failed:", e)            # connection refused, timeout, bad TLS...
        else:
            print(response.body)

``HTTPClient`` is the blocking wrapper for scripts; it runs its own event loop.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ssl
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable
from io import BytesIO
from typing import Any, cast

from asyncweb import httputil
from asyncweb.escape import utf8
from asyncweb.httputil import HTTPHeaders
from asyncweb.util import import_object

__all__ = [
    "AsyncHTTPClient",
    "HTTPClient",
    "HTTPClientError",
    "HTTPError",
    "HTTPRequest",
    "HTTPResponse",
]


class HTTPClientError(Exception):
    """A fetch that did not end in a 2xx response (with ``raise_error``).

    ``code`` is the HTTP status, or 599 when no response arrived (timeout, closed connection);
    ``response`` is the :class:`HTTPResponse` when there is one. Without ``follow_redirects`` a
    redirect is an error too: read its target from ``e.response.headers["Location"]``.
    """

    def __init__(
        self, code: int, message: str | None = None, response: HTTPResponse | None = None
    ) -> None:
        self.code = code
        self.message = message or httputil.responses.get(code, "Unknown")
        self.response = response
        super().__init__(code, message, response)

    def __str__(self) -> str:
        return f"HTTP {self.code}: {self.message}"

    # The response refers back to this error; the default repr would recurse through it.
    __repr__ = __str__


HTTPError = HTTPClientError


class HTTPRequest:
    """One request and its options. Options left as ``None`` take the client's ``defaults``,
    then the built-in ones (20 s timeouts, follow up to 5 redirects, decompress gzip,
    validate certificates)."""

    _DEFAULTS: dict[str, Any] = dict(
        connect_timeout=20.0,
        request_timeout=20.0,
        follow_redirects=True,
        max_redirects=5,
        decompress_response=True,
        proxy_password="",
        allow_nonstandard_methods=False,
        validate_cert=True,
    )

    def __init__(
        self,
        url: str,
        method: str = "GET",
        headers: dict[str, str] | HTTPHeaders | None = None,
        body: bytes | str | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        auth_mode: str | None = None,
        connect_timeout: float | None = None,
        request_timeout: float | None = None,
        if_modified_since: datetime.datetime | float | None = None,
        follow_redirects: bool | None = None,
        max_redirects: int | None = None,
        user_agent: str | None = None,
        use_gzip: bool | None = None,
        network_interface: str | None = None,
        streaming_callback: Callable[[bytes], None] | None = None,
        header_callback: Callable[[str], None] | None = None,
        prepare_curl_callback: Callable[[Any], None] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_username: str | None = None,
        proxy_password: str | None = None,
        proxy_auth_mode: str | None = None,
        allow_nonstandard_methods: bool | None = None,
        validate_cert: bool | None = None,
        ca_certs: str | None = None,
        allow_ipv6: bool | None = None,
        client_key: str | None = None,
        client_cert: str | None = None,
        body_producer: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]]
        | None = None,
        expect_100_continue: bool = False,
        decompress_response: bool | None = None,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_body_size: int | None = None,
        max_header_size: int | None = None,
    ) -> None:
        self.headers = headers
        if if_modified_since:
            self.headers["If-Modified-Since"] = httputil.format_timestamp(if_modified_since)
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.proxy_username = proxy_username
        self.proxy_password = proxy_password
        self.proxy_auth_mode = proxy_auth_mode
        self.url = url
        self.method = method
        self.body = body
        self.body_producer = body_producer
        self.auth_username = auth_username
        self.auth_password = auth_password
        self.auth_mode = auth_mode
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        # use_gzip is the older name of decompress_response.
        self.decompress_response = decompress_response if use_gzip is None else use_gzip
        self.network_interface = network_interface
        self.streaming_callback = streaming_callback
        self.header_callback = header_callback
        self.prepare_curl_callback = prepare_curl_callback
        self.allow_nonstandard_methods = allow_nonstandard_methods
        self.validate_cert = validate_cert
        self.ca_certs = ca_certs
        self.allow_ipv6 = allow_ipv6
        self.client_key = client_key
        self.client_cert = client_cert
        self.ssl_options = ssl_options
        self.expect_100_continue = expect_100_continue
        self.max_body_size = max_body_size
        self.max_header_size = max_header_size
        self.start_time = time.time()

    @property
    def headers(self) -> HTTPHeaders:
        return self._headers

    @headers.setter
    def headers(self, value: dict[str, str] | HTTPHeaders | None) -> None:
        if value is None:
            self._headers = HTTPHeaders()
        elif isinstance(value, HTTPHeaders):
            self._headers = value
        else:
            self._headers = HTTPHeaders(value)

    @property
    def body(self) -> bytes | None:
        return self._body

    @body.setter
    def body(self, value: bytes | str | None) -> None:
        self._body = utf8(value)

    @property
    def use_gzip(self) -> bool | None:
        return self.decompress_response

    def __repr__(self) -> str:
        return f"HTTPRequest({self.method} {self.url})"


class _RequestProxy:
    """A request seen through the client's defaults: an option the request leaves ``None``
    comes from ``defaults``."""

    def __init__(self, request: HTTPRequest, defaults: dict[str, Any] | None) -> None:
        self.request = request
        self.defaults = defaults

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.request, name)
        if value is not None:
            return value
        if self.defaults is not None:
            return self.defaults.get(name)
        return None


class HTTPResponse:
    """What a fetch produced.

    ``code``/``reason``/``headers``; ``body`` (bytes) and ``buffer`` (a ``BytesIO``), empty
    when a ``streaming_callback`` took the data; ``effective_url`` after redirects;
    ``request_time`` (seconds, queueing excluded), ``start_time`` (``time.time()``),
    ``time_info`` (``queue``: seconds spent waiting for a ``max_clients`` slot); ``error``:
    an exception, or ``None`` for 2xx. ``rethrow()`` raises it.
    """

    error: BaseException | None = None
    _error_is_response_code = False

    def __init__(
        self,
        request: HTTPRequest,
        code: int,
        headers: HTTPHeaders | None = None,
        buffer: BytesIO | None = None,
        effective_url: str | None = None,
        error: BaseException | None = None,
        request_time: float | None = None,
        time_info: dict[str, float] | None = None,
        reason: str | None = None,
        start_time: float | None = None,
    ) -> None:
        self.request = request.request if isinstance(request, _RequestProxy) else request
        self.code = code
        self.reason = reason or httputil.responses.get(code, "Unknown")
        self.headers = headers if headers is not None else HTTPHeaders()
        self.buffer = buffer
        self._body: bytes | None = None
        self.effective_url = effective_url if effective_url is not None else request.url
        if error is None:
            if code < 200 or code >= 300:
                self._error_is_response_code = True
                self.error = HTTPClientError(code, message=self.reason, response=self)
            else:
                self.error = None
        else:
            self.error = error
        self.start_time = start_time
        self.request_time = request_time
        self.time_info = time_info or {}

    @property
    def body(self) -> bytes:
        if self.buffer is None:
            return b""
        if self._body is None:
            self._body = self.buffer.getvalue()
        return self._body

    def rethrow(self) -> None:
        """Raise ``error`` if there is one."""
        if self.error:
            raise self.error

    def __repr__(self) -> str:
        return f"HTTPResponse(code={self.code}, effective_url={self.effective_url!r})"


_warned_callback = False


def _warn_callback_once() -> None:
    global _warned_callback
    if not _warned_callback:
        _warned_callback = True
        warnings.warn(
            "the callback argument of AsyncHTTPClient.fetch is deprecated; await the result",
            DeprecationWarning,
            stacklevel=3,
        )


class AsyncHTTPClient:
    """The non-blocking client. ``AsyncHTTPClient()`` returns the one instance of the current
    event loop (created on first use); ``force_instance=True`` makes a private one, which you
    ``close()`` yourself. ``configure()`` picks the implementation and its default settings.

    Settings (keyword arguments, or ``configure`` defaults): ``max_clients`` (10: requests
    beyond it wait in a queue), ``defaults`` (a dict of ``HTTPRequest`` option defaults),
    ``max_buffer_size``/``max_body_size`` (100 MiB), ``max_header_size`` (64 KiB),
    ``hostname_mapping``, and for the pool ``max_idle_per_host`` (10) and ``idle_timeout``
    (30 s).
    """

    _impl_class: type[AsyncHTTPClient] | None = None
    _impl_kwargs: dict[str, Any] = {}
    _instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncHTTPClient]
    _instances = weakref.WeakKeyDictionary()

    _closed = True
    defaults: dict[str, Any]

    @classmethod
    def configurable_base(cls) -> type[AsyncHTTPClient]:
        return AsyncHTTPClient

    @classmethod
    def configurable_default(cls) -> type[AsyncHTTPClient]:
        from asyncweb.simple_httpclient import SimpleAsyncHTTPClient

        return SimpleAsyncHTTPClient

    @classmethod
    def configured_class(cls) -> type[AsyncHTTPClient]:
        base = cls.configurable_base()
        impl = base.__dict__.get("_impl_class")
        return impl if impl is not None else cls.configurable_default()

    @classmethod
    def configure(cls, impl: type[AsyncHTTPClient] | str | None, **kwargs: Any) -> None:
        """Choose the class ``AsyncHTTPClient()`` builds (a class, a dotted name such as
        ``"asyncweb.simple_httpclient.SimpleAsyncHTTPClient"``, or ``None`` for the default)
        and keyword arguments every new instance gets (``max_clients=20``, ...)."""
        base = cls.configurable_base()
        if isinstance(impl, str):
            impl = cast("type[AsyncHTTPClient]", import_object(impl))
        if impl is not None and not (isinstance(impl, type) and issubclass(impl, base)):
            raise ValueError(f"Invalid subclass of {base.__name__}: {impl!r}")
        base._impl_class = impl
        base._impl_kwargs = kwargs

    @classmethod
    def _save_configuration(cls) -> tuple[type[AsyncHTTPClient] | None, dict[str, Any]]:
        """What :meth:`configure` set, for :meth:`_restore_configuration` (tests use the pair
        to undo a ``configure`` call, as with Tornado's ``Configurable``)."""
        base = cls.configurable_base()
        return base.__dict__.get("_impl_class"), dict(base._impl_kwargs)

    @classmethod
    def _restore_configuration(
        cls, saved: tuple[type[AsyncHTTPClient] | None, dict[str, Any]]
    ) -> None:
        base = cls.configurable_base()
        base._impl_class, base._impl_kwargs = saved[0], dict(saved[1])

    def __new__(cls, force_instance: bool = False, **kwargs: Any) -> AsyncHTTPClient:
        base = cls.configurable_base()
        impl = base.configured_class() if cls is base else cls
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        if not force_instance:
            existing = base._instances.get(loop)
            if existing is not None:
                return existing
        instance = super().__new__(impl)
        instance._closed = False
        instance._loop = loop
        instance._cached = not force_instance
        settings = dict(base._impl_kwargs)
        settings.update(kwargs)
        instance.initialize(**settings)
        if not force_instance:
            base._instances[loop] = instance
        return instance

    def __init__(self, force_instance: bool = False, **kwargs: Any) -> None:
        pass  # __new__ did the work (and must not repeat it for a cached instance)

    def initialize(self, defaults: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._loop: asyncio.AbstractEventLoop
        self._cached: bool
        self.defaults = dict(HTTPRequest._DEFAULTS)
        if defaults is not None:
            self.defaults.update(defaults)

    def close(self) -> None:
        """Free the client's resources (idle connections). The shared instance is forgotten,
        so the next ``AsyncHTTPClient()`` builds a new one."""
        if self._closed:
            return
        self._closed = True
        if self._cached:
            base = self.configurable_base()
            if base._instances.get(self._loop) is self:
                del base._instances[self._loop]

    def fetch(
        self,
        request: str | HTTPRequest,
        callback: Callable[[HTTPResponse], Any] | None = None,
        raise_error: bool = True,
        **kwargs: Any,
    ) -> asyncio.Future[HTTPResponse]:
        """Fetch a URL or an ``HTTPRequest``; returns a future for the ``HTTPResponse``.

        With ``raise_error`` (the default) a non-2xx response raises ``HTTPClientError``;
        without it the response comes back whatever its code. Failures without a response
        (connection refused, timeouts, TLS errors) raise either way. With the legacy
        ``callback`` nothing raises: the callback (and the future) get the response, whose
        ``error`` says what went wrong (code 599 when there was no response).
        """
        if self._closed:
            raise RuntimeError("fetch() called on closed AsyncHTTPClient")
        if not isinstance(request, HTTPRequest):
            request = HTTPRequest(url=request, **kwargs)
        elif kwargs:
            raise ValueError(
                "kwargs can't be used if request is an HTTPRequest object: " + ", ".join(kwargs)
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Called before the loop runs (as Tornado allows): the request starts once the
            # current IOLoop does.
            from asyncweb.ioloop import IOLoop

            loop = IOLoop.current().asyncio_loop
        # Validate headers now, so bad input fails before anything is sent.
        self._validate(request)
        result: asyncio.Future[HTTPResponse] = loop.create_future()
        task = loop.create_task(self.fetch_impl(request))
        if callback is not None:
            _warn_callback_once()

        def done(task: asyncio.Task[HTTPResponse]) -> None:
            if task.cancelled():
                result.cancel()
                return
            error = task.exception()
            if error is not None:
                response = HTTPResponse(request, 599, error=error)
            else:
                response = task.result()
            if callback is not None:
                loop.call_soon(callback, response)
            if result.cancelled():
                return
            if (
                callback is None
                and response.error is not None
                and (raise_error or not response._error_is_response_code)
            ):
                result.set_exception(response.error)
            else:
                result.set_result(response)

        task.add_done_callback(done)
        result.add_done_callback(functools.partial(_cancel_task, task))
        return result

    def _validate(self, request: HTTPRequest) -> None:
        for name, value in request.headers.get_all():
            if isinstance(value, bytes):  # allowed, as in Tornado; checked as latin-1 text
                value = value.decode("latin-1")
            if httputil._FORBIDDEN_VALUE_RE.search(value) or "\n" in value or "\r" in value:
                raise ValueError(f"Unsafe header value {value!r} for header {name!r}")

    async def fetch_impl(self, request: HTTPRequest) -> HTTPResponse:
        """Run one request to its final response (implementations override this)."""
        raise NotImplementedError()


def _cancel_task(task: asyncio.Task[Any], future: asyncio.Future[Any]) -> None:
    if future.cancelled() and not task.done():
        task.cancel()


class HTTPClient:
    """A blocking client for scripts and tests: ``HTTPClient().fetch(url)`` returns an
    ``HTTPResponse`` or raises ``HTTPClientError``. It runs a private event loop, so it must
    not be used from a thread whose loop is running."""

    def __init__(
        self,
        async_client_class: type[AsyncHTTPClient] | None = None,
        **kwargs: Any,
    ) -> None:
        self._closed = True
        from asyncweb.ioloop import new_event_loop

        self._loop = new_event_loop()
        if async_client_class is None:
            async_client_class = AsyncHTTPClient

        async def make_client() -> AsyncHTTPClient:
            return async_client_class(force_instance=True, **kwargs)

        self._async_client = self._loop.run_until_complete(make_client())
        self._closed = False

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and its event loop."""
        if not self._closed:
            self._async_client.close()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()
            self._closed = True

    def fetch(self, request: str | HTTPRequest, **kwargs: Any) -> HTTPResponse:
        """Fetch and wait; raises ``HTTPClientError`` for non-2xx unless ``raise_error=False``."""
        if self._closed:
            raise RuntimeError("fetch() called on closed HTTPClient")

        async def run() -> HTTPResponse:
            return await self._async_client.fetch(request, **kwargs)

        return self._loop.run_until_complete(run())


def main(argv: list[str] | None = None) -> None:
    """``python -m asyncweb.httpclient [--print_headers] [--print_body=false] URL...``:
    fetch each URL and print what came back (an error response too)."""
    import argparse
    import sys

    def flag(value: str) -> bool:
        return value.lower() in ("1", "true", "yes", "on")

    switches = {
        "print_headers": False,
        "print_body": True,
        "follow_redirects": True,
        "validate_cert": True,
    }
    parser = argparse.ArgumentParser(prog="python -m asyncweb.httpclient")
    for name, default in switches.items():
        parser.add_argument(f"--{name}", type=flag, default=default, metavar="BOOL")
    parser.add_argument("urls", nargs="+")
    # As with asyncweb.options, a bare --switch means --switch=true.
    args = [f"{a}=true" if a[2:] in switches else a for a in (argv or sys.argv[1:])]
    options = parser.parse_args(args)
    client = HTTPClient()
    try:
        for url in options.urls:
            try:
                response = client.fetch(
                    url,
                    follow_redirects=options.follow_redirects,
                    validate_cert=options.validate_cert,
                )
            except HTTPClientError as e:
                if e.response is None:
                    raise
                response = e.response
            if options.print_headers:
                sys.stdout.write(str(response.headers))
            if options.print_body:
                sys.stdout.write(response.body.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
    finally:
        client.close()


if __name__ == "__main__":
    # Run the imported module's main(): under ``-m`` this file is also ``__main__``, whose
    # classes are not the ones the client raises.
    from asyncweb.httpclient import main as _main

    _main()
