"""What rendered templates call: the escaping and text helpers, and the namespace every
template starts from (TEMPLATE_HELPERS and the ``_tt_`` names)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from asyncweb import escape

# -- runtime helpers the generated code calls --------------------------------------------------


def _to_text(value: Any) -> str:
    """What ``{{ value }}`` writes before escaping: bytes are UTF-8 text, others ``str()``."""
    if value.__class__ is bytes:
        return value.decode("utf-8")
    return str(value)


def _escape_value(value: Any) -> str:
    """``{{ value }}`` under the stock ``xhtml_escape``, in one call for the common types."""
    cls = value.__class__
    if cls is not str:
        if cls is int or cls is float:  # exact types: their str() has nothing to escape
            return str(value)
        value = _to_text(value)
    text: str = value
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def _bind_xhtml_escape(func: Callable[[Any], Any]) -> Callable[[Any], str]:
    """The escape function for ``autoescape xhtml_escape`` in one rendering.

    The stock escape takes any value (:func:`_escape_value`). A replacement passed in the
    namespace is called the way Tornado calls an autoescape function: with UTF-8 bytes, its
    result made text.
    """
    if func is escape.xhtml_escape:
        return _escape_value

    def custom(value: Any) -> str:
        return _to_text(func(_to_text(value).encode("utf-8")))

    return custom


# The helpers every template sees; RequestHandler.get_template_namespace offers the same ones.
TEMPLATE_HELPERS: dict[str, Any] = {
    "escape": escape.xhtml_escape,
    "xhtml_escape": escape.xhtml_escape,
    "url_escape": escape.url_escape,
    "json_encode": escape.json_encode,
    "squeeze": escape.squeeze,
    "linkify": escape.linkify,
    "datetime": datetime,
}

_BASE_NAMESPACE: dict[str, Any] = {
    **TEMPLATE_HELPERS,
    "_tt_utf8": escape.utf8,
    "_tt_string_types": (str, bytes),
    "_tt_text": _to_text,
    "_tt_bind_xhtml": _bind_xhtml_escape,
}
