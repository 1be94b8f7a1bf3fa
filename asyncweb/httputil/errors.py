"""The HTTP layer's exceptions: HTTPInputError for input that is not valid HTTP, and
HTTPOutputError (defined by the protocol layer) for an application writing invalid HTTP."""

from __future__ import annotations

from asyncweb.protocol.http1 import HTTPOutputError as HTTPOutputError


class HTTPInputError(Exception):
    """The peer sent something that is not valid HTTP."""


class _LazyInputError(HTTPInputError):
    """Bad input found only when a part of the request was first read (its query arguments
    over the limit): the framework answers it with 400 rather than 500."""
