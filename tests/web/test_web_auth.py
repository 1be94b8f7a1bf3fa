"""asyncweb.web: signed values, signed cookies, XSRF protection and logins, end to end over a
real server with urllib."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse

import pytest

from asyncweb.web import (
    Application,
    RequestHandler,
    authenticated,
    create_signed_value,
    decode_signed_value,
    get_signature_key_version,
)
from tests.support.servers import Fetch, Response, Serve

SECRET = "test-secret-0123456789"

# -- module-level signing ------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_signed_value_round_trip_and_tampering(version: int) -> None:
    signed = create_signed_value(SECRET, "user", "alice|admin", version=version)
    assert decode_signed_value(SECRET, "user", signed) == b"alice|admin"
    assert decode_signed_value(SECRET, "user", signed.decode()) == b"alice|admin"
    assert decode_signed_value("other-secret", "user", signed) is None
    if version == 2:  # version 1 does not sign the name
        assert decode_signed_value(SECRET, "other", signed) is None
    # Flip each byte in turn: no single change survives verification.
    for i in range(len(signed)):
        tampered = bytearray(signed)
        tampered[i] ^= 0x01
        assert decode_signed_value(SECRET, "user", bytes(tampered)) in (None, b"alice|admin")
        assert decode_signed_value(SECRET, "user", bytes(tampered)) != b"alice|admin" or (
            bytes(tampered) == signed
        )
    assert decode_signed_value(SECRET, "user", None) is None
    assert decode_signed_value(SECRET, "user", "") is None
    assert decode_signed_value(SECRET, "user", "garbage|||") is None


@pytest.mark.parametrize("version", [1, 2])
def test_signed_value_expiry(version: int) -> None:
    now = time.time()
    old = create_signed_value(SECRET, "n", "v", version=version, clock=lambda: now - 40 * 86400)
    assert decode_signed_value(SECRET, "n", old) is None  # default max_age_days=31
    assert decode_signed_value(SECRET, "n", old, max_age_days=41) == b"v"
    recent = create_signed_value(SECRET, "n", "v", version=version, clock=lambda: now - 86400)
    assert decode_signed_value(SECRET, "n", recent, max_age_days=0.5) is None
    assert decode_signed_value(SECRET, "n", recent, max_age_days=2) == b"v"


def test_min_version_and_key_versions() -> None:
    v1 = create_signed_value(SECRET, "n", "v", version=1)
    assert decode_signed_value(SECRET, "n", v1, min_version=2) is None
    with pytest.raises(ValueError):
        decode_signed_value(SECRET, "n", v1, min_version=3)
    secrets = {0: "old-secret", 1: "new-secret"}
    signed = create_signed_value(secrets, "n", "v", key_version=1)
    assert get_signature_key_version(signed) == 1
    assert get_signature_key_version(v1) is None
    assert decode_signed_value(secrets, "n", signed) == b"v"
    assert decode_signed_value({0: "old-secret"}, "n", signed) is None  # retired key
    assert decode_signed_value("new-secret", "n", signed) == b"v"
    with pytest.raises(ValueError):
        create_signed_value(secrets, "n", "v")  # a dict needs key_version
    with pytest.raises(ValueError):
        create_signed_value(secrets, "n", "v", version=1, key_version=1)


def test_known_wire_format() -> None:
    # Fixed clock: the exact bytes Tornado produces for the same inputs.
    signed = create_signed_value("sek", "n", "hi", clock=lambda: 1700000000)
    assert signed.startswith(b"2|1:0|10:1700000000|1:n|4:aGk=|")
    assert len(signed.rsplit(b"|", 1)[1]) == 64  # hex SHA-256
    v1 = create_signed_value("sek", "n", "hi", version=1, clock=lambda: 1700000000)
    assert v1.startswith(b"aGk=|1700000000|") and len(v1.rsplit(b"|", 1)[1]) == 40


# -- a site with a login form ----------------------------------------------------------------


class Base(RequestHandler):
    def get_current_user(self) -> str | None:
        value = self.get_signed_cookie("user", max_age_days=1)
        return value.decode() if value else None


class Login(Base):
    def get(self) -> None:
        nxt = self.get_argument("next", "/")
        self.write(
            f'<form method="post" action="/login?next={urllib.parse.quote(nxt)}">'
            f'{self.xsrf_form_html()}<input name="user"></form>'
        )

    def post(self) -> None:
        self.set_signed_cookie("user", self.get_argument("user"), httponly=True)
        self.redirect(self.get_argument("next", "/"))


class Secret(Base):
    @authenticated
    def get(self) -> None:
        self.write(f"hello {self.current_user}")

    @authenticated
    def post(self) -> None:
        self.write(f"posted by {self.current_user}")


class AsyncUser(RequestHandler):
    async def prepare(self) -> None:
        await asyncio.sleep(0)  # e.g. a database lookup
        self.current_user = self.get_query_argument("as", None)

    @authenticated
    def get(self) -> None:
        self.write(f"async user {self.current_user}")


class Api(RequestHandler):
    def get(self) -> None:
        self.write({"token": self.xsrf_token.decode()})

    def post(self) -> None:
        self.write("api ok")

    def put(self) -> None:
        self.write("put ok")


class KeyRotation(RequestHandler):
    def get(self) -> None:
        self.set_signed_cookie("k", "rotated")
        value = self.get_signed_cookie("k", self.get_query_argument("value", None))
        self.write(
            {
                "value": value.decode() if value else None,
                "key_version": self.get_signed_cookie_key_version(
                    "k", self.get_query_argument("value", None)
                ),
            }
        )


def make_app(**settings: object) -> Application:
    options: dict[str, object] = {
        "cookie_secret": SECRET,
        "xsrf_cookies": True,
        "login_url": "/login",
    }
    options.update(settings)
    return Application(
        [
            ("/login", Login),
            ("/secret", Secret),
            ("/async", AsyncUser),
            ("/api", Api),
            ("/keys", KeyRotation),
        ],
        **options,
    )


def set_cookies(response: Response) -> dict[str, str]:
    cookies = {}
    for name, value in response.header_pairs:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            cookies[key] = rest.split(";")[0]
    return cookies


def form_token(response: Response) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', response.text)
    assert match, response.text
    return match.group(1).replace("&#124;", "|")


def cookie_header(**cookies: str) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def test_login_flow_with_xsrf_and_signed_cookie(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    # Not logged in: GET redirects to the login page, with the way back in next=.
    response = await fetch(base + "/secret")
    assert response.status == 302
    assert response.headers["Location"] == "/login?next=%2Fsecret"

    # The login page sets the XSRF cookie and embeds a masked token.
    page = await fetch(base + "/login?next=/secret")
    xsrf_cookie = set_cookies(page)["_xsrf"]
    token = form_token(page)
    assert token == xsrf_cookie  # the first page's token is also the new cookie
    # A second page view (with the cookie) gets a different token and no new cookie.
    again = await fetch(base + "/login", headers={"Cookie": f"_xsrf={xsrf_cookie}"})
    second_token = form_token(again)
    assert second_token != token
    assert "_xsrf" not in set_cookies(again)

    headers = {
        "Cookie": f"_xsrf={xsrf_cookie}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    # No token, or a malformed one: 403.
    missing = await fetch(base + "/login?next=/secret", "POST", "user=alice", headers)
    assert missing.status == 403
    bad = await fetch(base + "/login?next=/secret", "POST", "user=alice&_xsrf=2|zz|zz|1", headers)
    assert bad.status == 403

    # Either token matches the one cookie.
    for tok in (token, second_token):
        body = urllib.parse.urlencode({"user": "alice", "_xsrf": tok})
        response = await fetch(base + "/login?next=/secret", "POST", body, headers)
        assert response.status == 302, response.text
        assert response.headers["Location"] == "/secret"
    user_cookie = set_cookies(response)["user"]
    assert "HttpOnly" in response.headers["Set-Cookie"] or any(
        "HttpOnly" in v for k, v in response.header_pairs if k.lower() == "set-cookie"
    )

    ok = await fetch(base + "/secret", headers={"Cookie": f"user={user_cookie}"})
    assert ok.status == 200 and ok.text == "hello alice"

    # POST needs the XSRF token as well as the login.
    post_headers = {"Cookie": cookie_header(user=user_cookie, _xsrf=xsrf_cookie)}
    no_token = await fetch(base + "/secret", "POST", b"", post_headers)
    assert no_token.status == 403
    posted = await fetch(
        base + "/secret", "POST", b"", {**post_headers, "X-XSRFToken": second_token}
    )
    assert posted.status == 200 and posted.text == "posted by alice"


async def test_tampered_and_expired_login_cookies_are_rejected(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    good = create_signed_value(SECRET, "user", "alice").decode()
    assert (await fetch(base + "/secret", headers={"Cookie": f"user={good}"})).status == 200
    # Change the name inside the value ("alice" -> "admin", same length) keeping the old
    # signature: refused.
    forged_value = good.replace("YWxpY2U=", "YWRtaW4=")
    assert forged_value != good
    response = await fetch(base + "/secret", headers={"Cookie": f"user={forged_value}"})
    assert response.status == 302
    # Signed with another secret.
    other = create_signed_value("another-secret", "user", "alice").decode()
    assert (await fetch(base + "/secret", headers={"Cookie": f"user={other}"})).status == 302
    # Signed two days ago; the handler accepts one day.
    old = create_signed_value(SECRET, "user", "alice", clock=lambda: time.time() - 2 * 86400)
    response = await fetch(base + "/secret", headers={"Cookie": f"user={old.decode()}"})
    assert response.status == 302
    # POST without a user: 403, not a redirect.
    page = await fetch(base + "/login")
    headers = {"Cookie": f"_xsrf={set_cookies(page)['_xsrf']}", "X-XSRFToken": form_token(page)}
    assert (await fetch(base + "/secret", "POST", b"", headers)).status == 403


async def test_token_from_another_users_cookie_is_rejected(
    serve: Serve, fetch: Fetch, caplog: pytest.LogCaptureFixture
) -> None:
    base = await serve(make_app())
    alice_page = await fetch(base + "/login")
    mallory_page = await fetch(base + "/login")
    alice_cookie = set_cookies(alice_page)["_xsrf"]
    mallory_token = form_token(mallory_page)
    # Mallory's token submitted from Alice's browser (Alice's cookie): refused, and the
    # log says why.
    headers = {"Cookie": f"_xsrf={alice_cookie}", "X-XSRFToken": mallory_token}
    with caplog.at_level(logging.WARNING):
        assert (await fetch(base + "/api", "POST", b"", headers)).status == 403
    assert any(
        "403 POST /api" in r.getMessage() and "XSRF cookie does not match" in r.getMessage()
        for r in caplog.records
    )
    # Alice's own token passes, by header X-XSRFToken or X-CSRFToken.
    alice_token = form_token(alice_page)
    for name in ("X-XSRFToken", "X-CSRFToken"):
        headers = {"Cookie": f"_xsrf={alice_cookie}", name: alice_token}
        response = await fetch(base + "/api", "PUT", b"", headers)
        assert response.status == 200 and response.text == "put ok"
    # A token with no cookie at all: refused.
    assert (await fetch(base + "/api", "POST", b"", {"X-XSRFToken": alice_token})).status == 403


async def test_xsrf_off_and_cookie_settings(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app(xsrf_cookies=False))
    assert (await fetch(base + "/api", "POST", b"")).text == "api ok"
    base = await serve(
        make_app(
            xsrf_cookie_name="csrf",
            xsrf_cookie_kwargs={"samesite": "Strict", "secure": True},
        )
    )
    response = await fetch(base + "/api")
    set_cookie = next(v for k, v in response.header_pairs if k.lower() == "set-cookie")
    assert set_cookie.startswith("csrf=2|")
    assert "SameSite=Strict" in set_cookie and "Secure" in set_cookie
    token = response.text.split('"')[3]
    headers = {"Cookie": f"csrf={set_cookies(response)['csrf']}", "X-XSRFToken": token}
    assert (await fetch(base + "/api", "POST", b"", headers)).status == 200
    # Version 1 tokens (the bare hex token) are still understood.
    base = await serve(make_app(xsrf_cookie_version=1))
    response = await fetch(base + "/api")
    token = response.text.split('"')[3]
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    headers = {"Cookie": f"_xsrf={set_cookies(response)['_xsrf']}", "X-XSRFToken": token}
    assert (await fetch(base + "/api", "POST", b"", headers)).status == 200


async def test_current_user_set_in_async_prepare(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    assert (await fetch(base + "/async?as=bob")).text == "async user bob"
    response = await fetch(base + "/async")
    assert response.status == 302
    assert response.headers["Location"] == "/login?next=%2Fasync"


async def test_cookie_secret_versions(serve: Serve, fetch: Fetch) -> None:
    secrets = {1: "first-secret", 2: "second-secret"}
    base = await serve(make_app(cookie_secret=secrets, key_version=2))
    response = await fetch(base + "/keys")
    cookie = set_cookies(response)["k"].strip('"')  # quoted: it holds "="
    assert get_signature_key_version(cookie) == 2
    assert decode_signed_value(secrets, "k", cookie) == b"rotated"
    old = create_signed_value(secrets, "k", "old", key_version=1).decode()
    response = await fetch(base + "/keys?value=" + urllib.parse.quote(old))
    assert response.text == '{"value": "old", "key_version": 1}'
