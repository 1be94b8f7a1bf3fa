"""asyncweb.auth end to end: an asyncweb app using the mixins logs in against fake providers
(written with asyncweb, tests/interop_apps/fake_providers.py) over loopback; a small cookie-
keeping client plays the browser and follows the redirects."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import secrets
import urllib.parse
import warnings
from typing import Any

import pytest

from asyncweb import auth
from asyncweb.auth import (
    AuthError,
    FacebookGraphMixin,
    GoogleOAuth2Mixin,
    OpenIdMixin,
    TwitterMixin,
    _oauth10a_signature,
    _oauth_signature,
)
from asyncweb.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from asyncweb.web import Application, RequestHandler
from tests.interop_apps import fake_providers
from tests.interop_apps.fake_providers import (
    FACEBOOK_CLIENT,
    OAUTH1_CONSUMER,
    OAUTH2_CLIENT,
    ProviderState,
    rfc5849_signature,
)
from tests.support.servers import Serve

# -- the signature itself ------------------------------------------------------------------------


def test_oauth1_signature_matches_the_spec_example() -> None:
    # The worked example of OAuth Core 1.0 (Appendix A.5) / RFC 5849's predecessor.
    params = {
        "file": "vacation.jpg",
        "size": "original",
        "oauth_consumer_key": "dpf43f3p2l4k3l03",
        "oauth_token": "nnch734d00sl2jdk",
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": "1191242096",
        "oauth_nonce": "kllo9940pd9333jh",
        "oauth_version": "1.0",
    }
    consumer = {"key": "dpf43f3p2l4k3l03", "secret": "kd94hf93k423kf44"}
    token = {"key": "nnch734d00sl2jdk", "secret": "pfkkdhi9sl3r4s00"}
    url = "http://photos.example.net/photos"
    expected = b"tR3+Ty81lMeYAr/Fid0kMTYa/WM="
    assert _oauth10a_signature(consumer, "GET", url, params, token) == expected
    assert _oauth_signature(consumer, "GET", url, params, token) == expected
    # ... and the independent implementation the fake provider uses agrees.
    assert (
        rfc5849_signature("GET", url, list(params.items()), consumer["secret"], token["secret"])
        == expected.decode()
    )
    # Secrets with reserved characters: 1.0a percent-encodes them in the key, 1.0 does not.
    odd = {"key": "k", "secret": "a&b"}
    assert _oauth10a_signature(odd, "GET", url, params) != _oauth_signature(odd, "GET", url, params)


# -- the app under test ----------------------------------------------------------------------


class ProviderURLs:
    """Point a mixin's endpoint attributes at the fake provider."""

    provider: str

    def initialize(self, provider: str) -> None:
        self.provider = provider
        self._OAUTH_REQUEST_TOKEN_URL = provider + "/oauth/request_token"
        self._OAUTH_ACCESS_TOKEN_URL = provider + "/oauth/access_token"
        self._OAUTH_AUTHORIZE_URL = provider + "/oauth/authorize"
        self._OAUTH_AUTHENTICATE_URL = provider + "/oauth/authenticate"
        self._TWITTER_BASE_URL = provider + "/1.1"
        self._OPENID_ENDPOINT = provider + "/openid"


class TwitterLogin(ProviderURLs, RequestHandler, TwitterMixin):
    async def get(self) -> None:
        if self.get_argument("oauth_token", None):
            try:
                user = await self.get_authenticated_user()
            except (AuthError, HTTPClientError) as e:
                self.set_status(401)
                self.finish({"error": str(e)})
                return
            token = user["access_token"]
            timeline = await self.twitter_request(
                "/statuses/home_timeline", access_token=token, q="a b&c"
            )
            posted = await self.twitter_request(
                "/statuses/update", post_args={"status": "héllo + world"}, access_token=token
            )
            self.finish({"user": user, "timeline": timeline, "posted": posted})
            return
        if self.get_argument("authenticate", None):
            await self.authenticate_redirect(callback_uri="/twitter")
        else:
            await self.authorize_redirect(callback_uri="/twitter")


class TwitterWrongSecret(TwitterLogin):
    def _oauth_consumer_token(self) -> dict[str, Any]:
        return {"key": OAUTH1_CONSUMER["key"], "secret": "not the secret"}


class TwitterLegacy(ProviderURLs, RequestHandler, TwitterMixin):
    """The Tornado 3-5 style: callbacks instead of await."""

    async def get(self) -> None:
        if self.get_argument("oauth_token", None):
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.get_authenticated_user(callback=done.set_result)
            user = await done
            self.finish({"user": user})
            return
        done = asyncio.get_running_loop().create_future()
        self.authorize_redirect(callback_uri="/legacy", callback=done.set_result)
        await done


class GoogleLogin(RequestHandler, GoogleOAuth2Mixin):
    def initialize(self, provider: str, app_base: list[str]) -> None:
        self._OAUTH_AUTHORIZE_URL = provider + "/o/oauth2/auth"
        self._OAUTH_ACCESS_TOKEN_URL = provider + "/token"
        self._OAUTH_USERINFO_URL = provider + "/userinfo"
        self.redirect_uri = app_base[0] + "/google"

    async def get(self) -> None:
        if self.get_argument("code", None):
            expected = self.get_signed_cookie("oauth_state")
            self.clear_cookie("oauth_state")
            state = self.get_argument("state", "")
            if expected is None or not secrets.compare_digest(expected.decode(), state):
                self.set_status(403)
                self.finish({"error": "state mismatch"})
                return
            redirect_uri = self.get_argument("use_redirect", self.redirect_uri)
            try:
                access = await self.get_authenticated_user(
                    redirect_uri=redirect_uri, code=self.get_argument("code")
                )
            except HTTPClientError as e:
                assert e.response is not None
                self.set_status(401)
                self.finish({"error": json.loads(e.response.body)["error"]})
                return
            user = await self.oauth2_request(
                self._OAUTH_USERINFO_URL, access_token=access["access_token"]
            )
            self.finish({"user": user, "access": access})
            return
        state = secrets.token_urlsafe(16)
        self.set_signed_cookie("oauth_state", state)
        self.authorize_redirect(
            redirect_uri=self.get_argument("redirect_uri", self.redirect_uri),
            client_id=self.settings["google_oauth"]["key"],
            scope=["profile", "email"],
            extra_params={"state": state, "approval_prompt": "auto"},
        )


class FacebookLogin(RequestHandler, FacebookGraphMixin):
    def initialize(self, provider: str, app_base: list[str]) -> None:
        self._OAUTH_AUTHORIZE_URL = provider + "/dialog/oauth"
        self._OAUTH_ACCESS_TOKEN_URL = provider + "/graph/oauth/access_token"
        self._FACEBOOK_BASE_URL = provider + "/graph"
        self.redirect_uri = app_base[0] + "/facebook"

    async def get(self) -> None:
        if self.get_argument("code", None):
            user = await self.get_authenticated_user(
                redirect_uri=self.redirect_uri,
                client_id=FACEBOOK_CLIENT["key"],
                client_secret=FACEBOOK_CLIENT["secret"],
                code=self.get_argument("code"),
                extra_fields={"email"},  # type: ignore[arg-type]
            )
            assert user is not None
            post = await self.facebook_request(
                "/me/feed", post_args={"message": "hi"}, access_token=user["access_token"]
            )
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.facebook_request(
                "/me", access_token=user["access_token"], callback=done.set_result
            )
            legacy = await done
            self.finish({"user": user, "post": post, "legacy": legacy})
            return
        self.authorize_redirect(
            redirect_uri=self.redirect_uri,
            client_id=FACEBOOK_CLIENT["key"],
            extra_params={"scope": "email"},
        )


class OpenIdLogin(ProviderURLs, RequestHandler, OpenIdMixin):
    async def get(self) -> None:
        if self.get_argument("openid.mode", None):
            try:
                user = await self.get_authenticated_user()
            except AuthError as e:
                self.set_status(401)
                self.finish({"error": str(e)[:40]})
                return
            self.finish({"user": user})
            return
        self.authenticate_redirect(ax_attrs=["name", "email", "language", "username"])


# -- a browser: follows redirects by hand, keeps cookies per host ------------------------------


def _expired(set_cookie: str) -> bool:
    for attribute in set_cookie.split(";")[1:]:
        name, _, value = attribute.strip().partition("=")
        if name.lower() == "max-age" and int(value) <= 0:
            return True
        if name.lower() == "expires":
            when = email.utils.parsedate_to_datetime(value)
            if when < datetime.datetime.now(datetime.timezone.utc):
                return True
    return False


class Browser:
    def __init__(self) -> None:
        self.client = AsyncHTTPClient(force_instance=True)
        self.cookies: dict[str, dict[str, str]] = {}
        self.visited: list[str] = []

    async def get(self, url: str, max_hops: int = 10) -> HTTPResponse:
        for hop in range(max_hops):
            self.visited.append(url)
            netloc = urllib.parse.urlsplit(url).netloc
            jar = self.cookies.setdefault(netloc, {})
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}
            response = await self.client.fetch(
                url, headers=headers, follow_redirects=False, raise_error=False
            )
            for line in response.headers.get_list("Set-Cookie"):
                name, _, rest = line.partition("=")
                value = rest.split(";", 1)[0]
                if _expired(line):
                    jar.pop(name, None)
                else:
                    jar[name] = value
            redirect = response.code in (301, 302, 303, 307) and "Location" in response.headers
            if redirect and hop < max_hops - 1:
                url = urllib.parse.urljoin(url, response.headers["Location"])
                continue
            return response
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.client.close()


@pytest.fixture
async def env(serve: Serve) -> Any:
    state = ProviderState()
    provider = await serve(fake_providers.make_provider(state))
    app_base: list[str] = []
    kwargs = {"provider": provider}
    app = Application(
        [
            (r"/twitter", TwitterLogin, kwargs),
            (r"/twitter-wrong-secret", TwitterWrongSecret, kwargs),
            (r"/legacy", TwitterLegacy, kwargs),
            (r"/openid", OpenIdLogin, kwargs),
            (r"/google", GoogleLogin, {"provider": provider, "app_base": app_base}),
            (r"/facebook", FacebookLogin, {"provider": provider, "app_base": app_base}),
        ],
        twitter_consumer_key=OAUTH1_CONSUMER["key"],
        twitter_consumer_secret=OAUTH1_CONSUMER["secret"],
        google_oauth={"key": OAUTH2_CLIENT["key"], "secret": OAUTH2_CLIENT["secret"]},
        cookie_secret="test-cookie-secret",
    )
    base = await serve(app)
    app_base.append(base)
    state.registered_redirects.update({base + "/google", base + "/facebook"})
    browser = Browser()
    yield base, provider, state, browser
    browser.close()


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


# -- OAuth 1.0a ------------------------------------------------------------------------------------


async def test_twitter_oauth10a_dance(env: Any) -> None:
    base, provider, state, browser = env
    response = await browser.get(base + "/twitter")
    assert response.code == 200, (response.body, state.log)
    data = body(response)
    user = data["user"]
    assert user["screen_name"] == user["username"] == "ann"
    assert user["access_token"]["key"].startswith("ak-")
    assert user["access_token"]["screen_name"] == "ann"  # extra fields of the token answer
    assert data["timeline"] == {"method": "statuses/home_timeline", "q": "a b&c"}
    assert data["posted"] == {"method": "statuses/update", "status": "héllo + world"}
    # The browser went app -> provider authorize -> app callback.
    assert browser.visited[1].startswith(provider + "/oauth/authorize?oauth_token=rk-")
    assert "oauth_verifier=" in browser.visited[2]
    # The request-token cookie was cleared on the way back.
    assert "_oauth_request_token" not in browser.cookies[base.split("//")[1]]
    assert state.log == []

    response = await browser.get(base + "/twitter?authenticate=1")
    assert response.code == 200 and body(response)["user"]["username"] == "ann"
    assert any(url.startswith(provider + "/oauth/authenticate?") for url in browser.visited)


async def test_oauth10a_refusals(env: Any) -> None:
    base, _provider, state, browser = env
    # A callback whose token does not match the cookie the app set is refused by the app.
    await browser.get(base + "/twitter", max_hops=1)  # stops at the provider
    response = await browser.get(base + "/twitter?oauth_token=forged&oauth_verifier=x")
    assert response.code == 401 and "does not match" in body(response)["error"]
    # Without the cookie at all.
    fresh = Browser()
    try:
        response = await fresh.get(base + "/twitter?oauth_token=x&oauth_verifier=y")
        assert response.code == 401 and "Missing OAuth request token" in body(response)["error"]
    finally:
        fresh.close()
    # A wrong consumer secret: the provider rejects the signature.
    response = await browser.get(base + "/twitter-wrong-secret")
    assert response.code == 500
    assert state.log == ["/oauth/request_token: bad signature"]


async def test_legacy_callback_forms(env: Any) -> None:
    base, _, state, browser = env
    auth._warned_callback = False
    with pytest.warns(DeprecationWarning, match="callback arguments"):
        response = await browser.get(base + "/legacy")
    assert response.code == 200, state.log
    assert body(response)["user"]["username"] == "ann"
    # Failure reaches the callback as None, as in Tornado's callback era.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        response = await browser.get(base + "/legacy?oauth_token=nope")
    assert body(response) == {"user": None}


# -- OAuth 2 -------------------------------------------------------------------------------------


async def test_google_oauth2_with_state_and_redirect_uri(env: Any) -> None:
    base, _provider, state, browser = env
    response = await browser.get(base + "/google")
    assert response.code == 200, (response.body, state.log)
    data = body(response)
    assert data["user"] == {"id": "g1", "email": "ann@example.com", "name": "Ann Example"}
    assert data["access"]["access_token"] == "g-access"
    authorize = urllib.parse.urlsplit(browser.visited[1])
    query = dict(urllib.parse.parse_qsl(authorize.query))
    assert authorize.path == "/o/oauth2/auth"
    assert query["client_id"] == OAUTH2_CLIENT["key"]
    assert query["scope"] == "profile email"
    assert query["redirect_uri"] == base + "/google"
    assert query["response_type"] == "code" and query["state"]
    # The state came back unchanged and matched the signed cookie.
    assert f"state={urllib.parse.quote(query['state'])}" in browser.visited[2]


async def test_oauth2_refusals(env: Any) -> None:
    base, provider, _state, browser = env
    # A forged state (an attacker's login link) is refused by the app.
    await browser.get(base + "/google", max_hops=1)
    response = await browser.get(base + "/google?code=stolen&state=forged")
    assert response.code == 403 and body(response)["error"] == "state mismatch"
    # An unregistered redirect_uri never gets a code.
    response = await browser.get(base + "/google?redirect_uri=http://evil.example/cb")
    assert response.code == 400 and body(response)["error"] == "redirect_uri not registered"
    # A code redeemed with another redirect_uri than it was issued for is rejected.
    first = await browser.get(base + "/google", max_hops=2)  # stop at the callback redirect
    callback = urllib.parse.urljoin(provider, first.headers["Location"])
    other = urllib.parse.quote(base + "/facebook")
    response = await browser.get(callback + "&use_redirect=" + other)
    assert response.code == 401 and body(response)["error"] == "redirect_uri mismatch"


async def test_facebook_graph(env: Any) -> None:
    base, _provider, state, browser = env
    response = await browser.get(base + "/facebook")
    assert response.code == 200, (response.body, state.log)
    data = body(response)
    user = data["user"]
    assert (
        user["id"] == "fb1" and user["first_name"] == "Ann" and user["email"] == "ann@example.com"
    )
    assert user["access_token"] == "fb-access"
    assert user["session_expires"] == "5183944"
    assert data["post"] == {"id": "post-1", "path": "me/feed", "message": "hi"}
    assert data["legacy"] == {"id": "fb1", "name": "Ann Example"}
    assert state.log == []  # appsecret_proof and everything else checked out


# -- OpenID ----------------------------------------------------------------------------------------


async def test_openid(env: Any) -> None:
    base, provider, state, browser = env
    response = await browser.get(base + "/openid")
    assert response.code == 200, (response.body, state.log)
    assert body(response)["user"] == {
        "first_name": "Ann",
        "last_name": "Example",
        "name": "Ann Example",
        "email": "ann@example.com",
        "locale": "en-gb",
        "username": "ann",
        "claimed_id": "https://openid.example/ann",
    }
    checkid = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(browser.visited[1]).query))
    assert checkid["openid.return_to"] == base + "/openid"
    assert checkid["openid.realm"] == base + "/"
    assert checkid["openid.ax.type.email"] == "http://axschema.org/contact/email"

    # A tampered assertion (or a replayed one) fails check_authentication.
    first = await browser.get(base + "/openid", max_hops=2)
    assertion = urllib.parse.urljoin(provider, first.headers["Location"])
    tampered = assertion.replace("ann%40example.com", "mallory%40example.com")
    assert tampered != assertion
    response = await browser.get(tampered)
    assert response.code == 401 and "Invalid OpenID response" in body(response)["error"]
    assert (await browser.get(assertion)).code == 200
    assert (await browser.get(assertion)).code == 401  # the nonce was used
