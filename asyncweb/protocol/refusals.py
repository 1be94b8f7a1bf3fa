"""The answers the protocol writes itself, when it refuses a request or a connection.

A refused request gets a short plain-text error response (:func:`error_response`), written
through the connection's own response path so that every variant frames it its way; a client
over its connection cap gets :data:`TOO_MANY_CONNECTIONS` and the connection is closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["TOO_MANY_CONNECTIONS", "error_response"]

TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 39\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    b"Too many connections from your address\n"
)

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Payload Too Large",
    500: "Internal Server Error",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class ErrorStartLine(NamedTuple):
    code: int
    reason: str


class HeaderList(list[tuple[str, str]]):
    def get_all(self) -> Iterable[tuple[str, str]]:
        return self


def error_response(status: int, why: str) -> tuple[ErrorStartLine, HeaderList, bytes]:
    """The start line, headers and body of the error response for ``status``."""
    reason = _REASONS.get(status, "Bad Request")
    body = f"{status} {reason}: {why}\n".encode("latin-1", "replace")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return ErrorStartLine(status, reason), HeaderList(headers), body
