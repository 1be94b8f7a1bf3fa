"""``tornado.http1connection``: HTTP/1.x on an :class:`~asyncweb.iostream.IOStream`.

asyncweb's servers and clients speak HTTP/1.1 through their asyncio protocols
(``asyncweb.protocol``), not through streams. This module is for code that holds a stream and
wants HTTP on it, with Tornado's classes:

- :class:`HTTP1ServerConnection` hands the stream's transport to the server protocol
  (``HTTP1ServerProtocol``, the one ``HTTPServer`` uses), so requests are served exactly as by
  ``HTTPServer``.
- :class:`HTTP1Connection` reads and writes one message at a time on the stream, with h11 (the
  parser under the protocol layer) framing and checking the bytes.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
from typing import Any

import h11

from asyncweb import httputil
from asyncweb.iostream import IOStream, StreamClosedError
from asyncweb.log import app_log, gen_log
from asyncweb.util import GzipDecompressor

__all__ = [
    "HTTP1Connection",
    "HTTP1ConnectionParameters",
    "HTTP1ServerConnection",
    "is_transfer_encoding_chunked",
    "parse_hex_int",
    "parse_int",
]

# How many interim (1xx) responses a client skips before giving up on the real one.
_MAX_1XX_RESPONSES = 10

CR_OR_LF_RE = re.compile(b"\r|\n")
DIGITS = re.compile(r"[0-9]+")
HEXDIGITS = re.compile(r"[0-9a-fA-F]+")


def parse_int(s: str) -> int:
    """A decimal integer made of digits only (no sign, space or underscore)."""
    if DIGITS.fullmatch(s) is None:
        raise ValueError(f"not a decimal integer: {s!r}")
    return int(s)


def parse_hex_int(s: str) -> int:
    """A hexadecimal integer made of hex digits only."""
    if HEXDIGITS.fullmatch(s) is None:
        raise ValueError(f"not a hexadecimal integer: {s!r}")
    return int(s, 16)


def is_transfer_encoding_chunked(headers: httputil.HTTPHeaders) -> bool:
    """Whether the message is chunked; an encoding other than a final ``chunked`` (which
    HTTP/1.1 does not allow) raises ``HTTPInputError``."""
    if "Transfer-Encoding" not in headers:
        return False
    if "Content-Length" in headers:
        raise httputil.HTTPInputError("Message with both Transfer-Encoding and Content-Length")
    codings = [c.strip().lower() for c in headers["Transfer-Encoding"].split(",")]
    if codings == ["chunked"]:
        return True
    raise httputil.HTTPInputError(f"Unsupported Transfer-Encoding {headers['Transfer-Encoding']}")


class HTTP1ConnectionParameters:
    """Limits and options for one HTTP/1.x connection (the server's, or a client's)."""

    def __init__(
        self,
        no_keep_alive: bool = False,
        chunk_size: int | None = None,
        max_header_size: int | None = None,
        header_timeout: float | None = None,
        max_body_size: int | None = None,
        body_timeout: float | None = None,
        decompress: bool = False,
    ) -> None:
        self.no_keep_alive = no_keep_alive
        self.chunk_size = chunk_size or 65536
        self.max_header_size = max_header_size or 65536
        self.header_timeout = header_timeout
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.decompress = decompress


class HTTP1Connection(httputil.HTTPConnection):
    """One side of HTTP/1.x on ``stream``: a client (``is_client``) writes requests and
    reads responses, a server the other way round.

    A client that reads a response without having written a request reads it as the answer
    to a ``GET``.
    """

    def __init__(
        self,
        stream: IOStream,
        is_client: bool,
        params: HTTP1ConnectionParameters | None = None,
        context: object | None = None,
    ) -> None:
        self.stream = stream
        self.is_client = is_client
        self.params = params or HTTP1ConnectionParameters()
        self.context = context
        self.no_keep_alive = self.params.no_keep_alive
        self._h11 = h11.Connection(
            h11.CLIENT if is_client else h11.SERVER,
            max_incomplete_event_size=self.params.max_header_size,
        )
        self._max_body_size = self.params.max_body_size
        self._body_timeout = self.params.body_timeout
        self._close_callback: Any = None
        self._request_method: str | None = None
        stream.set_close_callback(self._on_stream_closed)

    # -- reading ---------------------------------------------------------------------------

    def read_response(self, delegate: httputil.HTTPMessageDelegate) -> asyncio.Future[bool]:
        """Read one message into ``delegate``; the future says whether the connection can
        carry another (False once it is closed)."""
        return asyncio.ensure_future(self._read_message(delegate))

    async def _next_event(self) -> Any:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.read_bytes(self.params.chunk_size, partial=True)
            except StreamClosedError:
                data = b""
            self._h11.receive_data(data)

    async def _read_message(self, delegate: httputil.HTTPMessageDelegate) -> bool:
        if self.is_client and self._h11.our_state is h11.IDLE:
            self._h11.send(h11.Request(method="GET", target="/", headers=[("Host", "_")]))
        try:
            event = await self._next_event()
            interim = 0
            while isinstance(event, h11.InformationalResponse):
                interim += 1
                if interim > _MAX_1XX_RESPONSES:
                    raise httputil.HTTPInputError("Too many 1xx responses")
                event = await self._next_event()
            if isinstance(event, h11.ConnectionClosed):
                delegate.on_connection_close()
                return False
            headers = httputil.HTTPHeaders()
            for name, value in event.headers:
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
            version = "HTTP/" + event.http_version.decode()
            start_line: httputil.RequestStartLine | httputil.ResponseStartLine
            if isinstance(event, h11.Request):
                self._request_method = event.method.decode()
                start_line = httputil.RequestStartLine(
                    self._request_method, event.target.decode("latin-1"), version
                )
            else:
                start_line = httputil.ResponseStartLine(
                    version, event.status_code, event.reason.decode("latin-1")
                )
            decompressor = None
            if self.params.decompress and headers.get("Content-Encoding", "").lower() == "gzip":
                # As Tornado: the delegate sees the decoded body, and the coding it had.
                decompressor = GzipDecompressor()
                headers.add("X-Consumed-Content-Encoding", headers["Content-Encoding"])
                del headers["Content-Encoding"]
            await _maybe_await(delegate.headers_received(start_line, headers))
            received = 0
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    data = bytes(event.data)
                    if decompressor is not None:
                        # Capped just past the body limit, so a gzip bomb stops there.
                        limit = self._max_body_size
                        cap = sys.maxsize if limit is None else max(limit - received, 0) + 1
                        data = decompressor.decompress(data, cap)
                        if decompressor.unconsumed_tail:
                            raise httputil.HTTPInputError("Content-Length too long")
                    received += len(data)
                    if self._max_body_size is not None and received > self._max_body_size:
                        raise httputil.HTTPInputError("Content-Length too long")
                    if data:
                        await _maybe_await(delegate.data_received(data))
                elif isinstance(event, h11.EndOfMessage):
                    tail = decompressor.flush() if decompressor is not None else b""
                    if tail:
                        await _maybe_await(delegate.data_received(tail))
                    break
                else:
                    delegate.on_connection_close()
                    return False
            delegate.finish()
        except (h11.RemoteProtocolError, httputil.HTTPInputError) as err:
            gen_log.info("Malformed HTTP message from %s: %s", self.context, err)
            if not self.is_client and not self.stream.closed():
                await self.stream.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.close()
            return False
        except Exception:
            # The delegate failed: as in Tornado, logged, told the connection is gone, closed.
            app_log.error("Uncaught exception in an HTTP message delegate", exc_info=True)
            self.close()
            delegate.on_connection_close()
            return False
        return (
            not self.no_keep_alive
            and self._h11.our_state is h11.DONE
            and self._h11.their_state is h11.DONE
        )

    # -- writing ---------------------------------------------------------------------------

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        pairs = [(k, v) for k, v in headers.get_all()]
        event: h11.Request | h11.Response
        if isinstance(start_line, httputil.RequestStartLine):
            self._request_method = start_line.method
            event = h11.Request(
                method=start_line.method,
                target=start_line.path,
                headers=pairs,
                http_version=start_line.version.removeprefix("HTTP/"),
            )
        else:
            event = h11.Response(
                status_code=start_line.code, reason=start_line.reason, headers=pairs
            )
        data = self._h11.send(event) or b""
        if chunk:
            data += self._h11.send(h11.Data(data=chunk)) or b""
        return self.stream.write(data)

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self.stream.write(self._h11.send(h11.Data(data=chunk)) or b"")

    def finish(self) -> None:
        data = self._h11.send(h11.EndOfMessage())
        if data:
            self.stream.write(data)

    # -- the connection --------------------------------------------------------------------

    def set_close_callback(self, callback: Any) -> None:
        self._close_callback = callback

    def _on_stream_closed(self) -> None:
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()

    def close(self) -> None:
        self.stream.close()

    def detach(self) -> IOStream:
        """Stop speaking HTTP on the stream and hand it over (after an Upgrade)."""
        self.stream.set_close_callback(None)
        return self.stream

    def set_body_timeout(self, timeout: float) -> None:
        self._body_timeout = timeout

    def set_max_body_size(self, max_body_size: int) -> None:
        self._max_body_size = max_body_size


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class HTTP1ServerConnection:
    """Serve HTTP/1.x requests arriving on ``stream`` to an ``HTTPServerConnectionDelegate``.

    The stream's transport moves to asyncweb's server protocol, bytes already read included;
    from then on the stream itself is no longer used.
    """

    def __init__(
        self,
        stream: IOStream,
        params: HTTP1ConnectionParameters | None = None,
        context: object | None = None,
    ) -> None:
        self.stream = stream
        self.params = params or HTTP1ConnectionParameters()
        self.context = context
        self._server: Any = None

    def start_serving(self, delegate: httputil.HTTPServerConnectionDelegate) -> None:
        from asyncweb.httpserver import HTTPServer

        params = self.params
        server = HTTPServer(
            delegate,
            no_keep_alive=params.no_keep_alive,
            decompress_request=params.decompress,
            chunk_size=params.chunk_size,
            max_header_size=params.max_header_size,
            header_timeout=params.header_timeout,
            body_timeout=params.body_timeout,
            max_body_size=params.max_body_size,
        )
        self._server = server
        stream = self.stream
        transport = stream._transport
        if transport is None or stream.closed():
            raise StreamClosedError()
        buffered = bytes(stream._read_buffer)
        stream._read_buffer.clear()
        if stream._protocol is not None:
            stream._protocol.stream = None  # the stream hears nothing more from the transport
        stream._transport = None
        stream._closed = True
        protocol = server._make_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if stream._reading_paused:
            transport.resume_reading()
        if buffered:
            protocol.data_received(buffered)

    async def close(self) -> None:
        """Close the connection once its current request (if any) is done."""
        if self._server is not None:
            await self._server.close_all_connections()
        else:
            self.stream.close()
