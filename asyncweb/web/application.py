"""``Application``: the handler table, settings, and the server-facing delegate."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asyncweb import httputil
from asyncweb.listening import _DEFAULT_BACKLOG
from asyncweb.log import access_log, app_log
from asyncweb.routing import (
    AnyMatches,
    DefaultHostMatches,
    HostMatches,
    PathMatches,
    ReversibleRouter,
    ReversibleRuleRouter,
    Rule,
    _RuleList,
)
from asyncweb.web import lifecycle
from asyncweb.web.builtin_handlers import ErrorHandler
from asyncweb.web.delegates import _BufferedDelegate, _HandlerDelegate, _StreamingDelegate
from asyncweb.web.handler import RequestHandler
from asyncweb.web.rendering import _AllTemplateLoaders
from asyncweb.web.static import StaticFileHandler
from asyncweb.web.transforms import GZipContentEncoding, OutputTransform
from asyncweb.web.ui import BUILTIN_UI_MODULES, UIModule

if TYPE_CHECKING:
    from asyncweb import template
    from asyncweb.httpserver import HTTPServer

__all__ = ["Application", "_HandlerDelegate"]


class _ApplicationRouter(ReversibleRuleRouter):
    """Rule router whose ``RequestHandler`` targets become handler delegates and whose
    nested rule lists become nested routers."""

    def __init__(self, application: Application, rules: _RuleList | None = None) -> None:
        self.application = application
        super().__init__(rules)

    def process_rule(self, rule: Rule) -> Rule:
        rule = super().process_rule(rule)
        if isinstance(rule.target, (list, tuple)):
            rule.target = _ApplicationRouter(self.application, rule.target)
        return rule

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate | None:
        application = self.application
        if type(application).get_handler_delegate is not _GET_HANDLER_DELEGATE:
            return super().find_handler(request, **kwargs)
        # RuleRouter's walk, with a handler class's delegate made here: what
        # get_target_delegate and Application.get_handler_delegate would do, minus two calls.
        rules = self.rules
        if rules is not self._indexed_rules or getattr(rules, "changed", True):
            self._reindex()
        candidates = self._exact.get(request.path)
        if candidates is None:
            candidates = self._inexact
        for rule, matched in candidates:
            target_params = {} if matched else rule.matcher.match(request)
            if target_params is None:
                continue
            target = rule.target
            if (
                isinstance(target, type)
                and issubclass(target, RequestHandler)
                # A PathMatches' parameters are path_args and path_kwargs, or none.
                and (matched or type(rule.matcher) is PathMatches)
            ):
                delegate_class = (
                    _StreamingDelegate if target._stream_request_body else _BufferedDelegate
                )
                return delegate_class(
                    application,
                    request,
                    target,
                    rule.target_kwargs or None,
                    target_params.get("path_args"),
                    target_params.get("path_kwargs"),
                )
            if rule.target_kwargs:
                target_params["target_kwargs"] = rule.target_kwargs
            if target_params:
                delegate = self.get_target_delegate(target, request, **target_params)
            else:
                delegate = self.get_target_delegate(target, request)
            if delegate is not None:
                return delegate
        return None

    def get_target_delegate(
        self, target: Any, request: httputil.HTTPServerRequest, **target_params: Any
    ) -> httputil.HTTPMessageDelegate | None:
        if isinstance(target, type) and issubclass(target, RequestHandler):
            if target_params:
                return self.application.get_handler_delegate(request, target, **target_params)
            return self.application.get_handler_delegate(request, target)
        return super().get_target_delegate(target, request, **target_params)


class Application(ReversibleRouter):
    """A set of request handlers and settings; hand it to ``HTTPServer`` or call
    :meth:`listen`.

    ``handlers`` are ``(pattern, HandlerClass[, kwargs[, name]])`` tuples, ``URLSpec``\\ s or
    ``Rule``\\ s, tried in order. Settings, as Tornado's:

    * ``debug``: shorthand for ``autoreload``, ``serve_traceback`` and no
      ``compiled_template_cache``/``static_hash_cache`` (each can still be set apart);
    * ``compress_response`` (alias ``gzip``), ``log_function``, ``default_handler_class`` and
      ``default_handler_args``;
    * templates: ``template_path``, ``template_loader``, ``template_whitespace``,
      ``autoescape``, ``ui_modules`` and ``ui_methods`` (a module, a dict or a list of them);
    * static files: ``static_path``, ``static_url_prefix``, ``static_handler_class``,
      ``static_handler_args``;
    * security: ``cookie_secret`` (and ``key_version``), ``xsrf_cookies``,
      ``xsrf_cookie_version``, ``xsrf_cookie_kwargs``, ``xsrf_cookie_name``, ``login_url``;
    * start and stop (asyncweb's own): ``on_startup`` and ``on_shutdown``, lists of callables
      without arguments, plain or async (also :meth:`add_startup_hook`,
      :meth:`add_shutdown_hook`), and ``shutdown_timeout`` (seconds in-flight requests get
      when ``listen()`` + ``IOLoop.start()`` is stopped with Ctrl-C; default 30).

    The cache settings are read when the application is created. ``asyncweb serve``,
    ``listen()`` + ``IOLoop.current().start()`` and the ASGI lifespan all run the start-up
    hooks before serving and the shut-down hooks after the last request (see
    ``asyncweb.web.lifecycle``).
    """

    def __init__(
        self,
        handlers: _RuleList | None = None,
        default_host: str | None = None,
        transforms: list[type[OutputTransform]] | None = None,
        **settings: Any,
    ) -> None:
        if transforms is None:
            self.transforms: list[type[OutputTransform]] = []
            if settings.get("compress_response") or settings.get("gzip"):
                self.transforms.append(GZipContentEncoding)
        else:
            self.transforms = transforms
        self.default_host = default_host
        self.settings = settings
        self._startup_hooks: list[Callable[[], Any]] = list(settings.get("on_startup", ()))
        self._shutdown_hooks: list[Callable[[], Any]] = list(settings.get("on_shutdown", ()))
        self._started = False
        self._stopped = False
        self._template_loaders: dict[str, template.BaseLoader] = {}
        self._template_loader_lock = threading.Lock()
        _AllTemplateLoaders.applications.add(self)
        self.ui_modules: dict[str, type[UIModule]] = dict(BUILTIN_UI_MODULES)
        self.ui_methods: dict[str, Any] = {}
        self._load_ui_modules(settings.get("ui_modules", {}))
        self._load_ui_methods(settings.get("ui_methods", {}))
        if self.settings.get("static_path"):
            handlers = self._with_static_handlers(handlers)
        if self.settings.get("debug"):
            self.settings.setdefault("autoreload", True)
            self.settings.setdefault("compiled_template_cache", False)
            self.settings.setdefault("static_hash_cache", False)
            self.settings.setdefault("serve_traceback", True)
        self.wildcard_router = _ApplicationRouter(self, handlers)
        self.default_router = _ApplicationRouter(self, [Rule(AnyMatches(), self.wildcard_router)])
        # Read once here rather than per request (the hot path): in debug mode compiled
        # templates and static version hashes are dropped before each request.
        self._reset_caches_per_request = not self.settings.get(
            "compiled_template_cache", True
        ) or not self.settings.get("static_hash_cache", True)
        if self.settings.get("autoreload"):
            self._start_autoreload()

    def _with_static_handlers(self, handlers: _RuleList | None) -> _RuleList:
        """``handlers`` with the static file rules first: ``static_url_prefix`` (default
        ``/static/``), ``/favicon.ico`` and ``/robots.txt``."""
        settings = self.settings
        handler_class = settings.get("static_handler_class", StaticFileHandler)
        handler_args = dict(settings.get("static_handler_args", {}))
        handler_args["path"] = settings["static_path"]
        prefix = settings.get("static_url_prefix", "/static/")
        patterns = [re.escape(prefix) + r"(.*)", r"/(favicon\.ico)", r"/(robots\.txt)"]
        rules: list[Any] = [(pattern, handler_class, handler_args) for pattern in patterns]
        rules.extend(handlers or [])
        return rules

    @staticmethod
    def _start_autoreload() -> None:
        try:
            from asyncweb import autoreload
        except ImportError:  # pragma: no cover - not every build has it
            app_log.warning("autoreload requested but asyncweb.autoreload is unavailable")
            return
        autoreload.start()

    def _load_ui_methods(self, methods: Any) -> None:
        """``ui_methods``: a module, a dict, or a list of them; public callables only."""
        if isinstance(methods, types.ModuleType):
            self._load_ui_methods({name: getattr(methods, name) for name in dir(methods)})
        elif isinstance(methods, list):
            for group in methods:
                self._load_ui_methods(group)
        else:
            for name, method in methods.items():
                if not name.startswith("_") and callable(method) and name[0].islower():
                    self.ui_methods[name] = method

    def _load_ui_modules(self, modules: Any) -> None:
        """``ui_modules``: a module, a dict, or a list of them; ``UIModule`` subclasses only."""
        if isinstance(modules, types.ModuleType):
            self._load_ui_modules({name: getattr(modules, name) for name in dir(modules)})
        elif isinstance(modules, list):
            for group in modules:
                self._load_ui_modules(group)
        else:
            for name, module in modules.items():
                if isinstance(module, type) and issubclass(module, UIModule):
                    self.ui_modules[name] = module

    # -- start and stop --------------------------------------------------------------------

    def add_startup_hook(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``hook()`` (plain or async, no arguments) once before serving; returns it, so
        it can be used as a decorator. Add hooks before ``listen()``."""
        self._startup_hooks.append(hook)
        return hook

    def add_shutdown_hook(self, hook: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``hook()`` (plain or async, no arguments) once when serving has ended."""
        self._shutdown_hooks.append(hook)
        return hook

    async def startup(self) -> None:
        """Run the start-up hooks in order, once; an exception stops and propagates."""
        if self._started:
            return
        self._started = True
        await lifecycle.run_hooks(self._startup_hooks, "startup", raise_errors=True)

    async def shutdown(self) -> None:
        """Run the shut-down hooks in order, once; an exception is logged and the next one
        runs."""
        if self._stopped:
            return
        self._stopped = True
        await lifecycle.run_hooks(self._shutdown_hooks, "shutdown", raise_errors=False)

    def listen(
        self,
        port: int,
        address: str | None = None,
        *,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = _DEFAULT_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
        **kwargs: Any,
    ) -> HTTPServer:
        """Start an ``HTTPServer`` for this application on ``port``; ``kwargs`` go to the
        server (``xheaders``, ``ssl_options``, ``max_body_size``...). Returns the server.

        Runs the start-up hooks first (at once when the loop is not running yet, so their
        errors raise here), logs ``Listening on http://host:port`` at INFO on
        ``asyncweb.general`` (printed on stderr even when logging was never configured), and
        makes Ctrl-C in ``IOLoop.current().start()`` a graceful stop: requests in progress
        get ``shutdown_timeout`` seconds (a second Ctrl-C: none), the shut-down hooks run,
        every task is cancelled, and ``start()`` raises ``KeyboardInterrupt``, which ends the
        program without a traceback (status 130, as an interrupted program)."""
        from asyncweb.httpserver import HTTPServer
        from asyncweb.ioloop import IOLoop
        from asyncweb.netutil import bind_sockets

        io_loop = IOLoop.current()
        server = HTTPServer(self, **kwargs)
        sockets = bind_sockets(port, address, family, backlog, flags, reuse_port)
        starting = lifecycle.run_startup(io_loop, self)
        if starting is None:
            server.add_sockets(sockets)
        else:
            # Inside a running loop: accept once the start-up hooks are done.
            def serve(done: asyncio.Future[None]) -> None:
                if done.cancelled() or done.exception() is not None:
                    for sock in sockets:
                        sock.close()
                    if not done.cancelled():
                        app_log.error(
                            "Start-up hooks failed; not serving", exc_info=done.exception()
                        )
                    return
                server.add_sockets(sockets)

            asyncio.ensure_future(starting).add_done_callback(serve)
        lifecycle.register(io_loop, self, server)
        scheme = "https" if kwargs.get("ssl_options") else "http"
        host, bound_port = sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        lifecycle.say(logging.INFO, "Listening on %s://%s:%d", scheme, host, bound_port)
        return server

    def add_handlers(self, host_pattern: str, host_handlers: _RuleList) -> None:
        """Add handlers for hosts matching ``host_pattern``; host groups are tried in the order
        added, all before the host-independent handlers given to the constructor."""
        host_matcher = HostMatches(host_pattern)
        rule = Rule(host_matcher, _ApplicationRouter(self, host_handlers))
        self.default_router.rules.insert(-1, rule)
        if self.default_host is not None:
            self.wildcard_router.add_rules(
                [(DefaultHostMatches(self, host_matcher.host_pattern), host_handlers)]
            )

    def add_transform(self, transform_class: type[OutputTransform]) -> None:
        self.transforms.append(transform_class)

    def __call__(self, request: httputil.HTTPServerRequest) -> Awaitable[None] | None:
        """Handle an already-read request (``HTTPServer(app)`` uses the delegate interface
        instead). Returns an awaitable when the handler went async."""
        dispatcher = self.find_handler(request)
        assert isinstance(dispatcher, _HandlerDelegate)
        return dispatcher.execute()

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate:
        route: httputil.HTTPMessageDelegate | None
        default_rules = self.default_router.rules
        if len(default_rules) == 1 and default_rules[0].target is self.wildcard_router:
            # No host-specific handlers: skip the AnyMatches level.
            route = self.wildcard_router.find_handler(request)
        else:
            route = self.default_router.find_handler(request)
        if route is not None:
            return route
        handler_class = self.settings.get("default_handler_class")
        if handler_class:
            return self.get_handler_delegate(
                request, handler_class, self.settings.get("default_handler_args", {})
            )
        return self.get_handler_delegate(request, ErrorHandler, {"status_code": 404})

    def get_handler_delegate(
        self,
        request: httputil.HTTPServerRequest,
        target_class: type[RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list[bytes | None] | None = None,
        path_kwargs: dict[str, bytes | None] | None = None,
    ) -> _HandlerDelegate:
        """The delegate that runs ``target_class`` for ``request``: streaming or buffered,
        decided here once, by the handler class."""
        if target_class._stream_request_body:
            return _StreamingDelegate(
                self, request, target_class, target_kwargs, path_args, path_kwargs
            )
        return _BufferedDelegate(self, request, target_class, target_kwargs, path_args, path_kwargs)

    def reverse_url(self, name: str, *args: Any) -> str:
        """The path of the handler named ``name``, with ``args`` in its groups."""
        reversed_url = self.default_router.reverse_url(name, *args)
        if reversed_url is not None:
            return reversed_url
        raise KeyError(f"no handler is named {name!r}")

    def log_request(self, handler: RequestHandler) -> None:
        """Log a finished request to ``access_log`` (override or set ``log_function``)."""
        log_function = self.settings.get("log_function")
        if log_function is not None:
            log_function(handler)
            return
        status = handler.get_status()
        if status < 400:
            level = logging.INFO
        elif status < 500:
            level = logging.WARNING
        else:
            level = logging.ERROR
        # Formatting the summary and timing costs more than the check: skip both when unused.
        if access_log.isEnabledFor(level):
            if getattr(handler.request.connection, "server_logs_requests", False):
                return  # an ASGI server writes its own access line
            request_time = 1000.0 * handler.request.request_time()
            access_log.log(level, "%d %s %.2fms", status, handler._request_summary(), request_time)


_GET_HANDLER_DELEGATE = Application.get_handler_delegate
