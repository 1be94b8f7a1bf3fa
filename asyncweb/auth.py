"""Third-party login: OpenID 2.0, OAuth 1.0/1.0a and OAuth 2, with Google, Facebook and
Twitter flavours, as ``tornado.auth``.

Mix a class into a ``RequestHandler``; the same handler usually serves both legs of the dance::

    class GoogleLogin(RequestHandler, GoogleOAuth2Mixin):
        async def get(self):
            if self.get_argument("code", None):
                access = await self.get_authenticated_user(
                    redirect_uri="https://example.com/login", code=self.get_argument("code")
                )
                user = await self.oauth2_request(
                    "https://www.googleapis.com/oauth2/v1/userinfo",
                    access_token=access["access_token"],
                )
                ...  # remember the user, e.g. with set_signed_cookie
            else:
                self.authorize_redirect(
                    redirect_uri="https://example.com/login",
                    client_id=self.settings["google_oauth"]["key"],
                    scope=["profile", "email"],
                    extra_params={"state": make_state()},   # and check it on return
                )

Endpoints are class attributes (``_OAUTH_AUTHORIZE_URL``, ``_OAUTH_ACCESS_TOKEN_URL``,
``_OAUTH_REQUEST_TOKEN_URL``, ``_OPENID_ENDPOINT``, ``_TWITTER_BASE_URL``,
``_FACEBOOK_BASE_URL``...): point them elsewhere (a test double, another provider) by
overriding them in a subclass or on the instance.

The coroutines also take the legacy ``callback=`` keyword of Tornado 5 and earlier: the call is
then scheduled by itself and the callback gets the result (``None`` when authentication failed),
with a ``DeprecationWarning`` once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asyncweb import escape, httpclient
from asyncweb.httputil import url_concat
from asyncweb.log import app_log, gen_log

__all__ = [
    "AuthError",
    "FacebookGraphMixin",
    "GoogleOAuth2Mixin",
    "OAuth2Mixin",
    "OAuthMixin",
    "OpenIdMixin",
    "TwitterMixin",
]

_F = TypeVar("_F", bound=Callable[..., Any])

_AX_NS = "http://openid.net/srv/ax/1.0"
_OPENID_NS = "http://specs.openid.net/auth/2.0"
_IDENTIFIER_SELECT = "http://specs.openid.net/auth/2.0/identifier_select"
# Attribute exchange: the names asked for, and the axschema.org types they map to.
_AX_TYPES = {
    "email": "http://axschema.org/contact/email",
    "language": "http://axschema.org/pref/language",
    "username": "http://axschema.org/namePerson/friendly",
    "fullname": "http://axschema.org/namePerson",
    "firstname": "http://axschema.org/namePerson/first",
    "lastname": "http://axschema.org/namePerson/last",
}


class AuthError(Exception):
    """Authentication with the provider failed (bad response, mismatched token, ...)."""


_warned_callback = False


def _legacy_callback(method: _F) -> _F:
    """Let a coroutine method also be called the pre-6.0 way, with ``callback=``."""

    @functools.wraps(method)
    def wrapper(
        self: Any, *args: Any, callback: Callable[..., Any] | None = None, **kw: Any
    ) -> Any:
        result = method(self, *args, **kw)
        if callback is None:
            return result
        global _warned_callback
        if not _warned_callback:
            _warned_callback = True
            warnings.warn(
                "callback arguments of asyncweb.auth methods are deprecated; await the result",
                DeprecationWarning,
                stacklevel=2,
            )
        future = asyncio.ensure_future(result)

        def done(task: asyncio.Future[Any]) -> None:
            if task.cancelled():
                return
            error = task.exception()
            if error is None:
                callback(task.result())
                return
            if isinstance(error, (AuthError, httpclient.HTTPClientError)):
                gen_log.warning("%s failed: %s", method.__name__, error)
            else:
                app_log.error("%s failed", method.__name__, exc_info=error)
            callback(None)  # what Tornado's callback-era mixins reported on failure

        future.add_done_callback(done)
        return future

    return cast(_F, wrapper)


class _AuthMixinBase:
    """What the mixins use of the ``RequestHandler`` they are mixed into."""

    request: Any
    settings: dict[str, Any]

    def get_auth_http_client(self) -> httpclient.AsyncHTTPClient:
        """The client used for requests to the provider (override to use another)."""
        return httpclient.AsyncHTTPClient()

    def _handler(self) -> Any:
        return self


# ---------------------------------------------------------------------------------------------
# OpenID 2.0 with attribute exchange
# ---------------------------------------------------------------------------------------------


class OpenIdMixin(_AuthMixinBase):
    """OpenID 2.0 with attribute exchange. Set ``_OPENID_ENDPOINT``."""

    _OPENID_ENDPOINT: str

    def authenticate_redirect(
        self,
        callback_uri: str | None = None,
        ax_attrs: list[str] = ["name", "email", "language", "username"],  # noqa: B006
    ) -> None:
        """Send the user to the provider; it comes back to ``callback_uri`` (default: this
        URL), where ``get_authenticated_user`` finishes the job."""
        handler = self._handler()
        args = self._openid_args(callback_uri or handler.request.uri, ax_attrs=ax_attrs)
        handler.redirect(self._OPENID_ENDPOINT + "?" + urllib.parse.urlencode(args))

    @_legacy_callback
    async def get_authenticated_user(
        self, http_client: httpclient.AsyncHTTPClient | None = None
    ) -> dict[str, Any]:
        """Check the provider's assertion (a ``check_authentication`` round trip) and return
        the user: ``name``, ``first_name``, ``last_name``, ``email``, ``locale``,
        ``username``, ``claimed_id`` when the provider gave them."""
        handler = self._handler()
        args = {name: values[-1] for name, values in handler.request.arguments.items()}
        args["openid.mode"] = b"check_authentication"
        client = http_client or self.get_auth_http_client()
        response = await client.fetch(
            self._OPENID_ENDPOINT, method="POST", body=urllib.parse.urlencode(args)
        )
        return self._on_authentication_verified(response)

    def _openid_args(
        self,
        callback_uri: str,
        ax_attrs: list[str] | tuple[str, ...] = (),
        oauth_scope: str | None = None,
    ) -> dict[str, str]:
        handler = self._handler()
        return_to = urllib.parse.urljoin(handler.request.full_url(), callback_uri)
        args = {
            "openid.ns": _OPENID_NS,
            "openid.claimed_id": _IDENTIFIER_SELECT,
            "openid.identity": _IDENTIFIER_SELECT,
            "openid.return_to": return_to,
            "openid.realm": urllib.parse.urljoin(return_to, "/"),
            "openid.mode": "checkid_setup",
        }
        if ax_attrs:
            args["openid.ns.ax"] = _AX_NS
            args["openid.ax.mode"] = "fetch_request"
            wanted: list[str] = []
            for attr in ax_attrs:
                if attr == "name":
                    wanted.extend(["firstname", "fullname", "lastname"])
                else:
                    wanted.append(attr)
            for name in wanted:
                if name in _AX_TYPES:
                    args["openid.ax.type." + name] = _AX_TYPES[name]
            args["openid.ax.required"] = ",".join(n for n in wanted if n in _AX_TYPES)
        if oauth_scope:
            args["openid.ns.oauth"] = "http://specs.openid.net/extensions/oauth/1.0"
            args["openid.oauth.consumer"] = handler.request.host.split(":")[0]
            args["openid.oauth.scope"] = oauth_scope
        return args

    def _on_authentication_verified(self, response: httpclient.HTTPResponse) -> dict[str, Any]:
        handler = self._handler()
        if b"is_valid:true" not in response.body:
            raise AuthError(f"Invalid OpenID response: {response.body!r}")
        # The AX namespace alias is whatever the provider chose ("ax", "ext1", ...).
        alias = ""
        for name in handler.request.arguments:
            if name.startswith("openid.ns.") and handler.get_argument(name) == _AX_NS:
                alias = name[len("openid.ns.") :]
                break

        def ax_value(type_uri: str) -> str:
            if not alias:
                return ""
            prefix = f"openid.{alias}.type."
            for name in handler.request.arguments:
                if name.startswith(prefix) and handler.get_argument(name) == type_uri:
                    return str(
                        handler.get_argument(f"openid.{alias}.value.{name[len(prefix) :]}", "")
                    )
            return ""

        email = ax_value(_AX_TYPES["email"])
        full_name = ax_value(_AX_TYPES["fullname"])
        first_name = ax_value(_AX_TYPES["firstname"])
        last_name = ax_value(_AX_TYPES["lastname"])
        username = ax_value(_AX_TYPES["username"])
        locale = ax_value(_AX_TYPES["language"]).lower()
        user: dict[str, Any] = {}
        if first_name:
            user["first_name"] = first_name
        if last_name:
            user["last_name"] = last_name
        if full_name:
            user["name"] = full_name
        elif first_name or last_name:
            user["name"] = " ".join(part for part in (first_name, last_name) if part)
        elif email:
            user["name"] = email.split("@")[0]
        if email:
            user["email"] = email
        if locale:
            user["locale"] = locale
        if username:
            user["username"] = username
        claimed_id = handler.get_argument("openid.claimed_id", None)
        if claimed_id:
            user["claimed_id"] = claimed_id
        return user


# ---------------------------------------------------------------------------------------------
# OAuth 1.0 / 1.0a
# ---------------------------------------------------------------------------------------------


class OAuthMixin(_AuthMixinBase):
    """OAuth 1.0a (or 1.0 with ``_OAUTH_VERSION = "1.0"``). Subclasses set
    ``_OAUTH_REQUEST_TOKEN_URL``, ``_OAUTH_ACCESS_TOKEN_URL``, ``_OAUTH_AUTHORIZE_URL`` and
    implement ``_oauth_consumer_token()`` and ``_oauth_get_user_future(access_token)``.

    The request token travels between the two legs in the ``_oauth_request_token`` cookie:
    signed when the application has a ``cookie_secret``, else plain as Tornado does.
    """

    _OAUTH_REQUEST_TOKEN_URL: str
    _OAUTH_ACCESS_TOKEN_URL: str
    _OAUTH_AUTHORIZE_URL: str
    _OAUTH_VERSION = "1.0a"
    _OAUTH_NO_CALLBACKS = False
    _REQUEST_TOKEN_COOKIE = "_oauth_request_token"

    @_legacy_callback
    async def authorize_redirect(
        self,
        callback_uri: str | None = None,
        extra_params: dict[str, Any] | None = None,
        http_client: httpclient.AsyncHTTPClient | None = None,
    ) -> None:
        """Get a request token and send the user to the provider to authorize it.
        ``callback_uri="oob"`` (out of band) writes the authorization URL instead."""
        if callback_uri and self._OAUTH_NO_CALLBACKS:
            raise Exception("This service does not support oauth_callback")
        client = http_client or self.get_auth_http_client()
        if self._OAUTH_VERSION == "1.0a":
            url = self._oauth_request_token_url(callback_uri, extra_params)
        else:
            url = self._oauth_request_token_url()
        response = await client.fetch(url)
        self._on_request_token(self._OAUTH_AUTHORIZE_URL, callback_uri, response)

    @_legacy_callback
    async def get_authenticated_user(
        self, http_client: httpclient.AsyncHTTPClient | None = None
    ) -> dict[str, Any]:
        """On the way back from the provider: trade the authorized request token for an
        access token and return the user, with ``access_token`` in it."""
        handler = self._handler()
        request_key = escape.utf8(handler.get_argument("oauth_token"))
        verifier = handler.get_argument("oauth_verifier", None)
        stored = self._read_request_token()
        handler.clear_cookie(self._REQUEST_TOKEN_COOKIE)
        if stored is None:
            raise AuthError("Missing OAuth request token cookie")
        key, secret = stored
        if not hmac.compare_digest(key, request_key):
            raise AuthError("Request token does not match cookie")
        token: dict[str, Any] = {"key": key, "secret": secret}
        if verifier:
            token["verifier"] = verifier
        client = http_client or self.get_auth_http_client()
        response = await client.fetch(self._oauth_access_token_url(token))
        access_token = _oauth_parse_response(response.body)
        user = await self._oauth_get_user_future(access_token)
        if not user:
            raise AuthError("Error getting user")
        user["access_token"] = access_token
        return user

    def _read_request_token(self) -> tuple[bytes, bytes] | None:
        handler = self._handler()
        if handler.settings.get("cookie_secret"):
            value = handler.get_signed_cookie(self._REQUEST_TOKEN_COOKIE)
            text = value.decode("latin-1") if value else None
        else:
            text = handler.get_cookie(self._REQUEST_TOKEN_COOKIE)
        if not text or text.count("|") != 1:
            return None
        try:
            key, secret = (base64.b64decode(part, validate=True) for part in text.split("|"))
        except (binascii.Error, ValueError):
            return None
        return key, secret

    def _oauth_request_token_url(
        self, callback_uri: str | None = None, extra_params: dict[str, Any] | None = None
    ) -> str:
        handler = self._handler()
        consumer_token = self._oauth_consumer_token()
        url = self._OAUTH_REQUEST_TOKEN_URL
        args = _oauth_base_args(consumer_token)
        if self._OAUTH_VERSION == "1.0a":
            if callback_uri == "oob":
                args["oauth_callback"] = "oob"
            elif callback_uri:
                args["oauth_callback"] = urllib.parse.urljoin(
                    handler.request.full_url(), callback_uri
                )
            if extra_params:
                args.update(extra_params)
        args["oauth_signature"] = self._oauth_sign(consumer_token, "GET", url, args)
        return url + "?" + urllib.parse.urlencode(args)

    def _on_request_token(
        self,
        authorize_url: str,
        callback_uri: str | None,
        response: httpclient.HTTPResponse,
    ) -> None:
        handler = self._handler()
        request_token = _oauth_parse_response(response.body)
        value = (
            base64.b64encode(escape.utf8(request_token["key"]))
            + b"|"
            + base64.b64encode(escape.utf8(request_token["secret"]))
        )
        if handler.settings.get("cookie_secret"):
            handler.set_signed_cookie(self._REQUEST_TOKEN_COOKIE, value, expires_days=None)
        else:
            handler.set_cookie(self._REQUEST_TOKEN_COOKIE, value.decode("ascii"))
        args = {"oauth_token": escape.to_unicode(escape.utf8(request_token["key"]))}
        if callback_uri == "oob":
            handler.finish(authorize_url + "?" + urllib.parse.urlencode(args))
            return
        if callback_uri:
            args["oauth_callback"] = urllib.parse.urljoin(handler.request.full_url(), callback_uri)
        handler.redirect(authorize_url + "?" + urllib.parse.urlencode(args))

    def _oauth_access_token_url(self, request_token: dict[str, Any]) -> str:
        consumer_token = self._oauth_consumer_token()
        url = self._OAUTH_ACCESS_TOKEN_URL
        args = _oauth_base_args(consumer_token)
        args["oauth_token"] = escape.to_unicode(escape.utf8(request_token["key"]))
        if "verifier" in request_token:
            args["oauth_verifier"] = request_token["verifier"]
        args["oauth_signature"] = self._oauth_sign(consumer_token, "GET", url, args, request_token)
        return url + "?" + urllib.parse.urlencode(args)

    def _oauth_sign(
        self,
        consumer_token: dict[str, Any],
        method: str,
        url: str,
        parameters: dict[str, Any],
        token: dict[str, Any] | None = None,
    ) -> bytes:
        quote_secrets = self._OAUTH_VERSION == "1.0a"
        return _oauth_hmac_sha1(
            consumer_token, method, url, parameters, token, quote_secrets=quote_secrets
        )

    def _oauth_consumer_token(self) -> dict[str, Any]:
        """``{"key": ..., "secret": ...}`` of this application (subclasses implement)."""
        raise NotImplementedError()

    async def _oauth_get_user_future(self, access_token: dict[str, Any]) -> dict[str, Any]:
        """The user for ``access_token`` (subclasses implement, usually with an API call)."""
        raise NotImplementedError()

    def _oauth_request_parameters(
        self,
        url: str,
        access_token: dict[str, Any],
        parameters: dict[str, Any] | None = None,
        method: str = "GET",
    ) -> dict[str, Any]:
        """The ``oauth_*`` arguments (signature included) for an API request; ``parameters``
        are all the query and form arguments the request will carry."""
        consumer_token = self._oauth_consumer_token()
        base_args = _oauth_base_args(consumer_token)
        base_args["oauth_token"] = escape.to_unicode(escape.utf8(access_token["key"]))
        signed = dict(base_args)
        signed.update(parameters or {})
        signature = self._oauth_sign(consumer_token, method, url, signed, access_token)
        base_args["oauth_signature"] = escape.to_unicode(signature)
        return base_args


# ---------------------------------------------------------------------------------------------
# OAuth 2
# ---------------------------------------------------------------------------------------------


class OAuth2Mixin(_AuthMixinBase):
    """OAuth 2 authorization-code flow. Set ``_OAUTH_AUTHORIZE_URL`` and
    ``_OAUTH_ACCESS_TOKEN_URL``.

    CSRF protection is the application's: put an unguessable ``state`` in ``extra_params``,
    keep it (a signed cookie) and compare it with the ``state`` argument on return.
    """

    _OAUTH_AUTHORIZE_URL: str
    _OAUTH_ACCESS_TOKEN_URL: str

    def authorize_redirect(
        self,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: dict[str, Any] | None = None,
        scope: list[str] | None = None,
        response_type: str = "code",
        callback: Callable[[], Any] | None = None,
    ) -> None:
        """Send the user to the provider's authorization page."""
        if client_secret is not None:
            warnings.warn("client_secret argument is deprecated", DeprecationWarning, stacklevel=2)
        args: dict[str, str] = {"response_type": response_type}
        if redirect_uri is not None:
            args["redirect_uri"] = redirect_uri
        if client_id is not None:
            args["client_id"] = client_id
        if extra_params:
            args.update(extra_params)
        if scope:
            args["scope"] = " ".join(scope)
        self._handler().redirect(url_concat(self._OAUTH_AUTHORIZE_URL, args))
        if callback is not None:
            warnings.warn(
                "the callback argument of authorize_redirect is deprecated",
                DeprecationWarning,
                stacklevel=2,
            )
            callback()

    def _oauth_request_token_url(
        self,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        code: str | None = None,
        extra_params: dict[str, Any] | None = None,
    ) -> str:
        args: dict[str, str] = {}
        for name, value in (
            ("redirect_uri", redirect_uri),
            ("code", code),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ):
            if value is not None:
                args[name] = value
        if extra_params:
            args.update(extra_params)
        return url_concat(self._OAUTH_ACCESS_TOKEN_URL, args)

    @_legacy_callback
    async def oauth2_request(
        self,
        url: str,
        access_token: str | None = None,
        post_args: dict[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """Call an API with the access token (as the ``access_token`` query argument, as
        Tornado does); a POST with ``post_args``. Returns the decoded JSON."""
        return await self._oauth2_fetch(url, access_token, post_args, args)

    async def _oauth2_fetch(
        self,
        url: str,
        access_token: str | None,
        post_args: dict[str, Any] | None,
        args: dict[str, Any],
    ) -> Any:
        all_args: dict[str, Any] = {}
        if access_token:
            all_args["access_token"] = access_token
        all_args.update(args)
        if all_args:
            url = url_concat(url, all_args)
        client = self.get_auth_http_client()
        if post_args is not None:
            response = await client.fetch(
                url, method="POST", body=urllib.parse.urlencode(post_args)
            )
        else:
            response = await client.fetch(url)
        return escape.json_decode(response.body)


class GoogleOAuth2Mixin(OAuth2Mixin):
    """Google sign-in (OAuth 2). Credentials in the ``google_oauth`` setting:
    ``{"key": CLIENT_ID, "secret": CLIENT_SECRET}``."""

    _OAUTH_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
    _OAUTH_ACCESS_TOKEN_URL = "https://www.googleapis.com/oauth2/v4/token"
    _OAUTH_USERINFO_URL = "https://www.googleapis.com/oauth2/v1/userinfo"
    _OAUTH_NO_CALLBACKS = False
    _OAUTH_SETTINGS_KEY = "google_oauth"

    def get_google_oauth_settings(self) -> dict[str, str]:
        """The ``google_oauth`` setting (override to take credentials from elsewhere)."""
        return cast(dict[str, str], self._handler().settings[self._OAUTH_SETTINGS_KEY])

    @_legacy_callback
    async def get_authenticated_user(
        self,
        redirect_uri: str,
        code: str,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> dict[str, Any]:
        """Trade the authorization ``code`` for tokens; returns the token response
        (``access_token``, ``expires_in``, ``id_token``...). Fetch the profile with
        ``oauth2_request(self._OAUTH_USERINFO_URL, access_token=...)``."""
        if client_id is None or client_secret is None:
            settings = self.get_google_oauth_settings()
            client_id = client_id if client_id is not None else settings["key"]
            client_secret = client_secret if client_secret is not None else settings["secret"]
        body = urllib.parse.urlencode(
            {
                "redirect_uri": redirect_uri,
                "code": code,
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "authorization_code",
            }
        )
        response = await self.get_auth_http_client().fetch(
            self._OAUTH_ACCESS_TOKEN_URL,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=body,
        )
        return cast(dict[str, Any], escape.json_decode(response.body))


class FacebookGraphMixin(OAuth2Mixin):
    """Facebook login and the Graph API (OAuth 2)."""

    _OAUTH_ACCESS_TOKEN_URL = "https://graph.facebook.com/oauth/access_token?"
    _OAUTH_AUTHORIZE_URL = "https://www.facebook.com/dialog/oauth?"
    _OAUTH_NO_CALLBACKS = False
    _FACEBOOK_BASE_URL = "https://graph.facebook.com"

    @_legacy_callback
    async def get_authenticated_user(
        self,
        redirect_uri: str,
        client_id: str,
        client_secret: str,
        code: str,
        extra_fields: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Trade ``code`` for an access token and return the user (``id``, ``name``,
        ``first_name``, ``last_name``, ``locale``, ``picture``, ``link`` and any
        ``extra_fields``) with ``access_token`` and ``session_expires``."""
        url = self._oauth_request_token_url(
            redirect_uri=redirect_uri,
            client_id=client_id,
            client_secret=client_secret,
            code=code,
        )
        response = await self.get_auth_http_client().fetch(url)
        session = escape.json_decode(response.body)
        fields = {"id", "name", "first_name", "last_name", "locale", "picture", "link"}
        if extra_fields:
            fields.update(extra_fields)
        access_token = session["access_token"]
        user = await self.facebook_request(
            path="/me",
            access_token=access_token,
            appsecret_proof=hmac.new(
                escape.utf8(client_secret), escape.utf8(access_token), hashlib.sha256
            ).hexdigest(),
            fields=",".join(sorted(fields)),
        )
        if user is None:
            return None
        result = {field: user.get(field) for field in fields}
        # A string, as Facebook's old form-encoded answer had it.
        result.update(
            {"access_token": access_token, "session_expires": str(session.get("expires_in"))}
        )
        return result

    @_legacy_callback
    async def facebook_request(
        self,
        path: str,
        access_token: str | None = None,
        post_args: dict[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """A Graph API call: ``path`` like ``"/me/feed"``; POST with ``post_args``."""
        url = self._FACEBOOK_BASE_URL + path
        return await self._oauth2_fetch(url, access_token, post_args, args)


class TwitterMixin(OAuthMixin):
    """Twitter (X) sign-in and API (OAuth 1.0a). Credentials in the
    ``twitter_consumer_key`` and ``twitter_consumer_secret`` settings."""

    _OAUTH_REQUEST_TOKEN_URL = "https://api.twitter.com/oauth/request_token"
    _OAUTH_ACCESS_TOKEN_URL = "https://api.twitter.com/oauth/access_token"
    _OAUTH_AUTHORIZE_URL = "https://api.twitter.com/oauth/authorize"
    _OAUTH_AUTHENTICATE_URL = "https://api.twitter.com/oauth/authenticate"
    _OAUTH_NO_CALLBACKS = False
    _TWITTER_BASE_URL = "https://api.twitter.com/1.1"

    @_legacy_callback
    async def authenticate_redirect(self, callback_uri: str | None = None) -> None:
        """Like ``authorize_redirect``, but a user who already authorized the application
        is sent straight back."""
        client = self.get_auth_http_client()
        response = await client.fetch(self._oauth_request_token_url(callback_uri=callback_uri))
        self._on_request_token(self._OAUTH_AUTHENTICATE_URL, None, response)

    @_legacy_callback
    async def twitter_request(
        self,
        path: str,
        access_token: dict[str, Any],
        post_args: dict[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """An API call, signed with ``access_token``: ``path`` like ``"/statuses/update"``
        (``.json`` and the base URL are added), or a full URL. Returns the decoded JSON."""
        if path.startswith(("http:", "https:")):
            url = path
        else:
            url = self._TWITTER_BASE_URL + path + ".json"
        if access_token:
            signed_args: dict[str, Any] = dict(args)
            signed_args.update(post_args or {})
            method = "POST" if post_args is not None else "GET"
            args.update(self._oauth_request_parameters(url, access_token, signed_args, method))
        if args:
            url += "?" + urllib.parse.urlencode(args)
        client = self.get_auth_http_client()
        if post_args is not None:
            response = await client.fetch(
                url, method="POST", body=urllib.parse.urlencode(post_args)
            )
        else:
            response = await client.fetch(url)
        return escape.json_decode(response.body)

    def _oauth_consumer_token(self) -> dict[str, Any]:
        handler = self._handler()
        handler.require_setting("twitter_consumer_key", "Twitter OAuth")
        handler.require_setting("twitter_consumer_secret", "Twitter OAuth")
        return {
            "key": handler.settings["twitter_consumer_key"],
            "secret": handler.settings["twitter_consumer_secret"],
        }

    async def _oauth_get_user_future(self, access_token: dict[str, Any]) -> dict[str, Any]:
        user = await self.twitter_request("/account/verify_credentials", access_token=access_token)
        if user:
            user["username"] = user["screen_name"]
        return cast(dict[str, Any], user)


# ---------------------------------------------------------------------------------------------
# OAuth 1 signatures (RFC 5849, HMAC-SHA1)
# ---------------------------------------------------------------------------------------------


def _oauth_base_args(consumer_token: dict[str, Any]) -> dict[str, Any]:
    return {
        "oauth_consumer_key": escape.to_unicode(escape.utf8(consumer_token["key"])),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time())),
        "oauth_nonce": uuid.uuid4().hex,
        "oauth_version": "1.0",
    }


def _base_string(method: str, url: str, parameters: dict[str, Any]) -> str:
    parts = urllib.parse.urlsplit(url)
    scheme, netloc, path = parts.scheme.lower(), parts.netloc.lower(), parts.path
    # RFC 5849 3.4.1.2: the default port is left out of the base URL.
    if (scheme, netloc.rpartition(":")[2]) in (("http", "80"), ("https", "443")):
        netloc = netloc.rpartition(":")[0]
    base_url = f"{scheme}://{netloc}{path}"
    pairs = sorted((_oauth_escape(k), _oauth_escape(v)) for k, v in parameters.items())
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join(_oauth_escape(part) for part in (method.upper(), base_url, normalized))


def _hmac_sha1(key: bytes, message: str) -> bytes:
    digest = hmac.new(key, escape.utf8(message), hashlib.sha1).digest()
    return binascii.b2a_base64(digest)[:-1]


def _oauth_hmac_sha1(
    consumer_token: dict[str, Any],
    method: str,
    url: str,
    parameters: dict[str, Any] | None = None,
    token: dict[str, Any] | None = None,
    *,
    quote_secrets: bool = True,
) -> bytes:
    """OAuth HMAC-SHA1 signature (RFC 5849 3.4.2). OAuth 1.0a percent-encodes the secrets in
    the key; OAuth 1.0 (``quote_secrets=False``) used them as they are."""
    base = _base_string(method, url, parameters or {})

    def secret(value: str | bytes) -> bytes:
        return escape.utf8(_oauth_escape(value) if quote_secrets else value)

    key = secret(consumer_token["secret"]) + b"&"
    if token:
        key += secret(token["secret"])
    return _hmac_sha1(key, base)


_oauth10a_signature = functools.partial(_oauth_hmac_sha1, quote_secrets=True)
_oauth_signature = functools.partial(_oauth_hmac_sha1, quote_secrets=False)


def _oauth_escape(value: str | bytes) -> str:
    # RFC 5849 3.6: only unreserved characters stay as they are.
    return urllib.parse.quote(escape.utf8(value), safe="~")


def _oauth_parse_response(body: bytes) -> dict[str, Any]:
    fields = urllib.parse.parse_qs(escape.to_unicode(body), keep_blank_values=False)
    try:
        token: dict[str, Any] = {
            "key": fields["oauth_token"][0],
            "secret": fields["oauth_token_secret"][0],
        }
    except KeyError:
        raise AuthError(f"Invalid OAuth token response: {body!r}") from None
    for name, values in fields.items():
        if name not in ("oauth_token", "oauth_token_secret"):
            token[name] = values[0]
    return token
