"""UI modules: reusable page parts that bring their own JavaScript, CSS and head/body HTML.

``{% module Entry(entry) %}`` in a template calls ``Entry(handler).render(entry)``; one
instance per module name serves a whole page, and ``render()`` then collects every active
module's resources into the page (see ``RequestHandler.render``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncweb import escape

if TYPE_CHECKING:
    from asyncweb.web.handler import RequestHandler

__all__ = ["TemplateModule", "UIModule"]


class UIModule:
    """Base class for UI modules: override :meth:`render`, and the resource methods the
    module needs (each returns None when it has nothing to add)."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self.request = handler.request
        self.ui = handler.ui
        self.locale = handler.locale

    @property
    def current_user(self) -> Any:
        return self.handler.current_user

    def render(self, *args: Any, **kwargs: Any) -> str | bytes:
        """The module's HTML for one ``{% module %}`` use."""
        raise NotImplementedError()

    def embedded_javascript(self) -> str | None:
        """JavaScript put in a ``<script>`` block before ``</body>``."""
        return None

    def javascript_files(self) -> list[str] | str | None:
        """Script URLs (relative ones go through ``static_url``) linked before ``</body>``."""
        return None

    def embedded_css(self) -> str | None:
        """CSS put in a ``<style>`` block before ``</head>``."""
        return None

    def css_files(self) -> list[str] | str | None:
        """Stylesheet URLs (relative ones go through ``static_url``) linked in ``<head>``."""
        return None

    def html_head(self) -> str | None:
        """HTML put before ``</head>``."""
        return None

    def html_body(self) -> str | None:
        """HTML put before ``</body>``."""
        return None

    def render_string(self, path: str, **kwargs: Any) -> bytes:
        """Render template ``path`` with the handler's namespace plus ``kwargs``."""
        return self.handler.render_string(path, **kwargs)


class _linkify(UIModule):
    """``{% module linkify(text) %}``: ``escape.linkify`` as a module."""

    def render(self, text: str, **kwargs: Any) -> str:
        return escape.linkify(text, **kwargs)


class _xsrf_form_html(UIModule):
    """``{% module xsrf_form_html() %}``: the hidden XSRF form field."""

    def render(self) -> str:
        return self.handler.xsrf_form_html()


class TemplateModule(UIModule):
    """``{% module Template("part.html", **kwargs) %}``: render a template in its own
    namespace (unlike ``{% include %}``, it does not see the including template's names).

    Such a template may call ``{{ set_resources(javascript_files=..., embedded_css=...) }}``
    (keywords named after the :class:`UIModule` methods) to add resources to the page, once
    per template file whatever the number of uses.
    """

    def __init__(self, handler: RequestHandler) -> None:
        super().__init__(handler)
        self._resource_list: list[dict[str, Any]] = []
        self._resource_dict: dict[str, dict[str, Any]] = {}

    def render(self, path: str, **kwargs: Any) -> bytes:
        def set_resources(**resources: Any) -> str:
            known = self._resource_dict.get(path)
            if known is None:
                self._resource_list.append(resources)
                self._resource_dict[path] = resources
            elif known != resources:
                raise ValueError(f"set_resources called with different resources for {path}")
            return ""

        return self.render_string(path, set_resources=set_resources, **kwargs)

    def _resources(self, key: str) -> list[Any]:
        return [r[key] for r in self._resource_list if key in r]

    def _joined(self, key: str) -> str:
        return "\n".join(self._resources(key))

    def _files(self, key: str) -> list[str]:
        files: list[str] = []
        for entry in self._resources(key):
            if isinstance(entry, (str, bytes)):
                files.append(escape.to_unicode(entry))
            else:
                files.extend(entry)
        return files

    def embedded_javascript(self) -> str:
        return self._joined("embedded_javascript")

    def javascript_files(self) -> list[str]:
        return self._files("javascript_files")

    def embedded_css(self) -> str:
        return self._joined("embedded_css")

    def css_files(self) -> list[str]:
        return self._files("css_files")

    def html_head(self) -> str:
        return "".join(self._resources("html_head"))

    def html_body(self) -> str:
        return "".join(self._resources("html_body"))


class _UIModuleNamespace:
    """``modules.Name(...)`` (and ``_tt_modules`` in compiled templates) for one handler."""

    def __init__(self, handler: RequestHandler, ui_modules: dict[str, type[UIModule]]) -> None:
        self.handler = handler
        self.ui_modules = ui_modules

    def __getitem__(self, key: str) -> Callable[..., Any]:
        return self.handler._ui_module(key, self.ui_modules[key])

    def __getattr__(self, key: str) -> Callable[..., Any]:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(f"no UI module named {key!r}") from e


BUILTIN_UI_MODULES: dict[str, type[UIModule]] = {
    "linkify": _linkify,
    "xsrf_form_html": _xsrf_form_html,
    "Template": TemplateModule,
}
