"""Fixture for the CLI tests: a module whose own import fails (a real bug in user code)."""

raise RuntimeError("broken at import time")
