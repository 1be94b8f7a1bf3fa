"""Sending one message to many WebSockets: :class:`BroadcastGroup`, in one process or, through a
pub/sub broker, across processes."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast

from asyncweb.protocol.flow_control import quiet as _quiet
from asyncweb.protocol.websocket import (
    WebSocketClosedError,
    build_frame,
)

if TYPE_CHECKING:
    pass
from asyncweb.websocket._common import _to_message, app_log, gen_log
from asyncweb.websocket.connection import (
    TransportConnection,
    WebSocketConnection,
    _closing,
)
from asyncweb.websocket.handler import WebSocketHandler


class Broker(Protocol):
    """A pub/sub broker: ``asyncweb.pubsub.Broker`` or anything with this shape."""

    def publish(self, channel: str, message: Any) -> Any: ...

    def subscribe(self, channel: str) -> AsyncIterator[Any]: ...


class BroadcastGroup:
    """The chat-room pattern: a set of open WebSockets that a message goes to all of.

    **Slow clients.** :meth:`send` never waits for a socket. A member whose unsent output
    exceeds ``max_buffer`` bytes (it stopped reading) is closed with 1008 when ``slow_policy``
    is ``"close"`` (the default: it can reconnect and catch up), or skipped for this message
    when it is ``"drop"``. Either way one slow client costs the others nothing, and memory per
    member stays under about ``max_buffer`` plus one message. Closed members are removed.

    **Across processes.** Given a ``broker`` (``publish(channel, message)`` and an async
    iterator ``subscribe(channel)``, as ``asyncweb.pubsub.Broker``), :meth:`broadcast`
    publishes and every process's group delivers what it hears on ``channel`` to its own
    members (call :meth:`start` once in each; :meth:`stop` ends it). Without a broker,
    :meth:`broadcast` delivers in this process directly.
    """

    def __init__(
        self,
        *,
        max_buffer: int = 1024 * 1024,
        slow_policy: str = "close",
        broker: Broker | None = None,
        channel: str = "broadcast",
    ) -> None:
        if slow_policy not in ("close", "drop"):
            raise ValueError("slow_policy must be 'close' or 'drop'")
        self.max_buffer = max_buffer
        self.slow_policy = slow_policy
        self.broker = broker
        self.channel = channel
        self._members: dict[Any, None] = {}  # insertion-ordered set
        self._listener: asyncio.Task[None] | None = None

    def add(self, member: WebSocketHandler | WebSocketConnection) -> None:
        self._members[member] = None

    def discard(self, member: WebSocketHandler | WebSocketConnection) -> None:
        self._members.pop(member, None)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._members))

    def send(self, message: str | bytes | dict[str, Any], binary: bool = False) -> int:
        """Deliver to this process's members now; returns how many got the message."""
        payload = _to_message(message, binary)
        frame: bytes | None = None
        delivered = 0
        for member in list(self._members):
            connection = _connection_of(member)
            if connection is None or _closing(connection):
                self._members.pop(member, None)
                continue
            if connection.buffered_amount() > self.max_buffer:
                if self.slow_policy == "close":
                    gen_log.info("closing a WebSocket that stopped reading broadcasts")
                    connection.close(1008, "too slow to keep up")
                    self._members.pop(member, None)
                continue
            try:
                if isinstance(connection, TransportConnection):
                    if frame is None:
                        frame = build_frame(payload)
                    if connection.send_prepared(frame):
                        delivered += 1
                        continue
                _quiet(connection.write_message(payload))
                delivered += 1
            except WebSocketClosedError:
                self._members.pop(member, None)
        return delivered

    async def broadcast(self, message: str | bytes | dict[str, Any], binary: bool = False) -> None:
        """Send to every member of the group, in all processes when there is a broker."""
        if self.broker is None:
            self.send(message, binary)
            return
        if isinstance(message, dict):
            message = json.dumps(message)
        result = self.broker.publish(self.channel, message)
        if inspect.isawaitable(result):
            await result

    def start(self) -> None:
        """Begin relaying what the broker publishes on ``channel`` to the members here."""
        if self.broker is None or self._listener is not None:
            return
        self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        assert self.broker is not None
        async for message in self.broker.subscribe(self.channel):
            try:
                self.send(message, binary=isinstance(message, bytes))
            except Exception:
                app_log.error("broadcast of a published message failed", exc_info=True)

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def _connection_of(member: Any) -> WebSocketConnection | None:
    if isinstance(member, WebSocketHandler):
        return member.ws_connection
    return cast(WebSocketConnection, member)
