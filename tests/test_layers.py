"""The layering in docs/architecture.md, checked on the source: imports point down only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asyncweb"

# What each layer's modules may never import (at any depth: module level or inside functions).
FRAMEWORK = {
    "asyncweb.web",
    "asyncweb.routing",
    "asyncweb.template",
    "asyncweb.locale",
    "asyncweb.websocket",
    "asyncweb.auth",
    "asyncweb.wsgi",
    "asyncweb.asgi",
    "asyncweb.database",
}
OPERATIONS = {"asyncweb.cli", "asyncweb.pubsub", "asyncweb.pytest_plugin"}
FORBIDDEN = {
    "protocol": lambda name: not name.startswith("asyncweb.protocol"),
    "http": lambda name: any(name == m or name.startswith(m + ".") for m in FRAMEWORK | OPERATIONS),
    "framework": lambda name: any(name == m or name.startswith(m + ".") for m in OPERATIONS),
}
LAYER_OF = {
    "protocol": sorted((PACKAGE / "protocol").glob("*.py")),
    "http": [
        *sorted((PACKAGE / "httputil").glob("*.py")),
        PACKAGE / "httpserver.py",
        PACKAGE / "httpclient.py",
        PACKAGE / "simple_httpclient.py",
    ],
    "framework": [
        *(
            path
            for m in sorted(FRAMEWORK)
            for path in (
                sorted((PACKAGE / m.split(".")[1]).glob("*.py"))
                or [PACKAGE / f"{m.split('.')[1]}.py"]
            )
        ),
    ],
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = "asyncweb." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            # "from asyncweb import web" imports the module asyncweb.web
            if module == "asyncweb":
                names.update(f"asyncweb.{alias.name}" for alias in node.names)
    return {n for n in names if n == "asyncweb" or n.startswith("asyncweb.")}


@pytest.mark.parametrize(
    ("layer", "path"),
    [(layer, path) for layer, paths in LAYER_OF.items() for path in paths],
    ids=lambda v: v.relative_to(PACKAGE).as_posix() if isinstance(v, Path) else v,
)
def test_imports_point_down(layer: str, path: Path) -> None:
    assert path.exists(), path
    upward = sorted(n for n in _imports(path) if n != "asyncweb" and FORBIDDEN[layer](n))
    assert not upward, f"{path.relative_to(PACKAGE.parent)} ({layer} layer) imports {upward}"


def test_the_check_sees_imports() -> None:
    # A guard that the scan itself works: web really imports the HTTP layer.
    assert "asyncweb.httputil" in _imports(PACKAGE / "web" / "handler.py")
    # and the httputil package's own modules are scanned: request builds on headers.
    assert "asyncweb.httputil.headers" in _imports(PACKAGE / "httputil" / "request.py")
