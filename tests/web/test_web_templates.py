"""asyncweb.web rendering over a real server: templates from files (multi-level inheritance,
includes), UI modules with their JavaScript/CSS injected into the page, ui_methods, escaping
of hostile input, locales from Accept-Language with CSV translations, template settings."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

from asyncweb import locale, template
from asyncweb.locale import Locale
from asyncweb.web import Application, RequestHandler, UIModule, url
from tests.support.servers import Fetch, Serve

TEMPLATES = Path(__file__).parent / "web_templates"


@pytest.fixture(autouse=True, scope="module")
def translations(tmp_path_factory: pytest.TempPathFactory) -> Any:
    locale.load_translations(str(TEMPLATES / "translations"))
    yield
    # Leave no translations behind for other test modules.
    locale.load_translations(str(tmp_path_factory.mktemp("no_translations")))


class Entry(UIModule):
    def render(self, entry: str) -> bytes:  # type: ignore[override]
        return self.render_string("_entry.html", entry=entry)

    def embedded_javascript(self) -> str:
        return "entryInit();"

    def javascript_files(self) -> list[str]:
        return ["entry.js", "https://cdn.example/lib.js", "entry.js"]

    def embedded_css(self) -> str:
        return ".entry { color: blue }"

    def css_files(self) -> str:
        return "https://cdn.example/lib.css"

    def html_head(self) -> str:
        return '<meta name="entry-module">'

    def html_body(self) -> str:
        return '<div id="entry-body"></div>'


def shout(handler: RequestHandler, text: str) -> str:
    return text.upper() + "!"


class Page(RequestHandler):
    def get_current_user(self) -> str | None:
        return self.get_query_argument("user", None)

    def get_user_locale(self) -> Locale | None:
        lang = self.get_query_argument("lang", None)
        return locale.get(lang) if lang else None

    def get(self) -> None:
        self.render(
            "page.html",
            title="Tom & <Jerry>",
            entries=["first", "<b>second</b>", "third"],
            comment='<script>alert("x")</script>',
            link_text="see http://example.com/a?b=1&c=2 now",
        )


def make_app(**settings: Any) -> Application:
    options: dict[str, Any] = {
        "template_path": str(TEMPLATES),
        "static_path": str(TEMPLATES / "static"),
        "ui_modules": {"Entry": Entry},
        "ui_methods": {"shout": shout},
        "cookie_secret": "s",
    }
    options.update(settings)
    return Application([url("/page", Page, name="page")], **options)


async def test_page_with_inheritance_includes_and_modules(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    response = await fetch(base + "/page?user=ann")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    html = response.text
    # Three levels: page -> section -> base; blocks nest.
    assert "<title>Section: Tom &amp; &lt;Jerry&gt;</title>" in html
    assert "<header>Welcome, ann</header>" in html
    assert "<footer>Goodbye en_US</footer>" in html  # the include sees the page's names
    # UI module output, escaped inside its own template.
    entries = re.findall(r'<li class="entry">(.*?)</li>', html)
    assert entries == ["first", "&lt;b&gt;second&lt;/b&gt;", "third"]
    # Hostile input is escaped; linkify makes links of text, escaping the rest.
    assert '<p class="user-text">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</p>' in html
    assert '<a href="http://example.com/a?b=1&amp;c=2">' in html
    assert '<p class="shout">TOM &amp; &lt;JERRY&gt;!</p>' in html  # ui_method, escaped
    assert '<p class="count">3 items</p>' in html
    assert re.search(r'<input type="hidden" name="_xsrf" value="2\|[0-9a-f|]+"/>', html)
    assert re.search(r'<img src="/static/logo.txt\?v=[0-9a-f]{128}">', html)
    assert '<a href="/page">self</a>' in html


async def test_module_resources_are_injected_once(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    html = (await fetch(base + "/page")).text
    head, _, body = html.partition("</head>")
    # CSS (linked and embedded) and html_head go into <head>.
    assert '<link href="https://cdn.example/lib.css" type="text/css" rel="stylesheet"/>' in head
    assert re.search(r'<link href="/static/card.css\?v=[0-9a-f]+" type="text/css"', head)
    assert head.count("card.css") == 1  # Template module used twice, resources once
    assert '<style type="text/css">\n.entry { color: blue }\n</style>' in head
    assert '<meta name="entry-module">' in head
    # JavaScript (linked, deduplicated; relative paths via static_url) and html_body
    # before </body>.
    tail = body[body.index("<footer>") :]
    assert tail.count('<script src="/static/entry.js"') == 1
    assert '<script src="https://cdn.example/lib.js" type="text/javascript"></script>' in tail
    assert "entryInit();" in tail and "cardInit();" in tail
    assert tail.index("entryInit();") < tail.index("</body>")
    assert '<div id="entry-body"></div>' in tail
    assert html.count('<div class="card">') == 2


@pytest.mark.parametrize(
    ("accept_language", "welcome", "code"),
    [
        ("es-ES,es;q=0.9,en;q=0.5", "Bienvenido", "es_ES"),
        ("fr-FR;q=0.1, es-ES;q=0.8", "Bienvenido", "es_ES"),
        ("fr;q=0.1, es;q=0.8", "Welcome", "en_US"),  # bare "es" is not es_ES (as Tornado)
        ("en;q=0.2, fr-FR", "Bienvenue", "fr_FR"),
        ("de-DE", "Welcome", "en_US"),  # unsupported: the default
        ("es;q=0, fr;q=bogus", "Welcome", "en_US"),  # zero and bad weights mean "not this"
        ("", "Welcome", "en_US"),
    ],
)
async def test_browser_locale(
    serve: Serve, fetch: Fetch, accept_language: str, welcome: str, code: str
) -> None:
    base = await serve(make_app())
    headers = {"Accept-Language": accept_language} if accept_language else {}
    html = (await fetch(base + "/page", headers=headers)).text
    assert f"<header>{welcome}, guest</header>" in html
    assert f"{code}</footer>" in html
    if code == "es_ES":
        assert "<footer>Adiós es_ES</footer>" in html
        assert '<p class="count">3 artículos</p>' in html


async def test_user_locale_wins_over_browser(serve: Serve, fetch: Fetch) -> None:
    base = await serve(make_app())
    headers = {"Accept-Language": "es"}
    html = (await fetch(base + "/page?lang=fr_FR", headers=headers)).text
    assert "<header>Bienvenue, guest</header>" in html


class Plain(RequestHandler):
    def get(self) -> None:
        self.render("plain.html", value="<i>raw</i>")


async def test_template_settings(serve: Serve, fetch: Fetch, tmp_path: Path) -> None:
    (tmp_path / "plain.html").write_text("<p>\n   {{ value }}\n</p>\n")
    app = Application([("/", Plain)], template_path=str(tmp_path), autoescape=None)
    base = await serve(app)
    # autoescape=None: no escaping; .html files collapse whitespace by default.
    assert (await fetch(base + "/")).text == "<p>\n<i>raw</i>\n</p>\n"
    app = Application([("/", Plain)], template_path=str(tmp_path), template_whitespace="all")
    base = await serve(app)
    assert (await fetch(base + "/")).text == "<p>\n   &lt;i&gt;raw&lt;/i&gt;\n</p>\n"
    loader = template.DictLoader({"plain.html": "dict {{ value }}"}, autoescape=None)
    base = await serve(Application([("/", Plain)], template_loader=loader))
    assert (await fetch(base + "/")).text == "dict <i>raw</i>"


async def test_templates_reload_only_without_the_cache(
    serve: Serve, fetch: Fetch, tmp_path: Path
) -> None:
    cached_dir = tmp_path / "cached"
    fresh_dir = tmp_path / "fresh"
    for directory in (cached_dir, fresh_dir):
        directory.mkdir()
        (directory / "plain.html").write_text("v1 {{ value }}")
    cached = await serve(Application([("/", Plain)], template_path=str(cached_dir)))
    fresh = await serve(
        Application([("/", Plain)], template_path=str(fresh_dir), compiled_template_cache=False)
    )
    assert (await fetch(cached + "/")).text.startswith("v1")
    assert (await fetch(fresh + "/")).text.startswith("v1")
    for directory in (cached_dir, fresh_dir):
        (directory / "plain.html").write_text("v2 {{ value }}")
    assert (await fetch(cached + "/")).text.startswith("v1")
    assert (await fetch(fresh + "/")).text.startswith("v2")


class NextToModule(RequestHandler):
    def get(self) -> None:
        # No template_path: names are relative to this test module's directory.
        self.render("web_templates/_entry.html", entry="beside")


class Namespace(RequestHandler):
    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["extra"] = "added"
        return namespace

    def get(self) -> None:
        self.write(self.render_string("ns.html"))


async def test_default_template_path_and_namespace(
    serve: Serve, fetch: Fetch, tmp_path: Path
) -> None:
    base = await serve(Application([("/", NextToModule)]))
    assert (await fetch(base + "/")).text.strip() == '<li class="entry">beside</li>'
    names = (
        "{{ extra }} {{ handler.__class__.__name__ }} {{ request.path }} "
        "{{ squeeze('a   b') }} {{ url_escape('a b') }} {{ json_encode([1]) }} "
        "{{ datetime.date(2020, 1, 2).isoformat() }} {{ xhtml_escape('<') }} "
        "{{ pgettext('ctx', 'Welcome') }}"
    )
    (tmp_path / "ns.html").write_text(names)
    base = await serve(Application([("/ns", Namespace)], template_path=str(tmp_path)))
    text = (await fetch(base + "/ns")).text
    assert text == "added Namespace /ns a b a+b [1] 2020-01-02 &amp;lt; Welcome"


class AfterFinish(RequestHandler):
    def get(self) -> None:
        self.finish("done")
        try:
            self.render("plain.html")
        except RuntimeError as e:
            self.application.settings["seen"] = str(e)


async def test_render_after_finish_raises(serve: Serve, fetch: Fetch, tmp_path: Path) -> None:
    (tmp_path / "plain.html").write_text("x")
    app = Application([("/", AfterFinish)], template_path=str(tmp_path))
    base = await serve(app)
    assert (await fetch(base + "/")).text == "done"
    assert "after finish" in app.settings["seen"]


def test_fixture_templates_exist() -> None:
    # The templates above are real files (not strings): make a broken checkout obvious.
    for name in ("base.html", "section.html", "page.html", "_footer.html", "_card.html"):
        assert (TEMPLATES / name).is_file()


class Shouting(UIModule):
    def render(self, text: str) -> str:  # type: ignore[override]
        return self.handler.ui["shout"](text)


class UsesModules(RequestHandler):
    def get(self) -> None:
        self.write(self.render_string("mods.html"))


async def test_ui_modules_and_methods_as_modules_and_lists(
    serve: Serve, fetch: Fetch, tmp_path: Path
) -> None:
    (tmp_path / "mods.html").write_text(
        "{% module Shouting('hey') %} {{ modules.Shouting('ho') }} {{ whisper('QUIET') }}"
    )
    as_module = types.ModuleType("my_ui")
    as_module.Shouting = Shouting  # type: ignore[attr-defined]
    as_module.NotAModule = object  # type: ignore[attr-defined]
    as_module.whisper = lambda handler, text: text.lower()  # type: ignore[attr-defined]
    as_module._private = lambda handler: "no"  # type: ignore[attr-defined]
    app = Application(
        [("/", UsesModules)],
        template_path=str(tmp_path),
        ui_modules=[as_module],
        ui_methods=[{"shout": shout}, as_module],
    )
    assert "Shouting" in app.ui_modules and "NotAModule" not in app.ui_modules
    assert {"linkify", "xsrf_form_html", "Template"} <= set(app.ui_modules)
    assert set(app.ui_methods) == {"shout", "whisper"}
    base = await serve(app)
    assert (await fetch(base + "/")).text == "HEY! HO! quiet"
