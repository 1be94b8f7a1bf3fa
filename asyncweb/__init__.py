"""asyncweb: Tornado's programming model, natively on asyncio.

Submodules load on first attribute access (``import asyncweb; asyncweb.web.Application``), as
``tornado``'s do since Tornado 6.3.
"""

from __future__ import annotations

import importlib
from typing import Any

# asyncweb's own release. Under the drop-in, ``tornado.version``/``version_info`` instead report
# the Tornado API level asyncweb implements (asyncweb.dropin.TORNADO_VERSION).
version = "0.1.0"
version_info = (0, 1, 0, 0)

# Tornado's public submodules that asyncweb has (Tornado's ``__all__`` less curl_httpclient),
# which ``from asyncweb import *`` imports.
__all__ = [
    "auth",
    "autoreload",
    "concurrent",
    "escape",
    "gen",
    "http1connection",
    "httpclient",
    "httpserver",
    "httputil",
    "ioloop",
    "iostream",
    "locale",
    "locks",
    "log",
    "netutil",
    "options",
    "platform",
    "process",
    "queues",
    "routing",
    "simple_httpclient",
    "tcpclient",
    "tcpserver",
    "template",
    "testing",
    "util",
    "web",
]

# Every name attribute access may import: the above, the two Tornado leaves out of its
# ``__all__``, and asyncweb's own modules.
SUBMODULES = frozenset(
    [*__all__, "websocket", "wsgi", "asgi", "cli", "database", "dropin", "protocol", "pubsub"]
)


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | SUBMODULES)
