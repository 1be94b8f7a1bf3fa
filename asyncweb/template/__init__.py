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

Split into modules: ``parser`` (source text to a tree of nodes), ``nodes`` (the tree and the
code writer that turns it into Python), ``runtime`` (what rendered code calls) and ``_common``
(ParseError and the whitespace modes). Template and the loaders are here, and the public names
are all importable from this package, as from ``tornado.template``.
"""

from __future__ import annotations

import builtins
import linecache
import os.path
import posixpath
import threading
import types
from collections.abc import Mapping
from typing import Any

from asyncweb import escape
from asyncweb.template._common import _DEFAULT_AUTOESCAPE as _DEFAULT_AUTOESCAPE
from asyncweb.template._common import ParseError, filter_whitespace
from asyncweb.template.nodes import _CodeWriter, _File
from asyncweb.template.parser import _parse, _Reader
from asyncweb.template.runtime import _BASE_NAMESPACE
from asyncweb.template.runtime import TEMPLATE_HELPERS as TEMPLATE_HELPERS

__all__ = [
    "BaseLoader",
    "DictLoader",
    "Loader",
    "ParseError",
    "Template",
    "filter_whitespace",
]


class _UnsetMarker:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _UnsetMarker()


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
