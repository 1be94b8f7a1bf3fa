"""Registers the shared fixtures for every test module; the helpers live in tests/support/."""

from __future__ import annotations

from tests.support.brokers import broker
from tests.support.dbservers import mariadb, postgresql
from tests.support.servers import fetch, protocol_settings, serve

__all__ = ["broker", "fetch", "mariadb", "postgresql", "protocol_settings", "serve"]
