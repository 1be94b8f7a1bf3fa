"""The default ``AsyncHTTPClient``: HTTP/1.1 over h11 with pooled keep-alive connections.

Each request runs on an :class:`asyncweb.protocol.client.HTTP1ClientProtocol`. Finished
connections that may carry another request wait in a pool keyed by (scheme, host, port, TLS
settings, source address), at most ``max_idle_per_host`` per key and ``idle_timeout`` seconds
each. A request sent on a pooled connection that turns out to be closed (the server timed it
out while it sat idle) is sent again on a fresh one when that is safe: an idempotent method,
no streamed body, and not a byte of response seen.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import inspect
import socket
import ssl
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import h11

from asyncweb import httputil, listening, version
from asyncweb.httpclient import (
    AsyncHTTPClient,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
    _RequestProxy,
)
from asyncweb.httputil import HTTPHeaders, HTTPInputError
from asyncweb.log import app_log, gen_log
from asyncweb.protocol.client import (
    ConnectionClosedError,
    HTTP1ClientProtocol,
    ResponseProtocolError,
)
from asyncweb.util import GzipDecompressor

__all__ = ["HTTPStreamClosedError", "HTTPTimeoutError", "SimpleAsyncHTTPClient"]

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Headers that describe a body; dropped when a redirect turns the request into a GET.
_BODY_HEADERS = ("Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding")

# (scheme, host, port, TLS settings, source address, IPv4 only): connections are only shared
# between requests that would have opened the same one.
_P = TypeVar("_P", bound=asyncio.BaseProtocol)

_PoolKey = tuple[str, str, int, Any, str | None, bool]


class HTTPTimeoutError(HTTPClientError):
    """A timeout (connect, request, or waiting in the queue), reported as code 599."""

    def __init__(self, message: str) -> None:
        super().__init__(599, message=message)

    def __str__(self) -> str:
        return self.message or "Timeout"


class HTTPStreamClosedError(HTTPClientError):
    """The connection closed before the response was complete, reported as code 599."""

    def __init__(self, message: str) -> None:
        super().__init__(599, message=message)

    def __str__(self) -> str:
        return self.message or "Stream closed"


class _ResponseRefused(HTTPStreamClosedError, HTTPInputError):
    """A response the client gave up on (over a size limit, malformed): Tornado closes the
    stream, so code catching ``HTTPClientError`` or ``HTTPStreamClosedError`` sees it, and it
    is an ``HTTPInputError`` too. The reason is logged as Tornado logs it."""


def _refused(reason: str) -> _ResponseRefused:
    gen_log.info("Malformed HTTP message from None: %s", reason)
    return _ResponseRefused(reason)


# Inflated at most this much at a time: a gzip bomb never sits whole in memory, even with a
# streaming_callback taking it piece by piece.
_INFLATE_STEP = 64 * 1024


class _Phase:
    """Where a request is, so a timeout can say so: "resolving", "connecting", "TLS" or
    "request", with ``target`` the host (and port) it concerns."""

    __slots__ = ("stage", "target")

    def __init__(self) -> None:
        self.stage = "connecting"
        self.target = ""

    def timeout(self) -> HTTPTimeoutError:
        if self.stage == "resolving":
            return HTTPTimeoutError(f"Timeout while resolving {self.target}")
        if self.stage == "TLS":
            return HTTPTimeoutError(f"Timeout during TLS handshake with {self.target}")
        if self.stage == "connecting":
            return HTTPTimeoutError("Timeout while connecting")
        return HTTPTimeoutError("Timeout during request")


class SimpleAsyncHTTPClient(AsyncHTTPClient):
    """HTTP/1.1 client on h11 with a keep-alive connection pool (see the module docstring)."""

    def initialize(  # type: ignore[override]
        self,
        max_clients: int = 10,
        hostname_mapping: dict[str, str] | None = None,
        max_buffer_size: int = 104857600,
        resolver: Any = None,
        defaults: dict[str, Any] | None = None,
        max_header_size: int | None = None,
        max_body_size: int | None = None,
        max_idle_per_host: int = 10,
        idle_timeout: float = 30.0,
    ) -> None:
        super().initialize(defaults=defaults)
        self.max_clients = max_clients
        self.hostname_mapping = hostname_mapping or {}
        self.max_buffer_size = max_buffer_size
        self.max_header_size = max_header_size or 65536
        self.max_body_size = max_body_size if max_body_size is not None else max_buffer_size
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        # A resolver turns (host, port) into addresses: another IP, or an AF_UNIX path (how
        # Jupyter talks HTTP over a Unix socket). Without one the loop resolves the host.
        self.resolver = resolver
        self._active = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle: dict[_PoolKey, list[HTTP1ClientProtocol]] = {}
        self._idle_timers: dict[HTTP1ClientProtocol, asyncio.TimerHandle] = {}
        self._busy: set[HTTP1ClientProtocol] = set()
        self._ssl_contexts: dict[Any, ssl.SSLContext] = {}
        # Counts new connections (the pool's effect is visible here and server-side).
        self.connections_opened = 0

    def close(self) -> None:
        if self._closed:
            return
        super().close()
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        for conn in list(self._busy):
            conn.abort()
        self._busy.clear()
        # Requests still waiting for a slot will never get one.
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_exception(HTTPStreamClosedError("Client closed"))

    # Request flow

    async def fetch_impl(self, request: HTTPRequest) -> HTTPResponse:
        loop = asyncio.get_running_loop()
        queued_at = loop.time()
        self._check_request(_RequestProxy(request, self.defaults))
        await self._acquire_slot(_RequestProxy(request, self.defaults))
        queue_time = loop.time() - queued_at
        try:
            current = request
            while True:
                proxy = _RequestProxy(current, self.defaults)
                response = await self._fetch_once(proxy, queue_time)
                location = response.headers.get("Location")
                if not (self._should_follow(proxy, response.code) and location):
                    response.request = request
                    response.original_request = request  # type: ignore[attr-defined]
                    return response
                current = self._redirected(current, proxy, response.code, location)
                # A Location of another scheme fails the request rather than hanging it.
                self._check_request(_RequestProxy(current, self.defaults))
        finally:
            self._release_slot()

    @staticmethod
    def _should_follow(proxy: _RequestProxy, code: int) -> bool:
        return bool(proxy.follow_redirects) and code in _REDIRECT_CODES and proxy.max_redirects > 0

    def _redirected(
        self, current: HTTPRequest, proxy: _RequestProxy, code: int, location: str
    ) -> HTTPRequest:
        new = copy.copy(current)
        new.url = urljoin(current.url, location)
        new.max_redirects = proxy.max_redirects - 1
        new.headers = current.headers.copy()
        new.headers.pop("Host", None)
        # RFC 9110 15.4: 303 means "GET it"; 301/302 after a POST are turned into GETs by
        # every browser, and the RFC allows it. 307/308 repeat the request as it was.
        if (code == 303 and current.method != "HEAD") or (
            code in (301, 302) and current.method == "POST"
        ):
            new.method = "GET"
            new.body = None
            new.body_producer = None
            for name in _BODY_HEADERS:
                new.headers.pop(name, None)
        old, target = urlsplit(current.url), urlsplit(new.url)
        if (old.scheme, old.netloc) != (target.scheme, target.netloc):
            # Credentials are for the origin they were given to.
            new.headers.pop("Authorization", None)
            new.headers.pop("Cookie", None)
            new.auth_username = new.auth_password = None
        return new

    def _check_request(self, proxy: _RequestProxy) -> None:
        scheme = urlsplit(proxy.url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"Unsupported url scheme: {proxy.url}")
        if proxy.proxy_host:
            raise NotImplementedError("proxy_host is not supported by SimpleAsyncHTTPClient")
        if proxy.auth_mode not in (None, "basic"):
            raise ValueError(f"unsupported auth_mode {proxy.auth_mode}")
        if proxy.body is not None and proxy.body_producer is not None:
            raise ValueError("body and body_producer are mutually exclusive")
        if not proxy.allow_nonstandard_methods:
            body_expected = proxy.method in ("POST", "PATCH", "PUT")
            body_present = proxy.body is not None or proxy.body_producer is not None
            if body_expected != body_present:
                raise ValueError(
                    f"Body must {'not ' if body_expected else ''}be None for method "
                    f"{proxy.method} (unless allow_nonstandard_methods is true)"
                )

    async def _fetch_once(self, proxy: _RequestProxy, queue_time: float) -> HTTPResponse:
        loop = asyncio.get_running_loop()
        parts = urlsplit(proxy.url)
        netloc = parts.netloc.rpartition("@")[2]
        host, port = httputil.split_host_and_port(netloc)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        tls = parts.scheme == "https"
        if port is None:
            port = 443 if tls else 80
        host, port = self._mapped(host, port)
        ssl_context, ssl_key = self._ssl_context(proxy) if tls else (None, None)
        key: _PoolKey = (
            parts.scheme,
            host,
            port,
            ssl_key,
            proxy.network_interface,
            proxy.allow_ipv6 is False,
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = self._request_headers(proxy, netloc, parts.username, parts.password)
        phase = _Phase()
        start_time = time.time()
        started = loop.time()
        exchange = self._exchange(proxy, key, ssl_context, phase, target, headers)
        timeout = proxy.request_timeout or None
        try:
            code, reason, response_headers, buffer = await asyncio.wait_for(exchange, timeout)
        except asyncio.TimeoutError:
            raise phase.timeout() from None
        return HTTPResponse(
            proxy.request,
            code,
            reason=reason,
            headers=response_headers,
            buffer=buffer,
            effective_url=proxy.url,
            request_time=loop.time() - started,
            start_time=start_time,
            time_info={"queue": queue_time},
        )

    def _request_headers(
        self,
        proxy: _RequestProxy,
        netloc: str,
        url_user: str | None,
        url_password: str | None,
    ) -> list[tuple[str, str]]:
        headers = proxy.headers.copy()
        if "Host" not in headers:
            headers["Host"] = netloc
        username, password = proxy.auth_username, proxy.auth_password
        if username is None and url_user is not None:
            username, password = url_user, url_password or ""
        if username is not None and "Authorization" not in headers:
            credentials = httputil.encode_username_password(username, password or "")
            headers["Authorization"] = "Basic " + _b64(credentials)
        if "User-Agent" not in headers:
            headers["User-Agent"] = proxy.user_agent or f"asyncweb/{version}"
        if proxy.body is not None:
            headers["Content-Length"] = str(len(proxy.body))
        elif proxy.body_producer is not None and "Content-Length" not in headers:
            headers["Transfer-Encoding"] = "chunked"
        if proxy.method == "POST" and "Content-Type" not in headers:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if proxy.decompress_response and "Accept-Encoding" not in headers:
            headers["Accept-Encoding"] = "gzip"
        if proxy.expect_100_continue:
            headers["Expect"] = "100-continue"
        # Values go out as bytes: str as latin-1 (as Tornado writes them; UTF-8 past it),
        # bytes as given. h11 would take str as ASCII only.
        pairs: list[tuple[str, Any]] = [
            (name, _header_bytes(value)) for name, value in headers.get_all()
        ]
        return pairs

    async def _exchange(
        self,
        proxy: _RequestProxy,
        key: _PoolKey,
        ssl_context: ssl.SSLContext | None,
        phase: _Phase,
        target: str,
        headers: list[tuple[str, str]],
    ) -> tuple[int, str, HTTPHeaders, BytesIO]:
        while True:
            conn = self._take_idle(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(proxy, key, ssl_context, phase)
            phase.stage = "request"
            self._busy.add(conn)
            try:
                result = await self._run_exchange(conn, proxy, target, headers)
            except ConnectionClosedError as e:
                conn.abort()
                self._busy.discard(conn)
                retry_safe = (
                    reused
                    and not e.response_started
                    and proxy.method in _IDEMPOTENT_METHODS
                    and proxy.body_producer is None
                )
                if retry_safe:
                    continue
                raise HTTPStreamClosedError(str(e)) from None
            except ResponseProtocolError as e:
                conn.abort()
                self._busy.discard(conn)
                raise _refused(str(e)) from None
            except BaseException:
                conn.abort()
                self._busy.discard(conn)
                raise
            self._busy.discard(conn)
            self._release(key, conn)
            return result

    def _mapped(self, host: str, port: int) -> tuple[str, int]:
        """``hostname_mapping``, whose keys may be a host or a (host, port) pair mapped to a
        host or a (host, port) pair, as Tornado's OverrideResolver takes them."""
        mapping = self.hostname_mapping
        if not mapping:
            return host, port
        target: Any = mapping.get((host, port)) or mapping.get(host)  # type: ignore[call-overload]
        if target is None:
            return host, port
        if isinstance(target, tuple):
            return target[0], int(target[1])
        return target, port

    async def _connect(
        self,
        proxy: _RequestProxy,
        key: _PoolKey,
        ssl_context: ssl.SSLContext | None,
        phase: _Phase,
    ) -> HTTP1ClientProtocol:
        loop = asyncio.get_running_loop()
        host, port = key[1], key[2]
        max_header_size = proxy.max_header_size or self.max_header_size
        local_addr = (proxy.network_interface, 0) if proxy.network_interface else None
        family = socket.AF_INET if proxy.allow_ipv6 is False else socket.AF_UNSPEC
        if local_addr is not None:
            try:
                await loop.getaddrinfo(local_addr[0], 0, type=socket.SOCK_STREAM)
            except socket.gaierror as e:
                raise ValueError(
                    f"Failed binding local connection end to {local_addr[0]!r}: {e}"
                ) from None
        if self.resolver is not None or ssl_context is not None:
            # Step by step, so that a timeout can say which step: resolving, connecting, or
            # the TLS handshake.
            connecting = connect_resolved(
                self.resolver or _LoopResolver(),
                lambda: HTTP1ClientProtocol(max_header_size),
                host,
                port,
                family=family,
                ssl_context=ssl_context,
                local_addr=local_addr,
                phase=phase,
            )
        else:
            connecting = loop.create_connection(
                lambda: HTTP1ClientProtocol(max_header_size),
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
                family=family,
                local_addr=local_addr,
            )
        phase.stage = "connecting"
        try:
            _, conn = await asyncio.wait_for(connecting, proxy.connect_timeout or None)
        except asyncio.TimeoutError:
            raise phase.timeout() from None
        self.connections_opened += 1
        if self._closed:
            conn.close()
            raise HTTPStreamClosedError("Client closed")
        return conn

    async def _run_exchange(
        self,
        conn: HTTP1ClientProtocol,
        proxy: _RequestProxy,
        target: str,
        headers: list[tuple[str, str]],
    ) -> tuple[int, str, HTTPHeaders, BytesIO]:
        conn.send_request(proxy.method, target, headers)
        has_body = proxy.body is not None or proxy.body_producer is not None
        first: h11.Event | None = None
        if has_body and proxy.expect_100_continue:
            first = await conn.next_event()
            if isinstance(first, h11.InformationalResponse) and first.status_code == 100:
                first = None
        if first is None:
            # Without Expect (or after 100 Continue) the body goes out; a final answer that
            # came instead of 100 means the server does not want it.
            if proxy.body:
                await conn.send_data(proxy.body)
            if proxy.body_producer is not None:
                # A plain function that calls write() without awaiting is allowed too.
                produced = proxy.body_producer(conn.send_data)
                if produced is not None:
                    await produced
            conn.send_end()
        event = first
        while not isinstance(event, h11.Response):
            event = await conn.next_event()
        return await self._read_response(conn, proxy, event)

    async def _read_response(
        self, conn: HTTP1ClientProtocol, proxy: _RequestProxy, event: h11.Response
    ) -> tuple[int, str, HTTPHeaders, BytesIO]:
        code = event.status_code
        reason = event.reason.decode("latin-1")
        headers = HTTPHeaders()
        for raw_name, raw_value in event.headers.raw_items():
            headers.add(raw_name.decode("latin-1"), raw_value.decode("latin-1"))
        redirecting = self._should_follow(proxy, code) and "Location" in headers
        if proxy.header_callback is not None and not redirecting:
            http_version = event.http_version.decode("ascii")
            lines = [f"HTTP/{http_version} {code} {reason}\r\n"]
            lines.extend(f"{name}: {value}\r\n" for name, value in headers.get_all())
            lines.append("\r\n")
            for line in lines:
                await _user_callback(proxy.header_callback, line)
        max_body_size = proxy.max_body_size or self.max_body_size
        length = headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_body_size:
            raise _refused("Content-Length too long")
        decompressor = None
        if proxy.decompress_response and headers.get("Content-Encoding", "").lower() == "gzip":
            decompressor = GzipDecompressor()
            headers["X-Consumed-Content-Encoding"] = headers["Content-Encoding"]
            del headers["Content-Encoding"]
        streaming = proxy.streaming_callback if not redirecting else None
        chunks: list[bytes] = []
        received = 0
        while True:
            body_event = await conn.next_event()
            if isinstance(body_event, h11.EndOfMessage):
                break
            if not isinstance(body_event, h11.Data):
                continue
            data = bytes(body_event.data)
            if decompressor is None:
                received += len(data)
                if received > max_body_size:
                    raise _refused("Body too long")
                if data and not redirecting:
                    if streaming is not None:
                        await _user_callback(streaming, data)
                    else:
                        chunks.append(data)
                continue
            # Inflated a bounded piece at a time: a gzip bomb grows about 1000:1. With a
            # streaming_callback each piece goes out before the next is made; either way the
            # inflated body must fit under max_body_size.
            while data:
                try:
                    piece = decompressor.decompress(data, _INFLATE_STEP)
                except Exception:
                    raise _refused("Invalid gzip data in the response") from None
                data = decompressor.unconsumed_tail
                received += len(piece)
                if received > max_body_size:
                    raise _refused("decompressed body too large")
                if piece and not redirecting:
                    if streaming is not None:
                        await _user_callback(streaming, piece)
                    else:
                        chunks.append(piece)
        if decompressor is not None and not redirecting:
            try:
                tail = decompressor.flush()
            except Exception:
                raise _refused("Invalid gzip data in the response") from None
            if received + len(tail) > max_body_size:
                raise _refused("decompressed body too large")
            if tail:
                if streaming is not None:
                    await _user_callback(streaming, tail)
                else:
                    chunks.append(tail)
        return code, reason, headers, BytesIO(b"".join(chunks))

    # Slots (max_clients)

    async def _acquire_slot(self, proxy: _RequestProxy) -> None:
        if self._active < self.max_clients:
            self._active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        limits = [t for t in (proxy.connect_timeout, proxy.request_timeout) if t]
        try:
            await asyncio.wait_for(waiter, min(limits) if limits else None)
        except asyncio.TimeoutError:
            raise HTTPTimeoutError("Timeout in request queue") from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # the slot came just as we were cancelled
            raise

    def _release_slot(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the next request in line
                return
        self._active -= 1

    # The pool

    def _take_idle(self, key: _PoolKey) -> HTTP1ClientProtocol | None:
        conns = self._idle.get(key)
        while conns:
            conn = conns.pop()
            timer = self._idle_timers.pop(conn, None)
            if timer is not None:
                timer.cancel()
            if conn.usable:
                return conn
            conn.close()
        return None

    def _release(self, key: _PoolKey, conn: HTTP1ClientProtocol) -> None:
        if not conn.finish_exchange() or self._closed or self.max_idle_per_host <= 0:
            conn.close()
            return
        conns = self._idle.setdefault(key, [])
        if len(conns) >= self.max_idle_per_host:
            oldest = conns.pop(0)
            timer = self._idle_timers.pop(oldest, None)
            if timer is not None:
                timer.cancel()
            oldest.close()
        conns.append(conn)
        loop = asyncio.get_running_loop()
        self._idle_timers[conn] = loop.call_later(self.idle_timeout, self._expire, key, conn)

    def _expire(self, key: _PoolKey, conn: HTTP1ClientProtocol) -> None:
        self._idle_timers.pop(conn, None)
        conns = self._idle.get(key)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._idle[key]
        conn.close()

    def _ssl_context(self, proxy: _RequestProxy) -> tuple[ssl.SSLContext, Any]:
        options = proxy.ssl_options
        if isinstance(options, ssl.SSLContext):
            return options, ("context", id(options))
        if isinstance(options, dict):
            key: Any = ("options", tuple(sorted((k, repr(v)) for k, v in options.items())))
        else:
            key = (
                "settings",
                bool(proxy.validate_cert),
                proxy.ca_certs,
                proxy.client_cert,
                proxy.client_key,
            )
        context = self._ssl_contexts.get(key)
        if context is None:
            if isinstance(options, dict):
                context = listening.ssl_options_to_context(options, server_side=False)
            else:
                context = ssl.create_default_context(cafile=proxy.ca_certs)
                if proxy.client_cert:
                    context.load_cert_chain(proxy.client_cert, proxy.client_key)
                if not proxy.validate_cert:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
            self._ssl_contexts[key] = context
        return context, key


async def _user_callback(callback: Callable[[Any], Any], arg: Any) -> None:
    """Run a ``header_callback`` or ``streaming_callback`` (awaiting it when it is a
    coroutine). As in Tornado, its exception is logged and the fetch fails with
    HTTPStreamClosedError."""
    try:
        result = callback(arg)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and getattr(task, "cancelling", lambda: 0)():
            raise  # the fetch itself is being cancelled
        app_log.error("Uncaught exception in %r", callback, exc_info=True)
        raise HTTPStreamClosedError("Stream closed") from None
    except Exception:
        app_log.error("Uncaught exception in %r", callback, exc_info=True)
        raise HTTPStreamClosedError("Stream closed") from None


class _LoopResolver:
    """The loop's getaddrinfo, in the shape of a Tornado resolver."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM
        )
        return [(info[0], info[4]) for info in infos]


async def connect_resolved(
    resolver: Any,
    protocol_factory: Callable[[], _P],
    host: str,
    port: int,
    *,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    ssl_context: ssl.SSLContext | None = None,
    local_addr: tuple[str, int] | None = None,
    phase: _Phase | None = None,
) -> tuple[asyncio.Transport, _P]:
    """Connect to ``host:port`` at the addresses ``resolver.resolve()`` gives, in order,
    until one answers. An address may be of any family the resolver names, ``AF_UNIX``
    included. TLS is checked against ``host``, whatever the address. ``phase`` follows the
    steps, for a timeout's message."""
    loop = asyncio.get_running_loop()
    if phase is not None:
        phase.stage, phase.target = "resolving", host
    addresses = await resolver.resolve(host, port, family)
    if phase is not None:
        phase.stage = "connecting"
    if not addresses:
        raise OSError(f"the resolver found no address for {host}:{port}")
    error: OSError | None = None
    for address_family, address in addresses:
        sock = socket.socket(address_family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if local_addr is not None and address_family in (socket.AF_INET, socket.AF_INET6):
                sock.bind(local_addr)
            await loop.sock_connect(sock, address)
        except OSError as e:
            sock.close()
            error = e
            continue
        except BaseException:
            sock.close()
            raise
        if phase is not None and ssl_context is not None:
            phase.stage, phase.target = "TLS", f"{host}:{port}"
        try:
            return await loop.create_connection(
                protocol_factory,
                sock=sock,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            )
        except BaseException:
            sock.close()
            raise
    assert error is not None
    raise error


def _header_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
