"""The pub/sub brokers the tests run against: in memory, and Redis on a redis-server the
fixture starts (skipped where redis-server is not installed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from asyncweb.pubsub import Broker, MemoryBroker, RedisBroker
from tests.cli_apps.redis_process import REDIS_SERVER, RedisProcess

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    made: Broker
    if request.param == "memory":
        made = MemoryBroker()
        yield made
        await made.close()
        return
    server = RedisProcess()
    server.start()
    try:
        made = RedisBroker(server.url)
        yield made
        await made.close()
    finally:
        server.kill()
