"""asyncweb.database on real servers: SQLite files, MariaDB and PostgreSQL started by the tests
(tests/support/dbservers.py), through the awaitable Database and Tornado 2.x's blocking
Connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncweb.database import (
    Connection,
    Database,
    Error,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    Row,
)
from asyncweb.database._common import translate
from tests.support.dbservers import MariaDB, PostgreSQL

BACKENDS = ["sqlite", "mysql", "postgresql"]

# One schema text for all three (types every backend reads the same way).
SCHEMA = {
    "sqlite": "CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(100) "
    "NOT NULL UNIQUE, score INTEGER)",
    "mysql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) "
    "NOT NULL UNIQUE, score INTEGER) ENGINE=InnoDB",
    "postgresql": "CREATE TABLE {t} (id SERIAL PRIMARY KEY, name VARCHAR(100) NOT NULL UNIQUE, "
    "score INTEGER)",
}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    server: MariaDB | PostgreSQL = request.getfixturevalue(
        "mariadb" if request.param == "mysql" else "postgresql"
    )
    return server.url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[tuple[Database, str]]:
    """A Database and a fresh table in it."""
    database = Database(db_url, max_size=3)
    table = "t_" + uuid.uuid4().hex[:12]
    await database.execute(SCHEMA[database.scheme.replace("mariadb", "mysql")].format(t=table))
    try:
        yield database, table
    finally:
        await database.execute(f"DROP TABLE {table}")
        await database.close()


# -- placeholders --------------------------------------------------------------------------


def test_placeholders_translate_per_driver() -> None:
    assert translate("a = %s AND b = %s", (1, 2), {}, "qmark") == ("a = ? AND b = ?", [1, 2])
    assert translate("a = %s AND b = %s", (1, 2), {}, "numeric") == ("a = $1 AND b = $2", [1, 2])
    assert translate("a = %s AND b LIKE 'x%%'", (1,), {}, "format") == (
        "a = %s AND b LIKE 'x%%'",
        [1],
    )
    assert translate("a = %(x)s OR b = %(x)s", (), {"x": 7}, "numeric") == (
        "a = $1 OR b = $1",
        [7],
    )
    assert translate("a = %(x)s OR b = %(x)s", (), {"x": 7}, "qmark") == (
        "a = ? OR b = ?",
        [7, 7],
    )
    assert translate("100%%", (), {}, "qmark") == ("100%", [])


@pytest.mark.parametrize(
    ("sql", "args", "kwargs"),
    [
        ("a = %s", (), {}),
        ("a = 1", (1,), {}),
        ("a = %d", (1,), {}),
        ("a LIKE 'x%'", (), {}),
        ("a = %(missing)s", (), {"other": 1}),
        ("a = %s AND b = %(b)s", (1,), {"b": 2}),
    ],
)
def test_placeholder_mistakes_are_refused(sql: str, args: tuple[Any, ...], kwargs: Any) -> None:
    with pytest.raises(ProgrammingError):
        translate(sql, args, kwargs, "qmark")


def test_row_is_a_dict_with_attributes() -> None:
    row = Row(id=1, title="x")
    assert row.title == "x" and row["id"] == 1 and dict(row) == {"id": 1, "title": "x"}
    with pytest.raises(AttributeError):
        _ = row.missing


# -- the awaitable form, on every backend -------------------------------------------------------


async def test_query_get_execute(db: tuple[Database, str]) -> None:
    database, t = db
    first = await database.execute(f"INSERT INTO {t} (name, score) VALUES (%s, %s)", "ann", 3)
    second = await database.execute_lastrowid(
        f"INSERT INTO {t} (name, score) VALUES (%(name)s, %(score)s)", name="bob", score=5
    )
    assert isinstance(first, int) and isinstance(second, int) and second > first
    rows = await database.query(f"SELECT id, name, score FROM {t} ORDER BY id")
    assert [(r.id, r.name, r.score) for r in rows] == [(first, "ann", 3), (second, "bob", 5)]
    assert all(isinstance(r, Row) for r in rows)
    row = await database.get(f"SELECT name FROM {t} WHERE id = %s", second)
    assert row == {"name": "bob"}
    assert await database.get(f"SELECT name FROM {t} WHERE id = %s", -1) is None
    with pytest.raises(ProgrammingError, match="Multiple rows"):
        await database.get(f"SELECT name FROM {t}")
    changed = await database.execute_rowcount(f"UPDATE {t} SET score = score + %s", 1)
    assert changed == 2
    assert await database.execute_rowcount(f"DELETE FROM {t} WHERE name = %s", "nobody") == 0
    # A literal percent sign next to parameters.
    like = await database.query(f"SELECT name FROM {t} WHERE name LIKE 'a%%' AND score > %s", 0)
    assert [r.name for r in like] == ["ann"]


async def test_parameters_never_enter_the_sql_text(db: tuple[Database, str]) -> None:
    database, t = db
    hostile = f"x'); DROP TABLE {t}; -- %s %(n)s \\' \""
    await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", hostile)
    row = await database.get(f"SELECT name FROM {t} WHERE name = %s", hostile)
    assert row is not None and row.name == hostile
    unicode = "Grüße, 世界 🌍"
    await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", unicode)
    assert (await database.get(f"SELECT name FROM {t} WHERE name = %s", unicode)) == {
        "name": unicode
    }


async def test_executemany_and_iter(db: tuple[Database, str]) -> None:
    database, t = db
    names = [(f"n{i:03d}", i) for i in range(250)]
    assert await database.executemany_rowcount(
        f"INSERT INTO {t} (name, score) VALUES (%s, %s)", names
    ) == len(names)
    last = await database.executemany(
        f"INSERT INTO {t} (name, score) VALUES (%s, %s)", [("z1", 1), ("z2", 2)]
    )
    ids = {r.name: r.id for r in await database.query(f"SELECT id, name FROM {t} WHERE id > 0")}
    # MySQL reports the first id of a multi-row INSERT (the driver batches executemany).
    assert last == ids["z1" if database.scheme == "mysql" else "z2"]
    assert await database.executemany_rowcount(f"INSERT INTO {t} (name) VALUES (%s)", []) == 0
    seen = [row.name async for row in database.iter(f"SELECT name FROM {t} ORDER BY name")]
    assert seen == sorted([n for n, _ in names] + ["z1", "z2"])
    # Stopping early gives the connection back.
    async with contextlib.aclosing(database.iter(f"SELECT name FROM {t}")) as rows:
        async for _ in rows:
            break
    assert await database.get(f"SELECT COUNT(*) AS n FROM {t}") == {"n": 252}


async def test_errors_have_one_set_of_names(db: tuple[Database, str]) -> None:
    database, t = db
    await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "ann")
    with pytest.raises(IntegrityError):
        await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "ann")
    with pytest.raises(IntegrityError):
        await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", None)
    with pytest.raises(Error):
        await database.query("SELECT * FROM no_such_table_here")
    with pytest.raises(Error):
        await database.query("SELEKT 1")
    # The pool still works after each of those.
    assert await database.get(f"SELECT COUNT(*) AS n FROM {t}") == {"n": 1}


async def test_transactions_commit_roll_back_and_nest(db: tuple[Database, str]) -> None:
    database, t = db
    async with database.transaction() as tx:
        await tx.execute(f"INSERT INTO {t} (name) VALUES (%s)", "kept")
        await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "kept too")
    with pytest.raises(KeyError):
        async with database.transaction():
            await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "lost")
            raise KeyError
    async with database.transaction():
        await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "outer")
        with pytest.raises(IntegrityError):
            async with database.transaction():
                await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "inner")
                await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "kept")
    names = {r.name for r in await database.query(f"SELECT name FROM {t}")}
    assert names == {"kept", "kept too", "outer"}


async def test_an_open_transaction_is_invisible_to_other_connections(
    db: tuple[Database, str],
) -> None:
    database, t = db
    if database.scheme == "sqlite":
        pytest.skip("SQLite's writer excludes other writers, not readers; checked below")
    entered, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with database.transaction():
            await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", "pending")
            entered.set()
            await release.wait()

    task = asyncio.ensure_future(writer())
    await entered.wait()
    # Another task: another connection, which does not see the uncommitted row.
    assert await database.get(f"SELECT COUNT(*) AS n FROM {t}") == {"n": 0}
    release.set()
    await task
    assert await database.get(f"SELECT COUNT(*) AS n FROM {t}") == {"n": 1}


async def test_sqlite_readers_see_committed_data_only(tmp_path: Path) -> None:
    async with Database(f"sqlite:///{tmp_path}/wal.db", max_size=2) as database:
        await database.execute("CREATE TABLE t (n INTEGER)")
        async with database.transaction():
            await database.execute("INSERT INTO t VALUES (%s)", 1)
            reader = asyncio.ensure_future(database.get("SELECT COUNT(*) AS c FROM t"))
            assert await reader == {"c": 0}
        assert await database.get("SELECT COUNT(*) AS c FROM t") == {"c": 1}


async def test_the_pool_bounds_open_connections(db: tuple[Database, str]) -> None:
    database, t = db
    sleeps = {
        "sqlite": "SELECT COUNT(*) AS n FROM {t}",
        "mysql": "SELECT SLEEP(0.05) AS n FROM DUAL",
        "postgresql": "SELECT pg_sleep(0.05) AS n",
    }
    most = 0

    async def one() -> None:
        nonlocal most
        await database.query(sleeps[database.scheme].format(t=t))
        most = max(most, database._open)

    await asyncio.gather(*(one() for _ in range(12)))
    assert 1 <= most <= database.max_size == 3
    assert len(database._idle) == database._open


async def test_a_cancelled_query_does_not_poison_the_pool(db: tuple[Database, str]) -> None:
    database, t = db
    slow = {
        "sqlite": None,
        "mysql": "SELECT SLEEP(5) AS s",
        "postgresql": "SELECT pg_sleep(5) AS s",
    }[database.scheme]
    if slow is None:
        pytest.skip("no server-side sleep in SQLite")
    task = asyncio.ensure_future(database.query(slow))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for i in range(5):
        await database.execute(f"INSERT INTO {t} (name) VALUES (%s)", f"after{i}")
    assert await database.get(f"SELECT COUNT(*) AS n FROM {t}") == {"n": 5}


async def test_url_forms(tmp_path: Path) -> None:
    async with Database("sqlite://") as memory:
        assert await memory.get("SELECT 1 AS one") == {"one": 1}
        assert memory.max_size == 1
    path = tmp_path / "abs.db"
    async with Database(f"sqlite:///{path}") as absolute:
        await absolute.execute("CREATE TABLE x (n INTEGER)")
    assert path.exists()
    with pytest.raises(ValueError):
        Database("oracle://somewhere/x")


async def test_a_wrong_server_is_an_operational_error(
    mariadb: MariaDB, postgresql: PostgreSQL
) -> None:
    for url in (
        f"mysql://root@127.0.0.1:{mariadb.port}/no_such_database",
        f"postgresql://postgres@127.0.0.1:{postgresql.port}/no_such_database",
    ):
        with pytest.raises(OperationalError):
            await Database(url).connect()


async def test_mysql_over_its_unix_socket(mariadb: MariaDB) -> None:
    url = f"mysql://root@localhost/{mariadb.database}?unix_socket={mariadb.socket}"
    async with Database(url) as database:
        assert await database.get("SELECT 41 + %s AS n", 1) == {"n": 42}


# -- the blocking form (Tornado 2.x) ---------------------------------------------------------


@pytest.fixture
def legacy(mariadb: MariaDB) -> Any:
    conn = Connection(mariadb.host, mariadb.database, user="root")
    table = "l_" + uuid.uuid4().hex[:12]
    conn.execute(SCHEMA["mysql"].format(t=table))
    yield conn, table
    conn.execute(f"DROP TABLE {table}")
    conn.close()


def test_legacy_connection_api(legacy: tuple[Connection, str]) -> None:
    conn, t = legacy
    first = conn.execute(f"INSERT INTO {t} (name, score) VALUES (%s, %s)", "ann", 1)
    second = conn.execute_lastrowid(f"INSERT INTO {t} (name, score) VALUES (%s, %s)", "bob", 2)
    assert isinstance(first, int) and second == first + 1
    assert (
        conn.executemany_rowcount(
            f"INSERT INTO {t} (name, score) VALUES (%s, %s)", [("c", 3), ("d", 4)]
        )
        == 2
    )
    assert conn.executemany(f"INSERT INTO {t} (name) VALUES (%s)", [("e",)]) == second + 3
    rows = conn.query(f"SELECT name, score FROM {t} WHERE score >= %s ORDER BY id", 2)
    assert [(r.name, r.score) for r in rows] == [("bob", 2), ("c", 3), ("d", 4)]
    assert conn.get(f"SELECT score FROM {t} WHERE name = %(n)s", n="ann") == {"score": 1}
    assert conn.get(f"SELECT score FROM {t} WHERE name = %s", "zed") is None
    with pytest.raises(ProgrammingError, match="Multiple rows"):
        conn.get(f"SELECT score FROM {t}")
    assert conn.execute_rowcount(f"UPDATE {t} SET score = 0 WHERE score < %s", 3) == 2
    names = [r.name for r in conn.iter(f"SELECT name FROM {t} ORDER BY name")]
    assert names == ["ann", "bob", "c", "d", "e"]
    with pytest.raises(IntegrityError):
        conn.execute(f"INSERT INTO {t} (name) VALUES (%s)", "ann")
    # TRADITIONAL sql_mode: a bad value is an error, not a silent truncation.
    with pytest.raises(Error):
        conn.execute(f"INSERT INTO {t} (name, score) VALUES (%s, %s)", "f", "not a number")
    # time_zone is UTC by default.
    assert conn.get("SELECT @@session.time_zone AS tz") == {"tz": "+00:00"}


def test_legacy_connection_reconnects(legacy: tuple[Connection, str], mariadb: MariaDB) -> None:
    conn, t = legacy
    conn.execute(f"INSERT INTO {t} (name) VALUES (%s)", "before")
    own_id = conn.get("SELECT CONNECTION_ID() AS id")
    assert own_id is not None
    # The server drops the connection (as after wait_timeout): the next call reports it...
    other = Connection(mariadb.host, mariadb.database, user="root")
    other.execute("KILL %s", own_id.id)
    other.close()
    with pytest.raises(OperationalError):
        conn.query(f"SELECT name FROM {t}")
    # ...and the one after opens a new connection.
    assert [r.name for r in conn.query(f"SELECT name FROM {t}")] == ["before"]
    # A connection idle past max_idle_time is replaced before use.
    conn.max_idle_time = 0
    first = conn.get("SELECT CONNECTION_ID() AS id")
    conn._last_use_time -= 1
    second = conn.get("SELECT CONNECTION_ID() AS id")
    assert first is not None and second is not None and first.id != second.id
    conn.reconnect()
    assert conn.get("SELECT 1 AS one") == {"one": 1}


def test_legacy_connection_logs_a_failed_connect(
    mariadb: MariaDB, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "asyncweb.database"):
        conn = Connection(mariadb.host, "no_such_database", user="root")
    assert "Cannot connect to MySQL" in caplog.text
    with pytest.raises(OperationalError):
        conn.query("SELECT 1")
    conn.close()


def test_legacy_connection_by_unix_socket(mariadb: MariaDB) -> None:
    conn = Connection(mariadb.socket, mariadb.database, user="root")
    assert conn.get("SELECT %s + 1 AS n", 1) == {"n": 2}
    conn.close()
