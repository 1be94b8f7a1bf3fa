"""The settings of one HTTP/1.x server: limits, timeouts and the choice of head reader.

:class:`HTTP1Params` is made once per server and shared by all its connections (HTTP/2 reads
its limits too). Besides the settings it holds what the server's connections share: the
malformed-request log and the open connections per client address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asyncweb.protocol.malformed_log import MalformedRequestLog
from asyncweb.protocol.request_parser import (
    HEAD_READERS,
    HeadReader,
    httptools_missing,
    read_head_h11,
)

__all__ = ["HTTP1Params"]


@dataclass
class HTTP1Params:
    """Per-server limits; ``None`` for a timeout means no limit."""

    max_header_size: int = 65536
    max_body_size: int = 100 * 1024 * 1024
    # How long a connection may wait for the next request head, and (with header_timeout)
    # how long a started head may take to arrive: slowloris clients are dropped.
    idle_connection_timeout: float | None = 3600.0
    header_timeout: float | None = 60.0
    body_timeout: float | None = None
    no_keep_alive: bool = False
    decompress: bool = False
    # Read requests and send responses through one h11.Connection (the slower reference).
    pure_h11: bool = False
    # Who reads request heads: "h11" or "httptools" (llhttp splits heads, h11 still builds and
    # checks each request; needs the httptools package). See protocol.request_parser.
    http_parser: str = "h11"
    # At most this many open connections per client IP address (None: no cap). Those past it
    # get a 503 and are closed at once; behind a proxy every client is the proxy's address.
    max_connections_per_address: int | None = None

    # Derived: a started request head must be complete within both timeouts.
    head_timeout: float | None = field(init=False, default=None)
    # Derived: the head reader http_parser names, looked up once.
    read_head: HeadReader = field(init=False, default=read_head_h11, repr=False)
    # Malformed requests are logged through this, per server (see MalformedRequestLog).
    malformed_log: MalformedRequestLog = field(
        init=False, default_factory=lambda: MalformedRequestLog(), repr=False, compare=False
    )
    # Open connections per client address, for max_connections_per_address.
    connections_by_address: dict[str, int] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.http_parser not in HEAD_READERS:
            choices = " or ".join(map(repr, HEAD_READERS))
            raise ValueError(f"http_parser must be {choices}, not {self.http_parser!r}")
        if self.http_parser == "httptools":
            missing = httptools_missing()
            if missing:
                raise RuntimeError(missing)
            if self.pure_h11:
                raise ValueError("pure_h11 sends responses through h11: it needs http_parser='h11'")
        cap = self.max_connections_per_address
        if cap is not None and cap < 1:
            raise ValueError(f"max_connections_per_address must be at least 1, not {cap}")
        limits = [t for t in (self.idle_connection_timeout, self.header_timeout) if t]
        self.head_timeout = min(limits) if limits else None
        self.read_head = HEAD_READERS[self.http_parser]

    def admit(self, address: str) -> bool:
        """Count one more open connection from ``address``, unless that would pass
        ``max_connections_per_address`` (False: refuse it)."""
        counts = self.connections_by_address
        open_now = counts.get(address, 0)
        if open_now >= (self.max_connections_per_address or 0):
            return False
        counts[address] = open_now + 1
        return True

    def release(self, address: str) -> None:
        """A connection :meth:`admit` counted is gone."""
        counts = self.connections_by_address
        left = counts.get(address, 1) - 1
        if left > 0:
            counts[address] = left
        else:
            counts.pop(address, None)
