"""What the server, client and broadcast sides share: turning a message into a frame's payload,
and the loggers (the same ``asyncweb.application``/``asyncweb.general`` loggers as before)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asyncweb import escape

if TYPE_CHECKING:
    pass


app_log = logging.getLogger("asyncweb.application")
gen_log = logging.getLogger("asyncweb.general")


def _to_message(message: str | bytes | dict[str, Any], binary: bool) -> str | bytes:
    if isinstance(message, dict):
        message = escape.json_encode(message)
    if binary:
        return message.encode("utf-8") if isinstance(message, str) else bytes(message)
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message).decode("utf-8")  # a text frame must hold UTF-8
    if not isinstance(message, str):
        raise TypeError(f"write_message() takes str, bytes or dict, not {type(message).__name__}")
    return message


def _ping_data(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)
