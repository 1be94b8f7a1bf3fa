"""The web framework: ``Application``, ``RequestHandler`` and friends, as ``tornado.web``.

Every public name is re-exported here, so ``from asyncweb.web import RequestHandler`` works as
in Tornado. The modules, one concept each:

* ``application``: ``Application``, its settings, router and request logging;
* ``delegates``: the buffered and streaming delegates that feed a request to its handler;
* ``handler``: ``RequestHandler``, its hooks, headers, arguments, output and execution;
* ``cookies``: plain cookies (``get_cookie``, ``set_cookie``...);
* ``signing``: signed cookies and XSRF protection;
* ``failures``: error pages, exception logging and the bare 500;
* ``builtin_handlers``: ``ErrorHandler``, ``RedirectHandler``, ``FallbackHandler``;
* ``static``: ``StaticFileHandler``;
* ``rendering``: templates, locale, UI modules and ``static_url`` for handlers;
* ``ui``: ``UIModule`` and the built-in UI modules;
* ``decorators``: ``authenticated``, ``stream_request_body``, slash decorators, legacy ones;
* ``transforms``: output transforms (gzip);
* ``errors``: ``HTTPError``, ``Finish``, ``MissingArgumentError``;
* ``lifecycle``: start-up and shut-down hooks, graceful stop;
* ``debug_page``: the debug-mode error page.
"""

from asyncweb.routing import URLSpec, url
from asyncweb.web.application import Application, _ApplicationRouter, _HandlerDelegate
from asyncweb.web.builtin_handlers import ErrorHandler, FallbackHandler, RedirectHandler
from asyncweb.web.decorators import (
    addslash,
    asynchronous,
    authenticated,
    removeslash,
    stream_request_body,
)
from asyncweb.web.errors import Finish, HTTPError, MissingArgumentError
from asyncweb.web.handler import _ARG_DEFAULT, RequestHandler
from asyncweb.web.signing import (
    DEFAULT_SIGNED_VALUE_MIN_VERSION,
    DEFAULT_SIGNED_VALUE_VERSION,
    create_signed_value,
    decode_signed_value,
    get_signature_key_version,
)

# Tornado's names for the cookie signatures (its test suite and some tools use them).
from asyncweb.web.signing import _signature_v1 as _create_signature_v1  # noqa: F401
from asyncweb.web.signing import _signature_v2 as _create_signature_v2  # noqa: F401
from asyncweb.web.static import StaticFileHandler
from asyncweb.web.transforms import GZipContentEncoding, OutputTransform
from asyncweb.web.ui import TemplateModule, UIModule

__all__ = [
    "DEFAULT_SIGNED_VALUE_MIN_VERSION",
    "DEFAULT_SIGNED_VALUE_VERSION",
    "_ARG_DEFAULT",
    "Application",
    "ErrorHandler",
    "FallbackHandler",
    "Finish",
    "GZipContentEncoding",
    "HTTPError",
    "MissingArgumentError",
    "OutputTransform",
    "RedirectHandler",
    "RequestHandler",
    "StaticFileHandler",
    "TemplateModule",
    "UIModule",
    "URLSpec",
    "_ApplicationRouter",
    "_HandlerDelegate",
    "addslash",
    "asynchronous",
    "authenticated",
    "create_signed_value",
    "decode_signed_value",
    "get_signature_key_version",
    "removeslash",
    "stream_request_body",
    "url",
]
