"""``IOStream``: Tornado's buffered stream API on an asyncio transport and protocol.

Bytes arrive through ``asyncio.Protocol.data_received`` into one read buffer; each read
method registers what it waits for (a delimiter, a regex, a byte count, the close) and is
satisfied from that buffer. When nothing is reading, the stream stops reading from the
transport once a chunk is buffered (``pause_reading``), so a slow consumer pushes back on
the peer instead of growing the buffer. ``write`` hands bytes to the transport and returns a
future that is done at once while the transport's buffer is below its high-water mark, or
once it has drained below it again.

Only one read may be pending at a time. Reads return futures; the Tornado 2-4 ``callback=``
and ``streaming_callback=`` arguments still work (with one ``DeprecationWarning``).

Split into modules, one concept each: ``base`` (``BaseIOStream``, the asyncio protocol feeding
it, the stream errors), ``socket_stream`` (``IOStream``, ``SSLIOStream``), ``pipe``
(``PipeIOStream``) and ``buffer`` (Tornado's private ``_StreamBuffer``). The public names are
all importable from this package, as from ``tornado.iostream``.
"""

from __future__ import annotations

from asyncweb.iostream.base import BaseIOStream, StreamBufferFullError, UnsatisfiableReadError

# Private in Tornado, but its own iostream tests import it from here.
from asyncweb.iostream.buffer import _StreamBuffer as _StreamBuffer
from asyncweb.iostream.pipe import PipeIOStream
from asyncweb.iostream.socket_stream import IOStream, SSLIOStream

# One class for both layers, so ``except iostream.StreamClosedError`` also catches the
# protocol layer's closed-connection errors.
from asyncweb.protocol.http1 import StreamClosedError
from asyncweb.util import _claim_public_names

__all__ = [
    "BaseIOStream",
    "IOStream",
    "PipeIOStream",
    "SSLIOStream",
    "StreamBufferFullError",
    "StreamClosedError",
    "UnsatisfiableReadError",
]

_claim_public_names(globals())
