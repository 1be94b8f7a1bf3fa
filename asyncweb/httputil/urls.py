"""URL and query-string helpers: adding arguments to a URL, splitting a host from its port,
and query strings parsed with their values kept as bytes."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import AnyStr


def url_concat(
    url: str,
    args: Mapping[str, str] | list[tuple[str, str]] | tuple[tuple[str, str], ...] | None,
) -> str:
    """Return ``url`` with ``args`` (a mapping or a sequence of pairs) added to its query.

    Parameters already in the URL stay in front; a sequence may repeat a name.

    >>> url_concat("https://api.test/search", {"q": "owl", "lang": "en"})
    'https://api.test/search?q=owl&lang=en'
    >>> url_concat("/items?page=2#top", [("tag", "red"), ("tag", "blue")])
    '/items?page=2&tag=red&tag=blue#top'
    """
    if args is None:
        return url
    if isinstance(args, Mapping):
        extra: Iterable[tuple[str, str]] = args.items()
    elif isinstance(args, (list, tuple)):
        extra = args
    else:
        raise TypeError(f"url_concat() takes a mapping or a list/tuple of pairs, got {type(args)}")
    parts = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.extend(extra)
    return urllib.parse.urlunparse(parts._replace(query=urllib.parse.urlencode(query)))


def split_host_and_port(netloc: str) -> tuple[str, int | None]:
    """``"example.com:8080"`` -> ``("example.com", 8080)``; no port gives ``None``.

    >>> split_host_and_port("[::1]:80")
    ('[::1]', 80)
    """
    host, sep, port = netloc.rpartition(":")
    if sep and host and port.isascii() and port.isdigit():
        return host, int(port)
    return netloc, None


def qs_to_qsl(qs: Mapping[str, list[AnyStr]]) -> Iterator[tuple[str, AnyStr]]:
    """Flatten ``{name: [values]}`` (as from parse_qs) into ``(name, value)`` pairs."""
    for name, values in qs.items():
        for value in values:
            yield (name, value)


def parse_qs_bytes(
    qs: str | bytes,
    keep_blank_values: bool = False,
    strict_parsing: bool = False,
    *,
    max_num_fields: int | None = None,
) -> dict[str, list[bytes]]:
    """Like :func:`urllib.parse.parse_qs`, but values stay bytes.

    Percent-escapes are decoded to raw bytes (the charset is the application's business, see
    ``RequestHandler.decode_argument``). Names are ``str`` decoded as latin-1, as in Tornado,
    so a non-ASCII name appears as its UTF-8 bytes read as latin-1. More than
    ``max_num_fields`` fields (one more than the ``&`` separators) raise ValueError.
    """
    if isinstance(qs, bytes):
        qs = qs.decode("latin-1")
    if max_num_fields is not None and qs and qs.count("&") >= max_num_fields:
        raise ValueError(f"more than {max_num_fields} fields")
    if not strict_parsing and "%" not in qs and "+" not in qs:
        # Nothing to unescape (the common query): the same answer as below without the
        # per-field unquote and the second pass over the pairs. ";" is no separator in either.
        arguments: dict[str, list[bytes]] = {}
        for field in qs.split("&"):
            name, _, value = field.partition("=")
            if not value and (not field or not keep_blank_values):
                continue
            values = arguments.get(name)
            if values is None:
                arguments[name] = [value.encode("latin-1")]
            else:
                values.append(value.encode("latin-1"))
        return arguments
    parsed = urllib.parse.parse_qs(
        qs, keep_blank_values, strict_parsing, encoding="latin-1", errors="strict"
    )
    return {name: [value.encode("latin-1") for value in values] for name, values in parsed.items()}
