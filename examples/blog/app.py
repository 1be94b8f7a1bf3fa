"""Blog: asyncweb's take on the classic Tornado blog demo, on ``asyncweb.database``.

Authors sign up with an email and a password (hashed with scrypt), write entries in Markdown
(rendered to HTML and sanitized once, when saved) and edit their own entries. Readers get the
latest entries, an archive, a page per entry and an Atom feed, in English or German.

    python examples/blog/app.py [--port=8888] [--db=sqlite:///blog.db | mysql://... | postgresql://...]

With no ``--db`` it keeps its data in ``blog.sqlite3`` next to this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import hmac
import os
import re
import secrets
import time
import unicodedata
from typing import Any

import markdown
import nh3

from asyncweb import locale, web
from asyncweb.database import Database, IntegrityError, Row
from asyncweb.log import app_log
from asyncweb.options import define, options, parse_command_line

HERE = os.path.dirname(os.path.abspath(__file__))
USER_COOKIE = "blogdemo_user"
LOCALE_COOKIE = "blogdemo_locale"
HOME_ENTRIES = 5
FEED_ENTRIES = 10
MAX_TITLE = 200
MAX_BODY = 100_000

# scrypt's cost: 16 MiB of memory and about 50 ms per hash on a current core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1

# The primary key is the one column whose spelling differs between the three backends.
ID_COLUMN = {
    "sqlite": "id INTEGER PRIMARY KEY AUTOINCREMENT",
    "mysql": "id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY",
    "mariadb": "id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY",
    "postgresql": "id SERIAL PRIMARY KEY",
    "postgres": "id SERIAL PRIMARY KEY",
}
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS authors (
        {id},
        email VARCHAR(100) NOT NULL UNIQUE,
        name VARCHAR(100) NOT NULL,
        hashed_password VARCHAR(200) NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS entries (
        {id},
        author_id INTEGER NOT NULL REFERENCES authors(id),
        slug VARCHAR(100) NOT NULL UNIQUE,
        title VARCHAR(200) NOT NULL,
        markdown TEXT NOT NULL,
        html TEXT NOT NULL,
        published DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL
    )""",
]


async def create_schema(db: Database) -> None:
    for statement in SCHEMA:
        await db.execute(statement.format(id=ID_COLUMN[db.scheme]))


# -- passwords -----------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, key = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got, bytes.fromhex(key))


async def in_thread(function: Any, *args: Any) -> Any:
    # scrypt takes tens of milliseconds on purpose: keep it off the event loop.
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


# -- Markdown ------------------------------------------------------------------------------

ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "img", "li", "ol", "p", "pre", "strong", "sup", "sub", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "abbr": {"title"}}


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to show: whatever raw HTML the author wrote is cleaned
    to a short list of tags and attributes, and links go to http(s) and mailto only."""
    html = markdown.markdown(text, extensions=["fenced_code", "tables"], output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# German spells these out when accents cannot be written; NFKD would only drop the dots.
_SPELLED_OUT = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
)


def slugify(title: str) -> str:
    spelled = title.translate(_SPELLED_OUT)
    ascii_title = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:80].strip("-") or "entry"


def as_datetime(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(float(timestamp), tz=datetime.timezone.utc)


# -- handlers ------------------------------------------------------------------------------


class BaseHandler(web.RequestHandler):
    @property
    def db(self) -> Database:
        db: Database = self.settings["db"]
        return db

    async def prepare(self) -> None:
        # The signed cookie names an author; the row is read once per request.
        self.author: Row | None = None
        value = self.get_signed_cookie(USER_COOKIE)
        if value and value.isdigit():
            self.author = await self.db.get(
                "SELECT id, email, name FROM authors WHERE id = %s", int(value)
            )

    def get_current_user(self) -> Row | None:
        return self.author

    def get_user_locale(self) -> locale.Locale | None:
        code = self.get_cookie(LOCALE_COOKIE)
        if code and code in locale.get_supported_locales():
            return locale.get(code)
        return None  # Accept-Language decides

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["as_datetime"] = as_datetime
        namespace["locale_names"] = locale.LOCALE_NAMES
        return namespace

    def local_next(self, default: str = "/") -> str:
        target: str = self.get_argument("next", default)
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            return default
        return target

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.settings.get("serve_traceback") and "exc_info" in kwargs:
            super().write_error(status_code, **kwargs)
            return
        try:
            self.render("error.html", status_code=status_code, reason=self._reason)
        except Exception:
            app_log.exception("cannot render the error page")
            self.clear()
            self.set_status(status_code)
            super().write_error(status_code, **kwargs)


ENTRY_COLUMNS = (
    "entries.id, slug, title, html, markdown, published, updated, author_id, authors.name "
    "AS author_name FROM entries JOIN authors ON authors.id = entries.author_id"
)


class HomeHandler(BaseHandler):
    async def get(self) -> None:
        entries = await self.db.query(
            f"SELECT {ENTRY_COLUMNS} ORDER BY published DESC, entries.id DESC LIMIT %s",
            HOME_ENTRIES,
        )
        self.render("home.html", entries=entries)


class EntryHandler(BaseHandler):
    async def get(self, slug: str) -> None:
        entry = await self.db.get(f"SELECT {ENTRY_COLUMNS} WHERE slug = %s", slug)
        if entry is None:
            raise web.HTTPError(404)
        self.render("entry.html", entry=entry)


class ArchiveHandler(BaseHandler):
    async def get(self) -> None:
        entries = await self.db.query(
            f"SELECT {ENTRY_COLUMNS} ORDER BY published DESC, entries.id DESC"
        )
        self.render("archive.html", entries=entries)


class FeedHandler(BaseHandler):
    async def get(self) -> None:
        entries = await self.db.query(
            f"SELECT {ENTRY_COLUMNS} ORDER BY published DESC, entries.id DESC LIMIT %s",
            FEED_ENTRIES,
        )
        updated = max((e.updated for e in entries), default=0.0)
        self.set_header("Content-Type", "application/atom+xml; charset=UTF-8")
        self.render("feed.xml", entries=entries, updated=as_datetime(updated))


class ComposeHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        entry = None
        entry_id = self.get_argument("id", None)
        if entry_id is not None:
            entry = await self._own_entry(entry_id)
        self.render("compose.html", entry=entry, error=None)

    @web.authenticated
    async def post(self) -> None:
        assert self.author is not None
        entry_id = self.get_argument("id", None)
        title = self.get_argument("title", "").strip()
        text = self.get_argument("markdown", "")
        if not title or len(title) > MAX_TITLE or not text.strip() or len(text) > MAX_BODY:
            self.set_status(400)
            entry = {"id": entry_id, "title": title, "markdown": text}
            message = self.locale.translate("An entry needs a title and some text.")
            self.render("compose.html", entry=entry, error=message)
            return
        html = render_markdown(text)
        now = time.time()
        if entry_id is not None:
            entry = await self._own_entry(entry_id)
            await self.db.execute(
                "UPDATE entries SET title = %s, markdown = %s, html = %s, updated = %s "
                "WHERE id = %s",
                title, text, html, now, entry.id,
            )  # fmt: skip
            self.redirect(self.reverse_url("entry", entry.slug))
            return
        slug = await self._free_slug(slugify(title))
        await self.db.execute(
            "INSERT INTO entries (author_id, title, slug, markdown, html, published, updated) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            self.author.id, title, slug, text, html, now, now,
        )  # fmt: skip
        self.redirect(self.reverse_url("entry", slug))

    async def _own_entry(self, entry_id: str) -> Row:
        assert self.author is not None
        entry = (
            await self.db.get("SELECT * FROM entries WHERE id = %s", int(entry_id))
            if entry_id.isdigit()
            else None
        )
        if entry is None:
            raise web.HTTPError(404)
        if entry.author_id != self.author.id:
            raise web.HTTPError(403)
        return entry

    async def _free_slug(self, slug: str) -> str:
        taken = {
            row.slug
            for row in await self.db.query(
                "SELECT slug FROM entries WHERE slug = %s OR slug LIKE %s", slug, slug + "-%%"
            )
        }
        if slug not in taken:
            return slug
        n = 2
        while f"{slug}-{n}" in taken:
            n += 1
        return f"{slug}-{n}"


class SignUpHandler(BaseHandler):
    def get(self) -> None:
        self.render("signup.html", error=None, next=self.local_next())

    async def post(self) -> None:
        email = self.get_argument("email", "").strip().lower()
        name = " ".join(self.get_argument("name", "").split())
        password = self.get_argument("password", "")
        error = None
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", email) or len(email) > 100:
            error = self.locale.translate("Please enter a valid email address.")
        elif not name or len(name) > 100:
            error = self.locale.translate("Please enter your name.")
        elif len(password) < 8 or len(password) > 1000:
            error = self.locale.translate("Passwords need at least 8 characters.")
        if error is None:
            hashed = await in_thread(hash_password, password)
            try:
                author_id = await self.db.execute(
                    "INSERT INTO authors (email, name, hashed_password) VALUES (%s, %s, %s)",
                    email, name, hashed,
                )  # fmt: skip
            except IntegrityError:
                error = self.locale.translate("An account with this email exists already.")
            else:
                self.set_signed_cookie(USER_COOKIE, str(author_id), httponly=True, samesite="Lax")
                self.redirect(self.local_next())
                return
        self.set_status(400)
        self.render("signup.html", error=error, next=self.local_next())


class SignInHandler(BaseHandler):
    def get(self) -> None:
        self.render("signin.html", error=None, next=self.local_next())

    async def post(self) -> None:
        email = self.get_argument("email", "").strip().lower()
        password = self.get_argument("password", "")
        author = await self.db.get(
            "SELECT id, hashed_password FROM authors WHERE email = %s", email
        )
        # Unknown emails cost a hash too, so timing does not tell which emails exist.
        stored = author.hashed_password if author else DUMMY_HASH
        if await in_thread(check_password, password, stored) and author is not None:
            self.set_signed_cookie(USER_COOKIE, str(author.id), httponly=True, samesite="Lax")
            self.redirect(self.local_next())
            return
        self.set_status(403)
        error = self.locale.translate("Wrong email or password.")
        self.render("signin.html", error=error, next=self.local_next())


DUMMY_HASH = hash_password(secrets.token_hex(8))


class SignOutHandler(BaseHandler):
    def post(self) -> None:
        self.clear_cookie(USER_COOKIE)
        self.redirect("/")


class LocaleHandler(BaseHandler):
    def post(self) -> None:
        code = self.get_argument("lang", "")
        if code in locale.get_supported_locales():
            self.set_cookie(LOCALE_COOKIE, code, samesite="Lax")
        self.redirect(self.local_next())


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()
        raise web.HTTPError(404)


class EntryModule(web.UIModule):
    """One entry: its title, byline and the stored HTML; ``summary`` for lists."""

    def render(self, entry: Row, summary: bool = False) -> str:
        return self.render_string("modules/entry.html", entry=entry, summary=summary).decode()


# -- the application -----------------------------------------------------------------------


def make_app(db: Database, cookie_secret: str, debug: bool = False) -> web.Application:
    locale.load_translations(os.path.join(HERE, "locale"))
    return web.Application(
        [
            web.url(r"/", HomeHandler, name="home"),
            web.url(r"/archive", ArchiveHandler, name="archive"),
            web.url(r"/feed", FeedHandler, name="feed"),
            web.url(r"/entry/([a-z0-9-]+)", EntryHandler, name="entry"),
            web.url(r"/compose", ComposeHandler, name="compose"),
            web.url(r"/auth/signup", SignUpHandler, name="signup"),
            web.url(r"/auth/signin", SignInHandler, name="signin"),
            web.url(r"/auth/signout", SignOutHandler, name="signout"),
            web.url(r"/locale", LocaleHandler, name="locale"),
        ],
        db=db,
        blog_title="asyncweb blog",
        cookie_secret=cookie_secret,
        login_url="/auth/signin",
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        ui_modules={"Entry": EntryModule},
        default_handler_class=NotFoundHandler,
        xsrf_cookies=True,
        debug=debug,
    )


define("port", default=8888, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")
define(
    "db",
    default="sqlite:///" + os.path.join(HERE, "blog.sqlite3"),
    help="database URL: sqlite:///path, mysql://user:pw@host/name, postgresql://...",
)
define("cookie_secret", default="", help="signs the sign-in cookie; random per start when empty")
define("debug", default=False, help="reload on code change, tracebacks in error pages")


async def serve() -> None:
    db = Database(options.db)
    await create_schema(db)
    secret = options.cookie_secret or secrets.token_hex(32)
    app = make_app(db, secret, debug=options.debug)
    app.listen(options.port, options.address)
    print(f"blog on http://{options.address}:{options.port}/ ({db.scheme})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await db.close()


def main() -> None:
    parse_command_line()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
