"""What the parser, the code writer and Template share: ParseError, the whitespace modes
(filter_whitespace) and the name of the default autoescape function."""

from __future__ import annotations

import re

_DEFAULT_AUTOESCAPE = "xhtml_escape"

_WHITESPACE_MODES = ("all", "single", "oneline")
_SPACE_RUN = re.compile(r"[\t ]+")
_LINE_BREAK_RUN = re.compile(r"\s*\n\s*")
_ANY_SPACE_RUN = re.compile(r"\s+")


def filter_whitespace(mode: str, text: str) -> str:
    """Apply a whitespace mode to template text.

    ``all`` keeps the text as it is; ``single`` collapses each run of whitespace to one
    character, keeping a newline when the run had one; ``oneline`` collapses every run,
    newlines included, to one space.
    """
    if mode == "all":
        return text
    if mode == "single":
        return _LINE_BREAK_RUN.sub("\n", _SPACE_RUN.sub(" ", text))
    if mode == "oneline":
        return _ANY_SPACE_RUN.sub(" ", text)
    raise ValueError(f"invalid whitespace mode {mode}")


class ParseError(Exception):
    """A template could not be parsed or compiled; names the template and the line."""

    def __init__(self, message: str, filename: str | None = None, lineno: int = 0) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno
        super().__init__(message, filename, lineno)

    def __str__(self) -> str:
        return f"{self.message} at {self.filename}:{self.lineno}"
