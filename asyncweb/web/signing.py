"""Signed values (signed cookies) and XSRF tokens.

Signed values use Tornado's two wire formats, so cookies stay readable across the two:

* version 1: ``base64(value)|timestamp|hex(HMAC-SHA1(secret, name + b64value + timestamp))``
* version 2: ``2|len:key_version|len:timestamp|len:name|len:b64value|hex(HMAC-SHA256)``, the
  signature covering everything before it (including the final ``|``).

Signatures are compared with :func:`hmac.compare_digest`. The handler methods live in
:class:`_SecureCookiesMixin`, a base of ``RequestHandler``; nothing here runs for requests
that use neither signed cookies nor XSRF.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncweb import escape
from asyncweb.log import gen_log
from asyncweb.web.errors import HTTPError

if TYPE_CHECKING:
    import datetime

    from asyncweb import httputil
    from asyncweb.web.application import Application

__all__ = [
    "DEFAULT_SIGNED_VALUE_MIN_VERSION",
    "DEFAULT_SIGNED_VALUE_VERSION",
    "create_signed_value",
    "decode_signed_value",
    "get_signature_key_version",
]

DEFAULT_SIGNED_VALUE_VERSION = 2
DEFAULT_SIGNED_VALUE_MIN_VERSION = 1

# A secret, or versioned secrets {key_version: secret} for key rotation.
_Secret = str | bytes | dict[int, str | bytes]

# "N|..." where N is a version number; v1 values start with base64 and have no such prefix.
_VERSION_PREFIX = re.compile(rb"^([1-9][0-9]*)\|(.*)$", re.DOTALL)
# A signature older than this many days into the future is refused as tampering (v1).
_MAX_FUTURE_DAYS = 31


def create_signed_value(
    secret: _Secret,
    name: str,
    value: str | bytes,
    version: int | None = None,
    clock: Callable[[], float] | None = None,
    key_version: int | None = None,
) -> bytes:
    """Sign ``value`` under ``name`` with a timestamp; read it back with
    :func:`decode_signed_value`. A dict ``secret`` needs ``key_version`` (version 2 only)."""
    if version is None:
        version = DEFAULT_SIGNED_VALUE_VERSION
    now = time.time() if clock is None else clock()
    timestamp = str(int(now)).encode()
    encoded = base64.b64encode(escape.utf8(value))
    if version == 1:
        if isinstance(secret, dict):
            raise ValueError("version 1 signed values take a single secret, not a dict")
        signature = _signature_v1(secret, name, encoded, timestamp)
        return b"|".join([encoded, timestamp, signature])
    if version == 2:
        signed = b"|".join(
            [
                b"2",
                _field(str(key_version or 0).encode()),
                _field(timestamp),
                _field(escape.utf8(name)),
                _field(encoded),
                b"",
            ]
        )
        if isinstance(secret, dict):
            if key_version is None:
                raise ValueError("key_version is required when cookie_secret is a dict")
            secret = secret[key_version]
        return signed + _signature_v2(secret, signed)
    raise ValueError(f"Unsupported signed value version {version}")


def decode_signed_value(
    secret: _Secret,
    name: str,
    value: str | bytes | None,
    max_age_days: float = 31,
    clock: Callable[[], float] | None = None,
    min_version: int | None = None,
) -> bytes | None:
    """The original value if ``value`` carries a valid signature for ``name`` no older than
    ``max_age_days``; None when missing, tampered, expired or below ``min_version``."""
    if min_version is None:
        min_version = DEFAULT_SIGNED_VALUE_MIN_VERSION
    if min_version > 2:
        raise ValueError(f"Unsupported min_version {min_version}")
    if not value:
        return None
    raw = escape.utf8(value)
    version = _version_of(raw)
    if version < min_version:
        return None
    now = time.time() if clock is None else clock()
    if version == 1:
        if isinstance(secret, dict):
            return None  # versioned secrets only sign version 2 values
        return _decode_v1(secret, name, raw, max_age_days, now)
    if version == 2:
        return _decode_v2(secret, name, raw, max_age_days, now)
    return None


def get_signature_key_version(value: str | bytes) -> int | None:
    """The key version a version-2 signed value was signed with (None for others)."""
    raw = escape.utf8(value)
    if _version_of(raw) < 2:
        return None
    try:
        return _split_v2(raw)[0]
    except ValueError:
        return None


def _field(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data


def _signature_v1(secret: str | bytes, *parts: str | bytes) -> bytes:
    digest = hmac.new(escape.utf8(secret), digestmod=hashlib.sha1)
    for part in parts:
        digest.update(escape.utf8(part))
    return digest.hexdigest().encode()


def _signature_v2(secret: str | bytes, signed: bytes) -> bytes:
    return hmac.new(escape.utf8(secret), signed, hashlib.sha256).hexdigest().encode()


def _version_of(raw: bytes) -> int:
    match = _VERSION_PREFIX.match(raw)
    if match is None:
        return 1
    version = int(match.group(1))
    # A version-1 value is base64 first, which may itself be all digits; real version
    # numbers are small, and base64 digit runs come in multiples of four.
    return 1 if version > 999 else version


def _decode_v1(
    secret: str | bytes, name: str, raw: bytes, max_age_days: float, now: float
) -> bytes | None:
    parts = raw.split(b"|")
    if len(parts) != 3:
        return None
    encoded, timestamp_text, signature = parts
    expected = _signature_v1(secret, name, encoded, timestamp_text)
    if not hmac.compare_digest(signature, expected):
        gen_log.warning("Invalid cookie signature %r", raw)
        return None
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        return None
    if timestamp < now - max_age_days * 86400:
        gen_log.warning("Expired cookie %r", raw)
        return None
    # Shifting digits between value and timestamp keeps the signature valid; a future or
    # zero-padded timestamp is the trace of that.
    if timestamp > now + _MAX_FUTURE_DAYS * 86400:
        gen_log.warning("Cookie timestamp in future; possible tampering %r", raw)
        return None
    if timestamp_text.startswith(b"0"):
        gen_log.warning("Tampered cookie %r", raw)
        return None
    try:
        return base64.b64decode(encoded)
    except binascii.Error:
        return None


def _split_v2(raw: bytes) -> tuple[int, bytes, bytes, bytes, bytes]:
    """(key_version, timestamp, name, value, signature) of a version 2 value, or ValueError."""
    rest = raw[2:]  # past "2|"
    fields: list[bytes] = []
    for _ in range(4):
        length_text, colon, rest = rest.partition(b":")
        if not colon or not length_text.isdigit():
            raise ValueError("malformed signed value field")
        length = int(length_text)
        if rest[length : length + 1] != b"|":
            raise ValueError("malformed signed value field")
        fields.append(rest[:length])
        rest = rest[length + 1 :]
    return int(fields[0]), fields[1], fields[2], fields[3], rest


def _decode_v2(
    secret: _Secret, name: str, raw: bytes, max_age_days: float, now: float
) -> bytes | None:
    try:
        key_version, timestamp_text, name_field, encoded, signature = _split_v2(raw)
    except ValueError:
        return None
    if not signature:
        return None
    signed = raw[: -len(signature)]
    if isinstance(secret, dict):
        if key_version not in secret:
            return None
        secret = secret[key_version]
    # Version 2 refusals are silent, as in Tornado: any client can send a bad cookie, and a
    # warning per request would be the client's to write in our log.
    if not hmac.compare_digest(signature, _signature_v2(secret, signed)):
        return None
    if name_field != escape.utf8(name):
        return None
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        return None
    if timestamp < now - max_age_days * 86400:
        return None
    try:
        return base64.b64decode(encoded)
    except binascii.Error:
        return None


def _xor_mask(mask: bytes, data: bytes) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (its own inverse)."""
    repeated = (mask * (len(data) // 4 + 1))[: len(data)]
    return bytes(a ^ b for a, b in zip(data, repeated, strict=True))


# (version or None when freshly made, raw token, timestamp)
_RawToken = tuple[int | None, bytes, float]


class _SecureCookiesMixin:
    """Signed cookies and XSRF protection for ``RequestHandler`` (methods as Tornado's)."""

    if TYPE_CHECKING:
        # What this mixin uses of RequestHandler.
        application: Application
        request: httputil.HTTPServerRequest
        _xsrf_token: bytes
        _raw_xsrf_token: _RawToken

        @property
        def settings(self) -> dict[str, Any]: ...
        @property
        def current_user(self) -> Any: ...
        def require_setting(self, name: str, feature: str = "this feature") -> None: ...
        def get_cookie(self, name: str, default: str | None = None) -> str | None: ...
        def get_argument(self, name: str, default: Any = ..., strip: bool = True) -> Any: ...
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
        ) -> None: ...

    # -- signed cookies ------------------------------------------------------------------------

    def create_signed_value(
        self, name: str, value: str | bytes, version: int | None = None
    ) -> bytes:
        """Sign ``value`` with the ``cookie_secret`` setting (and ``key_version`` when the
        secret is a dict of versions)."""
        self.require_setting("cookie_secret", "secure cookies")
        settings = self.application.settings
        secret = settings["cookie_secret"]
        key_version = None
        if isinstance(secret, dict):
            key_version = settings.get("key_version")
            if key_version is None:
                raise Exception("a dict cookie_secret needs the key_version setting")
        return create_signed_value(secret, name, value, version=version, key_version=key_version)

    def set_signed_cookie(
        self,
        name: str,
        value: str | bytes,
        expires_days: float | None = 30,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Set a cookie whose value is signed (not encrypted: the client can read it, but
        any change makes :meth:`get_signed_cookie` return None)."""
        signed = self.create_signed_value(name, value, version=version)
        self.set_cookie(name, signed, expires_days=expires_days, **kwargs)

    def get_signed_cookie(
        self,
        name: str,
        value: str | None = None,
        max_age_days: float = 31,
        min_version: int | None = None,
    ) -> bytes | None:
        """The verified value of signed cookie ``name`` (or of ``value``), as bytes; None
        when missing, tampered with, or older than ``max_age_days``."""
        self.require_setting("cookie_secret", "secure cookies")
        if value is None:
            value = self.get_cookie(name)
        return decode_signed_value(
            self.application.settings["cookie_secret"],
            name,
            value,
            max_age_days=max_age_days,
            min_version=min_version,
        )

    def get_signed_cookie_key_version(self, name: str, value: str | None = None) -> int | None:
        """The key version of signed cookie ``name`` (None when absent or version 1)."""
        self.require_setting("cookie_secret", "secure cookies")
        if value is None:
            value = self.get_cookie(name)
        if value is None:
            return None
        return get_signature_key_version(value)

    # The names Tornado used before 6.3; still documented as aliases.
    set_secure_cookie = set_signed_cookie
    get_secure_cookie = get_signed_cookie
    get_secure_cookie_key_version = get_signed_cookie_key_version

    # -- XSRF ----------------------------------------------------------------------------------

    @property
    def xsrf_token(self) -> bytes:
        """This request's XSRF token; sets the XSRF cookie when the client has none.

        With the default ``xsrf_cookie_version`` 2 the secret token is XORed with a fresh
        random mask on every request, so pages differ (defeating BREACH-style compression
        attacks) while all of them match the one cookie.
        """
        token: bytes | None = getattr(self, "_xsrf_token", None)
        if token is not None:
            return token
        version, raw, timestamp = self._get_raw_xsrf_token()
        output_version = self.settings.get("xsrf_cookie_version", 2)
        if output_version == 1:
            token = binascii.b2a_hex(raw)
        elif output_version == 2:
            mask = os.urandom(4)
            token = b"|".join(
                [
                    b"2",
                    binascii.b2a_hex(mask),
                    binascii.b2a_hex(_xor_mask(mask, raw)),
                    str(int(timestamp)).encode(),
                ]
            )
        else:
            raise ValueError(f"unknown xsrf_cookie_version {output_version!r}")
        self._xsrf_token = token
        if version is None:
            cookie_kwargs = dict(self.settings.get("xsrf_cookie_kwargs", {}))
            if self.current_user and "expires_days" not in cookie_kwargs:
                cookie_kwargs["expires_days"] = 30
            self.set_cookie(self.settings.get("xsrf_cookie_name", "_xsrf"), token, **cookie_kwargs)
        return token

    def _get_raw_xsrf_token(self) -> _RawToken:
        """The unmasked token from the XSRF cookie, or a new random one."""
        raw: _RawToken | None = getattr(self, "_raw_xsrf_token", None)
        if raw is None:
            cookie = self.get_cookie(self.settings.get("xsrf_cookie_name", "_xsrf"))
            version, token, timestamp = (
                self._decode_xsrf_token(cookie) if cookie else (None, None, None)
            )
            if token is None or timestamp is None:
                raw = (None, os.urandom(16), time.time())
            else:
                raw = (version, token, timestamp)
            self._raw_xsrf_token = raw
        return raw

    def _decode_xsrf_token(self, cookie: str) -> tuple[int | None, bytes | None, float | None]:
        """(version, raw token, timestamp) of a cookie or form token; Nones when invalid."""
        try:
            match = _VERSION_PREFIX.match(escape.utf8(cookie))
            if match is None:
                # Version 1: the hex token itself (or, from very old clients, the raw text).
                try:
                    token = binascii.a2b_hex(escape.utf8(cookie))
                except (binascii.Error, TypeError):
                    token = escape.utf8(cookie)
                return 1, token, float(int(time.time()))
            if int(match.group(1)) != 2:
                return None, None, None
            _, mask_hex, masked_hex, timestamp_text = cookie.split("|")
            mask = binascii.a2b_hex(escape.utf8(mask_hex))
            if len(mask) != 4:
                return None, None, None
            token = _xor_mask(mask, binascii.a2b_hex(escape.utf8(masked_hex)))
            return 2, token, float(int(timestamp_text))
        except (ValueError, binascii.Error, TypeError):
            gen_log.debug("Undecodable XSRF token %r", cookie, exc_info=True)
            return None, None, None

    def check_xsrf_cookie(self) -> None:
        """403 unless the ``_xsrf`` argument (or ``X-XSRFToken``/``X-CSRFToken`` header)
        matches the XSRF cookie. Runs before non-GET/HEAD/OPTIONS methods when the
        ``xsrf_cookies`` setting is on; override to exempt a handler (e.g. an API)."""
        headers = self.request.headers
        given = (
            self.get_argument("_xsrf", None)
            or headers.get("X-Xsrftoken")
            or headers.get("X-Csrftoken")
        )
        if not given:
            raise HTTPError(403, "'_xsrf' argument missing from %s", self.request.method)
        _, token, _ = self._decode_xsrf_token(given)
        if not token:
            raise HTTPError(403, "'_xsrf' argument has invalid format")
        cookie_name = self.settings.get("xsrf_cookie_name", "_xsrf")
        # Tornado's wording (code and log filters match on it), with the reason added.
        if not self.get_cookie(cookie_name):
            raise HTTPError(
                403, "XSRF cookie does not match POST argument ('%s' cookie missing)", cookie_name
            )
        _, expected, _ = self._get_raw_xsrf_token()
        if not hmac.compare_digest(token, expected):
            raise HTTPError(403, "XSRF cookie does not match POST argument")

    def check_trusted_origin(self, origin: str) -> bool:
        """Whether a cross-origin request from ``origin`` may use unsafe methods when the
        ``cross_origin_protection`` setting is on. By default: ``origin`` is one of the
        ``trusted_origins`` setting (compared exactly, e.g. ``"https://app.example.com"``).
        Override for wildcard rules."""
        trusted = self.settings.get("trusted_origins") or ()
        return origin in trusted

    def _check_cross_origin(self) -> None:
        """The ``cross_origin_protection`` setting (Tornado 6.6): 403 for an unsafe-method
        request a browser says came from another origin (see _cross_origin_refusal)."""
        refusal = self._cross_origin_refusal(self.check_trusted_origin)
        if refusal is not None:
            raise HTTPError(403, *refusal)

    def _cross_origin_refusal(self, trusted: Callable[[str], bool]) -> tuple[str, ...] | None:
        """Why this request is refused as coming from another origin (a log format and its
        arguments), or None. ``Sec-Fetch-Site`` decides when present (``same-origin`` and
        ``none`` pass); otherwise ``Origin`` is compared with this request's scheme and host.
        Origins ``trusted`` accepts pass. Requests with neither header (not from a browser)
        pass."""
        headers = self.request.headers
        origin: str | None = headers.get("Origin")
        site: str | None = headers.get("Sec-Fetch-Site")
        if site is not None:
            site = site.strip().lower()
            if site in ("same-origin", "none"):
                return None
            if origin is not None and trusted(origin):
                return None
            where = f"from {origin!r}" if origin is not None else "without Origin"
            return ("Sec-Fetch-Site %s request %s not allowed", site, where)
        if origin is None:
            return None
        request = self.request
        parts = urllib.parse.urlsplit(origin.lower())
        if origin != "null" and (parts.scheme, parts.netloc) == (
            request.protocol.lower(),
            request.host.lower(),
        ):
            return None
        if trusted(origin):
            return None
        return ("Origin %r not allowed", origin)

    def xsrf_form_html(self) -> str:
        """``<input type="hidden" name="_xsrf" value="...">`` for forms (sets the cookie)."""
        token = escape.xhtml_escape(self.xsrf_token)
        return f'<input type="hidden" name="_xsrf" value="{token}"/>'
