"""``asyncweb serve`` freezes start-up objects (``gc.freeze``) before it serves, in one process
and in every worker; ``--no-gc-freeze`` leaves the collector as Python set it up."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli_apps.runner import TESTS, Server, kill_all

# Served from the repository root, where the fixture app is the module tests.operations.gc_app.
ROOT = TESTS.parent
TARGET = "tests.operations.gc_app:app"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    kill_all(started)


def state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/", timeout=20) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    return answer


def test_single_process_freezes_startup_objects(servers: list[Server]) -> None:
    server = Server(TARGET, "--port", "0", "--no-access-log", cwd=ROOT)
    servers.append(server)
    answer = state(server.url())
    # The fixture module alone holds 4,001 containers; the imports many more.
    assert answer["frozen"] > 4001
    assert answer["collected_view"] is False


def test_no_gc_freeze_leaves_gc_alone(servers: list[Server]) -> None:
    server = Server(TARGET, "--port", "0", "--no-access-log", "--no-gc-freeze", cwd=ROOT)
    servers.append(server)
    answer = state(server.url())
    assert answer["frozen"] == 0
    assert answer["collected_view"] is True


def test_every_worker_freezes(servers: list[Server]) -> None:
    server = Server(TARGET, "--port", "0", "--no-access-log", "--workers", "2", cwd=ROOT)
    servers.append(server)
    url = server.url()
    server.wait_for_line(r"worker 1 started")
    server.wait_for_line(r"worker 0 started")
    answers: dict[int, dict[str, Any]] = {}
    # New connections spread over both workers; stop once each has answered (bounded).
    deadline = time.monotonic() + 30
    while len(answers) < 2 and time.monotonic() < deadline:
        answer = state(url)
        answers[answer["pid"]] = answer
    assert len(answers) == 2
    for answer in answers.values():
        assert answer["frozen"] > 4001
        assert answer["collected_view"] is False
