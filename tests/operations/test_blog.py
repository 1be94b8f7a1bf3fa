"""The blog example, run as its own process on SQLite, PostgreSQL and MariaDB: accounts with
scrypt-hashed passwords, signed cookies and XSRF, Markdown made safe, entries by slug, the
archive, the Atom feed (parsed as XML and checked for what RFC 4287 requires), German, and a
headless Chromium that signs up, writes and edits an entry."""

from __future__ import annotations

import asyncio
import datetime
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, LAUNCH_ARGS
from tests.support.dbservers import MariaDB, PostgreSQL
from tests.support.servers import free_port

BLOG = Path(__file__).resolve().parents[2] / "examples" / "blog" / "app.py"
ATOM = "{http://www.w3.org/2005/Atom}"
SECRET = "--cookie_secret=blog-test-secret"


class BlogServer:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(BLOG), f"--port={self.port}", f"--db={db_url}", SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the blog exited: {self.proc.communicate()[1]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the blog did not start")
            time.sleep(0.1)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[1]


def _new_postgres_database(server: PostgreSQL) -> str:
    import asyncpg

    name = "blog_" + uuid.uuid4().hex[:10]

    async def create() -> None:
        conn = await asyncpg.connect(server.url)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()

    asyncio.run(create())
    return f"postgresql://postgres@127.0.0.1:{server.port}/{name}"


def _new_mysql_database(server: MariaDB) -> str:
    import pymysql

    name = "blog_" + uuid.uuid4().hex[:10]
    with pymysql.connect(host="127.0.0.1", port=server.port, user="root") as conn:
        conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    return f"mysql://root@127.0.0.1:{server.port}/{name}"


def _db_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/blog.sqlite3"
    if kind == "postgresql":
        return _new_postgres_database(request.getfixturevalue("postgresql"))
    return _new_mysql_database(request.getfixturevalue("mariadb"))


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def blog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlogServer]:
    server = BlogServer(_db_url(request.param, request, tmp_path))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def blog_for_browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlogServer]:
    server = BlogServer(_db_url(request.param, request, tmp_path))
    yield server
    server.stop()


class Visitor:
    """A cookie-keeping client that fills forms the way the pages ask (with their XSRF field)."""

    def __init__(self, base: str, language: str = "en-US") -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.addheaders = [("Accept-Language", language)]

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as resp:
                return resp.status, resp.url, resp.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.url, err.read().decode()

    def post(self, path: str, fields: dict[str, str], xsrf: bool = True) -> tuple[int, str, str]:
        if xsrf:
            _, _, page = self.get("/auth/signin")
            token = re.search(r'name="_xsrf" value="([^"]+)"', page)
            assert token
            fields = {"_xsrf": token.group(1), **fields}
        data = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(self.base + path, data, timeout=10) as resp:
                return resp.status, resp.url, resp.read().decode()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.url, err.read().decode()


def parse_atom(text: str) -> tuple[ET.Element, list[ET.Element]]:
    """The feed element and its entries, after checking RFC 4287's required elements."""
    root = ET.fromstring(text.encode())
    assert root.tag == ATOM + "feed"

    def one(parent: ET.Element, name: str) -> ET.Element:
        found = parent.findall(ATOM + name)
        assert len(found) == 1, f"{parent.tag} needs exactly one {name}"
        return found[0]

    def timestamp(element: ET.Element) -> None:
        value = (element.text or "").strip()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
        datetime.datetime.fromisoformat(value)

    for name in ("id", "title", "updated"):
        one(root, name)
    timestamp(one(root, "updated"))
    assert urllib.parse.urlsplit(one(root, "id").text or "").scheme in ("http", "https")
    links = {link.get("rel"): link.get("href") for link in root.findall(ATOM + "link")}
    assert links.get("self", "").endswith("/feed")
    entries = root.findall(ATOM + "entry")
    for entry in entries:
        for name in ("id", "title", "updated", "published"):
            one(entry, name)
        timestamp(one(entry, "updated"))
        assert one(entry, "author").find(ATOM + "name") is not None or root.find(ATOM + "author")
        assert one(entry, "content").get("type") == "html"
        assert any(link.get("rel") == "alternate" for link in entry.findall(ATOM + "link"))
    return root, entries


# -- over HTTP, on all three databases --------------------------------------------------------


def test_accounts_entries_and_feed(blog: BlogServer) -> None:
    ann = Visitor(blog.url)
    status, _, page = ann.get("/")
    assert status == 200 and "No entries yet." in page
    # Without the XSRF field a form is refused.
    status, _, _ = ann.post("/auth/signup", {"email": "ann@example.org"}, xsrf=False)
    assert status == 403
    status, _, page = ann.post(
        "/auth/signup", {"email": "ann@example.org", "name": "Ann", "password": "short"}
    )
    assert status == 400 and "at least 8 characters" in page
    status, url, page = ann.post(
        "/auth/signup",
        {"email": "Ann@Example.org", "name": "Ann", "password": "correct horse", "next": "/"},
    )
    assert status == 200 and url == blog.url + "/" and "Signed in as Ann" in page
    # The same email again is refused (a UNIQUE constraint, IntegrityError in the app).
    status, _, page = Visitor(blog.url).post(
        "/auth/signup", {"email": "ann@example.org", "name": "Other", "password": "12345678"}
    )
    assert status == 400 and "exists already" in page

    text = (
        "Hello **world**.\n\n<script>alert('x')</script>\n\n"
        "[safe](https://example.org) [unsafe](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    status, url, page = ann.post("/compose", {"title": "Grüße aus Köln!", "markdown": text})
    assert status == 200 and url == blog.url + "/entry/gruesse-aus-koeln"
    assert "<strong>world</strong>" in page
    assert "<script>" not in page and "javascript:" not in page and "onerror" not in page
    assert 'href="https://example.org"' in page
    # A second entry with the same title gets its own slug.
    status, url, _ = ann.post("/compose", {"title": "Grüße aus Köln!", "markdown": "again"})
    assert status == 200 and url.endswith("/entry/gruesse-aus-koeln-2")
    status, _, page = ann.post("/compose", {"title": "", "markdown": "no title"})
    assert status == 400 and "needs a title" in page

    # Another author cannot edit Ann's entry; a reader cannot compose at all.
    bob = Visitor(blog.url)
    bob.post("/auth/signup", {"email": "bob@example.org", "name": "Bob", "password": "b0b-b0b-b0b"})
    _, _, entry_page = ann.get("/entry/gruesse-aus-koeln")
    entry_id = re.search(r'/compose\?id=(\d+)"', entry_page)
    assert entry_id
    status, _, _ = bob.post("/compose", {"id": entry_id.group(1), "title": "x", "markdown": "y"})
    assert status == 403
    status, url, _ = Visitor(blog.url).get("/compose")
    assert status == 200 and "/auth/signin?next=%2Fcompose" in url
    status, url, page = ann.post(
        "/compose", {"id": entry_id.group(1), "title": "Edited title", "markdown": "*new*"}
    )
    assert status == 200 and url.endswith("/entry/gruesse-aus-koeln")
    assert "Edited title" in page and "<em>new</em>" in page

    # Signing in checks the scrypt hash; a wrong password is refused.
    status, _, page = Visitor(blog.url).post(
        "/auth/signin", {"email": "ann@example.org", "password": "wrong password"}
    )
    assert status == 403 and "Wrong email or password" in page
    carol = Visitor(blog.url)
    status, _, page = carol.post(
        "/auth/signin", {"email": "ann@example.org", "password": "correct horse", "next": "/"}
    )
    assert status == 200 and "Signed in as Ann" in page
    # A forged cookie is not a session.
    forged = Visitor(blog.url)
    forged.opener.addheaders.append(("Cookie", "blogdemo_user=1"))
    assert "Signed in" not in forged.get("/")[2]

    # Home, archive, entry pages, 404, feed.
    _, _, home = Visitor(blog.url).get("/")
    assert home.count('class="entry"') == 2 and "Edited title" in home
    _, _, archive = Visitor(blog.url).get("/archive")
    assert archive.count("<li>") == 2
    assert Visitor(blog.url).get("/entry/no-such-entry")[0] == 404
    status, _, feed = Visitor(blog.url).get("/feed")
    assert status == 200
    _, entries = parse_atom(feed)
    assert [e.findtext(ATOM + "title") for e in entries] == ["Grüße aus Köln!", "Edited title"]
    content = entries[1].findtext(ATOM + "content") or ""
    assert "<em>new</em>" in content


def test_passwords_are_stored_as_scrypt_hashes(tmp_path: Path) -> None:
    blog = BlogServer(f"sqlite:///{tmp_path}/blog.sqlite3")
    try:
        Visitor(blog.url).post(
            "/auth/signup", {"email": "h@example.org", "name": "H", "password": "plain secret"}
        )
    finally:
        blog.stop()
    import sqlite3

    with sqlite3.connect(tmp_path / "blog.sqlite3") as conn:
        (stored,) = conn.execute("SELECT hashed_password FROM authors").fetchone()
    assert stored.startswith("scrypt$") and "plain secret" not in stored
    sys.path.insert(0, str(BLOG.parent))
    try:
        import app as blog_app  # examples/blog/app.py

        assert blog_app.check_password("plain secret", stored)
        assert not blog_app.check_password("plain secreT", stored)
    finally:
        sys.path.remove(str(BLOG.parent))
        sys.modules.pop("app", None)


def test_german(tmp_path: Path) -> None:
    blog = BlogServer(f"sqlite:///{tmp_path}/blog.sqlite3")
    try:
        visitor = Visitor(blog.url, language="de-DE")
        _, _, page = visitor.get("/")
        assert "Noch keine Einträge." in page and "Archiv" in page and 'lang="de"' in page
        # The language switch overrides Accept-Language.
        visitor.post("/locale", {"lang": "en_US", "next": "/"})
        assert "No entries yet." in visitor.get("/")[2]
    finally:
        blog.stop()


# -- in a browser ------------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_sign_up_compose_and_edit_in_chromium(blog_for_browser: BlogServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    base = blog_for_browser.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_context(locale="en-US").new_page()
            page.goto(base + "/")
            page.click("#signup-link")
            page.fill("#email", "dora@example.org")
            page.fill("#name", "Dora")
            page.fill("#password", "dora's password")
            page.click("#signup button[type=submit]")
            expect(page.locator("#whoami")).to_have_text("Signed in as Dora")

            page.click("#compose-link")
            page.fill("#title", "First post")
            page.fill(
                "#markdown", "# Heading\n\nSome *Markdown* and `code`.\n\n<b onclick=x>hi</b>"
            )
            page.click("#compose button[type=submit]")
            page.wait_for_url("**/entry/first-post")
            expect(page.locator(".entry h2")).to_have_text("First post")
            expect(page.locator(".entry .body em")).to_have_text("Markdown")
            expect(page.locator(".entry .body code")).to_have_text("code")
            assert page.locator("[onclick]").count() == 0

            page.click(".entry .edit")
            expect(page.locator("#title")).to_have_value("First post")
            page.fill("#title", "First post, edited")
            page.fill("#markdown", "Now with a [link](https://example.org).")
            page.click("#compose button[type=submit]")
            page.wait_for_url("**/entry/first-post")
            expect(page.locator(".entry h2")).to_have_text("First post, edited")
            expect(page.locator(".entry .body a")).to_have_attribute("href", "https://example.org")

            page.goto(base + "/")
            expect(page.locator("article.entry")).to_have_count(1)
            page.select_option("#language select", "de_DE")
            expect(page.locator("#whoami")).to_have_text("Angemeldet als Dora")

            # Signing out and in again, through the forms.
            page.click("nav form.inline button[type=submit]")
            expect(page.locator("#signin-link")).to_be_visible()
            page.click("#signin-link")
            page.fill("#email", "dora@example.org")
            page.fill("#password", "dora's password")
            page.click("#signin button[type=submit]")
            expect(page.locator("#whoami")).to_have_text("Angemeldet als Dora")

            response = page.request.get(base + "/feed")
            assert response.headers["content-type"].startswith("application/atom+xml")
            _, entries = parse_atom(response.text())
            assert [e.findtext(ATOM + "title") for e in entries] == ["First post, edited"]
        finally:
            browser.close()


def test_runs_with_no_setup_on_a_sqlite_file_beside_it(tmp_path: Path) -> None:
    # A copy of the example, so that its default database file lands in tmp_path.
    copy = tmp_path / "blog"
    shutil.copytree(BLOG.parent, copy, ignore=shutil.ignore_patterns("*.sqlite3*"))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(copy / "app.py"), f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(BLOG.parent.parent.parent)},
    )
    try:
        assert proc.stdout is not None
        assert "(sqlite)" in proc.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200 and b"No entries yet." in resp.read()
        assert (copy / "blog.sqlite3").exists()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
