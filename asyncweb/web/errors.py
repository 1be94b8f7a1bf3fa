"""Exceptions a handler raises to end a request early."""

from __future__ import annotations

from typing import Any

from asyncweb import httputil


class HTTPError(Exception):
    """Raise to answer with an HTTP error; ``write_error`` renders the page.

    ``log_message`` (``%``-formatted with ``args``) goes to the log, never to the client;
    ``reason`` replaces the standard reason phrase (needed for non-standard codes).
    """

    def __init__(
        self,
        status_code: int = 500,
        log_message: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.status_code = status_code
        self.log_message = log_message
        self.args = args
        self.reason: str | None = kwargs.get("reason")
        if log_message and not args:
            # Without args the message is literal text: protect any % in it from formatting.
            self.log_message = log_message.replace("%", "%%")

    def __str__(self) -> str:
        reason = self.reason or httputil.responses.get(self.status_code, "Unknown")
        text = f"HTTP {self.status_code}: {reason}"
        if self.log_message:
            return f"{text} ({self.log_message % self.args})"
        return text


class Finish(Exception):
    """Raise to end the request without an error: ``finish(*args)`` is called for you.

    Unlike ``HTTPError`` the response keeps its status and headers, so
    ``set_status(401); set_header(...); raise Finish()`` is a custom error response.
    """


class MissingArgumentError(HTTPError):
    """A required argument was absent: a 400 response."""

    def __init__(self, arg_name: str) -> None:
        super().__init__(400, f"Missing argument {arg_name}")
        self.arg_name = arg_name
