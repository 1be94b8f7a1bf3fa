"""Plain cookies for ``RequestHandler``: reading the request's (``get_cookie``) and queueing
``Set-Cookie`` headers (``set_cookie``, ``clear_cookie``, ``clear_all_cookies``)."""

from __future__ import annotations

import datetime
import functools
import http.cookies
import re
from typing import TYPE_CHECKING, Any

from asyncweb import escape, httputil

__all__ = ["_CookiesMixin"]


class _CookieAttributeError(http.cookies.CookieError, ValueError):
    """A cookie attribute that would break the Set-Cookie header (both types, so code
    catching either the cookie module's error or ValueError sees it)."""


# A cookie attribute value ends at ";" and may hold no whitespace or control character.
_BAD_COOKIE_ATTRIBUTE = re.compile(r"[\x00-\x20;\x7f]")
# The cookie names http.cookies.SimpleCookie accepts: no attribute name (any case), and only
# its legal characters. get_cookie answers as the Morsel jar would, without building one.
_RESERVED_COOKIE_NAMES = frozenset(http.cookies.Morsel._reserved)  # type: ignore[attr-defined]
_REQUEST_COOKIES = httputil.HTTPServerRequest.cookies
_JAR_COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~:]+")


@functools.lru_cache(maxsize=256)
def _jar_accepts(name: str) -> bool:
    """Whether SimpleCookie would take ``name`` (cached: handlers ask for a few fixed names)."""
    return name.lower() not in _RESERVED_COOKIE_NAMES and bool(_JAR_COOKIE_NAME.fullmatch(name))


class _CookiesMixin:
    """``get_cookie``/``set_cookie``/``clear_cookie``/``clear_all_cookies`` (as Tornado's)."""

    if TYPE_CHECKING:
        # What this mixin uses of RequestHandler.
        request: httputil.HTTPServerRequest
        _new_cookie: http.cookies.SimpleCookie | None

    # The request's cookies as plain strings, parsed by the first get_cookie.
    _cookie_values: dict[str, str] | None = None

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        request = self.request
        if getattr(type(request), "cookies", None) is not _REQUEST_COOKIES or (
            request._cookies is not None
        ):
            # Someone built or replaced the Morsel jar: it is the truth.
            cookies = request.cookies
            if name in cookies:
                return cookies[name].value
            return default
        values = self._cookie_values
        if values is None:
            values = self._cookie_values = httputil.parse_cookie(request.headers.get("Cookie", ""))
        if name in values and _jar_accepts(name):
            return values[name]
        return default

    def set_cookie(
        self,
        name: str,
        value: str | bytes,
        domain: str | None = None,
        expires: float | tuple[Any, ...] | datetime.datetime | None = None,
        path: str = "/",
        expires_days: float | None = None,
        *,
        max_age: int | None = None,
        httponly: bool = False,
        secure: bool = False,
        samesite: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue a ``Set-Cookie`` header (sent with the response head)."""
        name = escape.native_str(name)
        value = escape.native_str(value)
        # Tornado's wording ("Invalid cookie attribute <key>"), which callers match on.
        if _BAD_COOKIE_ATTRIBUTE.search(name):
            raise _CookieAttributeError(f"Invalid cookie attribute name: {name!r}")
        if re.search(r"[\x00-\x20]", name + value):
            # Cookie syntax allows neither whitespace nor control characters unquoted.
            raise ValueError(f"Cookie {name!r} has whitespace or a control character: {value!r}")
        # Checked now, while the caller is on the stack: once in the head, a CR/LF or ";"
        # would inject headers or attributes (or make the whole response unsendable).
        attributes: list[tuple[str, Any]] = [
            ("domain", domain),
            ("path", path),
            ("samesite", samesite),
            ("max_age", max_age),
        ]
        attributes.extend(kwargs.items())
        for attribute, given in attributes:
            if given is not None and _BAD_COOKIE_ATTRIBUTE.search(str(given)):
                raise _CookieAttributeError(f"Invalid cookie attribute {attribute}: {given!r}")
        if self._new_cookie is None:
            self._new_cookie = http.cookies.SimpleCookie()
        if name in self._new_cookie:
            del self._new_cookie[name]
        self._new_cookie[name] = value
        morsel = self._new_cookie[name]
        if domain:
            morsel["domain"] = domain
        if expires_days is not None and not expires:
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                days=expires_days
            )
        if expires:
            morsel["expires"] = httputil.format_timestamp(expires)
        if path:
            morsel["path"] = path
        if max_age:
            morsel["max-age"] = str(max_age)
        if httponly:
            morsel["httponly"] = True
        if secure:
            morsel["secure"] = True
        if samesite:
            morsel["samesite"] = samesite
        for key, val in kwargs.items():
            if key == "max_age":
                key = "max-age"
            if key in ("httponly", "secure") and not val:
                continue
            morsel[key] = val

    def clear_cookie(self, name: str, **kwargs: Any) -> None:
        """Expire cookie ``name``; pass the ``path``/``domain`` it was set with."""
        for forbidden in ("expires", "max_age"):
            if forbidden in kwargs:
                raise TypeError(f"clear_cookie() sets {forbidden!r} itself; it can't be passed")
        expires = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=365)
        self.set_cookie(name, value="", expires=expires, **kwargs)

    def clear_all_cookies(self, **kwargs: Any) -> None:
        """Expire every cookie the request sent (same ``path``/``domain`` for all)."""
        for name in self.request.cookies:
            self.clear_cookie(name, **kwargs)
