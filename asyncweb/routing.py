"""Flexible request routing, following Tornado's ``tornado.routing``.

A :class:`Router` turns a request into an ``HTTPMessageDelegate``. :class:`RuleRouter` walks an
ordered list of :class:`Rule` objects (a :class:`Matcher` plus a target); the first rule whose
matcher accepts the request and whose target yields a delegate wins.

Speed: rules whose path pattern is a plain literal are also indexed in a dict keyed by path, so
the common case costs one dict lookup instead of a regex scan. Each indexed path keeps the full
candidate order (earlier regex rules first) so first-match-wins semantics are preserved.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any, Union

from asyncweb import httputil
from asyncweb.escape import url_escape, url_unescape, utf8
from asyncweb.httpserver import _CallableAdapter, _DefaultMessageDelegate
from asyncweb.log import app_log
from asyncweb.util import basestring_type, import_object

__all__ = [
    "AnyMatches",
    "DefaultHostMatches",
    "HostMatches",
    "Matcher",
    "PathMatches",
    "ReversibleRouter",
    "ReversibleRuleRouter",
    "Router",
    "Rule",
    "RuleRouter",
    "URLSpec",
    "url",
]


class Router(httputil.HTTPServerConnectionDelegate):
    """Abstract router: maps a request to the delegate that will handle it."""

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate | None:
        """Return a delegate for ``request``, or None when nothing matches."""
        raise NotImplementedError()

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return _RoutingDelegate(self, server_conn, request_conn)

    # HTTPServer (a layer below, which can't import this module) routes a request itself,
    # without a _RoutingDelegate, while a router's start_request is this one.
    _routing_start_request = start_request


class ReversibleRouter(Router):
    """A router that can also build a URL back from a rule's name."""

    def reverse_url(self, name: str, *args: Any) -> str | None:
        raise NotImplementedError()


class _RoutingDelegate(httputil.HTTPMessageDelegate):
    """Builds the request once its head is in, routes it, then forwards everything on."""

    __slots__ = ("delegate", "request_conn", "router", "server_conn")

    def __init__(
        self, router: Router, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> None:
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.router = router
        self.delegate: httputil.HTTPMessageDelegate | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        request = httputil.HTTPServerRequest(
            connection=self.request_conn,
            server_connection=self.server_conn,
            start_line=start_line,
            headers=headers,
        )
        delegate = self.router.find_handler(request)
        if delegate is None:
            app_log.debug("No route for %s %s", start_line.method, start_line.path)
            delegate = _DefaultMessageDelegate(self.request_conn)
        self.delegate = delegate
        if type(delegate).headers_received is _IGNORES_HEAD:
            return None  # handler delegates start on finish(): skip the no-op call
        return delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


_IGNORES_HEAD = httputil.HTTPMessageDelegate.headers_received


class _TrackedList(list[Any]):
    """A list that notes any mutation in ``changed``."""

    changed = True


def _tracking(name: str) -> Any:
    base = getattr(list, name)

    def method(self: _TrackedList, *args: Any) -> Any:
        self.changed = True
        return base(self, *args)

    method.__name__ = name
    return method


_MUTATORS = "append extend insert pop remove clear sort reverse __setitem__ __delitem__ __iadd__"
for _name in _MUTATORS.split():
    setattr(_TrackedList, _name, _tracking(_name))


# What RuleRouter accepts as a rule: a Rule, or a tuple/list (matcher-or-pattern, target, ...).
_RuleSpec = Union["Rule", Sequence[Any]]
_RuleList = Sequence[_RuleSpec]


class RuleRouter(Router):
    """Routes with an ordered list of rules; the first rule yielding a delegate wins."""

    def __init__(self, rules: _RuleList | None = None) -> None:
        # A public list that callers (and Application.add_handlers) mutate directly; it flags
        # its own changes so the exact-path index is rebuilt lazily.
        self.rules: list[Rule] = _TrackedList()
        self._indexed_rules: list[Rule] | None = None
        # Candidates as (rule, matched): True for rules indexed under this very path, which
        # match without running their regex.
        self._exact: dict[str, tuple[tuple[Rule, bool], ...]] = {}
        self._inexact: tuple[tuple[Rule, bool], ...] = ()
        if rules:
            self.add_rules(rules)

    def add_rules(self, rules: _RuleList) -> None:
        """Append rules: ``Rule`` objects, or tuples
        ``(matcher-or-path, target[, kwargs[, name]])``."""
        for spec in rules:
            if isinstance(spec, (tuple, list)):
                if not 2 <= len(spec) <= 4:
                    raise ValueError(f"a rule tuple has 2 to 4 items, not {len(spec)}: {spec!r}")
                if isinstance(spec[0], (basestring_type, re.Pattern)):
                    rule = Rule(PathMatches(spec[0]), *spec[1:])
                else:
                    rule = Rule(*spec)
            else:
                assert isinstance(spec, Rule)
                rule = spec
            self.rules.append(self.process_rule(rule))

    def process_rule(self, rule: Rule) -> Rule:
        """Hook for subclasses to check or transform a rule as it is added."""
        return rule

    def _reindex(self) -> None:
        exact: dict[str, list[tuple[Rule, bool]]] = {}
        inexact: list[tuple[Rule, bool]] = []
        # Walk in order; a literal path's candidates are every inexact rule before it, itself,
        # and (if its target declines) the rules after it.
        order: list[tuple[str | None, Rule]] = []
        for rule in self.rules:
            path = _literal_path(rule.matcher)
            order.append((path, rule))
            if path is None:
                inexact.append((rule, False))
        for i, (path, rule) in enumerate(order):
            if path is None or path in exact:
                continue
            candidates = [(r, False) for p, r in order[:i] if p is None]
            candidates.append((rule, True))
            candidates.extend((r, p is not None) for p, r in order[i + 1 :] if p in (None, path))
            exact[path] = candidates
        self._exact = {path: tuple(rules) for path, rules in exact.items()}
        self._inexact = tuple(inexact)
        self._indexed_rules = self.rules
        if isinstance(self.rules, _TrackedList):
            self.rules.changed = False

    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate | None:
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
            if rule.target_kwargs:
                target_params["target_kwargs"] = rule.target_kwargs
            # Spreading an empty dict costs about as much as the call itself.
            if target_params:
                delegate = self.get_target_delegate(rule.target, request, **target_params)
            else:
                delegate = self.get_target_delegate(rule.target, request)
            if delegate is not None:
                return delegate
        return None

    def get_target_delegate(
        self, target: Any, request: httputil.HTTPServerRequest, **target_params: Any
    ) -> httputil.HTTPMessageDelegate | None:
        """Turn a rule's target into a delegate: a Router is asked in turn, an
        ``HTTPServerConnectionDelegate`` starts a request, a callable gets the whole request."""
        if isinstance(target, Router):
            return target.find_handler(request, **target_params)
        if isinstance(target, httputil.HTTPServerConnectionDelegate):
            assert request.connection is not None
            return target.start_request(request.server_connection, request.connection)
        if callable(target):
            assert request.connection is not None
            return _CallableAdapter(partial(target, **target_params), request.connection)
        return None


class ReversibleRuleRouter(ReversibleRouter, RuleRouter):
    """A rule router whose named rules (and nested reversible routers) can build URLs."""

    def __init__(self, rules: _RuleList | None = None) -> None:
        self.named_rules: dict[str, Rule] = {}
        super().__init__(rules)

    def process_rule(self, rule: Rule) -> Rule:
        rule = super().process_rule(rule)
        if rule.name:
            if rule.name in self.named_rules:
                app_log.warning("Two rules are named %s; the later one wins", rule.name)
            self.named_rules[rule.name] = rule
        return rule

    def reverse_url(self, name: str, *args: Any) -> str | None:
        if name in self.named_rules:
            return self.named_rules[name].matcher.reverse(*args)
        for rule in self.rules:
            if isinstance(rule.target, ReversibleRouter):
                found = rule.target.reverse_url(name, *args)
                if found is not None:
                    return found
        return None


class Rule:
    """A routing rule: a matcher, a target, keyword arguments for the target, and a name."""

    def __init__(
        self,
        matcher: Matcher,
        target: Any,
        target_kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(target, str):
            # Lazy targets: "package.module.Handler".
            target = import_object(target)
        self.matcher = matcher
        self.target = target
        self.target_kwargs = target_kwargs if target_kwargs else {}
        self.name = name

    def reverse(self, *args: Any) -> str | None:
        return self.matcher.reverse(*args)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.matcher!r}, {self.target!r}, "
            f"kwargs={self.target_kwargs!r}, name={self.name!r})"
        )


class Matcher:
    """Decides whether a request matches a rule."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        """Return the target's extra arguments (a dict, maybe empty) on a match, else None."""
        raise NotImplementedError()

    def reverse(self, *args: Any) -> str | None:
        """Rebuild a URL from the matcher and ``args``, or None when this matcher can't."""
        return None


class AnyMatches(Matcher):
    """Matches every request."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        return {}


class HostMatches(Matcher):
    """Matches requests whose host name matches ``host_pattern`` (a regex; ``$`` appended)."""

    def __init__(self, host_pattern: str | re.Pattern[str]) -> None:
        if isinstance(host_pattern, basestring_type):
            if not host_pattern.endswith("$"):
                host_pattern += "$"
            self.host_pattern = re.compile(host_pattern)
        else:
            self.host_pattern = host_pattern

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if self.host_pattern.match(request.host_name):
            return {}
        return None


class DefaultHostMatches(Matcher):
    """Matches when the application's ``default_host`` matches ``host_pattern``; requests that
    came through a proxy (``X-Real-Ip`` present) never match."""

    def __init__(self, application: Any, host_pattern: re.Pattern[str]) -> None:
        self.application = application
        self.host_pattern = host_pattern

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if "X-Real-Ip" not in request.headers and self.host_pattern.match(
            self.application.default_host
        ):
            return {}
        return None


class PathMatches(Matcher):
    """Matches the request path against a regex (``$`` is appended when missing).

    Capturing groups become positional arguments, or keyword arguments when they are named
    (a pattern may not mix both); values are percent-decoded to bytes.
    """

    def __init__(self, path_pattern: str | re.Pattern[str]) -> None:
        # Only a string pattern that ends anchored can equal exactly one path; a compiled
        # pattern is used as given and may match a prefix.
        anchored = False
        if isinstance(path_pattern, basestring_type):
            if not path_pattern.endswith("$"):
                path_pattern += "$"
            # "\$" is a literal dollar sign, not the anchor: count the backslashes before it.
            anchored = (len(path_pattern) - 1 - len(path_pattern[:-1].rstrip("\\"))) % 2 == 0
            self.regex = re.compile(path_pattern)
        else:
            self.regex = path_pattern
        if self.regex.groupindex and len(self.regex.groupindex) != self.regex.groups:
            raise AssertionError(
                f"a URL pattern's groups must be all named or all unnamed: {self.regex.pattern!r}"
            )
        self._path, self._group_count = _reverse_template(self.regex)
        self._anchored = anchored

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        m = self.regex.match(request.path)
        if m is None:
            return None
        if not self.regex.groups:
            return {}  # no path_args: plain callables get just the request
        if self.regex.groupindex:
            kwargs = {str(k): _unquote_or_none(v) for k, v in m.groupdict().items()}
            return {"path_args": [], "path_kwargs": kwargs}
        return {"path_args": [_unquote_or_none(s) for s in m.groups()], "path_kwargs": {}}

    def reverse(self, *args: Any) -> str | None:
        if self._path is None:
            raise ValueError(f"URL pattern {self.regex.pattern!r} is too complex to reverse")
        if len(args) != self._group_count:
            raise AssertionError(
                f"URL pattern {self.regex.pattern!r} takes {self._group_count} arguments, "
                f"got {len(args)}"
            )
        if not args:
            return self._path
        escaped = []
        for arg in args:
            if not isinstance(arg, (str, bytes)):
                arg = str(arg)
            escaped.append(url_escape(utf8(arg), plus=False))
        return self._path % tuple(escaped)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.regex.pattern!r})"


_METACHARS = frozenset(".^$*+?{}[]|()")


def _reverse_template(regex: re.Pattern[str]) -> tuple[str | None, int | None]:
    """A ``%s``-template for building URLs from ``regex``, and its number of groups.

    Only patterns made of literal text and simple top-level capturing groups can be reversed;
    for anything else the template is None.
    """
    pattern = regex.pattern
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    out: list[str] = []
    groups = 0
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n or pattern[i + 1].isalnum():
                return None, None  # \d, \w, \1 ... are not literals
            out.append("%%" if pattern[i + 1] == "%" else pattern[i + 1])
            i += 2
        elif ch == "(":
            if pattern.startswith("(?", i) and not pattern.startswith("(?P<", i):
                return None, None  # flags, non-capturing groups, lookarounds
            # Skip to the matching parenthesis; nested groups make it irreversible.
            depth, j = 1, i + 1
            while j < n and depth:
                if pattern[j] == "\\":
                    j += 2
                    continue
                if pattern[j] == "(":
                    return None, None
                if pattern[j] == ")":
                    depth -= 1
                j += 1
            if depth:
                return None, None
            out.append("%s")
            groups += 1
            i = j
        elif ch in _METACHARS:
            return None, None
        else:
            out.append("%%" if ch == "%" else ch)
            i += 1
    if groups != regex.groups:
        return None, None
    return "".join(out), groups


# Flags under which a pattern's text still reads as plain characters.
_LITERAL_SAFE_FLAGS = re.UNICODE | re.ASCII


def _literal_path(matcher: Matcher) -> str | None:
    """The one path a matcher accepts, when it is a plain-literal PathMatches, else None.

    Anything in doubt is left to the regex: the table must never accept a path the regex
    would refuse, nor refuse one it would accept.
    """
    if type(matcher).match is not PathMatches.match or not isinstance(matcher, PathMatches):
        return None
    if not matcher._anchored or matcher._path is None or matcher._group_count:
        return None
    if matcher.regex.flags & ~_LITERAL_SAFE_FLAGS:
        return None  # IGNORECASE, VERBOSE, MULTILINE... change what the text means
    return matcher._path.replace("%%", "%")


class URLSpec(Rule):
    """A path rule for ``Application``: ``url(pattern, handler, kwargs, name)``."""

    def __init__(
        self,
        pattern: str | re.Pattern[str],
        handler: Any,
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        matcher = PathMatches(pattern)
        super().__init__(matcher, handler, kwargs, name)
        self.regex = matcher.regex
        self.handler_class = self.target
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.regex.pattern!r}, {self.handler_class!r}, "
            f"kwargs={self.kwargs!r}, name={self.name!r})"
        )


url = URLSpec


def _unquote_or_none(s: str | None) -> bytes | None:
    """Percent-decode a captured path segment to bytes (``+`` stays ``+`` in paths);
    None (an optional group that did not match) stays None."""
    if s is None:
        return s
    if "%" not in s:
        return s.encode("utf-8")  # what unquoting gives when there is nothing to unquote
    return url_unescape(s, encoding=None, plus=False)
