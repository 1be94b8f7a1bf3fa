"""A stateless HPACK encoder for response heads (RFC 7541), put in place of h2's own.

h2's encoder searches and updates the dynamic table and Huffman-codes every new literal, in
Python, for each response: about a third of an HTTP/2 hello-world's cost. This one never uses
the dynamic table (it announces a table size of 0 once, in its first block, so the peer's
SETTINGS_HEADER_TABLE_SIZE never matters), so each header field always encodes to the same bytes
and those are cached: a response head is a join of cached byte strings. Names come from the
static table where it has them; values are sent as plain octets. The price is a few more bytes
per response on the wire than a dynamic table would give.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack.hpack import encode_integer
from hpack.table import HeaderTable

_STATIC_PAIRS: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_PAIRS.setdefault((_name, _value), _index)
    _STATIC_NAMES.setdefault(_name, _index)

# Dynamic table size update (RFC 7541 6.3) to 0: the first byte of the first block.
_TABLE_SIZE_ZERO = b"\x20"
# Fields not to be indexed by any intermediary either (RFC 7541 7.1.3).
_NEVER_INDEXED = frozenset((b"set-cookie", b"authorization", b"cookie"))
_CACHE_LIMIT = 4096
# Field -> its bytes; shared by all connections, since no encoding depends on a connection.
_cache: dict[tuple[bytes, bytes], bytes] = {}


def _string(data: bytes) -> bytes:
    return bytes(encode_integer(len(data), 7)) + data


def encode_field(name: bytes, value: bytes) -> bytes:
    """One header field, on its own (no dynamic table)."""
    index = _STATIC_PAIRS.get((name, value))
    if index is not None:
        indexed = encode_integer(index, 7)
        indexed[0] |= 0x80
        return bytes(indexed)
    flag = 0x10 if name in _NEVER_INDEXED else 0x00
    name_index = _STATIC_NAMES.get(name)
    if name_index is not None:
        head = encode_integer(name_index, 4)
        head[0] |= flag
        return bytes(head) + _string(value)
    return bytes((flag,)) + _string(name) + _string(value)


class StatelessEncoder:
    """Has what h2 uses of ``hpack.Encoder``: ``encode`` and ``header_table_size``."""

    __slots__ = ("_started", "header_table_size")

    def __init__(self) -> None:
        self._started = False
        self.header_table_size = 4096  # set by h2 from the peer's SETTINGS; never used here

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:
        cache = _cache
        parts = []
        if not self._started:
            self._started = True
            parts.append(_TABLE_SIZE_ZERO)
        for field in headers:
            name, value = field[0], field[1]
            encoded = cache.get((name, value))
            if encoded is None:
                encoded = encode_field(name, value)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[(name, value)] = encoded
            parts.append(encoded)
        return b"".join(parts)
