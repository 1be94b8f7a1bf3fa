"""The layering in docs/architecture.md, checked on the source: every module of asyncweb belongs
to exactly one layer and imports only from its own layer and the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "asyncweb"

# Bottom first. An entry is a module or a package (all of its modules); "asyncweb" is only the
# package's own __init__.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "leaves",
        ["asyncweb", "asyncweb.util", "asyncweb.log", "asyncweb.options", "asyncweb.escape"],
    ),
    ("loop", ["asyncweb.ioloop"]),
    ("protocol", ["asyncweb.protocol"]),
    (
        "http",
        [
            "asyncweb.httputil",
            "asyncweb.httpserver",
            "asyncweb.httpclient",
            "asyncweb.simple_httpclient",
            "asyncweb.listening",
            "asyncweb.prefork",
        ],
    ),
    (
        "faces",
        [
            "asyncweb.gen",
            "asyncweb.concurrent",
            "asyncweb.locks",
            "asyncweb.queues",
            "asyncweb.iostream",
            "asyncweb.tcpserver",
            "asyncweb.tcpclient",
            "asyncweb.netutil",
            "asyncweb.http1connection",
            "asyncweb.process",
            "asyncweb.autoreload",
            "asyncweb.platform",
            "asyncweb.testing",
            "asyncweb.dropin",
        ],
    ),
    (
        "framework",
        [
            "asyncweb.web",
            "asyncweb.routing",
            "asyncweb.template",
            "asyncweb.locale",
            "asyncweb.websocket",
            "asyncweb.auth",
            "asyncweb.wsgi",
            "asyncweb.asgi",
            "asyncweb.database",
        ],
    ),
    (
        "operations",
        ["asyncweb.cli", "asyncweb.pubsub", "asyncweb.pytest_plugin", "asyncweb.__main__"],
    ),
]
ORDER = [layer for layer, _ in LAYERS]
# The protocol layer is stricter than its place: it imports nothing of asyncweb but itself.
ONLY_ITSELF = {"protocol"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("asyncweb", *parts))


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _in(module: str, entry: str) -> bool:
    if entry == "asyncweb":
        return module == "asyncweb"
    return module == entry or module.startswith(entry + ".")


def _layers_of(module: str) -> list[str]:
    return [layer for layer, entries in LAYERS for entry in entries if _in(module, entry)]


def _imports(path: Path) -> set[str]:
    """The asyncweb modules ``path`` imports, at any depth (module level or in functions)."""
    tree = ast.parse(path.read_text(), str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            # "from asyncweb.x import y" may import the module asyncweb.x.y
            names.update(f"{module}.{alias.name}" for alias in node.names)
    # Each name down to the module it is in: "asyncweb.version" is an attribute of the package.
    found: set[str] = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def _upward(module: str, imported: set[str]) -> list[str]:
    """What ``module`` imports against the rule of its layer."""
    (layer,) = _layers_of(module)
    allowed = {layer} if layer in ONLY_ITSELF else set(ORDER[: ORDER.index(layer) + 1])
    return sorted(
        name for name in imported if name != "asyncweb" and not set(_layers_of(name)) <= allowed
    )


def test_every_module_is_in_exactly_one_layer() -> None:
    placed = {module: _layers_of(module) for module in MODULES}
    unassigned = sorted(m for m, layers in placed.items() if not layers)
    doubled = sorted(m for m, layers in placed.items() if len(layers) > 1)
    assert not unassigned, f"add these modules to a layer in LAYERS: {unassigned}"
    assert not doubled, f"in more than one layer: {doubled}"
    stale = [e for _, entries in LAYERS for e in entries if e not in MODULES]
    assert not stale, f"LAYERS names modules that do not exist: {stale}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    upward = _upward(module, _imports(MODULES[module]))
    assert not upward, f"{module} ({_layers_of(module)[0]} layer) imports {upward}"


def test_the_check_sees_imports() -> None:
    # Guards that the scan and the rule work: web really imports the HTTP layer, the httputil
    # package's own modules are scanned, and a downward import would be caught going up.
    assert "asyncweb.httputil" in _imports(MODULES["asyncweb.web.handler"])
    assert "asyncweb.httputil.headers" in _imports(MODULES["asyncweb.httputil.request"])
    assert "asyncweb.version" not in _imports(MODULES["asyncweb.cli"])
    assert _upward("asyncweb.httpserver", {"asyncweb.netutil"}) == ["asyncweb.netutil"]
    assert _upward("asyncweb.protocol.http1", {"asyncweb.log"}) == ["asyncweb.log"]
    assert _upward("asyncweb.escape", {"asyncweb.httputil.urls"}) == ["asyncweb.httputil.urls"]
    assert _upward("asyncweb.web.handler", {"asyncweb.ioloop", "asyncweb.protocol"}) == []
    assert _upward("asyncweb.websocket.client", {"asyncweb.pubsub"}) == ["asyncweb.pubsub"]
