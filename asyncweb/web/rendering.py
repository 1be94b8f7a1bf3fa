"""Templates, UI modules, locales and static URLs for ``RequestHandler``.

Everything here is created on first use: a handler that never renders pays nothing for it
(no namespace, no ``ui`` object, no locale lookup per request). Template loaders are shared
by an application's handlers, one per template directory, and reset per request when the
``compiled_template_cache`` setting is off (debug mode).
"""

from __future__ import annotations

import os.path
import sys
import urllib.parse
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from asyncweb import escape

if TYPE_CHECKING:
    from asyncweb import httputil, template
    from asyncweb.locale import Locale
    from asyncweb.web.application import Application
    from asyncweb.web.ui import UIModule

_WEB_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class _AllTemplateLoaders:
    """``RequestHandler._template_loaders``: Tornado's class-wide loader cache, which code
    clears to make templates be read afresh. asyncweb caches loaders per application, so
    clearing this clears every application's cache."""

    applications: weakref.WeakSet[Application] = weakref.WeakSet()

    def clear(self) -> None:
        for application in list(self.applications):
            with application._template_loader_lock:
                application._template_loaders.clear()

    def __len__(self) -> int:
        return sum(len(app._template_loaders) for app in list(self.applications))


class _RenderingMixin:
    """``render``/``render_string``, ``locale``, ``ui`` and ``static_url`` (as Tornado's)."""

    _template_loaders = _AllTemplateLoaders()

    if TYPE_CHECKING:
        # What this mixin uses of RequestHandler.
        application: Application
        request: httputil.HTTPServerRequest
        _finished: bool
        _locale: Locale
        _ui: dict[str, Any]
        _active_modules: dict[str, UIModule]

        @property
        def settings(self) -> dict[str, Any]: ...
        @property
        def current_user(self) -> Any: ...
        @property
        def xsrf_token(self) -> bytes: ...
        def require_setting(self, name: str, feature: str = "this feature") -> None: ...
        def xsrf_form_html(self) -> str: ...
        def reverse_url(self, name: str, *args: Any) -> str: ...
        def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Any: ...

    # -- static files --------------------------------------------------------------------------

    def static_url(self, path: str, include_host: bool | None = None, **kwargs: Any) -> str:
        """The URL of static file ``path``, versioned with a content hash (``?v=``) unless
        ``include_version=False``. ``include_host`` (default: the handler's
        ``include_host`` attribute) makes it absolute with this request's scheme and host."""
        self.require_setting("static_path", "static_url")
        from asyncweb.web.static import StaticFileHandler

        handler_class = self.settings.get("static_handler_class", StaticFileHandler)
        if include_host is None:
            include_host = getattr(self, "include_host", False)
        base = f"{self.request.protocol}://{self.request.host}" if include_host else ""
        return base + str(handler_class.make_static_url(self.settings, path, **kwargs))

    # -- locale --------------------------------------------------------------------------------

    @property
    def locale(self) -> Locale:
        """This request's locale: :meth:`get_user_locale`, else the browser's
        ``Accept-Language`` (:meth:`get_browser_locale`). Computed on first use."""
        found: Locale | None = getattr(self, "_locale", None)
        if found is None:
            found = self.get_user_locale()
            if found is None:
                found = self.get_browser_locale()
            self._locale = found
        return found

    @locale.setter
    def locale(self, value: Locale) -> None:
        self._locale = value

    def get_user_locale(self) -> Locale | None:
        """Override to pick the locale from the user (e.g. a profile); None means use the
        browser's ``Accept-Language``."""
        return None

    def get_browser_locale(self, default: str = "en_US") -> Locale:
        """The best supported locale for ``Accept-Language`` (by q-value), else ``default``."""
        from asyncweb import locale as locale_module

        header = self.request.headers.get("Accept-Language")
        if header:
            weighted: list[tuple[str, float]] = []
            for item in header.split(","):
                code, _, params = item.strip().partition(";")
                score = 1.0
                params = params.strip()
                if params.startswith("q="):
                    try:
                        score = float(params[2:])
                    except ValueError:
                        score = 0.0
                    if not 0.0 <= score <= 1.0:
                        score = 0.0
                if score > 0 and code.strip():
                    weighted.append((code.strip(), score))
            if weighted:
                weighted.sort(key=lambda pair: pair[1], reverse=True)  # stable: ties keep order
                return locale_module.get(*(code for code, _ in weighted))
        return locale_module.get(default)

    # -- UI modules and methods ----------------------------------------------------------------

    @property
    def ui(self) -> dict[str, Any]:
        """The ``ui_methods`` (bound to this handler) and ``modules``, as templates see them."""
        ui: dict[str, Any] | None = getattr(self, "_ui", None)
        if ui is None:
            from asyncweb.util import ObjectDict
            from asyncweb.web.ui import _UIModuleNamespace

            ui = ObjectDict(
                (name, self._ui_method(method))
                for name, method in self.application.ui_methods.items()
            )
            modules = _UIModuleNamespace(self, self.application.ui_modules)  # type: ignore[arg-type]
            ui["_tt_modules"] = modules
            ui["modules"] = modules
            self._ui = ui
        return ui

    def _ui_module(self, name: str, module: type[UIModule]) -> Callable[..., Any]:
        def render(*args: Any, **kwargs: Any) -> Any:
            active: dict[str, UIModule] | None = getattr(self, "_active_modules", None)
            if active is None:
                active = self._active_modules = {}
            instance = active.get(name)
            if instance is None:
                instance = active[name] = module(self)  # type: ignore[arg-type]
            return instance.render(*args, **kwargs)

        return render

    def _ui_method(self, method: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args, **kwargs: method(self, *args, **kwargs)

    # -- templates -----------------------------------------------------------------------------

    def get_template_path(self) -> str | None:
        """The directory templates load from (the ``template_path`` setting); None means the
        directory of the file that called ``render``."""
        path = self.settings.get("template_path")
        return None if path is None else str(path)

    def create_template_loader(self, template_path: str) -> template.BaseLoader:
        """The loader for ``template_path``: the ``template_loader`` setting when given, else
        a ``template.Loader`` honouring ``autoescape`` and ``template_whitespace``."""
        settings = self.settings
        if "template_loader" in settings:
            loader: template.BaseLoader = settings["template_loader"]
            return loader
        from asyncweb import template as template_module

        kwargs: dict[str, Any] = {}
        if "autoescape" in settings:
            kwargs["autoescape"] = settings["autoescape"]
        if "template_whitespace" in settings:
            kwargs["whitespace"] = settings["template_whitespace"]
        return template_module.Loader(template_path, **kwargs)

    def get_template_namespace(self) -> dict[str, Any]:
        """The names every template rendered by this handler sees; override to add more."""
        from asyncweb.template import TEMPLATE_HELPERS

        user_locale = self.locale
        namespace: dict[str, Any] = {
            "handler": self,
            "request": self.request,
            "current_user": self.current_user,
            "locale": user_locale,
            "_": user_locale.translate,
            "pgettext": user_locale.pgettext,
            "static_url": self.static_url,
            "xsrf_form_html": self.xsrf_form_html,
            "reverse_url": self.reverse_url,
            **TEMPLATE_HELPERS,
        }
        namespace.update(self.ui)
        return namespace

    def render_string(self, template_name: str, **kwargs: Any) -> bytes:
        """Render template ``template_name`` with the handler's namespace plus ``kwargs``."""
        template_path = self.get_template_path()
        if not template_path:
            template_path = _caller_directory()
        # One loader per directory and application (each may set its own autoescape...).
        application = self.application
        loaders = application._template_loaders
        with application._template_loader_lock:
            loader = loaders.get(template_path)
            if loader is None:
                loader = loaders[template_path] = self.create_template_loader(template_path)
        compiled = loader.load(template_name)
        namespace = self.get_template_namespace()
        namespace.update(kwargs)
        return compiled.generate(**namespace)

    def render(self, template_name: str, **kwargs: Any) -> Any:
        """Render the template and finish the response with it, adding the resources of
        the UI modules it used: CSS in ``<head>``, JavaScript before ``</body>``."""
        if self._finished:
            raise RuntimeError("render() after finish(): the response is complete")
        html = self.render_string(template_name, **kwargs)
        active = getattr(self, "_active_modules", None)
        if active:
            html = self._insert_module_resources(html, active.values())
        return self.finish(html)

    def _insert_module_resources(self, html: bytes, modules: Iterable[UIModule]) -> bytes:
        js_embed: list[bytes] = []
        js_files: list[str] = []
        css_embed: list[bytes] = []
        css_files: list[str] = []
        heads: list[bytes] = []
        bodies: list[bytes] = []
        for module in modules:
            part: Any = module.embedded_javascript()
            if part:
                js_embed.append(escape.utf8(part))
            _extend_files(js_files, module.javascript_files())
            part = module.embedded_css()
            if part:
                css_embed.append(escape.utf8(part))
            _extend_files(css_files, module.css_files())
            part = module.html_head()
            if part:
                heads.append(escape.utf8(part))
            part = module.html_body()
            if part:
                bodies.append(escape.utf8(part))
        # Same order as Tornado: each insertion goes just before the closing tag.
        if js_files:
            html = _before(
                html, b"</body>", escape.utf8(self.render_linked_js(js_files)), last=True
            )
        if js_embed:
            html = _before(html, b"</body>", self.render_embed_js(js_embed), last=True)
        if css_files:
            html = _before(html, b"</head>", escape.utf8(self.render_linked_css(css_files)))
        if css_embed:
            html = _before(html, b"</head>", self.render_embed_css(css_embed))
        if heads:
            html = _before(html, b"</head>", b"".join(heads))
        if bodies:
            html = _before(html, b"</body>", b"".join(bodies))
        return html

    def _resource_urls(self, files: Iterable[str]) -> list[str]:
        """Relative paths become static URLs; duplicates are dropped, order kept."""
        urls: list[str] = []
        seen: set[str] = set()
        for path in files:
            if not _is_absolute(path):
                path = self.static_url(path)
            if path not in seen:
                seen.add(path)
                urls.append(path)
        return urls

    def render_linked_js(self, js_files: Iterable[str]) -> str:
        """``<script src=...>`` tags for ``js_files`` (override to change the markup)."""
        return "".join(
            f'<script src="{escape.xhtml_escape(url)}" type="text/javascript"></script>'
            for url in self._resource_urls(js_files)
        )

    def render_embed_js(self, js_embed: Iterable[bytes]) -> bytes:
        """One ``<script>`` block holding every module's embedded JavaScript."""
        return (
            b'<script type="text/javascript">\n//<![CDATA[\n'
            + b"\n".join(js_embed)
            + b"\n//]]>\n</script>"
        )

    def render_linked_css(self, css_files: Iterable[str]) -> str:
        """``<link rel="stylesheet">`` tags for ``css_files``."""
        return "".join(
            f'<link href="{escape.xhtml_escape(url)}" type="text/css" rel="stylesheet"/>'
            for url in self._resource_urls(css_files)
        )

    def render_embed_css(self, css_embed: Iterable[bytes]) -> bytes:
        """One ``<style>`` block holding every module's embedded CSS."""
        return b'<style type="text/css">\n' + b"\n".join(css_embed) + b"\n</style>"


def _reset_template_loaders(application: Application) -> None:
    """Make the application's loaders re-read their templates (debug: edits show on the
    next request)."""
    with application._template_loader_lock:
        for loader in application._template_loaders.values():
            loader.reset()


def _extend_files(files: list[str], part: Any) -> None:
    if not part:
        return
    if isinstance(part, (str, bytes)):
        files.append(escape.to_unicode(part))
    else:
        files.extend(part)


def _before(html: bytes, tag: bytes, insert: bytes, last: bool = False) -> bytes:
    """``insert`` (and a newline) just before ``tag`` in ``html``; unchanged without it."""
    at = html.rfind(tag) if last else html.find(tag)
    if at < 0:
        return html
    return html[:at] + insert + b"\n" + html[at:]


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or bool(urllib.parse.urlsplit(path).scheme)


def _caller_directory() -> str:
    """The directory of the first caller outside this package (Tornado's default
    template path: next to the handler's module)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.dirname(
        os.path.abspath(frame.f_code.co_filename)
    ).startswith(_WEB_PACKAGE):
        frame = frame.f_back
    return os.path.dirname(os.path.abspath(frame.f_code.co_filename))
