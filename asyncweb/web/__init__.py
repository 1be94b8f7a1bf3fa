"""The web framework: ``Application``, ``RequestHandler`` and friends, as ``tornado.web``.

Split into modules (handler, application, errors, decorators, transforms); every public name
is re-exported here so ``from asyncweb.web import RequestHandler`` works as in Tornado.
"""

from asyncweb.routing import URLSpec, url
from asyncweb.web.application import Application, _ApplicationRouter, _HandlerDelegate
from asyncweb.web.decorators import (
    addslash,
    asynchronous,
    authenticated,
    removeslash,
    stream_request_body,
)
from asyncweb.web.errors import Finish, HTTPError, MissingArgumentError
from asyncweb.web.handler import (
    _ARG_DEFAULT,
    ErrorHandler,
    FallbackHandler,
    RedirectHandler,
    RequestHandler,
)
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
