"""Which protocol serves a connection when HTTP/2 is on (``HTTPServer(http2=True)``): HTTP/2
after ALPN ``h2`` on TLS or the connection preface in cleartext (h2c by prior knowledge), HTTP/1
otherwise, on the same port. Costs HTTP/1 one choice per connection, nothing per request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from asyncweb.protocol.http1 import HTTP1Params, RequestReceiver
from asyncweb.protocol.http2 import PREFACE, HTTP2Params, HTTP2ServerProtocol


class HTTPVersionSelector(asyncio.Protocol):
    """Picks a connection's protocol: HTTP/2 after ALPN ``h2`` or, in cleartext, when the first
    bytes are the HTTP/2 preface; HTTP/1 otherwise. Hands the transport to it and forwards what
    the transport may still report here (TLS transports report a loss to the first protocol)."""

    def __init__(
        self,
        http1_class: Callable[..., asyncio.Protocol],
        h2_params: HTTP2Params,
        start_request: Callable[[Any], RequestReceiver],
        params: HTTP1Params,
        context: Any = None,
        on_closed: Callable[[Any], None] | None = None,
    ) -> None:
        self._http1_class = http1_class
        self._h2_params = h2_params
        self._start_request = start_request
        self.params = params
        self.context = context
        self._on_closed = on_closed
        self.transport: asyncio.Transport | None = None
        self.chosen: Any = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            if ssl_object.selected_alpn_protocol() == "h2":
                self._choose(True, b"")
            else:
                self._choose(False, b"")
            return
        timeout = self.params.head_timeout
        if timeout:
            self._timer = asyncio.get_running_loop().call_later(timeout, self.close)

    def data_received(self, data: bytes) -> None:
        if self.chosen is not None:
            self.chosen.data_received(data)
            return
        self._buffer += data
        head = self._buffer[: len(PREFACE)]
        if head == PREFACE[: len(head)] and len(head) < len(PREFACE):
            return  # could still be the preface
        self._choose(head == PREFACE, self._buffer)

    def _choose(self, http2: bool, buffered: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buffer = b""
        chosen: Any
        if http2:
            chosen = HTTP2ServerProtocol(
                self._start_request, self.params, self._h2_params, on_closed=self._lost
            )
        else:
            chosen = self._http1_class(self._start_request, self.params, on_closed=self._lost)
        self.chosen = chosen
        assert self.transport is not None
        self.transport.set_protocol(chosen)
        chosen.connection_made(self.transport)
        if buffered:
            chosen.data_received(buffered)

    def eof_received(self) -> bool | None:
        if self.chosen is not None:
            return cast(bool | None, self.chosen.eof_received())
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.chosen is not None:
            self.chosen.connection_lost(exc)
        else:
            self._lost(None)

    def pause_writing(self) -> None:
        if self.chosen is not None:
            self.chosen.pause_writing()

    def resume_writing(self) -> None:
        if self.chosen is not None:
            self.chosen.resume_writing()

    @property
    def request_in_flight(self) -> bool:
        return self.chosen is not None and bool(self.chosen.request_in_flight)

    def close_when_idle(self) -> None:
        if self.chosen is not None:
            self.chosen.close_when_idle()
        else:
            self.close()

    def close(self) -> None:
        if self.chosen is not None:
            self.chosen.close()
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._lost(None)

    def _lost(self, _: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed(self)
