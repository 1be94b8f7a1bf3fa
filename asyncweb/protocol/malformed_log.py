"""Rate-limited logging of refused requests, so hostile input cannot flood the log.

:class:`MalformedRequestLog` writes a few INFO lines per client address and minute; the rest
are counted and summed up in one line when that address next gets a line of its own. What a
client sent appears only as a short escaped prefix.
"""

from __future__ import annotations

import logging
import time

__all__ = ["MalformedRequestLog"]

log = logging.getLogger("asyncweb.general")


class MalformedRequestLog:
    """Logs refused requests at INFO, a few per client address and minute: garbage at full
    speed costs a few lines a minute per address, not a line per request."""

    window = 60.0
    per_window = 5
    max_addresses = 10000
    prefix = 80

    def __init__(self) -> None:
        # address -> [window start, lines logged in it, requests not logged]
        self._seen: dict[str, list[float]] = {}

    def refused(self, address: str, status: int, why: str) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        now = time.monotonic()
        entry = self._seen.get(address)
        if entry is None or now - entry[0] >= self.window:
            if entry is None and len(self._seen) >= self.max_addresses:
                self._seen.clear()  # a crude bound: forgetting only lets a few more lines out
            not_logged = int(entry[2]) if entry is not None else 0
            entry = self._seen[address] = [now, 0, 0]
            if not_logged:
                log.info("%d more malformed requests from %s were not logged", not_logged, address)
        if entry[1] < self.per_window:
            entry[1] += 1
            log.info("bad request from %s: %s (%d)", address, self.escape(why), status)
        else:
            entry[2] += 1

    @classmethod
    def escape(cls, text: str) -> str:
        cut = text[: cls.prefix]
        escaped = cut.encode("ascii", "backslashreplace").decode("ascii")
        escaped = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in escaped)
        return escaped + ("..." if len(text) > cls.prefix else "")
