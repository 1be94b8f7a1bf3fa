"""Fixture app for the gc-at-start-up tests: reports, from inside the serving process, how
many objects are frozen and whether a list built at import time is still in the collector's
generations (``gc.get_objects()`` leaves frozen objects out)."""

from __future__ import annotations

import gc
import json
import os

from asyncweb import web

# Start-up state of the kind a real application builds at import: 2,000 small containers.
STARTUP_TABLE = [{"row": [n]} for n in range(2000)]


class GcHandler(web.RequestHandler):
    def get(self) -> None:
        seen = any(obj is STARTUP_TABLE for obj in gc.get_objects())
        answer = {"pid": os.getpid(), "frozen": gc.get_freeze_count(), "collected_view": seen}
        self.write(json.dumps(answer))


app = web.Application([(r"/", GcHandler)])
