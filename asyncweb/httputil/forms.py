"""Form bodies: urlencoded and ``multipart/form-data`` bodies decoded into arguments and
HTTPFile uploads, under process-wide limits (ParseBodyConfig, set by set_parse_body_config)."""

from __future__ import annotations

import dataclasses

from asyncweb.escape import utf8
from asyncweb.httputil.errors import HTTPInputError
from asyncweb.httputil.header_values import _parse_header
from asyncweb.httputil.headers import HTTPHeaders
from asyncweb.httputil.urls import parse_qs_bytes
from asyncweb.util import ObjectDict


class HTTPFile(ObjectDict):
    """One uploaded file from a multipart form: ``filename``, ``body`` and ``content_type``.

    Readable both as keys and as attributes (``f["body"]`` or ``f.body``).
    """

    filename: str
    body: bytes
    content_type: str


@dataclasses.dataclass
class ParseMultipartConfig:
    """Limits for ``multipart/form-data`` request bodies, which are parsed on the event loop.

    ``enabled=False`` refuses every multipart body. A body with more than ``max_parts`` parts,
    or a part whose headers are longer than ``max_part_header_size`` bytes, is refused as a
    whole (HTTPInputError).
    """

    enabled: bool = True
    max_parts: int = 100
    max_part_header_size: int = 10 * 1024


@dataclasses.dataclass
class ParseUrlEncodedConfig:
    """Limits for ``application/x-www-form-urlencoded`` request bodies: a body with more
    than ``max_arguments`` fields (``&``-separated pieces) is refused as a whole."""

    max_arguments: int = 1000


@dataclasses.dataclass
class ParseBodyConfig:
    """Limits for form bodies, one config per format."""

    multipart: ParseMultipartConfig = dataclasses.field(default_factory=ParseMultipartConfig)
    urlencoded: ParseUrlEncodedConfig = dataclasses.field(default_factory=ParseUrlEncodedConfig)


# The one copy of the process-wide config: set_parse_body_config rebinds it, so other modules
# read it as ``forms._parse_body_config`` when they need it, never import it by name.
_parse_body_config = ParseBodyConfig()


def set_parse_body_config(config: ParseBodyConfig) -> None:
    """Set the process-wide limits used when ``parse_body_arguments`` gets no ``config``.

    That is every request body the server parses: ``RequestHandler`` answers a body over a
    limit with 400 Bad Request. ``set_parse_body_config(ParseBodyConfig())`` restores the
    defaults (100 multipart parts, 10 KiB of headers per part, 1000 urlencoded arguments).
    """
    global _parse_body_config
    _parse_body_config = config


def parse_body_arguments(
    content_type: str,
    body: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    headers: HTTPHeaders | None = None,
    *,
    config: ParseBodyConfig | None = None,
) -> None:
    """Decode a submitted form, adding its fields to ``arguments`` and uploads to ``files``.

    Only urlencoded and ``multipart/form-data`` bodies are looked at; anything else is left
    untouched. A body that cannot be decoded, or is over a limit of ``config`` (default: the
    one ``set_parse_body_config`` set), raises HTTPInputError, as in Tornado 6.5+; the server
    answers that with 400. Nothing is added from a refused body.
    """
    if config is None:
        config = _parse_body_config
    kind = content_type[:33].lower()
    if kind.startswith("application/x-www-form-urlencoded"):
        _refuse_content_encoding(headers)
        limit = config.urlencoded.max_arguments
        # Counted before parsing, the way parse_qs counts fields: one more than the "&"s.
        # The wording is urllib's, which code written for Tornado matches on.
        if body and body.count(b"&") >= limit:
            raise HTTPInputError(
                "Invalid x-www-form-urlencoded body: Max number of fields exceeded"
                f" (more than {limit} urlencoded arguments)"
            )
        try:
            parsed = parse_qs_bytes(body, keep_blank_values=True)
        except Exception as e:
            raise HTTPInputError(f"Invalid x-www-form-urlencoded body: {e}") from e
        for name, values in parsed.items():
            if values:
                arguments.setdefault(name, []).extend(values)
    elif kind.startswith("multipart/form-data"):
        _refuse_content_encoding(headers)
        _, params = _parse_header(content_type)
        boundary = params.get("boundary")
        if not boundary:
            raise HTTPInputError("Invalid multipart/form-data: multipart boundary not found")
        parse_multipart_form_data(utf8(boundary), body, arguments, files, config=config.multipart)


def parse_multipart_form_data(
    boundary: bytes,
    data: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    *,
    config: ParseMultipartConfig | None = None,
) -> None:
    """Split a ``multipart/form-data`` body on ``boundary`` and file away each part.

    Plain fields go to ``arguments``, parts with a filename to ``files``. ``boundary`` is the
    Content-Type parameter, quoted or not. A malformed body (no closing boundary, a part
    without headers, not ``form-data``, without a name, not ending in CRLF) or one over the
    limits of ``config`` raises HTTPInputError, as in Tornado 6.5+, and nothing is stored.
    """
    if config is None:
        config = _parse_body_config.multipart
    if not config.enabled:
        raise HTTPInputError("multipart/form-data parsing is disabled")
    if len(boundary) >= 2 and boundary.startswith(b'"') and boundary.endswith(b'"'):
        boundary = boundary[1:-1]
    final = data.rfind(b"--" + boundary + b"--")
    if final == -1:
        raise HTTPInputError("Invalid multipart/form-data: no final boundary found")
    # Find the delimiters first (at most max_parts + 1 of them), so an over-limit body is
    # refused before any work per part, and parts are sliced straight from ``data``: no
    # copy of the whole body, no list of a million pieces.
    delimiter = b"--" + boundary + b"\r\n"
    starts: list[int] = []
    max_parts = config.max_parts
    position = data.find(delimiter, 0, final)
    while position != -1:
        if len(starts) == max_parts:
            raise HTTPInputError(
                f"multipart/form-data has too many parts (more than {max_parts} multipart parts)"
            )
        position += len(delimiter)
        starts.append(position)
        position = data.find(delimiter, position, final)
    if not starts:
        return
    # Parsed into lists first, so that a bad part late in the body leaves nothing behind.
    new_arguments: list[tuple[str, bytes]] = []
    new_files: list[tuple[str, HTTPFile]] = []
    # A part ends where the next delimiter begins; the last one at the closing delimiter.
    ends = [start - len(delimiter) for start in starts[1:]]
    ends.append(final)
    for start, end in zip(starts, ends, strict=True):
        if start == end:
            continue  # nothing between two delimiters
        _parse_multipart_part(
            data, start, end, new_arguments, new_files, config.max_part_header_size
        )
    for name, value in new_arguments:
        arguments.setdefault(name, []).append(value)
    for name, upload in new_files:
        files.setdefault(name, []).append(upload)


def _parse_multipart_part(
    data: bytes,
    start: int,
    end: int,
    arguments: list[tuple[str, bytes]],
    files: list[tuple[str, HTTPFile]],
    max_header_size: int,
) -> None:
    """Parse the part ``data[start:end]`` into ``arguments`` or ``files``, or raise
    HTTPInputError saying what is wrong with it."""
    eoh = data.find(b"\r\n\r\n", start, min(end, start + max_header_size + 4))
    if eoh == -1:
        if data.find(b"\r\n\r\n", start, end) == -1:
            raise HTTPInputError("multipart/form-data missing headers")
        raise HTTPInputError(
            f"multipart/form-data part header too large (over {max_header_size} bytes)"
        )
    if data[end - 2 : end] != b"\r\n":
        raise HTTPInputError("Invalid multipart/form-data: part does not end with CRLF")
    try:
        headers = HTTPHeaders.parse(data[start:eoh].decode("utf-8"))
    except (UnicodeDecodeError, HTTPInputError) as e:
        raise HTTPInputError(f"Invalid multipart/form-data: bad part headers ({e})") from e
    disposition, params = _parse_header(headers.get("Content-Disposition", ""))
    if disposition.lower() != "form-data":
        raise HTTPInputError("Invalid multipart/form-data: part is not form-data")
    name = params.get("name")
    if not name:
        raise HTTPInputError("multipart/form-data value missing name")
    value = data[eoh + 4 : end - 2]
    filename = params.get("filename")
    if filename:
        content_type = headers.get("Content-Type", "application/unknown")
        files.append((name, HTTPFile(filename=filename, body=value, content_type=content_type)))
    else:
        arguments.append((name, value))


def _refuse_content_encoding(headers: HTTPHeaders | None) -> None:
    encoding = _content_encoded(headers)
    if encoding is not None:
        raise HTTPInputError(f"Unsupported Content-Encoding: {encoding}")


def _content_encoded(headers: HTTPHeaders | None) -> str | None:
    if not headers:
        return None
    encoding = headers.get("Content-Encoding")
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return None
    return encoding
