"""Tornado's template language, compiled to Python.

A template is text with embedded Python::

    {% extends "base.html" %}
    {% block body %}
      <ul>
      {% for item in items %}
        <li>{{ item.name }}</li>
      {% end %}
      </ul>
    {% end %}

``{{ expr }}`` writes an expression (HTML-escaped unless autoescape is off), ``{% ... %}``
holds a directive: ``if/elif/else``, ``for``, ``while``, ``try/except/else/finally``, ``set``,
``import``, ``from ... import``, ``block``, ``extends``, ``include``, ``module``, ``apply``,
``raw``, ``autoescape``, ``whitespace``, ``comment``, ``break``, ``continue`` and ``end``, which
closes a block. ``{# ... #}`` is a comment; ``{{!``, ``{%!`` and ``{#!`` write the opening
characters literally.

Each template compiles to one Python function that appends text to a list and returns the
joined UTF-8 bytes; the generated source (``Template.code``) carries a ``# name:line`` comment
on every line, so tracebacks show which template line was running, and an exception raised
while rendering gets a note naming the template and line. Behaviour and public names follow
``tornado.template``; the implementation is our own.
"""

from __future__ import annotations

import builtins
import datetime
import linecache
import os.path
import posixpath
import re
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from asyncweb import escape

__all__ = [
    "BaseLoader",
    "DictLoader",
    "Loader",
    "ParseError",
    "Template",
    "filter_whitespace",
]

_DEFAULT_AUTOESCAPE = "xhtml_escape"


class _UnsetMarker:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _UnsetMarker()

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


# -- Template ---------------------------------------------------------------------------------


class Template:
    """A compiled template.

    ``Template(source).generate(**names)`` renders it to bytes; ``names`` (and the loader's
    ``namespace``) are the template's globals.
    """

    def __init__(
        self,
        template_string: str | bytes,
        name: str = "<string>",
        loader: BaseLoader | None = None,
        compress_whitespace: bool | _UnsetMarker = _UNSET,
        autoescape: str | _UnsetMarker | None = _UNSET,
        whitespace: str | None = None,
    ) -> None:
        self.name = escape.native_str(name)
        if compress_whitespace is not _UNSET:
            if whitespace is not None:
                raise ValueError("cannot set both whitespace and compress_whitespace")
            whitespace = "single" if compress_whitespace else "all"
        if whitespace is None:
            if loader is not None and loader.whitespace:
                whitespace = loader.whitespace
            elif self.name.endswith((".html", ".js")):
                whitespace = "single"
            else:
                whitespace = "all"
        filter_whitespace(whitespace, "")  # reject an unknown mode now

        self.autoescape: str | None
        if autoescape is not _UNSET:
            self.autoescape = autoescape  # type: ignore[assignment]
        elif loader is not None:
            self.autoescape = loader.autoescape
        else:
            self.autoescape = _DEFAULT_AUTOESCAPE
        self.loader = loader

        reader = _Reader(self.name, escape.to_unicode(template_string), whitespace)
        self.file = _File(self, _parse(reader, self))
        writer = _CodeWriter(self, loader)
        self.code = writer.generate_module(self.file)
        self._line_map = writer.line_map
        self._filename = f"{self.name.replace('.', '_')}.generated.py"
        try:
            module_code = compile(self.code, self._filename, "exec", dont_inherit=True)
        except SyntaxError as err:
            where = writer.line_map.get(err.lineno or 0, (self.name, 0))
            raise ParseError(f"invalid Python in template: {err.msg}", *where) from err
        self.compiled = module_code
        self._execute_code = next(
            const
            for const in module_code.co_consts
            if isinstance(const, types.CodeType) and const.co_name == "_tt_execute"
        )
        lines = self.code.splitlines(keepends=True)
        self._linecache_entry = (len(self.code), None, lines, self._filename)
        linecache.cache[self._filename] = self._linecache_entry

    def generate(self, **kwargs: Any) -> bytes:
        """Render the template with ``kwargs`` as its names; returns UTF-8 bytes."""
        namespace = dict(_BASE_NAMESPACE)
        namespace["__name__"] = self.name.replace(".", "_")
        # As with exec(): template code may import (`{% import %}`, lazy imports in the
        # modules it calls), which needs the builtins in its globals.
        namespace["__builtins__"] = builtins.__dict__
        if self.loader is not None and self.loader.namespace:
            namespace.update(self.loader.namespace)
        namespace.update(kwargs)
        execute = types.FunctionType(self._execute_code, namespace, "_tt_execute")
        try:
            return execute()  # type: ignore[no-any-return]
        except Exception as err:
            self._annotate(err)
            raise

    def _annotate(self, err: Exception) -> None:
        """Name the template line that raised, and make the generated source printable."""
        linecache.cache[self._filename] = self._linecache_entry
        lineno = None
        tb = err.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._filename:
                lineno = tb.tb_lineno
            tb = tb.tb_next
        if lineno is None or lineno not in self._line_map:
            return
        name, line = self._line_map[lineno]
        note = f"in template {name}, line {line}"
        if hasattr(err, "add_note") and note not in getattr(err, "__notes__", ()):
            err.add_note(note)


# -- loaders ----------------------------------------------------------------------------------


class BaseLoader:
    """Loads templates by name and caches them; subclasses say where the source comes from.

    ``autoescape`` names the escape function for ``{{ }}`` (``None`` for none), ``namespace``
    adds names to every template from this loader, ``whitespace`` overrides the mode chosen
    from the file name. The cache is shared by threads; :meth:`reset` empties it.
    """

    def __init__(
        self,
        autoescape: str | None = _DEFAULT_AUTOESCAPE,
        namespace: dict[str, Any] | None = None,
        whitespace: str | None = None,
    ) -> None:
        self.autoescape = autoescape
        self.namespace = namespace or {}
        self.whitespace = whitespace
        self.templates: dict[str, Template] = {}
        # Re-entrant: compiling a template loads the ones it extends and includes.
        self.lock = threading.RLock()
        self._compiling: set[str] = set()

    def reset(self) -> None:
        """Forget every compiled template, so the next load reads the source again."""
        with self.lock:
            self.templates = {}

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        """Turn a name used inside ``parent_path`` (``extends``/``include``) into a loader name."""
        raise NotImplementedError()

    def load(self, name: str, parent_path: str | None = None) -> Template:
        """The compiled template ``name`` (relative to ``parent_path`` when given)."""
        name = self.resolve_path(name, parent_path=parent_path)
        with self.lock:
            template = self.templates.get(name)
            if template is None:
                # Compiling a template loads what it extends and includes, in this thread.
                if name in self._compiling:
                    raise ParseError(f"template {name} includes or extends itself", parent_path)
                self._compiling.add(name)
                try:
                    template = self._create_template(name)
                finally:
                    self._compiling.discard(name)
                self.templates[name] = template
            return template

    def _create_template(self, name: str) -> Template:
        raise NotImplementedError()


def _is_relative(name: str, parent_path: str | None) -> bool:
    return bool(
        parent_path
        and not parent_path.startswith("<")
        and not parent_path.startswith("/")
        and not name.startswith("/")
    )


class Loader(BaseLoader):
    """Loads templates from files under ``root_directory``."""

    def __init__(self, root_directory: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = os.path.abspath(root_directory)

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        if _is_relative(name, parent_path):
            assert parent_path is not None
            parent_dir = os.path.dirname(os.path.abspath(os.path.join(self.root, parent_path)))
            candidate = os.path.abspath(os.path.join(parent_dir, name))
            if candidate.startswith(self.root + os.sep):
                name = candidate[len(self.root) + 1 :]
        return name

    def _create_template(self, name: str) -> Template:
        path = os.path.join(self.root, name)
        with open(path, "rb") as f:
            return Template(f.read(), name=name, loader=self)


class DictLoader(BaseLoader):
    """Loads templates from a dict of name -> source."""

    def __init__(self, dict: Mapping[str, str | bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dict = dict

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        if _is_relative(name, parent_path):
            assert parent_path is not None
            name = posixpath.normpath(posixpath.join(posixpath.dirname(parent_path), name))
        return name

    def _create_template(self, name: str) -> Template:
        return Template(self.dict[name], name=name, loader=self)


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
