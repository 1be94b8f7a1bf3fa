"""HTTP utilities shared by the server, the client and the framework.

Header maps, the server-side request object, and parsers for request lines, query strings,
form bodies and cookies. Behaviour follows Tornado's ``tornado.httputil``; every parser here runs
in time linear in its input, since all of them see untrusted bytes.

Split into modules by concern: ``headers`` (HTTPHeaders), ``header_values`` (dates, ranges,
cookies, parameters), ``urls`` (URLs and query strings), ``forms`` (form bodies and their
limits), ``request`` (HTTPServerRequest, start lines, delegates) and ``errors``. Every name is
re-exported here, so ``from asyncweb.httputil import HTTPHeaders`` works as in Tornado.
"""

from asyncweb.httputil.errors import HTTPInputError, HTTPOutputError, _LazyInputError
from asyncweb.httputil.forms import (
    HTTPFile,
    ParseBodyConfig,
    ParseMultipartConfig,
    ParseUrlEncodedConfig,
    parse_body_arguments,
    parse_multipart_form_data,
    set_parse_body_config,
)
from asyncweb.httputil.header_values import (
    _decode_rfc2231,
    _encode_header,
    _get_content_range,
    _parse_header,
    _parse_request_range,
    encode_username_password,
    format_timestamp,
    parse_cookie,
)
from asyncweb.httputil.headers import (
    _FORBIDDEN_VALUE_RE,
    _NORMALIZED_CACHE_SIZE,
    HTTP_WHITESPACE,
    HTTPHeaders,
    _normalized,
    _normalized_raw,
    _raw_keys,
)
from asyncweb.httputil.request import (
    HTTPConnection,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
    parse_request_start_line,
    parse_response_start_line,
    responses,
)
from asyncweb.httputil.urls import parse_qs_bytes, qs_to_qsl, split_host_and_port, url_concat

__all__ = [
    "HTTP_WHITESPACE",
    "_FORBIDDEN_VALUE_RE",
    "_NORMALIZED_CACHE_SIZE",
    "HTTPConnection",
    "HTTPFile",
    "HTTPHeaders",
    "HTTPInputError",
    "HTTPMessageDelegate",
    "HTTPOutputError",
    "HTTPServerConnectionDelegate",
    "HTTPServerRequest",
    "ParseBodyConfig",
    "ParseMultipartConfig",
    "ParseUrlEncodedConfig",
    "RequestStartLine",
    "ResponseStartLine",
    "_LazyInputError",
    "_decode_rfc2231",
    "_encode_header",
    "_get_content_range",
    "_normalized",
    "_normalized_raw",
    "_parse_header",
    "_parse_request_range",
    "_raw_keys",
    "encode_username_password",
    "format_timestamp",
    "parse_body_arguments",
    "parse_cookie",
    "parse_multipart_form_data",
    "parse_qs_bytes",
    "parse_request_start_line",
    "parse_response_start_line",
    "qs_to_qsl",
    "responses",
    "set_parse_body_config",
    "split_host_and_port",
    "url_concat",
]


def __getattr__(name: str) -> object:
    # Tornado's name for the process-wide form limits: whatever set_parse_body_config set last.
    if name == "_DEFAULT_PARSE_BODY_CONFIG":
        from asyncweb.httputil import forms

        return forms._parse_body_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
