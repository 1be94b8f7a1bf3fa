"""WebSockets, as Tornado's ``tornado.websocket``: the names of the package's modules, in one place.

- :mod:`.handler`: :class:`WebSocketHandler`, the server side (handshake, ``open``/``on_message``).
- :mod:`.connection`: :class:`WebSocketConnection`, what a handler talks to, and
  :class:`TransportConnection`, its implementation over an asyncio transport.
- :mod:`.client`: :func:`websocket_connect` and :class:`WebSocketClientConnection`.
- :mod:`.broadcast`: :class:`BroadcastGroup`, one message to many sockets.

Frames are parsed and built by wsproto in :mod:`asyncweb.protocol.websocket`.
"""

from __future__ import annotations

from asyncweb.protocol.websocket import WebSocketClosedError, WebSocketError
from asyncweb.util import _claim_public_names
from asyncweb.websocket.broadcast import BroadcastGroup
from asyncweb.websocket.client import WebSocketClientConnection, websocket_connect
from asyncweb.websocket.connection import TransportConnection, WebSocketConnection
from asyncweb.websocket.handler import WebSocketHandler

# Not in __all__ but importable from the single module this package replaced, so kept here.
from asyncweb.protocol.websocket import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_MESSAGE_SIZE  # isort: skip
from asyncweb.protocol.websocket import MessageReceiver as MessageReceiver  # isort: skip
from asyncweb.protocol.websocket import WebSocketParams as WebSocketParams  # isort: skip
from asyncweb.protocol.websocket import WebSocketProtocol as WebSocketProtocol  # isort: skip
from asyncweb.websocket.broadcast import Broker as Broker  # isort: skip
from asyncweb.websocket.connection import WebSocketProtocol13 as WebSocketProtocol13  # isort: skip

__all__ = [
    "BroadcastGroup",
    "TransportConnection",
    "WebSocketClientConnection",
    "WebSocketClosedError",
    "WebSocketConnection",
    "WebSocketError",
    "WebSocketHandler",
    "websocket_connect",
]

_claim_public_names(globals())
