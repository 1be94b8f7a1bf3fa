"""The pytest plugin runs an application's start-up and shut-down hooks around each test."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest
from asyncweb import web

events = []


class State(web.RequestHandler):
    def get(self):
        self.write(",".join(events))


async def connect():
    events.append("startup")


def disconnect():
    events.append("shutdown")


@pytest.fixture
def app():
    return web.Application([("/", State)], on_startup=[connect], on_shutdown=[disconnect])


async def test_first(fetch):
    assert (await fetch("/")).body == b"startup"


async def test_second(fetch):
    # The first test's application was shut down after it; this one has started.
    assert (await fetch("/")).body == b"startup,shutdown,startup"
"""


def test_hooks_run_around_each_test(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_hooks=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error::ResourceWarning")
    result.assert_outcomes(passed=2)
