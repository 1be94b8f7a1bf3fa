"""The reader and parser: template source to a tree of nodes (``_parse``), with the tables of
directives and the syntax errors it reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncweb.template._common import ParseError, filter_whitespace
from asyncweb.template.nodes import (
    _Apply,
    _Body,
    _Compound,
    _Expression,
    _Extends,
    _Include,
    _NamedBlock,
    _Node,
    _Statement,
    _Text,
)

if TYPE_CHECKING:
    from asyncweb.template import Template


# -- parser -----------------------------------------------------------------------------------


class _Reader:
    """The template source with a cursor and the current line number."""

    def __init__(self, name: str, text: str, whitespace: str) -> None:
        self.name = name
        self.text = text
        self.whitespace = whitespace
        self.pos = 0
        self.line = 1

    def find(self, needle: str, start: int = 0) -> int:
        index = self.text.find(needle, self.pos + start)
        return -1 if index == -1 else index - self.pos

    def consume(self, count: int | None = None) -> str:
        end = len(self.text) if count is None else self.pos + count
        chunk = self.text[self.pos : end]
        self.line += chunk.count("\n")
        self.pos = end
        return chunk

    def remaining(self) -> int:
        return len(self.text) - self.pos

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def error(self, message: str, line: int | None = None) -> ParseError:
        return ParseError(message, self.name, self.line if line is None else line)


# Directives that open a block closed by {% end %}, and the clauses that may continue one.
_BLOCK_OPENERS = ("apply", "block", "try", "if", "for", "while")
_CLAUSES = {
    "else": ("if", "for", "while", "try"),
    "elif": ("if",),
    "except": ("try",),
    "finally": ("try",),
}
_NEEDS_EXPRESSION = ("if", "elif", "for", "while")


class _Stop:
    """Why a nested parse returned: ``{% end %}`` or a clause such as ``{% else %}``."""

    def __init__(self, operator: str, suffix: str, line: int) -> None:
        self.operator = operator
        self.suffix = suffix
        self.line = line


def _parse(
    reader: _Reader, template: Template, in_block: str | None = None, in_loop: bool = False
) -> _Body:
    body, stop = _parse_until(reader, template, in_block, in_loop)
    if stop is not None:  # only a top-level parse gets here, with a stray end/clause
        raise reader.error(f"{{% {stop.operator} %}} outside of any block", stop.line)
    return body


def _parse_until(
    reader: _Reader, template: Template, in_block: str | None, in_loop: bool
) -> tuple[_Body, _Stop | None]:
    nodes: list[_Node] = []
    while True:
        # Find the next "{{", "{%" or "{#"; of several "{" in a row the last two count.
        curly = 0
        while True:
            curly = reader.find("{", curly)
            if curly == -1 or curly + 1 == reader.remaining():
                if in_block:
                    raise reader.error(f"Missing {{% end %}} block for {in_block}")
                nodes.append(_Text(reader.consume(), reader.line, reader.whitespace))
                return _Body(nodes), None
            if reader.peek(curly + 1) not in ("{", "%", "#"):
                curly += 1
                continue
            if (
                curly + 2 < reader.remaining()
                and reader.peek(curly + 1) == "{"
                and reader.peek(curly + 2) == "{"
            ):
                curly += 1
                continue
            break

        if curly > 0:
            line = reader.line
            nodes.append(_Text(reader.consume(curly), line, reader.whitespace))

        start_brace = reader.consume(2)
        line = reader.line

        # "{{!", "{%!" and "{#!" write the braces literally.
        if reader.peek() == "!":
            reader.consume(1)
            nodes.append(_Text(start_brace, line, reader.whitespace))
            continue

        if start_brace == "{#":
            end = reader.find("#}")
            if end == -1:
                raise reader.error("Missing end comment #}", line)
            reader.consume(end + 2)
            continue

        if start_brace == "{{":
            end = reader.find("}}")
            if end == -1:
                raise reader.error("Missing end expression }}", line)
            contents = reader.consume(end).strip()
            reader.consume(2)
            if not contents:
                raise reader.error("Empty expression", line)
            nodes.append(_Expression(contents, line))
            continue

        end = reader.find("%}")
        if end == -1:
            raise reader.error("Missing end block %}", line)
        contents = reader.consume(end).strip()
        reader.consume(2)
        if not contents:
            raise reader.error("Empty block tag ({% %})", line)
        operator, _, suffix = contents.partition(" ")
        suffix = suffix.strip()

        if operator in _CLAUSES or operator == "end":
            if in_block is None:
                if operator == "end":
                    raise reader.error("Extra {% end %} block", line)
                raise reader.error(
                    f"{{% {operator} %}} outside of an {'/'.join(_CLAUSES[operator])} block", line
                )
            if operator != "end" and in_block not in _CLAUSES[operator]:
                raise reader.error(
                    f"{{% {operator} %}} cannot be used in a {{% {in_block} %}} block", line
                )
            return _Body(nodes), _Stop(operator, suffix, line)

        if operator in _BLOCK_OPENERS:
            nodes.append(_parse_block(reader, template, operator, suffix, line, in_loop))
        elif operator in ("break", "continue"):
            if not in_loop:
                raise reader.error(f"{{% {operator} %}} outside of a for/while loop", line)
            nodes.append(_Statement(operator, line))
        elif operator == "comment":
            pass
        elif operator in ("extends", "include"):
            name = suffix.strip('"').strip("'")
            if not name:
                raise reader.error(f"{operator} missing file path", line)
            if operator == "extends":
                nodes.append(_Extends(name, line))
            else:
                nodes.append(_Include(name, template, line))
        elif operator in ("set", "import", "from"):
            if not suffix:
                raise reader.error(f"{operator} missing statement", line)
            code = suffix if operator == "set" else contents
            nodes.append(_Statement(code, line))
        elif operator == "autoescape":
            # As in Tornado, this sets the mode for the whole file.
            template.autoescape = None if suffix == "None" else suffix or None
        elif operator == "whitespace":
            try:
                filter_whitespace(suffix, "")
            except ValueError as err:
                raise reader.error(str(err), line) from None
            reader.whitespace = suffix
        elif operator == "raw":
            if not suffix:
                raise reader.error("raw missing expression", line)
            nodes.append(_Expression(suffix, line, raw=True))
        elif operator == "module":
            if not suffix:
                raise reader.error("module missing expression", line)
            nodes.append(_Expression("_tt_modules." + suffix, line, raw=True))
        else:
            raise reader.error(f"unknown operator: {operator!r}", line)


def _parse_block(
    reader: _Reader, template: Template, operator: str, suffix: str, line: int, in_loop: bool
) -> _Node:
    if operator in _NEEDS_EXPRESSION and not suffix:
        raise reader.error(f"{operator} missing expression", line)
    if operator == "apply":
        if not suffix:
            raise reader.error("apply missing method name", line)
        # The body becomes a nested function: break/continue cannot reach a loop outside it.
        body, _ = _parse_until(reader, template, operator, False)
        return _Apply(suffix, line, body)
    if operator == "block":
        if not suffix:
            raise reader.error("block missing name", line)
        body, _ = _parse_until(reader, template, operator, in_loop)
        return _NamedBlock(suffix, body, template, line)

    loop = in_loop or operator in ("for", "while")
    clauses: list[tuple[str, int, _Body]] = []
    header = f"{operator} {suffix}" if suffix else operator
    while True:
        body, stop = _parse_until(reader, template, operator, loop)
        clauses.append((header, line, body))
        assert stop is not None
        if stop.operator == "end":
            return _Compound(clauses)
        if stop.operator in _NEEDS_EXPRESSION and not stop.suffix:
            raise reader.error(f"{stop.operator} missing expression", stop.line)
        header = f"{stop.operator} {stop.suffix}" if stop.suffix else stop.operator
        line = stop.line
