"""asyncweb.template: Tornado's template language (outputs checked against Tornado 6.6.1)."""

from __future__ import annotations

import re
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncweb.escape import xhtml_escape
from asyncweb.template import (
    _DEFAULT_AUTOESCAPE,
    BaseLoader,
    DictLoader,
    Loader,
    ParseError,
    Template,
    filter_whitespace,
)


def render(source: str, template_name: str = "t.txt", **kwargs: Any) -> str:
    return Template(source, name=template_name).generate(**kwargs).decode("utf-8")


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


class Modules:
    """Stands in for the ``_tt_modules`` object RequestHandler puts in the namespace."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def Badge(self, label: str, count: int = 0) -> str:
        self.calls.append((label, count))
        return f'<span class="badge">{label}:{count}</span>'


# -- a site of real template files -----------------------------------------------------------

SITE = {
    "base.html": (
        "<html><head><title>{% block title %}Site{% end %}</title></head>\n"
        "<body>{% block body %}{% end %}\n"
        "<footer>{% block footer %}(c) {{ year }}{% end %}</footer></body></html>\n"
    ),
    "layout.html": (
        '{% extends "base.html" %}\n'
        "{% block title %}{% block section %}Section{% end %} - Site{% end %}\n"
        '{% block body %}<nav>{% include "parts/nav.html" %}</nav>'
        "<main>{% block main %}{% end %}</main>{% end %}\n"
    ),
    "page.html": (
        '{% extends "layout.html" %}\n'
        "This text outside blocks is ignored.\n"
        "{% block section %}Users{% end %}\n"
        "{% block main %}<ul>{% for user in users %}"
        "{% if user['hidden'] %}{% continue %}{% end %}"
        "{% if user['name'] == 'stop' %}{% break %}{% end %}"
        "<li>{{ user['name'] }}</li>"
        "{% end %}</ul>{% module Badge('users', count=len(users)) %}{% end %}\n"
    ),
    "parts/nav.html": '<a href="/">{{ site_name }}</a>{% include "item.html" %}',
    "parts/item.html": "<i>{{ current }}</i>",
}


@pytest.fixture
def site(tmp_path: Path) -> Loader:
    write_tree(tmp_path, SITE)
    return Loader(str(tmp_path))


def test_multi_level_inheritance_includes_and_modules(site: Loader) -> None:
    modules = Modules()
    users = [
        {"name": "ann", "hidden": False},
        {"name": "<script>alert(1)</script>", "hidden": False},
        {"name": "ghost", "hidden": True},
        {"name": "stop", "hidden": False},
        {"name": "never", "hidden": False},
    ]
    html = (
        site.load("page.html")
        .generate(users=users, year=2026, site_name="A&B", current="home", _tt_modules=modules)
        .decode()
    )
    assert html == (
        "<html><head><title>Users - Site</title></head>\n"
        '<body><nav><a href="/">A&amp;B</a><i>home</i></nav><main><ul><li>ann</li>'
        "<li>&lt;script&gt;alert(1)&lt;/script&gt;</li></ul>"
        '<span class="badge">users:5</span></main>\n'
        "<footer>(c) 2026</footer></body></html>\n"
    )
    assert modules.calls == [("users", 5)]


def test_middle_template_renders_its_own_defaults(site: Loader) -> None:
    html = site.load("layout.html").generate(year=1, site_name="S", current="c").decode()
    assert "<title>Section - Site</title>" in html
    assert "<main></main>" in html


def test_included_relative_paths_resolve_against_the_including_file(site: Loader) -> None:
    assert site.resolve_path("item.html", "parts/nav.html") == "parts/item.html"
    assert site.resolve_path("../base.html", "parts/nav.html") == "base.html"
    assert site.resolve_path("/abs.html", "parts/nav.html") == "/abs.html"
    assert site.resolve_path("x.html", "<string>") == "x.html"


def test_loader_caches_and_reset_rereads(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.html": "one {{ x }}"})
    loader = Loader(str(tmp_path))
    first = loader.load("a.html")
    assert loader.load("a.html") is first
    (tmp_path / "a.html").write_text("two {{ x }}")
    assert loader.load("a.html").generate(x=1) == b"one 1"
    loader.reset()
    assert loader.load("a.html").generate(x=1) == b"two 1"
    with pytest.raises(FileNotFoundError):
        loader.load("missing.html")


def test_dict_loader_caching_reset_and_relative_names() -> None:
    sources = {"a/b.html": '{% include "c.html" %}!', "a/c.html": "C{{ 1 }}"}
    loader = DictLoader(sources)
    template = loader.load("a/b.html")
    assert template.generate() == b"C1!"
    assert loader.load("a/b.html") is template
    assert set(loader.templates) == {"a/b.html", "a/c.html"}
    loader.reset()
    assert loader.templates == {}
    assert loader.load("a/b.html") is not template
    with pytest.raises(KeyError):
        loader.load("nope.html")


def test_loader_cache_is_shared_between_threads() -> None:
    loader = DictLoader({"t.html": "{% for i in range(3) %}{{ i }}{% end %}"})
    results: list[Template] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(loader.load("t.html"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8
    assert all(t is results[0] for t in results)
    assert results[0].generate() == b"012"


def test_base_loader_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        BaseLoader().load("x")


# -- the language ------------------------------------------------------------------------------


def test_expressions_and_conversions() -> None:
    out = render("{{ b'bytes' }} {{ None }} {{ 3.5 }} {{ [1, '<'] }} {% raw b'<x>' %}")
    assert out == "bytes None 3.5 [1, &#x27;&lt;&#x27;] <x>"
    assert render("{{ (1,\n 2) }}|{{ 'é日' }}é") == "(1, 2)|é日é"
    assert Template("{{ 'é' }}").generate() == "é".encode()


def test_if_elif_else_for_else_while_set() -> None:
    source = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}other{% end %}"
    assert [render(source, x=n) for n in (1, 2, 3)] == ["one", "two", "other"]
    assert render("{% for i in [] %}x{% else %}empty{% end %}") == "empty"
    assert render("{% set n = 3 %}{% while n %}{{ n }}{% set n -= 1 %}{% end %}") == "321"
    assert render("{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }},{% end %}") == "3,7,"


def test_break_and_continue() -> None:
    source = (
        "{% for i in range(10) %}{% if i % 2 %}{% continue %}{% end %}"
        "{% if i > 6 %}{% break %}{% end %}{{ i }}{% end %}"
    )
    assert render(source) == "0246"
    source = (
        "{% set i = 0 %}{% while True %}{% set i += 1 %}"
        "{% if i > 3 %}{% break %}{% end %}{{ i }}{% end %}"
    )
    assert render(source) == "123"
    # break inside a try inside a loop is still inside the loop
    assert (
        render("{% for i in [1, 2] %}{% try %}{{ i }}{% break %}{% finally %}f{% end %}{% end %}")
        == "1f"
    )


def test_try_except_else_finally() -> None:
    source = (
        "{% try %}{{ 10 // d }}{% except ZeroDivisionError as e %}div0"
        "{% else %}-ok{% finally %}-fin{% end %}"
    )
    assert render(source, d=2) == "5-ok-fin"
    assert render(source, d=0) == "div0-fin"


def test_import_and_from_import() -> None:
    assert render("{% import math %}{{ math.floor(2.5) }}") == "2"
    assert render("{% from os import path %}{{ path.join('a', 'b') }}") == "a/b"


def test_apply_nests_and_gets_bytes() -> None:
    seen: list[type] = []

    def upper(data: bytes) -> bytes:
        seen.append(type(data))
        return data.upper()

    out = render("{% apply upper %}hi {{ name }}{% end %}", upper=upper, name="<b>")
    assert out == "HI &LT;B&GT;"
    assert seen == [bytes]
    out = render(
        "{% apply upper %}{% apply lower %}X{% end %}y{% end %}",
        upper=lambda s: s.upper(),
        lower=lambda s: s.decode().lower(),  # a str result is fine too
    )
    assert out == "XY"


def test_comments_and_literal_escapes() -> None:
    out = render("a{# gone {{ x }} #}b{% comment also gone %}c {{! raw }} {%! y %} {#! z #}")
    assert out == "abc {{ raw }} {% y %} {# z #}"
    # of a run of braces the innermost pair opens the tag
    assert render("{{{ x }}} {", x=1) == "{1} {"


def test_module_directive_calls_tt_modules() -> None:
    modules = Modules()
    out = render("{% module Badge('<new>', count=2) %}", _tt_modules=modules)
    assert out == '<span class="badge"><new>:2</span>'  # module output is not escaped


def test_default_namespace_helpers() -> None:
    out = render(
        "{{ linkify('see http://x.com') }}|{% raw linkify('http://x.com?a=1&b=2') %}|"
        "{{ squeeze('a   b') }}|{{ url_escape('a b') }}|{% raw json_encode('</script>') %}|"
        "{{ escape('<') }}|{{ xhtml_escape('&') }}|{{ __name__ }}|{{ datetime.date(2020, 1, 2) }}",
        template_name="n.html",
    )
    assert out == (
        "see &lt;a href=&quot;http://x.com&quot;&gt;http://x.com&lt;/a&gt;|"
        '<a href="http://x.com?a=1&amp;b=2">http://x.com?a=1&amp;b=2</a>|'
        'a b|a+b|"<\\/script>"|&amp;lt;|&amp;amp;|n_html|2020-01-02'
    )


# -- escaping ----------------------------------------------------------------------------------

HOSTILE = [
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "&lt;already-escaped&gt;",
    "</textarea><svg/onload=alert(1)>",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_input_is_escaped_in_text_and_attributes(payload: str) -> None:
    out = render(
        "<div title=\"{{ v }}\" data-x='{{ v }}'>{{ v }}</div>", template_name="x.html", v=payload
    )
    inner = out[len("<div ") :]
    for char in "<>\"'":
        assert char not in inner.replace("</div>", "").replace('title="', "").replace(
            "\" data-x='", ""
        ).replace("'>", "")
    assert "<script" not in out and "<img" not in out and "<svg" not in out


def test_hostile_bytes_and_objects_are_escaped() -> None:
    class Evil:
        def __str__(self) -> str:
            return "<b onclick=x>"

    assert render("{{ v }}{{ w }}", v=b"<i>", w=Evil()) == "&lt;i&gt;&lt;b onclick=x&gt;"


def test_autoescape_settings() -> None:
    assert _DEFAULT_AUTOESCAPE == "xhtml_escape"
    assert Template("{{ v }}", autoescape=None).generate(v="<b>") == b"<b>"
    assert render("{% autoescape None %}{{ v }}", v="<b>") == "<b>"
    assert render("{{ v }}{% autoescape xhtml_escape %}", v="<b>") == "&lt;b&gt;"
    loader = DictLoader({"a.html": "{{ v }}", "b.html": "{% include 'a.html' %}"}, autoescape=None)
    assert loader.load("b.html").generate(v="<b>") == b"<b>"


def test_custom_autoescape_function_gets_bytes() -> None:
    received: list[Any] = []

    def shout(value: Any) -> str:
        received.append(value)
        return value.decode().upper()

    loader = DictLoader({"t.txt": "{% autoescape shout %}{{ v }} {% raw v %}"})
    assert loader.load("t.txt").generate(v="hi", shout=shout) == b"HI hi"
    assert received == [b"hi"]
    # a replacement xhtml_escape in the namespace is honoured, called with bytes
    out = Template("{{ v }}").generate(v="x", xhtml_escape=lambda b: b"[" + b + b"]")
    assert out == b"[x]"


def test_loader_namespace_and_kwargs() -> None:
    loader = DictLoader({"t.txt": "{{ greet(who) }}"}, namespace={"greet": lambda w: f"hi {w}"})
    assert loader.load("t.txt").generate(who="bo") == b"hi bo"


# -- whitespace --------------------------------------------------------------------------------


def test_filter_whitespace_modes() -> None:
    text = "a  \t b\n\n   c  \n d"
    assert filter_whitespace("all", text) == text
    assert filter_whitespace("single", text) == "a b\nc\nd"
    assert filter_whitespace("oneline", text) == "a b c d"
    with pytest.raises(ValueError, match="invalid whitespace mode"):
        filter_whitespace("bogus", text)


def test_whitespace_defaults_by_name_and_settings() -> None:
    source = "a   \n\n  b"
    assert Template(source, name="x.html").generate() == b"a\nb"
    assert Template(source, name="x.js").generate() == b"a\nb"
    assert Template(source, name="x.txt").generate() == source.encode()
    assert Template(source, name="x.html", whitespace="all").generate() == source.encode()
    assert Template(source, name="x.txt", compress_whitespace=True).generate() == b"a\nb"
    assert Template(source, name="x.html", compress_whitespace=False).generate() == source.encode()
    with pytest.raises(ValueError):
        Template(source, whitespace="all", compress_whitespace=True)
    loader = DictLoader({"x.txt": source}, whitespace="oneline")
    assert loader.load("x.txt").generate() == b"a b"
    # <pre> text keeps its spacing
    assert (
        render("<pre>a   \n\n b</pre>  \n\n c", template_name="p.html")
        == "<pre>a   \n\n b</pre>  \n\n c"
    )


def test_whitespace_directive() -> None:
    out = render("{% whitespace oneline %}a\n\n   b\n{% whitespace all %}c\n\n  d")
    assert out == "a b c\n\n  d"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("x\n{% if x %}", "Missing {% end %} block for if", 2),
        ("{% end %}", "Extra {% end %} block", 1),
        ("a\n\n{{ }}", "Empty expression", 3),
        ("{% %}", "Empty block tag ({% %})", 1),
        ("{% else %}", "{% else %} outside of an if/for/while/try block", 1),
        ("\n{% foo bar %}", "unknown operator: 'foo'", 2),
        ("{{ x", "Missing end expression }}", 1),
        ("{% if x", "Missing end block %}", 1),
        ("{# x", "Missing end comment #}", 1),
        ("{% if 1 %}\n{% except %}{% end %}", "{% except %} cannot be used in a {% if %} block", 2),
        ("a\n{% break %}", "{% break %} outside of a for/while loop", 2),
        ("{% for i in x %}{% apply f %}{% continue %}{% end %}{% end %}", "{% continue %}", 1),
        ("{% include %}", "include missing file path", 1),
        ("{% block %}{% end %}", "block missing name", 1),
        ("{% if %}{% end %}", "if missing expression", 1),
        ("{% set %}", "set missing statement", 1),
        ("x\n{% whitespace bogus %}", "invalid whitespace mode bogus", 2),
        ("x\n\n{{ 1 + }}", "invalid Python in template", 3),
        ("{% for x in %}{% end %}", "invalid Python in template", 1),
        ("{% extends 'x.html' %}", "{% extends %} block found, but no template loader", 1),
        ("{% include 'x.html' %}", "{% include %} needs a template loader", 1),
    ],
)
def test_parse_errors_name_template_and_line(source: str, message: str, line: int) -> None:
    with pytest.raises(ParseError) as info:
        Template(source, name="bad.html")
    assert message in info.value.message
    assert info.value.filename == "bad.html"
    assert info.value.lineno == line
    assert str(info.value) == f"{info.value.message} at bad.html:{line}"


def test_syntax_error_in_a_file_names_the_file(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"page.html": '{% extends "base.html" %}', "base.html": "ok\n\n{% if x ==  %}{% end %}"},
    )
    with pytest.raises(ParseError) as info:
        Loader(str(tmp_path)).load("page.html")
    assert (info.value.filename, info.value.lineno) == ("base.html", 3)


def test_include_and_extends_cycles_are_reported() -> None:
    loader = DictLoader({"a.html": "{% include 'b.html' %}", "b.html": "{% include 'a.html' %}"})
    with pytest.raises(ParseError, match="itself"):
        loader.load("a.html")
    loader = DictLoader({"s.html": "x{% include 's.html' %}"})
    with pytest.raises(ParseError, match="itself"):
        loader.load("s.html")
    loader = DictLoader({"a.html": "{% extends 'b.html' %}", "b.html": "{% extends 'a.html' %}"})
    with pytest.raises(ParseError, match="itself"):
        loader.load("a.html")


def test_runtime_error_points_at_the_template_line(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "base.html": "<h1>\n{% block body %}{% end %}\n</h1>",
            "page.html": (
                '{% extends "base.html" %}\n{% block body %}\nline three\n'
                "{{ user.missing_attribute }}\n{% end %}"
            ),
        },
    )
    template = Loader(str(tmp_path)).load("page.html")
    with pytest.raises(AttributeError) as info:
        template.generate(user=object())
    formatted = "".join(traceback.format_exception(info.value))
    # the generated line in the traceback carries the template name and line
    assert re.search(r"_tt_\w+ = user.missing_attribute  # page.html:4", formatted)
    if sys.version_info >= (3, 11):
        assert info.value.__notes__ == ["in template page.html, line 4"]
    assert "page.html:4" in template.code


def test_runtime_error_in_an_included_template() -> None:
    loader = DictLoader(
        {"outer.html": "a\n{% include 'inner.html' %}", "inner.html": "\n\n{{ 1 // z }}"}
    )
    with pytest.raises(ZeroDivisionError) as info:
        loader.load("outer.html").generate(z=0)
    formatted = "".join(traceback.format_exception(info.value))
    assert "# inner.html:3 (via outer.html:2)" in formatted
    if sys.version_info >= (3, 11):
        assert info.value.__notes__ == ["in template inner.html, line 3"]


def test_undefined_name_is_a_name_error() -> None:
    with pytest.raises(NameError, match="nobody"):
        Template("{{ nobody }}").generate()


# -- text and expressions written together -----------------------------------------------------

_PLAIN_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda t: "{" not in t
)


@given(_PLAIN_TEXT, _PLAIN_TEXT, st.text(max_size=20))
def test_text_around_expressions_is_kept_exactly(before: str, after: str, value: str) -> None:
    # quotes, backslashes, closing braces and newlines in text must survive code generation
    out = render(before + "{{ v }}" + after + "{% raw v %}}", v=value)
    assert out == before + xhtml_escape(value) + after + value + "}"


def test_text_before_a_failing_expression_in_try_is_kept() -> None:
    source = "{% try %}<b>{{ 1 // z }}</b>{% except ZeroDivisionError %}n/a{% end %}!"
    assert render(source, z=0) == "<b>n/a!"
    assert render(source, z=1) == "<b>1</b>!"


def test_consecutive_expressions_evaluate_in_order() -> None:
    calls: list[int] = []

    def note(n: int) -> int:
        calls.append(n)
        return n

    assert render("{{ note(1) }}-{{ note(2) }}{% raw note(3) %}", note=note) == "1-23"
    assert calls == [1, 2, 3]


def test_loader_settings_pass_through_to_file_templates(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.html": "{{ v }}  \n\n  {{ double(2) }}"})
    loader = Loader(
        str(tmp_path), autoescape=None, whitespace="all", namespace={"double": lambda n: n * 2}
    )
    assert loader.load("a.html").generate(v="<b>") == b"<b>  \n\n  4"
    # the loader's namespace is read at render time
    loader.namespace["double"] = lambda n: n * 3
    assert loader.load("a.html").generate(v="") == b"  \n\n  6"


def test_bytes_source_and_public_attributes() -> None:
    template = Template("caf\xe9 {{ x }}".encode(), name="b.txt")
    assert template.generate(x=1) == "café 1".encode()
    assert template.name == "b.txt"
    assert template.autoescape == "xhtml_escape"
    assert "def _tt_execute():" in template.code
    assert template.compiled.co_filename == "b_txt.generated.py"
