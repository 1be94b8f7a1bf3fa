"""The protocol layer's errors, below every module that raises them."""

from __future__ import annotations


class HTTPOutputError(ValueError):
    """A response the protocol can't send as asked: a head with a line break or NUL, a bad
    header name, or a body longer or shorter than its Content-Length. (``httputil`` exports
    it under the same name, as Tornado does.)"""


class StreamClosedError(OSError):
    """Raised by writes on a connection that is already closed."""

    def __init__(self, real_error: BaseException | None = None) -> None:
        super().__init__("Stream is closed")
        self.real_error = real_error


# Both were defined in protocol.http1 first; their names there stay importable.
HTTPOutputError.__module__ = StreamClosedError.__module__ = "asyncweb.protocol.http1"
