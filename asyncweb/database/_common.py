"""What both forms share: rows, the exception names, and the placeholder translation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Error",
    "IntegrityError",
    "OperationalError",
    "ProgrammingError",
    "Row",
    "translate",
]


class Row(dict[str, Any]):
    """A result row: a dict whose columns are also attributes (``row.title``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Error(Exception):
    """Base of the errors raised by ``asyncweb.database``, whatever the driver."""


class OperationalError(Error):
    """The server is unreachable, the connection broke, a lock timed out."""


class IntegrityError(Error):
    """A constraint refused the statement (duplicate key, NOT NULL, foreign key)."""


class ProgrammingError(Error):
    """The statement is wrong: syntax, a missing table or column, wrong parameters."""


# One query text for every backend: ``%s`` takes the next positional parameter, ``%(name)s``
# the keyword parameter ``name`` and ``%%`` is a literal percent sign (Tornado's MySQLdb rules).
_PLACEHOLDER = re.compile(r"%(?:(s)|\((\w+)\)s|(%)|(.?))", re.DOTALL)


def translate(
    sql: str, args: Sequence[Any], kwargs: Mapping[str, Any], style: str
) -> tuple[str, list[Any]]:
    """``sql`` in the driver's ``style`` (``qmark``: ``?``, ``numeric``: ``$1``, ``format``:
    ``%s``) and the parameter list that goes with it. Values never enter the text."""
    if args and kwargs:
        raise ProgrammingError("pass parameters either by position or by name, not both")
    params: list[Any] = []
    numbers: dict[str, int] = {}
    position = 0

    def mark(value: Any, name: str | None) -> str:
        if style == "numeric" and name is not None and name in numbers:
            return f"${numbers[name]}"
        params.append(value)
        if style == "numeric":
            if name is not None:
                numbers[name] = len(params)
            return f"${len(params)}"
        return "?" if style == "qmark" else "%s"

    def replace(match: re.Match[str]) -> str:
        nonlocal position
        positional, name, percent, other = match.groups()
        if percent:
            return "%%" if style == "format" else "%"
        if positional:
            if position >= len(args):
                raise ProgrammingError("not enough parameters for the query")
            position += 1
            return mark(args[position - 1], None)
        if name is not None:
            if name not in kwargs:
                raise ProgrammingError(f"no parameter named {name!r}")
            return mark(kwargs[name], name)
        raise ProgrammingError(f"bad placeholder %{other} (write %% for a literal percent sign)")

    text = _PLACEHOLDER.sub(replace, sql)
    if position != len(args):
        raise ProgrammingError("more parameters than placeholders in the query")
    return text, params
