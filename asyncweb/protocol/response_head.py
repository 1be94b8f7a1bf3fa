"""What an HTTP/1.x response head says and how its body is framed, as one pure function.

:func:`frame_response` takes the status, the headers the application set and what the
connection knows (a HEAD request, HTTP/1.0, must close) and returns the head's bytes, the body
mode and whether the connection must close after the response. The rules every layer shares
live here too: which responses carry no body, and what a header name may be.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from asyncweb.protocol.errors import HTTPOutputError

# RFC 9110 5.6.2: a header (field) name is a token.
HEADER_NAME_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# RFC 9110 6.4.1: statuses whose responses end with their head (1xx are tested by range).
BODYLESS_STATUSES = frozenset((204, 304))


def status_has_no_body(code: int) -> bool:
    """True for 1xx, 204 and 304 responses, which end with their head."""
    return code < 200 or code in BODYLESS_STATUSES


# How the body after a head is framed.
NO_BODY, LENGTH, CHUNKED, UNTIL_CLOSE = range(4)

_PLAIN, _CONTENT_LENGTH, _CONNECTION, _TRANSFER_ENCODING = range(4)
_FRAMING_KINDS = {
    "content-length": _CONTENT_LENGTH,
    "connection": _CONNECTION,
    "transfer-encoding": _TRANSFER_ENCODING,
}
# Response header name -> what framing makes of it; only valid tokens get in.
_header_kinds: dict[str, int] = {}
_status_lines: dict[tuple[int, str], str] = {}


def frame_response(
    code: int,
    reason: str,
    headers: Iterable[tuple[str, str]],
    head_request: bool,
    http10: bool,
    close: bool,
) -> tuple[bytes, int, int, bool]:
    """The head of a response and its framing: (head bytes, body mode, Content-Length or 0,
    close after it). Content-Length is used if given, else chunked (HTTP/1.1) or
    close-delimited (HTTP/1.0); HEAD, 1xx, 204 and 304 carry no body. Framing headers the
    application set are replaced by ours; a ``101`` keeps its own Connection header."""
    status_line = _status_lines.get((code, reason))
    if status_line is None:
        status_line = _status_line(code, reason)
    lines = [status_line]
    content_length: str | None = None
    switching = code == 101
    if switching:
        close = False  # the upgrade's own Connection header goes out as given
    kinds = _header_kinds
    for name, value in headers:
        kind = kinds.get(name)
        if kind is None:
            kind = _header_kind(name)
        if kind:
            if kind == _CONTENT_LENGTH:
                content_length = value  # written below, unless the status forbids it
            elif kind == _CONNECTION:
                if switching:
                    lines.append(f"{name}: {value}\r\n")
                    continue
                # We own the connection's fate; an explicit "close" is honoured.
                close = close or "close" in value.lower()
            continue  # Transfer-Encoding too: framing is decided below
        lines.append(f"{name}: {value}\r\n")
    remaining = 0
    if head_request or code < 200 or code in BODYLESS_STATUSES:  # status_has_no_body, inline
        mode = NO_BODY
        if content_length is not None and (code < 200 or code == 204):
            content_length = None  # RFC 9110 8.6: never on 1xx and 204
    elif content_length is not None:
        mode = LENGTH
        if not content_length.isdigit() or not content_length.isascii():
            raise HTTPOutputError(f"invalid Content-Length {content_length!r}")
        remaining = int(content_length)
    elif not http10:
        mode = CHUNKED
        lines.append("Transfer-Encoding: chunked\r\n")
    else:
        mode = UNTIL_CLOSE
        close = True
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    elif http10 and not switching:
        lines.append("Connection: keep-alive\r\n")
    head = "".join(lines)
    # A CR, LF or NUL inside a name, value or reason would split or end the head early.
    if head.count("\n") != len(lines) or head.count("\r") != len(lines) or "\0" in head:
        raise HTTPOutputError(f"response head contains a line break or NUL: {head!r}")
    return head.encode("latin-1") + b"\r\n", mode, remaining, close


def _header_kind(name: str) -> int:
    """Classify a response header name, after checking it is an RFC 9110 token (cached)."""
    if not HEADER_NAME_TOKEN.fullmatch(name):
        raise HTTPOutputError(f"invalid header name {name!r}")
    kind = _FRAMING_KINDS.get(name.lower(), _PLAIN)
    if len(_header_kinds) < 4096:
        _header_kinds[name] = kind
    return kind


def _status_line(code: int, reason: str) -> str:
    line = f"HTTP/1.1 {code} {reason}\r\n"
    if len(_status_lines) < 1024:
        _status_lines[(code, reason)] = line
    return line
