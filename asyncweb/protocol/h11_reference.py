"""The pure-h11 server protocol (``pure_h11=True``): every byte through one ``h11.Connection``.

Requests are read and responses written by h11's own state machine, which decides framing and
keep-alive. Slower than :class:`~asyncweb.protocol.http1.HTTP1ServerProtocol`; kept as the
reference the protocol test suite runs against too, so the two can't drift apart. It differs
from its base only in the hooks it overrides: the parser (``_new_parser``,
``_restart_parser``, ``_ENDS_WITH_HEAD``) and the encoding (``_encode_head``, ``_frame``,
``_encode_end``, ``_encode_continue``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import h11

from asyncweb.protocol.errors import HTTPOutputError
from asyncweb.protocol.http1 import HTTP1ServerProtocol
from asyncweb.protocol.interfaces import RequestParser
from asyncweb.protocol.request_parser import EMPTY_LINE_STARTS, ScreenedH11Connection
from asyncweb.protocol.response_head import LENGTH, NO_BODY, status_has_no_body


class H11ReferenceProtocol(HTTP1ServerProtocol):
    """Every response byte goes through h11's send path and h11 decides framing and keep-alive.

    Slower than the default writer; kept as the reference that the protocol test suite runs
    against too, so the two can't drift apart.
    """

    __slots__ = ("_connection",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One h11 connection per connection: made with the first bytes, kept across exchanges.
        self._connection: ScreenedH11Connection | None = None

    def _new_parser(self) -> RequestParser:
        self._connection = ScreenedH11Connection(self.params.max_header_size)
        return self._connection

    def _restart_parser(self, parser: RequestParser) -> tuple[RequestParser, bytes] | None:
        connection = self._h11()
        try:
            connection.start_next_cycle()
        except h11.LocalProtocolError:
            return None
        leftover = connection.trailing_data[0]
        if leftover[:1] in EMPTY_LINE_STARTS:
            # h11's buffer can't be trimmed of the empty lines before the next request line:
            # the next cycle starts on a new h11 connection, which drops them.
            fresh = self._new_parser()
            fresh.receive_data(bytes(leftover))
            return fresh, fresh.trailing_data[0]
        return connection, leftover

    # h11 must see the EndOfMessage itself before start_next_cycle().
    _ENDS_WITH_HEAD = False

    def _h11(self) -> ScreenedH11Connection:
        if self._connection is None:  # a response before any request byte
            self._new_parser()
        assert self._connection is not None
        return self._connection

    def _encode_head(
        self,
        code: int,
        reason: str,
        headers: Iterable[tuple[str, str]],
        chunk: bytes | None,
        close: bool,
    ) -> tuple[bytes, int, bool]:
        raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        connection = self._h11()
        if code == 101:
            try:
                event = h11.InformationalResponse(
                    status_code=101, headers=raw, reason=reason.encode("latin-1")
                )
                return connection.send(event) or b"", NO_BODY, False
            except h11.LocalProtocolError as err:
                raise HTTPOutputError(f"invalid response: {err}") from None
        if close:
            raw.append((b"connection", b"close"))
        bodyless = status_has_no_body(code) or connection.request_method == b"HEAD"
        try:
            response = h11.Response(status_code=code, headers=raw, reason=reason.encode("latin-1"))
            data = connection.send(response) or b""
            if chunk and not bodyless:
                data += connection.send(h11.Data(data=chunk)) or b""
        except h11.LocalProtocolError as err:
            raise HTTPOutputError(f"invalid response: {err}") from None
        return data, NO_BODY if bodyless else LENGTH, close

    def _frame(self, chunk: bytes) -> bytes:
        try:
            return self._h11().send(h11.Data(data=chunk)) or b""
        except h11.LocalProtocolError as err:
            raise HTTPOutputError(str(err)) from None

    def _encode_end(self) -> tuple[bytes, bool]:
        connection = self._h11()
        try:
            data = connection.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as err:
            raise HTTPOutputError(str(err)) from None
        return data, connection.our_state is h11.MUST_CLOSE

    def _encode_continue(self) -> bytes:
        return self._h11().send(h11.InformationalResponse(status_code=100, headers=[])) or b""
