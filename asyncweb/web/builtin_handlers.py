"""The handlers ``asyncweb.web`` ships: ``ErrorHandler`` (the 404 page), ``RedirectHandler``
and ``FallbackHandler``, and the browser's reading of URLs that redirects are checked with."""

from __future__ import annotations

import asyncio
import inspect
import string
import urllib.parse
from collections.abc import Callable
from typing import Any

from asyncweb import escape, httputil
from asyncweb.log import app_log
from asyncweb.web.errors import HTTPError
from asyncweb.web.handler import _UNSAFE_HEADER_VALUE, RequestHandler, _running

__all__ = ["ErrorHandler", "FallbackHandler", "RedirectHandler"]

# Browsers (WHATWG URL parsing) trim these from both ends of a URL...
_URL_TRIMMED = "".join(map(chr, range(0x21)))
# ...drop these anywhere in it...
_URL_DROPPED = str.maketrans("", "", "\t\n\r")


def _as_browser_reads(url: str) -> str:
    # ...and, for http(s), read a backslash as a slash. Redirect checks must see the same URL.
    return url.strip(_URL_TRIMMED).translate(_URL_DROPPED).replace("\\", "/")


def _names_other_host(url: str) -> bool:
    """Whether a browser would take ``url`` as scheme-relative (``//host/...``)."""
    return _as_browser_reads(url).startswith("//")


def _scheme_and_host(url: str) -> tuple[str, str]:
    """The scheme and authority (lower case) a browser would find in ``url``."""
    url = _as_browser_reads(url)
    if url.startswith("//"):
        # urlsplit finds no host in "///evil.com"; a browser skips the extra slashes.
        url = "//" + url.lstrip("/")
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (the application's 404 handler)."""

    def initialize(self, status_code: int) -> None:  # type: ignore[override]
        self.set_status(status_code)

    def prepare(self) -> None:
        raise HTTPError(self._status_code)

    def check_xsrf_cookie(self) -> None:
        # An error page must not turn into a 403 because a form lacked its token.
        pass

    def _check_cross_origin(self) -> None:
        # Nor because the request came from another origin.
        pass


class RedirectHandler(RequestHandler):
    """Redirects to ``url`` (``{0}``/``{name}`` are filled from the path's groups), keeping
    the query string: ``(r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"})``."""

    def initialize(self, url: str, permanent: bool = True) -> None:  # type: ignore[override]
        self._url = url
        self._permanent = permanent

    def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        query = self.request.query_arguments
        try:
            if query:
                pairs = [(k, escape.to_unicode(v)) for k, values in query.items() for v in values]
                to_url = httputil.url_concat(to_url, pairs)
            same_site = self._keeps_destination(to_url)
        except ValueError:
            same_site = False
        if not same_site:
            # Tornado's wording, which log filters match on.
            raise HTTPError(400, "Redirect URL cannot change the scheme or netloc: %r", to_url)
        if _UNSAFE_HEADER_VALUE.search(to_url):
            raise HTTPError(400, "Redirect URL contains invalid characters: %r", to_url)
        self.redirect(to_url, permanent=self._permanent)

    def _keeps_destination(self, to_url: str) -> bool:
        """Whether ``to_url`` goes to the scheme and host the ``url`` template fixed before
        its first substitution: path groups come from the client and must not pick them."""
        fixed = ""
        substituted = False
        for literal, field, _, _ in string.Formatter().parse(self._url):
            fixed += literal
            if field is not None:
                substituted = True
                break
        scheme, host = _scheme_and_host(fixed)
        if substituted and scheme in ("http", "https") and not host:
            return False  # e.g. "https://{0}": the whole host is the client's choice
        return _scheme_and_host(to_url) == (scheme, host)


class FallbackHandler(RequestHandler):
    """Hands the request to another server's callable, e.g. a ``WSGIContainer``, so it can
    share an application with native handlers::

        wsgi_app = WSGIContainer(flask_app)
        Application([(r"/api/.*", ApiHandler), (r".*", FallbackHandler, {"fallback": wsgi_app})])

    The callable answers on ``request.connection`` itself; this handler writes nothing. An
    awaitable it returns is kept running (and its failure logged) after ``prepare``.
    """

    def initialize(  # type: ignore[override]
        self, fallback: Callable[[httputil.HTTPServerRequest], Any]
    ) -> None:
        self.fallback = fallback

    def prepare(self) -> None:
        result = self.fallback(self.request)
        self._finished = True
        self.on_finish()
        if result is not None and inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            _running[task] = None
            task.add_done_callback(_fallback_done)


def _fallback_done(task: asyncio.Future[Any]) -> None:
    _running.pop(task, None)
    if not task.cancelled() and task.exception() is not None:
        app_log.error("Uncaught exception in fallback", exc_info=task.exception())
