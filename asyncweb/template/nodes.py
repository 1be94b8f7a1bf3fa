"""The parse tree of a template (a node class per construct) and the code writer that turns
it into the Python source of one function, ``_tt_execute``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from asyncweb.template._common import _DEFAULT_AUTOESCAPE, ParseError, filter_whitespace

if TYPE_CHECKING:
    from asyncweb.template import BaseLoader, Template


# -- parse tree -------------------------------------------------------------------------------


class _Node:
    line = 0

    def children(self) -> list[_Node]:
        return []

    def generate(self, writer: _CodeWriter) -> None:
        raise NotImplementedError()

    def find_named_blocks(
        self, loader: BaseLoader | None, blocks: dict[str, _NamedBlock], seen: set[int]
    ) -> None:
        for child in self.children():
            child.find_named_blocks(loader, blocks, seen)


class _Body(_Node):
    def __init__(self, nodes: list[_Node]) -> None:
        self.nodes = nodes

    def children(self) -> list[_Node]:
        return self.nodes

    def generate(self, writer: _CodeWriter) -> None:
        # Text and expressions in a row are written with one append of one f-string.
        run: list[_Text | _Expression] = []
        for node in self.nodes:
            if isinstance(node, (_Text, _Expression)):
                if not isinstance(node, _Text) or node.value:
                    run.append(node)
                continue
            _generate_run(writer, run)
            run = []
            node.generate(writer)
        _generate_run(writer, run)


_MERGEABLE_ESCAPE = re.compile(r"[\w.]+")


def _generate_run(writer: _CodeWriter, run: list[_Text | _Expression]) -> None:
    """Write consecutive text and expressions: their values into locals, then one append.

    Inside a ``try`` each part is appended as soon as it is ready (as Tornado does), so text
    before an expression that raises is kept.
    """
    mergeable = len(run) > 1 and not writer.in_try
    if mergeable:
        for node in run:
            escape_name = node.autoescape(writer) if isinstance(node, _Expression) else None
            if escape_name and not _MERGEABLE_ESCAPE.fullmatch(escape_name):
                mergeable = False
    if not mergeable:
        for node in run:
            node.generate(writer)
        return
    parts = []
    for index, node in enumerate(run):
        if isinstance(node, _Text):
            parts.append(_fstring_literal(node.value))
        else:
            name = f"_tt_t{index}"
            writer.write(f"{name} = {node.code}", node.line)
            parts.append("{" + node.text_code(name, writer) + "}")
    writer.write(f"_tt_append(f'{''.join(parts)}')", run[0].line)


def _fstring_literal(text: str) -> str:
    """``text`` as the body of a single-quoted f-string."""
    literal = repr(text)
    body = literal[1:-1]
    if literal[0] == '"':  # repr chose double quotes because text holds a single quote
        body = body.replace("'", "\\'")
    return body.replace("{", "{{").replace("}", "}}")


class _File(_Node):
    def __init__(self, template: Template, body: _Body) -> None:
        self.template = template
        self.body = body

    def children(self) -> list[_Node]:
        return [self.body]

    def generate(self, writer: _CodeWriter) -> None:
        self.body.generate(writer)


class _Text(_Node):
    def __init__(self, value: str, line: int, whitespace: str) -> None:
        # <pre> content is kept exactly, whatever the mode.
        self.value = value if "<pre>" in value else filter_whitespace(whitespace, value)
        self.line = line

    def generate(self, writer: _CodeWriter) -> None:
        if self.value:
            writer.write(f"_tt_append({self.value!r})", self.line)


class _Expression(_Node):
    def __init__(self, code: str, line: int, raw: bool = False) -> None:
        self.code = code
        self.line = line
        self.raw = raw

    def autoescape(self, writer: _CodeWriter) -> str | None:
        return None if self.raw else writer.current_template.autoescape

    def text_code(self, name: str, writer: _CodeWriter) -> str:
        """Code turning the value in local ``name`` into the str to write."""
        autoescape = self.autoescape(writer)
        if autoescape == _DEFAULT_AUTOESCAPE:
            writer.uses_xhtml_escape = True
            return f"_tt_xesc({name})"
        text = f"{name} if {name}.__class__ is str else _tt_text({name})"
        if autoescape is None:
            return text
        # Any other escape function is called as Tornado calls it: with UTF-8 bytes.
        return f"_tt_text({autoescape}(_tt_utf8({text})))"

    def generate(self, writer: _CodeWriter) -> None:
        writer.write(f"_tt_tmp = {self.code}", self.line)
        writer.write(f"_tt_append({self.text_code('_tt_tmp', writer)})", self.line)


class _Statement(_Node):
    def __init__(self, code: str, line: int) -> None:
        self.code = code
        self.line = line

    def generate(self, writer: _CodeWriter) -> None:
        writer.write(self.code, self.line)


class _Compound(_Node):
    """if/for/while/try: one or more clauses (``if x``, ``elif y``, ``else``), each with a body."""

    def __init__(self, clauses: list[tuple[str, int, _Body]]) -> None:
        self.clauses = clauses
        self.line = clauses[0][1]

    def children(self) -> list[_Node]:
        return [body for _, _, body in self.clauses]

    def generate(self, writer: _CodeWriter) -> None:
        is_try = self.clauses[0][0] == "try"
        writer.in_try += is_try
        try:
            for header, line, body in self.clauses:
                writer.write(f"{header}:", line)
                with writer.indented():
                    body.generate(writer)
                    writer.write("pass", line)
        finally:
            writer.in_try -= is_try


class _Apply(_Node):
    """``{% apply f %}``: the body renders to bytes, and ``f`` of those bytes is written."""

    def __init__(self, method: str, line: int, body: _Body) -> None:
        self.method = method
        self.line = line
        self.body = body

    def children(self) -> list[_Node]:
        return [self.body]

    def generate(self, writer: _CodeWriter) -> None:
        func = f"_tt_apply{writer.next_id()}"
        writer.write(f"def {func}():", self.line)
        with writer.indented():
            writer.write("_tt_buffer = []", self.line)
            writer.write("_tt_append = _tt_buffer.append", self.line)
            self.body.generate(writer)
            writer.write("return ''.join(_tt_buffer).encode('utf-8')", self.line)
        writer.write(f"_tt_append(_tt_text({self.method}({func}())))", self.line)


class _NamedBlock(_Node):
    def __init__(self, name: str, body: _Body, template: Template, line: int) -> None:
        self.name = name
        self.body = body
        self.template = template
        self.line = line

    def children(self) -> list[_Node]:
        return [self.body]

    def generate(self, writer: _CodeWriter) -> None:
        block = writer.named_blocks[self.name]
        with writer.including(block.template, self.line):
            block.body.generate(writer)

    def find_named_blocks(
        self, loader: BaseLoader | None, blocks: dict[str, _NamedBlock], seen: set[int]
    ) -> None:
        blocks[self.name] = self
        super().find_named_blocks(loader, blocks, seen)


class _Extends(_Node):
    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.line = line

    def generate(self, writer: _CodeWriter) -> None:
        pass


class _Include(_Node):
    def __init__(self, name: str, template: Template, line: int) -> None:
        self.name = name
        self.template = template
        self.line = line

    def _load(self, loader: BaseLoader | None) -> Template:
        if loader is None:
            raise ParseError("{% include %} needs a template loader", self.template.name, self.line)
        return loader.load(self.name, self.template.name)

    def find_named_blocks(
        self, loader: BaseLoader | None, blocks: dict[str, _NamedBlock], seen: set[int]
    ) -> None:
        included = self._load(loader)
        if id(included) not in seen:  # a cycle is reported by generate()
            seen.add(id(included))
            included.file.find_named_blocks(loader, blocks, seen)

    def generate(self, writer: _CodeWriter) -> None:
        included = self._load(writer.loader)
        if included is writer.current_template or included in writer.open_includes:
            raise ParseError(
                f"template {included.name} includes itself", self.template.name, self.line
            )
        writer.open_includes.append(included)
        try:
            with writer.including(included, self.line):
                included.file.body.generate(writer)
        finally:
            writer.open_includes.pop()


# -- code generation --------------------------------------------------------------------------


class _CodeWriter:
    """Writes the Python source of a template, with a map from its lines to template lines."""

    def __init__(self, template: Template, loader: BaseLoader | None) -> None:
        self.loader = loader
        self.current_template = template
        self.named_blocks: dict[str, _NamedBlock] = {}
        self.lines: list[str] = []
        self.line_map: dict[int, tuple[str, int]] = {}
        self.include_stack: list[tuple[Template, int]] = []
        self.open_includes: list[Template] = []
        self.uses_xhtml_escape = False
        self.in_try = 0
        self._indent = 1
        self._ids = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    @contextmanager
    def indented(self) -> Iterator[None]:
        self._indent += 1
        try:
            yield
        finally:
            self._indent -= 1

    @contextmanager
    def including(self, template: Template, line: int) -> Iterator[None]:
        self.include_stack.append((self.current_template, line))
        self.current_template = template
        try:
            yield
        finally:
            self.current_template = self.include_stack.pop()[0]

    def write(self, code: str, line: int) -> None:
        where = f"{self.current_template.name}:{line}"
        if self.include_stack:
            via = ", ".join(f"{t.name}:{n}" for t, n in reversed(self.include_stack))
            where += f" (via {via})"
        indent = "    " * self._indent
        # A multi-line expression keeps its own line breaks; every line maps to the tag's line.
        for piece in code.split("\n"):
            self.lines.append(f"{indent}{piece}")
            indent = ""
            self.line_map[len(self.lines)] = (self.current_template.name, line)
        self.lines[-1] += f"  # {where}"

    def generate_module(self, file: _File) -> str:
        """The module source: ``def _tt_execute()`` rendering ``file`` and whatever it extends."""
        ancestors = _ancestors(file.template, self.loader)
        root = ancestors[-1]
        for ancestor in reversed(ancestors):  # the root first, so descendants override
            ancestor.file.find_named_blocks(self.loader, self.named_blocks, set())
        self.current_template = root
        root.file.generate(self)
        body_lines = self.lines
        body_map = self.line_map

        name = file.template.name
        header = [
            f"def _tt_execute():  # {name}:0",
            "    _tt_buffer = []",
            "    _tt_append = _tt_buffer.append",
        ]
        if self.uses_xhtml_escape:
            header.append("    _tt_xesc = _tt_bind_xhtml(xhtml_escape)")
        footer = ["    return ''.join(_tt_buffer).encode('utf-8')"]
        self.lines = header + body_lines + footer
        # The header shifted the body down.
        self.line_map = {n + len(header): where for n, where in body_map.items()}
        return "\n".join(self.lines) + "\n"


def _ancestors(template: Template, loader: BaseLoader | None) -> list[Template]:
    """``template``, the template it extends, that one's parent, and so on to the root."""
    chain = [template]
    current = template
    while True:
        extends = [n for n in current.file.body.nodes if isinstance(n, _Extends)]
        if not extends:
            return chain
        node = extends[0]
        if loader is None:
            raise ParseError(
                "{% extends %} block found, but no template loader", current.name, node.line
            )
        parent = loader.load(node.name, current.name)
        if any(parent is t for t in chain):
            raise ParseError(f"template {parent.name} extends itself", current.name, node.line)
        chain.append(parent)
        current = parent
