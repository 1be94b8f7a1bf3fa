"""How the browser tests launch headless Chromium (Debian's build, through playwright)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

# No sandbox (containers), no GPU, and nothing that reaches beyond loopback.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextlib.asynccontextmanager
async def launch_chromium() -> AsyncIterator[Any]:
    """A headless Chromium (playwright's async API), closed on exit; skips the test when
    Chromium is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield instance
        finally:
            await instance.close()
