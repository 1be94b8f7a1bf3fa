"""URL and query-string helpers: adding arguments to a URL, splitting a host from its port,
and (re-exported from :mod:`asyncweb.escape`, where Tornado has it) query strings parsed with
their values kept as bytes."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import AnyStr

from asyncweb.escape import parse_qs_bytes as parse_qs_bytes


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
