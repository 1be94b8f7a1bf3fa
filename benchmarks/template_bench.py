"""Template rendering speed: asyncweb.template next to Tornado's template engine and Jinja2.

Each engine renders the same page: a child template extending a base layout, with a loop of
100 table rows, every value autoescaped (a third of them hold characters that need escaping).
Each engine produces bytes (Jinja2's str is encoded), and all three outputs are checked to be
the same HTML before timing. Reports the median of several ``timeit`` repeats per engine and
the ratios, and writes ``benchmarks/template_results.md``.

    benchmarks/.venv/bin/python benchmarks/template_bench.py [--repeats N] [--output FILE]

Runs in well under 30 s. The figures are indicative: the machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # asyncweb from this checkout

import jinja2  # noqa: E402
import tornado  # noqa: E402
import tornado.template  # noqa: E402

import asyncweb.template  # noqa: E402

BASE = """<!DOCTYPE html>
<html>
<head><title>{% block title %}Site{% end %}</title></head>
<body>
<header><h1>{{ site_name }}</h1></header>
<main>{% block body %}{% end %}</main>
<footer>{{ footer }}</footer>
</body>
</html>
"""

ROW = (
    "<tr class=\"{{ row['kind'] }}\"><td>{{ row['id'] }}</td><td>{{ row['name'] }}</td>"
    "<td>{{ row['email'] }}</td><td>{{ row['score'] }}</td></tr>"
)

PAGE = (
    '{% extends "base.html" %}\n'
    "{% block title %}{{ title }}{% end %}\n"
    "{% block body %}\n"
    "<table>\n"
    "{% for row in rows %}\n" + ROW + "\n{% end %}\n"
    "</table>\n"
    "{% end %}\n"
)


def jinja_templates() -> dict[str, str]:
    base = BASE.replace("{% end %}", "{% endblock %}")
    page = PAGE.replace("{% end %}", "{% endblock %}")
    # The for loop's end is the only {% end %} that is not a block's.
    page = page.replace("</tr>\n{% endblock %}", "</tr>\n{% endfor %}")
    return {"base.html": base, "page.html": page}


def context() -> dict[str, object]:
    rows = [
        {
            "id": i,
            "name": f"User <{i}> & co" if i % 3 == 0 else f"User number {i}",
            "email": f"user{i}@example.com",
            "score": i * 7 % 101,
            "kind": "odd" if i % 2 else "even",
        }
        for i in range(100)
    ]
    return {
        "rows": rows,
        "title": "Users & scores",
        "site_name": "Example <site>",
        "footer": '(c) 2026 "Example" Ltd\'s',
    }


def engines() -> dict[str, Callable[[], bytes]]:
    names = context()
    sources = {"base.html": BASE, "page.html": PAGE}
    ours = asyncweb.template.DictLoader(sources).load("page.html")
    theirs = tornado.template.DictLoader(sources).load("page.html")
    env = jinja2.Environment(
        loader=jinja2.DictLoader(jinja_templates()), autoescape=True, auto_reload=False
    )
    jinja_page = env.get_template("page.html")
    return {
        "asyncweb": lambda: ours.generate(**names),
        "tornado": lambda: theirs.generate(**names),
        "jinja2": lambda: jinja_page.render(**names).encode("utf-8"),
    }


def normalized(html: bytes) -> bytes:
    """Whitespace-insensitive form (the engines differ only in blank lines around tags)."""
    return b"".join(html.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default=str(HERE / "template_results.md"))
    args = parser.parse_args()

    funcs = engines()
    outputs = {name: func() for name, func in funcs.items()}
    # Tornado escapes quotes as asyncweb does; Jinja2 (markupsafe) writes &#39; and &#34;.
    reference = normalized(outputs["asyncweb"])
    assert normalized(outputs["tornado"]) == reference, "asyncweb and Tornado disagree"
    jinja_html = normalized(outputs["jinja2"]).replace(b"&#39;", b"&#x27;")
    assert jinja_html.replace(b"&#34;", b"&quot;") == reference, "asyncweb and Jinja2 disagree"

    # Calibrate each engine to ~0.2 s per repeat, then take turns, so that load from other
    # processes on a shared machine falls on all engines alike.
    numbers = {name: timeit.Timer(func).autorange()[0] for name, func in funcs.items()}
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(args.repeats):
        for name, func in funcs.items():
            seconds = timeit.timeit(func, number=numbers[name])
            samples[name].append(seconds / numbers[name] * 1e6)
    results = {name: statistics.median(times) for name, times in samples.items()}
    for name, micros in results.items():
        print(f"{name:10s} {micros:8.1f} us/render  (median of {args.repeats} x {numbers[name]})")

    ours = results["asyncweb"]
    lines = [
        "## Template rendering",
        "",
        f"{datetime.date.today().isoformat()}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs (shared machine: figures are indicative). "
        f"Tornado {tornado.version}, Jinja2 {jinja2.__version__}.",
        "",
        "A page extending a base layout with a loop of 100 table rows (5 autoescaped values "
        f"each), {len(outputs['asyncweb'])} bytes of HTML; median of {args.repeats} timeit "
        "repeats; `benchmarks/.venv/bin/python benchmarks/template_bench.py`.",
        "",
        "| engine | us per render | renders/s | asyncweb is faster by |",
        "|---|---:|---:|---:|",
    ]
    for name, micros in results.items():
        ratio = "-" if name == "asyncweb" else f"{micros / ours:.2f}x"
        lines.append(f"| {name} | {micros:.1f} | {1e6 / micros:,.0f} | {ratio} |")
    lines.append("")
    report = "\n".join(lines)
    Path(args.output).write_text(report, encoding="utf-8")
    print()
    print(report)


if __name__ == "__main__":
    main()
