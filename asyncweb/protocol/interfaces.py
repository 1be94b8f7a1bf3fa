"""What the HTTP/1.x server protocol and its neighbours agree on, as typing protocols.

Above it: the :class:`RequestReceiver` the server makes per request, and the ``start_line`` /
``headers`` shapes the framework writes a response with. Beside it: the :class:`RequestParser`
it reads requests through, and the :class:`SwitchedProtocol` it hands a connection to after a
``101``. HTTP/2 streams use the same receiver and response shapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

__all__ = [
    "NO_PARSER",
    "HeaderSource",
    "RequestParser",
    "RequestReceiver",
    "StartLine",
    "SwitchedProtocol",
]


class RequestParser(Protocol):
    """The part of ``h11.Connection`` the server protocol reads requests through (h11's own, or
    ``request_parser.HeadFirstConnection``)."""

    def receive_data(self, data: bytes) -> None: ...

    def next_event(self) -> Any: ...

    @property
    def trailing_data(self) -> tuple[bytes, bool]: ...

    @property
    def they_are_waiting_for_100_continue(self) -> bool: ...


class StartLine(Protocol):
    @property
    def code(self) -> int: ...
    @property
    def reason(self) -> str: ...


class HeaderSource(Protocol):
    def get_all(self) -> Iterable[tuple[str, str]]: ...


class SwitchedProtocol(Protocol):
    """What takes a connection over after a ``101 Switching Protocols`` response (see
    ``HTTP1ServerProtocol.switch_protocol``): an ``asyncio.Protocol`` that also supports a
    graceful shutdown and reports when its connection is gone."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> bool | None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def close_when_idle(self) -> None: ...

    def set_lost_callback(self, callback: Callable[[], None]) -> None: ...


class RequestReceiver(Protocol):
    """One request's consumer; an awaitable return value means "wait for me before reading on"."""

    def head_received(
        self, method: bytes, target: bytes, http_version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Awaitable[None] | None: ...

    def body_received(self, chunk: bytes) -> Awaitable[None] | None: ...

    def message_done(self) -> None: ...

    def connection_lost(self) -> None: ...


class _NoParser:
    """Stands for "no parser yet" (an idle connection): only its empty buffer may be read,
    it is shared."""

    trailing_data = (b"", False)
    they_are_waiting_for_100_continue = False

    def receive_data(self, data: bytes) -> None:
        raise RuntimeError("the idle placeholder parser can't be fed")

    def next_event(self) -> Any:
        raise RuntimeError("the idle placeholder parser has no events")


NO_PARSER: RequestParser = _NoParser()
