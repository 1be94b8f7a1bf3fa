"""What both directions of ASGI share: the message and application types, the version
reported in a scope, two small awaitable helpers and the loggers."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

app_log = logging.getLogger("asyncweb.application")
gen_log = logging.getLogger("asyncweb.general")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}


def _done_future() -> asyncio.Future[None]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def _maybe_await(value: Any) -> None:
    if value is not None and inspect.isawaitable(value):
        await value
