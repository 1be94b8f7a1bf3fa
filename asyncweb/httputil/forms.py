"""Form bodies: urlencoded and ``multipart/form-data`` bodies decoded into arguments and
HTTPFile uploads, under process-wide limits (ParseBodyConfig, set by set_parse_body_config)."""

from __future__ import annotations

import dataclasses

from asyncweb.escape import utf8
from asyncweb.httputil.errors import HTTPInputError
from asyncweb.httputil.header_values import _parse_header
from asyncweb.httputil.headers import HTTPHeaders
from asyncweb.httputil.urls import parse_qs_bytes
from asyncweb.log import gen_log
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

    ``enabled=False`` refuses every multipart body. A body with more than ``max_parts`` parts
    is refused as a whole; a part whose headers are longer than ``max_part_header_size`` bytes
    is dropped (with the body's one warning), as any other unusable part is.
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
    untouched. A body that cannot be decoded gets a logged warning instead of an exception.
    A body over a limit of ``config`` (default: the one ``set_parse_body_config`` set)
    raises HTTPInputError and adds nothing.
    """
    if config is None:
        config = _parse_body_config
    kind = content_type[:33].lower()
    if kind.startswith("application/x-www-form-urlencoded"):
        encoding = _content_encoded(headers)
        if encoding is not None:
            gen_log.warning("Form body ignored: cannot decode Content-Encoding %r", encoding)
            return
        limit = config.urlencoded.max_arguments
        # Counted before parsing, the way parse_qs counts fields: one more than the "&"s.
        if body and body.count(b"&") >= limit:
            raise HTTPInputError(f"more than {limit} urlencoded arguments")
        try:
            parsed = parse_qs_bytes(body, keep_blank_values=True)
        except Exception as e:
            gen_log.warning("Form body ignored: bad urlencoded data (%s)", e)
            return
        for name, values in parsed.items():
            if values:
                arguments.setdefault(name, []).extend(values)
    elif kind.startswith("multipart/form-data"):
        encoding = _content_encoded(headers)
        if encoding is not None:
            gen_log.warning("Form body ignored: cannot decode Content-Encoding %r", encoding)
            return
        _, params = _parse_header(content_type)
        boundary = params.get("boundary")
        if not boundary:
            gen_log.warning("Form body ignored: multipart Content-Type has no boundary")
            return
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
    Content-Type parameter, quoted or not. Broken parts are dropped and reported in a single
    warning per body, so a body with thousands of bad parts still costs one log line. A body
    over the limits of ``config`` raises HTTPInputError before anything is stored.
    """
    if config is None:
        config = _parse_body_config.multipart
    if not config.enabled:
        raise HTTPInputError("multipart/form-data parsing is disabled")
    if len(boundary) >= 2 and boundary.startswith(b'"') and boundary.endswith(b'"'):
        boundary = boundary[1:-1]
    final = data.rfind(b"--" + boundary + b"--")
    if final == -1:
        gen_log.warning("Multipart body ignored: closing boundary missing")
        return
    # Find the delimiters first (at most max_parts + 1 of them), so an over-limit body is
    # refused before any work per part, and parts are sliced straight from ``data``: no
    # copy of the whole body, no list of a million pieces.
    delimiter = b"--" + boundary + b"\r\n"
    starts: list[int] = []
    max_parts = config.max_parts
    position = data.find(delimiter, 0, final)
    while position != -1:
        if len(starts) == max_parts:
            raise HTTPInputError(f"more than {max_parts} multipart parts")
        position += len(delimiter)
        starts.append(position)
        position = data.find(delimiter, position, final)
    if not starts:
        return
    problem: str | None = None
    skipped = 0
    # A part ends where the next delimiter begins; the last one at the closing delimiter.
    ends = [start - len(delimiter) for start in starts[1:]]
    ends.append(final)
    for start, end in zip(starts, ends, strict=True):
        if start == end:
            continue  # nothing between two delimiters
        reason = _parse_multipart_part(
            data, start, end, arguments, files, config.max_part_header_size
        )
        if reason is not None:
            skipped += 1
            problem = problem or reason
    if problem is not None:
        gen_log.warning("Multipart body: dropped %d bad part(s), first: %s", skipped, problem)


def _parse_multipart_part(
    data: bytes,
    start: int,
    end: int,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    max_header_size: int,
) -> str | None:
    """Store the part ``data[start:end]``; on failure store nothing and return a reason."""
    eoh = data.find(b"\r\n\r\n", start, min(end, start + max_header_size + 4))
    if eoh == -1:
        if data.find(b"\r\n\r\n", start, end) == -1:
            return "part is missing headers"
        return f"part headers longer than {max_header_size} bytes"
    if data[end - 2 : end] != b"\r\n":
        return "part does not end with CRLF"
    try:
        headers = HTTPHeaders.parse(data[start:eoh].decode("utf-8"))
    except (UnicodeDecodeError, HTTPInputError) as e:
        return f"bad part headers ({e})"
    disposition, params = _parse_header(headers.get("Content-Disposition", ""))
    if disposition.lower() != "form-data":
        return "part is not form-data"
    name = params.get("name")
    if not name:
        return "part is missing a name"
    value = data[eoh + 4 : end - 2]
    filename = params.get("filename")
    if filename:
        content_type = headers.get("Content-Type", "application/unknown")
        files.setdefault(name, []).append(
            HTTPFile(filename=filename, body=value, content_type=content_type)
        )
    else:
        arguments.setdefault(name, []).append(value)
    return None


def _content_encoded(headers: HTTPHeaders | None) -> str | None:
    if not headers:
        return None
    encoding = headers.get("Content-Encoding")
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return None
    return encoding
