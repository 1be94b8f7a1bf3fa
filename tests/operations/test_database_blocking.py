"""What the docs promise: a slow query through the awaitable Database leaves the server free for
other requests, while Tornado 2.x's blocking Connection holds every request of the process.

Each server is a real process: the legacy one is an unmodified Tornado 2.x-style app run with
``python -m asyncweb.dropin``. The "slow query" waits for a database lock that the test holds,
so how long it takes is decided by the test, not by the clock: the test sees the query waiting
in the server's process list, sends a fast request, and only then releases the lock. The
responses carry the order in which the server finished them.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.dbservers import MariaDB, PostgreSQL

ROOT = Path(__file__).resolve().parents[2]

LEGACY_APP = """
import sys
import tornado.database
import tornado.ioloop
import tornado.web

port, host, database = int(sys.argv[1]), sys.argv[2], sys.argv[3]
db = tornado.database.Connection(host, database, user="root")
finished = []

class SlowHandler(tornado.web.RequestHandler):
    def get(self):
        db.get("SELECT GET_LOCK(%s, 60) AS got", "asyncweb_slow")
        db.get("SELECT RELEASE_LOCK(%s) AS released", "asyncweb_slow")
        finished.append("slow")
        self.write("slow %d" % len(finished))

class FastHandler(tornado.web.RequestHandler):
    def get(self):
        finished.append("fast")
        self.write("fast %d" % len(finished))

app = tornado.web.Application([(r"/slow", SlowHandler), (r"/fast", FastHandler)])
app.listen(port, "127.0.0.1")
print("ready", flush=True)
tornado.ioloop.IOLoop.instance().start()
"""

ASYNC_APP = """
import asyncio
import sys
from asyncweb import web
from asyncweb.database import Database

port, url = int(sys.argv[1]), sys.argv[2]
db = Database(url)
finished = []
if db.scheme == "postgresql":
    LOCK, UNLOCK = "SELECT pg_advisory_lock(4242)", "SELECT pg_advisory_unlock(4242)"
else:
    LOCK = "SELECT GET_LOCK('asyncweb_slow', 60)"
    UNLOCK = "SELECT RELEASE_LOCK('asyncweb_slow')"

class SlowHandler(web.RequestHandler):
    async def get(self):
        async with db.transaction():  # lock and unlock on one connection
            await db.query(LOCK)
            await db.query(UNLOCK)
        finished.append("slow")
        self.write("slow %d" % len(finished))

class FastHandler(web.RequestHandler):
    def get(self):
        finished.append("fast")
        self.write("fast %d" % len(finished))

async def main():
    await db.connect()
    web.Application([(r"/slow", SlowHandler), (r"/fast", FastHandler)]).listen(port, "127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path, source: str, args: list[str], dropin: bool) -> Iterator[int]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(source))
    port = _free_port()
    runner = ["-m", "asyncweb.dropin"] if dropin else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, *runner, str(script), str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == b"ready\n", process.stderr.read() if process.stderr else line
        yield port
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def _wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "the server's query never started waiting"
        time.sleep(0.05)


def _exchange(
    port: int, waiting: Callable[[], bool], release: Callable[[], None], blocking: bool
) -> list[str]:
    """slow, then fast once the slow query waits; what the server answered, in the order
    the test saw. A fast answer is awaited for 30 s where the server should be free, for 1 s
    where it should be blocked (being late there cannot make the test fail). Releases the
    lock in any case."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        try:
            slow = pool.submit(_get, port, "/slow")
            _wait_until(waiting)
            fast = pool.submit(_get, port, "/fast")
            # Answered while the slow query still waits, or not at all before the release.
            done, _ = concurrent.futures.wait([fast], timeout=1 if blocking else 30)
            seen = [fast.result()] if done else []
            assert not slow.done()
        finally:
            release()
        seen.append(slow.result(timeout=60))
        if not done:
            seen.append(fast.result(timeout=60))
        return seen


def _mysql_lock(server: MariaDB) -> tuple[Callable[[], bool], Callable[[], None]]:
    import pymysql

    holder = pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True)
    with holder.cursor() as c:
        c.execute("SELECT GET_LOCK('asyncweb_slow', 60)")
        assert c.fetchone() == (1,)

    def waiting() -> bool:
        with holder.cursor() as c:
            c.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE INFO LIKE 'SELECT GET\\_LOCK(%%' AND ID <> CONNECTION_ID()"
            )
            row = c.fetchone()
            return bool(row and row[0] == 1)

    def release() -> None:
        with holder.cursor() as c:
            c.execute("SELECT RELEASE_LOCK('asyncweb_slow')")
        holder.close()

    return waiting, release


@pytest.fixture
def legacy_server(tmp_path: Path, mariadb: MariaDB) -> Iterator[int]:
    yield from _start(tmp_path, LEGACY_APP, [mariadb.host, mariadb.database], dropin=True)


@pytest.fixture
def async_mysql_server(tmp_path: Path, mariadb: MariaDB) -> Iterator[int]:
    yield from _start(tmp_path, ASYNC_APP, [mariadb.url], dropin=False)


@pytest.fixture
def async_postgres_server(tmp_path: Path, postgresql: PostgreSQL) -> Iterator[int]:
    yield from _start(tmp_path, ASYNC_APP, [postgresql.url], dropin=False)


def test_legacy_connection_blocks_the_whole_server(legacy_server: int, mariadb: MariaDB) -> None:
    waiting, release = _mysql_lock(mariadb)
    seen = _exchange(legacy_server, waiting, release, blocking=True)
    # The fast request could not be served until the slow query was over.
    assert seen == ["slow 1", "fast 2"]


def test_async_database_leaves_the_server_free_mysql(
    async_mysql_server: int, mariadb: MariaDB
) -> None:
    waiting, release = _mysql_lock(mariadb)
    assert _exchange(async_mysql_server, waiting, release, blocking=False) == ["fast 1", "slow 2"]


def test_async_database_leaves_the_server_free_postgresql(
    async_postgres_server: int, postgresql: PostgreSQL
) -> None:
    import asyncio

    import asyncpg

    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(asyncpg.connect(postgresql.url))
    try:
        loop.run_until_complete(holder.execute("SELECT pg_advisory_lock(4242)"))

        def waiting() -> bool:
            count = loop.run_until_complete(
                holder.fetchval(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'SELECT pg_advisory_lock%'"
                )
            )
            return bool(count == 1)

        def release() -> None:
            loop.run_until_complete(holder.execute("SELECT pg_advisory_unlock(4242)"))

        assert _exchange(async_postgres_server, waiting, release, blocking=False) == [
            "fast 1",
            "slow 2",
        ]
    finally:
        loop.run_until_complete(holder.close())
        loop.close()
