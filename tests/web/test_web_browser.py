"""Headless Chromium against asyncweb.web: a template-rendered login form with XSRF, a signed
login cookie, @authenticated redirects, a UI module's static CSS, and a forged cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asyncweb.web import Application, RequestHandler, UIModule, authenticated, create_signed_value
from tests.support.browser import launch_chromium
from tests.support.servers import Serve

pytest.importorskip("playwright.async_api")

TEMPLATES = Path(__file__).parent / "web_templates"
SECRET = "browser-test-secret"

notes: list[str] = []


class Greeting(UIModule):
    def render(self, user: str) -> str:  # type: ignore[override]
        return f'<p id="greeting" class="greeting">hello {user}</p>'

    def css_files(self) -> str:
        return "site.css"


class Base(RequestHandler):
    def get_current_user(self) -> str | None:
        value = self.get_signed_cookie("user")
        return value.decode() if value else None


class Login(Base):
    def get(self) -> None:
        self.render("login.html")

    def post(self) -> None:
        self.set_signed_cookie("user", self.get_argument("user"), httponly=True)
        self.redirect(self.get_argument("next", "/"))


class Secret(Base):
    @authenticated
    def get(self) -> None:
        self.render("secret.html")

    @authenticated
    def post(self) -> None:
        notes.append(f"{self.current_user}: {self.get_argument('text')}")
        self.redirect("/secret")


def make_app() -> Application:
    return Application(
        [("/login", Login), ("/secret", Secret)],
        template_path=str(TEMPLATES),
        static_path=str(TEMPLATES / "static"),
        ui_modules={"Greeting": Greeting},
        cookie_secret=SECRET,
        xsrf_cookies=True,
        login_url="/login",
    )


@pytest.fixture
async def browser() -> Any:
    async with launch_chromium() as launched:
        yield launched


@pytest.mark.timeout(60)
async def test_browser_login_with_xsrf_form(serve: Serve, browser: Any) -> None:
    notes.clear()
    base = await serve(make_app())
    context = await browser.new_context()
    page = await context.new_page()
    # Signed out: the protected page sends the browser to the login form.
    await page.goto(base + "/secret")
    assert page.url == base + "/login?next=%2Fsecret"
    await page.fill("#user", "alice")
    await page.click("#login button[type=submit]")
    await page.wait_for_url(base + "/secret")
    assert await page.text_content("#greeting") == "hello alice"
    # The UI module's stylesheet was linked (versioned) and applied.
    color = await page.eval_on_selector("#greeting", "e => getComputedStyle(e).color")
    assert color == "rgb(0, 128, 0)"
    link = await page.get_attribute("link[rel=stylesheet]", "href")
    assert link is not None and link.startswith("/static/site.css?v=")
    # A second form on the signed-in page posts with its own (differently masked) token.
    await page.fill("#text", "remember the milk")
    await page.click("#note button[type=submit]")
    await page.wait_for_url(base + "/secret")
    assert notes == ["alice: remember the milk"]
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["user"]["httpOnly"] is True and "_xsrf" in cookies
    await context.close()


@pytest.mark.timeout(60)
async def test_browser_with_forged_cookie_is_signed_out(serve: Serve, browser: Any) -> None:
    base = await serve(make_app())
    context = await browser.new_context()
    good = create_signed_value(SECRET, "user", "alice").decode()
    forged = good.replace("YWxpY2U=", "YWRtaW4=")  # "admin", old signature
    await context.add_cookies([{"name": "user", "value": forged, "url": base}])
    page = await context.new_page()
    await page.goto(base + "/secret")
    assert page.url.startswith(base + "/login")
    await context.clear_cookies()
    await context.add_cookies([{"name": "user", "value": good, "url": base}])
    await page.goto(base + "/secret")
    assert await page.text_content("#greeting") == "hello alice"
    await context.close()
