"""Fake identity providers written with asyncweb, for the asyncweb.auth tests.

They check what a real provider checks: OAuth 1.0a signatures (computed here independently,
per RFC 5849), one-time request tokens and verifiers, OAuth 2 client credentials, registered
redirect URIs bound to their codes, Facebook's ``appsecret_proof``, and OpenID assertions
signed by the provider and checked with ``check_authentication``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from typing import Any

from asyncweb.web import Application, RequestHandler

OAUTH1_CONSUMER = {"key": "consumer-key", "secret": "consumer s&cret~"}
OAUTH2_CLIENT = {"key": "client-id", "secret": "client-secret"}
FACEBOOK_CLIENT = {"key": "fb-app", "secret": "fb-secret"}
AX_NS = "http://openid.net/srv/ax/1.0"


def percent_encode(value: str) -> str:
    # RFC 5849 3.6: unreserved characters as they are, everything else %XX of UTF-8.
    return "".join(
        ch
        if ch.isascii() and (ch.isalnum() or ch in "-._~")
        else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in value
    )


def rfc5849_signature(
    method: str, url: str, params: list[tuple[str, str]], consumer_secret: str, token_secret: str
) -> str:
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    base = "&".join(percent_encode(x) for x in (method.upper(), url, normalized))
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class ProviderState:
    def __init__(self) -> None:
        self.request_tokens: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, str] = {}
        self.nonces: set[str] = set()
        self.codes: dict[str, dict[str, str]] = {}
        self.registered_redirects: set[str] = set()
        self.openid_key = secrets.token_bytes(16)
        self.openid_nonces: set[str] = set()
        self.log: list[str] = []


class ProviderHandler(RequestHandler):
    def initialize(self, state: ProviderState) -> None:  # type: ignore[override]
        self.state = state

    def fail(self, status: int, message: str) -> None:
        self.state.log.append(f"{self.request.path}: {message}")
        self.set_status(status)
        self.finish({"error": message})

    def all_params(self) -> list[tuple[str, str]]:
        pairs = urllib.parse.parse_qsl(self.request.query, keep_blank_values=True)
        content_type = self.request.headers.get("Content-Type", "")
        if self.request.body and content_type.startswith("application/x-www-form-urlencoded"):
            pairs += urllib.parse.parse_qsl(self.request.body.decode(), keep_blank_values=True)
        return pairs

    def check_oauth1(self, token_secret: str) -> dict[str, str] | None:
        """Verify the request's OAuth 1.0a signature; the oauth_* arguments, or None."""
        params = self.all_params()
        oauth = dict(p for p in params if p[0].startswith("oauth_"))
        signature = oauth.get("oauth_signature")
        if oauth.get("oauth_consumer_key") != OAUTH1_CONSUMER["key"] or not signature:
            self.fail(401, "unknown consumer")
            return None
        if abs(int(oauth.get("oauth_timestamp", "0")) - time.time()) > 300:
            self.fail(401, "stale timestamp")
            return None
        nonce = oauth.get("oauth_nonce", "")
        if not nonce or nonce in self.state.nonces:
            self.fail(401, "replayed nonce")
            return None
        url = f"{self.request.protocol}://{self.request.host}{self.request.path}"
        unsigned = [p for p in params if p[0] != "oauth_signature"]
        expected = rfc5849_signature(
            self.request.method or "GET",
            url,
            unsigned,
            OAUTH1_CONSUMER["secret"],
            token_secret,
        )
        if not hmac.compare_digest(expected, signature):
            self.fail(401, "bad signature")
            return None
        self.state.nonces.add(nonce)
        return oauth


# -- OAuth 1.0a (Twitter-like) ----------------------------------------------------------------


class RequestToken(ProviderHandler):
    def get(self) -> None:
        oauth = self.check_oauth1(token_secret="")
        if oauth is None:
            return
        if "oauth_callback" not in oauth:
            self.fail(400, "OAuth 1.0a needs oauth_callback")
            return
        key, secret = "rk-" + secrets.token_hex(4), "rs/" + secrets.token_hex(4)
        self.state.request_tokens[key] = {"secret": secret, "callback": oauth["oauth_callback"]}
        self.write(
            urllib.parse.urlencode(
                {
                    "oauth_token": key,
                    "oauth_token_secret": secret,
                    "oauth_callback_confirmed": "true",
                }
            )
        )


class Authorize(ProviderHandler):
    """The user's visit to the provider: approval is automatic here."""

    def get(self) -> None:
        key = self.get_argument("oauth_token")
        token = self.state.request_tokens.get(key)
        if token is None:
            self.fail(400, "unknown request token")
            return
        token["verifier"] = secrets.token_hex(4)
        callback = token["callback"]
        args = {"oauth_token": key, "oauth_verifier": token["verifier"]}
        self.redirect(callback + ("&" if "?" in callback else "?") + urllib.parse.urlencode(args))


class AccessToken(ProviderHandler):
    def get(self) -> None:
        key = self.get_argument("oauth_token", "")
        token = self.state.request_tokens.pop(key, None)  # one use only
        if token is None:
            self.fail(401, "unknown request token")
            return
        oauth = self.check_oauth1(token_secret=token["secret"])
        if oauth is None:
            return
        if oauth.get("oauth_verifier") != token.get("verifier"):
            self.fail(401, "bad verifier")
            return
        access_key, access_secret = "ak-" + secrets.token_hex(4), "as+" + secrets.token_hex(4)
        self.state.access_tokens[access_key] = access_secret
        self.write(
            urllib.parse.urlencode(
                {
                    "oauth_token": access_key,
                    "oauth_token_secret": access_secret,
                    "user_id": "42",
                    "screen_name": "ann",
                }
            )
        )


class TwitterApi(ProviderHandler):
    def check(self) -> bool:
        secret = self.state.access_tokens.get(self.get_argument("oauth_token", ""))
        if secret is None:
            self.fail(401, "unknown access token")
            return False
        return self.check_oauth1(token_secret=secret) is not None

    def get(self, method: str) -> None:
        if not self.check():
            return
        if method == "account/verify_credentials":
            self.write({"id": 42, "screen_name": "ann", "name": "Ann Example"})
        else:
            self.write({"method": method, "q": self.get_argument("q", None)})

    def post(self, method: str) -> None:
        if not self.check():
            return
        self.write({"method": method, "status": self.get_body_argument("status")})


# -- OAuth 2 (Google-like) ----------------------------------------------------------------------


class OAuth2Authorize(ProviderHandler):
    def get(self) -> None:
        redirect_uri = self.get_argument("redirect_uri", "")
        if self.get_argument("client_id", "") not in (OAUTH2_CLIENT["key"], FACEBOOK_CLIENT["key"]):
            self.fail(400, "unknown client")
            return
        if redirect_uri not in self.state.registered_redirects:
            self.fail(400, "redirect_uri not registered")
            return
        if self.get_argument("response_type", "") != "code":
            self.fail(400, "unsupported response_type")
            return
        code = secrets.token_hex(8)
        self.state.codes[code] = {
            "client_id": self.get_argument("client_id"),
            "redirect_uri": redirect_uri,
            "scope": self.get_argument("scope", ""),
        }
        args = {"code": code}
        state = self.get_argument("state", None)
        if state is not None:
            args["state"] = state
        self.redirect(redirect_uri + "?" + urllib.parse.urlencode(args))


def _redeem(handler: ProviderHandler, args: dict[str, str], client: dict[str, str]) -> bool:
    grant = handler.state.codes.pop(args.get("code", ""), None)  # one use only
    if args.get("client_id") != client["key"] or args.get("client_secret") != client["secret"]:
        handler.fail(401, "invalid_client")
        return False
    if grant is None or grant["client_id"] != client["key"]:
        handler.fail(400, "invalid_grant")
        return False
    if args.get("redirect_uri") != grant["redirect_uri"]:
        handler.fail(400, "redirect_uri mismatch")
        return False
    return True


class GoogleToken(ProviderHandler):
    def post(self) -> None:
        args = dict(urllib.parse.parse_qsl(self.request.body.decode()))
        if args.get("grant_type") != "authorization_code":
            self.fail(400, "unsupported_grant_type")
            return
        if not _redeem(self, args, OAUTH2_CLIENT):
            return
        self.state.access_tokens["g-access"] = ""
        self.write({"access_token": "g-access", "expires_in": 3599, "token_type": "Bearer"})


class GoogleUserinfo(ProviderHandler):
    def get(self) -> None:
        if self.get_argument("access_token", "") != "g-access":
            self.fail(401, "bad token")
            return
        self.write({"id": "g1", "email": "ann@example.com", "name": "Ann Example"})


# -- Facebook Graph --------------------------------------------------------------------------


class FacebookToken(ProviderHandler):
    def get(self) -> None:
        args = {k: self.get_argument(k) for k in self.request.query_arguments}
        if not _redeem(self, args, FACEBOOK_CLIENT):
            return
        self.write({"access_token": "fb-access", "token_type": "bearer", "expires_in": 5183944})


class FacebookGraph(ProviderHandler):
    def check(self) -> bool:
        token = self.get_argument("access_token", "")
        if token != "fb-access":
            self.fail(401, "bad token")
            return False
        proof = self.get_argument("appsecret_proof", None)
        if proof is not None:
            expected = hmac.new(
                FACEBOOK_CLIENT["secret"].encode(), token.encode(), hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(proof, expected):
                self.fail(401, "bad appsecret_proof")
                return False
        return True

    def get(self, path: str) -> None:
        if not self.check():
            return
        if path == "me":
            profile = {
                "id": "fb1",
                "name": "Ann Example",
                "first_name": "Ann",
                "last_name": "Example",
                "locale": "en_GB",
                "link": "https://fb.example/ann",
                "picture": {"data": {"url": "https://fb.example/ann.png"}},
                "email": "ann@example.com",
            }
            fields = self.get_argument("fields", "id,name").split(",")
            self.write({f: profile[f] for f in fields if f in profile})
        else:
            self.write({"path": path})

    def post(self, path: str) -> None:
        if not self.check():
            return
        self.write({"id": "post-1", "path": path, "message": self.get_body_argument("message")})


# -- OpenID 2.0 ------------------------------------------------------------------------------


def _openid_sig(key: bytes, fields: dict[str, str], signed: list[str]) -> str:
    text = "".join(f"{name}:{fields['openid.' + name]}\n" for name in signed)
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()


class OpenIdEndpoint(ProviderHandler):
    def get(self) -> None:
        args = {k: self.get_argument(k) for k in self.request.query_arguments}
        if args.get("openid.mode") != "checkid_setup" or "openid.return_to" not in args:
            self.fail(400, "bad checkid request")
            return
        return_to = args["openid.return_to"]
        if not return_to.startswith(args.get("openid.realm", "\0")):
            self.fail(400, "return_to outside realm")
            return
        wanted = args.get("openid.ax.required", "").split(",")
        values = {
            "email": "ann@example.com",
            "firstname": "Ann",
            "lastname": "Example",
            "language": "EN-gb",
            "username": "ann",
        }
        nonce = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + secrets.token_hex(4)
        response = {
            "openid.ns": "http://specs.openid.net/auth/2.0",
            "openid.mode": "id_res",
            "openid.op_endpoint": f"http://{self.request.host}/openid",
            "openid.claimed_id": "https://openid.example/ann",
            "openid.identity": "https://openid.example/ann",
            "openid.return_to": return_to,
            "openid.response_nonce": nonce,
            "openid.assoc_handle": "stateless",
            "openid.ns.ext1": AX_NS,  # an alias other than "ax" on purpose
            "openid.ext1.mode": "fetch_response",
        }
        for name in wanted:
            if name in values and f"openid.ax.type.{name}" in args:
                response[f"openid.ext1.type.{name}"] = args[f"openid.ax.type.{name}"]
                response[f"openid.ext1.value.{name}"] = values[name]
        signed = [k[len("openid.") :] for k in response if k != "openid.ns"]
        response["openid.signed"] = ",".join(signed)
        response["openid.sig"] = _openid_sig(self.state.openid_key, response, signed)
        self.redirect(return_to + "?" + urllib.parse.urlencode(response))

    def post(self) -> None:
        args = {k: self.get_argument(k) for k in self.request.arguments}
        valid = False
        if args.get("openid.mode") == "check_authentication":
            signed = args.get("openid.signed", "").split(",")
            # The fields as the provider sent them: only the mode was changed by the consumer.
            fields = dict(args, **{"openid.mode": "id_res"})
            try:
                expected = _openid_sig(self.state.openid_key, fields, signed)
            except KeyError:
                expected = ""
            nonce = args.get("openid.response_nonce", "")
            valid = (
                hmac.compare_digest(expected, args.get("openid.sig", ""))
                and nonce not in self.state.openid_nonces
                and "return_to" in signed
            )
            if valid:
                self.state.openid_nonces.add(nonce)
        self.set_header("Content-Type", "text/plain")
        self.write(
            f"ns:http://specs.openid.net/auth/2.0\nis_valid:{'true' if valid else 'false'}\n"
        )


def make_provider(state: ProviderState) -> Application:
    kwargs = {"state": state}
    return Application(
        [
            (r"/oauth/request_token", RequestToken, kwargs),
            (r"/oauth/authorize", Authorize, kwargs),
            (r"/oauth/authenticate", Authorize, kwargs),
            (r"/oauth/access_token", AccessToken, kwargs),
            (r"/1\.1/(.+)\.json", TwitterApi, kwargs),
            (r"/o/oauth2/auth", OAuth2Authorize, kwargs),
            (r"/token", GoogleToken, kwargs),
            (r"/userinfo", GoogleUserinfo, kwargs),
            (r"/dialog/oauth", OAuth2Authorize, kwargs),
            (r"/graph/oauth/access_token", FacebookToken, kwargs),
            (r"/graph/(.+)", FacebookGraph, kwargs),
            (r"/openid", OpenIdEndpoint, kwargs),
        ]
    )


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
