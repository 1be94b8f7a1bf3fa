"""The protocol layer: h11 (and later wsproto) state machines under ``asyncio.Protocol``.

Sans-framework: it knows bytes, events, limits, flow control and timeouts, never handlers.
"""

from asyncweb.protocol.http1 import (
    H11ReferenceProtocol,
    HTTP1Params,
    HTTP1ServerProtocol,
    HTTPOutputError,
    RequestReceiver,
    StreamClosedError,
)

__all__ = [
    "H11ReferenceProtocol",
    "HTTP1Params",
    "HTTP1ServerProtocol",
    "HTTPOutputError",
    "RequestReceiver",
    "StreamClosedError",
]
