"""How the browser tests launch headless Chromium (Debian's build, through playwright)."""

from __future__ import annotations

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
