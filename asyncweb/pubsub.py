"""Publish/subscribe between the handlers of one process or of many: ``MemoryBroker`` (one
process, the default) and ``RedisBroker`` (any number of processes sharing a Redis server).

::

    broker = MemoryBroker()            # or RedisBroker("redis://127.0.0.1:6379/0")

    async with broker.subscribe("room:1") as messages:   # subscribed once entered
        async for message in messages:
            ...

    await broker.publish("room:1", {"from": "ann", "text": "hi"})

**Messages** are ``str``, ``bytes`` or anything ``json.dumps`` takes (dicts, lists, numbers,
``True``/``False``/``None``). Subscribers get the same kind back: ``str`` as ``str``, ``bytes``
as ``bytes``, anything else as the result of ``json.loads`` (so a tuple comes back as a
list). On the wire (and in memory, so both brokers behave alike) a message is one byte
string: ``b"\\x00s"`` + UTF-8 text, ``b"\\x00b"`` + the bytes, or ``b"\\x00j"`` + UTF-8 JSON.
Messages published by other Redis clients (without that prefix) arrive as ``bytes``.

**Subscriptions** are async iterators. Each holds at most ``max_pending`` undelivered
messages; when a subscriber falls further behind, its oldest messages are dropped (counted in
``Subscription.dropped``, logged once), so one stuck reader cannot grow memory without bound.
A subscription ends with ``close()``, on leaving its ``async with`` block, or as soon as
nothing refers to it any more (``break`` out of ``async for broker.subscribe(...)``). Then
iteration stops and, once a channel has no subscriber left in this process, the broker stops
listening to it.

**Delivery is at most once.** ``RedisBroker`` keeps one connection for its subscriptions and
reconnects with exponential back-off (``min_backoff`` doubling up to ``max_backoff`` seconds)
when Redis goes away, then subscribes again to every channel that still has subscribers.
Messages published while that connection is down are lost: Redis pub/sub keeps no history.
Applications that must not miss messages keep their own (the chat demo keeps the last
messages of each room and lets clients ask for what they missed). ``publish`` raises
``ConnectionError`` while Redis cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import weakref
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from asyncweb.log import gen_log

__all__ = ["Broker", "MemoryBroker", "RedisBroker", "Subscription", "decode", "encode"]

_STR, _BYTES, _JSON = b"\x00s", b"\x00b", b"\x00j"


def encode(message: Any) -> bytes:
    """One message as bytes (see the module documentation for the format)."""
    if isinstance(message, str):
        return _STR + message.encode("utf-8")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return _BYTES + bytes(message)
    try:
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"a message must be str, bytes or JSON-serializable, not {type(message).__name__}"
        ) from err
    return _JSON + text.encode("utf-8")


def decode(data: bytes) -> Any:
    """The message :func:`encode` made; untagged data (another publisher's) as bytes."""
    tag, body = data[:2], data[2:]
    if tag == _STR:
        return body.decode("utf-8")
    if tag == _BYTES:
        return body
    if tag == _JSON:
        return json.loads(body)
    return data


class Subscription(AsyncIterator[Any]):
    """The messages of one channel for one subscriber, made by ``Broker.subscribe``."""

    def __init__(self, broker: Broker, channel: str, max_pending: int) -> None:
        self.broker = broker
        self.channel = channel
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._key = -1  # the broker's handle for this subscriber

    @property
    def closed(self) -> bool:
        return self._closed

    def _deliver(self, data: bytes) -> None:
        if self._closed:
            return
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            if not self.dropped:
                gen_log.warning(
                    "subscriber of %r is %d messages behind; dropping its oldest",
                    self.channel,
                    self.max_pending,
                )
            self.dropped += 1
        self._pending.append(data)
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def ready(self) -> None:
        """Wait until the broker listens to the channel: from then on, nothing published
        to it is missed (while the connection lasts)."""
        await self.broker._wait_ready(self.channel)

    async def get(self) -> Any:
        """The next message; ``StopAsyncIteration`` once closed and drained."""
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return decode(self._pending.popleft())

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    def close(self) -> None:
        """Unsubscribe; iteration ends after the messages already received."""
        if self._closed:
            return
        self._closed = True
        self.broker._remove(self)
        self._wake()

    async def __aenter__(self) -> Subscription:
        await self.ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Broker:
    """What a broker offers: ``await publish(channel, message)``, ``subscribe(channel)``
    returning a :class:`Subscription`, and ``await close()``. Besides messages, a broker
    keeps small shared sets of timestamped members (``touch``, ``members``, ``expire``): in
    memory for one process, a Redis sorted set per key for all of them.

    Subscribers are kept by weak reference, per channel: a subscription nobody refers to
    any more unsubscribes by itself.
    """

    def __init__(self, max_pending: int = 1000) -> None:
        self.max_pending = max_pending
        self._subscribers: dict[str, dict[int, weakref.ref[Subscription]]] = {}
        self._ids = itertools.count()
        self._sets: dict[str, dict[str, float]] = {}

    async def publish(self, channel: str, message: Any) -> None:
        raise NotImplementedError

    def subscribe(self, channel: str) -> Subscription:
        """A new subscription to ``channel`` (see :meth:`Subscription.ready`)."""
        subscription = Subscription(self, channel, self.max_pending)
        key = next(self._ids)
        subscription._key = key
        listeners = self._subscribers.setdefault(channel, {})
        first = not listeners
        listeners[key] = weakref.ref(subscription, lambda _ref: self._forget(channel, key))
        if first:
            self._channel_added(channel)
        return subscription

    def subscriber_count(self, channel: str) -> int:
        """Live subscriptions to ``channel`` in this process."""
        return sum(1 for ref in self._subscribers.get(channel, {}).values() if ref() is not None)

    def _remove(self, subscription: Subscription) -> None:
        self._forget(subscription.channel, subscription._key)

    def _forget(self, channel: str, key: int) -> None:
        listeners = self._subscribers.get(channel)
        if listeners is None or listeners.pop(key, None) is None:
            return
        if not listeners:
            del self._subscribers[channel]
            self._channel_removed(channel)

    def _dispatch(self, channel: str, data: bytes) -> None:
        for ref in list(self._subscribers.get(channel, {}).values()):
            subscription = ref()
            if subscription is not None:
                subscription._deliver(data)

    def _channel_added(self, channel: str) -> None:
        pass

    def _channel_removed(self, channel: str) -> None:
        pass

    async def _wait_ready(self, channel: str) -> None:
        pass

    # -- shared sets: small registries every process using the broker sees alike ------------
    # (a room list, say). Each member carries a timestamp, its last activity.

    async def touch(
        self,
        key: str,
        member: str,
        when: float,
        *,
        limit: int | None = None,
        create: bool = True,
    ) -> bool:
        """Stamp ``member`` of the shared set ``key`` with ``when``. A member not yet in the
        set is added only with ``create`` and while the set has fewer than ``limit``
        members (checked and added in one step). True when ``member`` is in the set now."""
        members = self._sets.setdefault(key, {})
        if member not in members and (not create or (limit is not None and len(members) >= limit)):
            return False
        members[member] = max(when, members.get(member, when))
        return True

    async def members(self, key: str) -> dict[str, float]:
        """The members of the shared set ``key`` with their timestamps."""
        return dict(self._sets.get(key, {}))

    async def expire(self, key: str, before: float) -> list[str]:
        """Remove the members of ``key`` stamped before ``before``; returns them."""
        members = self._sets.get(key, {})
        old = [name for name, when in members.items() if when < before]
        for name in old:
            del members[name]
        return old

    async def close(self) -> None:
        """Close every subscription and release connections."""
        for listeners in list(self._subscribers.values()):
            for ref in list(listeners.values()):
                subscription = ref()
                if subscription is not None:
                    subscription.close()


class MemoryBroker(Broker):
    """Delivers within this process: ``publish`` hands the message to every current
    subscriber before it returns."""

    async def publish(self, channel: str, message: Any) -> None:
        self._dispatch(channel, encode(message))


class RedisBroker(Broker):
    """Delivers through Redis pub/sub to subscribers in every process using the same server.

    ``url`` is a ``redis://`` (or ``rediss://``, ``unix://``) URL for ``redis.asyncio``. The
    connection for subscriptions is opened with the first subscription; ``publish`` uses a
    pooled client. See the module documentation for reconnection and lost messages.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        max_pending: int = 1000,
    ) -> None:
        super().__init__(max_pending)
        import redis.asyncio

        self.url = url
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._client = redis.asyncio.Redis.from_url(url)
        # A channel of our own keeps the subscriber connection subscribed to something and
        # its confirmation says the connection is up.
        self._control = f"asyncweb:pubsub:{os.getpid()}:{id(self):x}"
        self._active: set[str] = set()
        self._ready_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._changed: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = False

    async def publish(self, channel: str, message: Any) -> None:
        if self._closed:
            raise RuntimeError("broker is closed")
        data = encode(message)
        try:
            await self._client.publish(channel, data)
        except (OSError, _redis_error()) as err:
            # One exception type for callers, whichever layer noticed the outage.
            raise ConnectionError(f"cannot publish to Redis at {self.url}: {err}") from err

    async def touch(
        self,
        key: str,
        member: str,
        when: float,
        *,
        limit: int | None = None,
        create: bool = True,
    ) -> bool:
        # One script, so the limit holds however many processes add at once.
        limit_arg = -1 if limit is None else limit
        added = await self._call(
            "eval", _TOUCH_SCRIPT, 1, key, member, repr(when), limit_arg, int(create)
        )
        return bool(added)

    async def members(self, key: str) -> dict[str, float]:
        pairs = await self._call("zrange", key, 0, -1, withscores=True)
        return {_text(name): float(score) for name, score in pairs}

    async def expire(self, key: str, before: float) -> list[str]:
        removed = await self._call("eval", _EXPIRE_SCRIPT, 1, key, repr(before))
        return [_text(name) for name in removed]

    async def _call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("broker is closed")
        try:
            return await getattr(self._client, command)(*args, **kwargs)
        except (OSError, _redis_error()) as err:
            raise ConnectionError(f"cannot reach Redis at {self.url}: {err}") from err

    def _channel_added(self, channel: str) -> None:
        self._kick()

    def _channel_removed(self, channel: str) -> None:
        if self._changed is not None:
            self._changed.set()

    def _kick(self) -> None:
        if self._closed:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        self._changed.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _wait_ready(self, channel: str) -> None:
        if channel in self._active:
            return
        if self._closed:
            raise RuntimeError("broker is closed")
        waiter = asyncio.get_running_loop().create_future()
        self._ready_waiters.setdefault(channel, []).append(waiter)
        self._kick()
        await waiter

    async def _run(self) -> None:
        """Keep a subscriber connection up and subscribed to the wanted channels."""
        backoff = self.min_backoff
        while not self._closed:
            pubsub: Any = self._client.pubsub()
            requested: set[str] = set()
            reader: asyncio.Task[None] | None = None
            syncer: asyncio.Task[None] | None = None
            try:
                await pubsub.subscribe(self._control)
                reader = asyncio.ensure_future(self._read(pubsub))
                syncer = asyncio.ensure_future(self._sync(pubsub, requested))
                done, _ = await asyncio.wait((reader, syncer), return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                return
            except (OSError, asyncio.TimeoutError, _redis_error()) as err:
                if self._closed:
                    return
                if self.connected:
                    gen_log.warning("lost the Redis connection (%s); reconnecting", err)
                    backoff = self.min_backoff
                else:
                    gen_log.info("Redis unreachable (%s); retrying in %.2fs", err, backoff)
            finally:
                self.connected = False
                self._active.clear()
                for pending in (reader, syncer):
                    if pending is not None:
                        pending.cancel()
                        with contextlib.suppress(BaseException):
                            await pending
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _sync(self, pubsub: Any, requested: set[str]) -> None:
        assert self._changed is not None
        while not self._closed:
            self._changed.clear()
            wanted = set(self._subscribers)
            added, removed = wanted - requested, requested - wanted
            if added:
                requested |= added
                await pubsub.subscribe(*sorted(added))
            if removed:
                requested -= removed
                self._active -= removed
                await pubsub.unsubscribe(*sorted(removed))
            await self._changed.wait()

    async def _read(self, pubsub: Any) -> None:
        while not self._closed:
            message = await pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode("utf-8", "replace")
            if kind == "message":
                self._dispatch(channel, message["data"])
            elif kind == "subscribe":
                if channel == self._control:
                    self.connected = True
                    continue
                self._active.add(channel)
                for waiter in self._ready_waiters.pop(channel, []):
                    if not waiter.done():
                        waiter.set_result(None)
            elif kind == "unsubscribe":
                self._active.discard(channel)

    async def close(self) -> None:
        """Close every subscription, the subscriber connection and the client."""
        self._closed = True
        await super().close()
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner
        for waiters in self._ready_waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._ready_waiters.clear()
        await self._client.aclose()


# KEYS[1] a sorted set; ARGV: member, timestamp, limit (-1: none), create (0/1).
_TOUCH_SCRIPT = """
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old then
  if tonumber(ARGV[2]) > tonumber(old) then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
  return 1
end
if ARGV[4] == '0' then return 0 end
local limit = tonumber(ARGV[3])
if limit >= 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# KEYS[1] a sorted set; ARGV[1]: members stamped before it are removed and returned.
_EXPIRE_SCRIPT = """
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1]) end
return old
"""


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _redis_error() -> type[Exception]:
    import redis.exceptions

    return redis.exceptions.RedisError
