"""The protocol layer: h11 and wsproto state machines under ``asyncio.Protocol``.

Sans-framework: it knows bytes, events, limits, flow control and timeouts, never handlers.
``http1`` serves HTTP/1.x and, after a ``101``, hands the connection to a successor protocol
(``switch_protocol``); ``websocket`` is that successor for WebSockets (and the client's).
``http2`` serves HTTP/2 on h2 (``h2_select`` picks it by ALPN or the h2c preface); imported only
by servers that turn it on, so it is not re-exported here.
"""

from asyncweb.protocol.client import HTTP1ClientProtocol as HTTP1ClientProtocol
from asyncweb.protocol.h11_reference import H11ReferenceProtocol
from asyncweb.protocol.http1 import (
    HTTP1Params,
    HTTP1ServerProtocol,
    HTTPOutputError,
    RequestReceiver,
    StreamClosedError,
    SwitchedProtocol,
)
from asyncweb.protocol.websocket import (
    MessageReceiver,
    WebSocketClosedError,
    WebSocketError,
    WebSocketParams,
    WebSocketProtocol,
)

__all__ = [
    "H11ReferenceProtocol",
    "HTTP1Params",
    "HTTP1ServerProtocol",
    "HTTPOutputError",
    "MessageReceiver",
    "RequestReceiver",
    "StreamClosedError",
    "SwitchedProtocol",
    "WebSocketClosedError",
    "WebSocketError",
    "WebSocketParams",
    "WebSocketProtocol",
]
