"""The non-blocking form: ``Database(url)``, awaited calls, a pool and transactions."""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._common import Error, IntegrityError, OperationalError, ProgrammingError, Row, translate

__all__ = ["Database", "Transaction"]


def _missing(package: str, extra: str) -> ImportError:
    return ImportError(f"this database URL needs {package}: pip install 'asyncweb[{extra}]'")


class _Backend:
    """One driver connection, spoken to in the driver's own terms."""

    style = "format"
    begin = "BEGIN"
    # Whether an OperationalError means the connection itself is gone.
    operational_breaks = True

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, params: list[Any]) -> list[Row]:
        raise NotImplementedError

    def stream(self, sql: str, params: list[Any]) -> AsyncIterator[Row]:
        raise NotImplementedError

    async def run(self, sql: str, params: list[Any]) -> tuple[int | None, int]:
        """Runs a statement; (last inserted id, rows changed)."""
        raise NotImplementedError

    async def run_many(self, sql: str, rows: list[list[Any]]) -> tuple[int | None, int]:
        raise NotImplementedError

    def usable(self) -> bool:
        return True

    async def close(self) -> None:
        raise NotImplementedError

    def error(self, exc: BaseException) -> Error | None:
        """Our exception for a driver's, or None when ``exc`` is not the driver's."""
        raise NotImplementedError


class _SQLite(_Backend):
    style = "qmark"
    # A deferred transaction that later writes can fail at once with "database is locked";
    # taking the write lock at BEGIN makes it wait for the busy timeout instead.
    begin = "BEGIN IMMEDIATE"
    operational_breaks = False

    @classmethod
    async def open(cls, path: str, options: dict[str, str]) -> _SQLite:
        try:
            import aiosqlite
        except ImportError as e:
            raise _missing("aiosqlite", "sqlite") from e
        timeout = float(options.get("timeout", "5"))
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=timeout)
        await conn.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            # Readers and a writer at once, across the pool's connections.
            await conn.execute("PRAGMA journal_mode = WAL")
        return cls(conn)

    @staticmethod
    def _rows(description: Any, values: Any) -> list[Row]:
        names = [d[0] for d in description or ()]
        return [Row(zip(names, v, strict=True)) for v in values]

    async def fetch(self, sql: str, params: list[Any]) -> list[Row]:
        async with self.conn.execute(sql, params) as cursor:
            return self._rows(cursor.description, await cursor.fetchall())

    async def stream(self, sql: str, params: list[Any]) -> AsyncIterator[Row]:
        async with self.conn.execute(sql, params) as cursor:
            names = [d[0] for d in cursor.description or ()]
            async for values in cursor:
                yield Row(zip(names, values, strict=True))

    async def run(self, sql: str, params: list[Any]) -> tuple[int | None, int]:
        async with self.conn.execute(sql, params) as cursor:
            return cursor.lastrowid, max(cursor.rowcount, 0)

    async def run_many(self, sql: str, rows: list[list[Any]]) -> tuple[int | None, int]:
        async with self.conn.executemany(sql, rows) as cursor:
            count = max(cursor.rowcount, 0)
        # sqlite3 leaves lastrowid alone after executemany; ask the connection.
        async with self.conn.execute("SELECT last_insert_rowid()") as cursor:
            row = await cursor.fetchone()
        return row[0], count

    async def close(self) -> None:
        await self.conn.close()

    def error(self, exc: BaseException) -> Error | None:
        import sqlite3

        if isinstance(exc, sqlite3.IntegrityError):
            return IntegrityError(*exc.args)
        if isinstance(exc, sqlite3.OperationalError):
            return OperationalError(*exc.args)
        if isinstance(exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
            return ProgrammingError(*exc.args)
        if isinstance(exc, sqlite3.Error):
            return Error(*exc.args)
        return None


class _MySQL(_Backend):
    @classmethod
    async def open(cls, url: Any, options: dict[str, str]) -> _MySQL:
        try:
            import aiomysql
        except ImportError as e:
            raise _missing("aiomysql", "mysql") from e
        args: dict[str, Any] = {
            "db": unquote(url.path.lstrip("/")) or None,
            "user": unquote(url.username) if url.username else None,
            "password": unquote(url.password) if url.password else "",
            "charset": options.get("charset", "utf8mb4"),
            "autocommit": True,
            "sql_mode": options.get("sql_mode", "TRADITIONAL"),
            "init_command": "SET time_zone = '{}'".format(
                options.get("time_zone", "+00:00").replace("'", "")
            ),
        }
        if "unix_socket" in options:
            args["unix_socket"] = options["unix_socket"]
        else:
            args["host"] = url.hostname or "127.0.0.1"
            args["port"] = url.port or 3306
        if "connect_timeout" in options:
            args["connect_timeout"] = float(options["connect_timeout"])
        return cls(await aiomysql.connect(**args))

    @staticmethod
    def _rows(description: Any, values: Any) -> list[Row]:
        names = [d[0] for d in description or ()]
        return [Row(zip(names, v, strict=True)) for v in values]

    async def fetch(self, sql: str, params: list[Any]) -> list[Row]:
        async with self.conn.cursor() as cursor:
            await cursor.execute(sql, params)
            return self._rows(cursor.description, await cursor.fetchall())

    async def stream(self, sql: str, params: list[Any]) -> AsyncIterator[Row]:
        import aiomysql

        async with self.conn.cursor(aiomysql.SSCursor) as cursor:
            await cursor.execute(sql, params)
            names = [d[0] for d in cursor.description or ()]
            while batch := await cursor.fetchmany(100):
                for values in batch:
                    yield Row(zip(names, values, strict=True))

    async def run(self, sql: str, params: list[Any]) -> tuple[int | None, int]:
        async with self.conn.cursor() as cursor:
            await cursor.execute(sql, params)
            return cursor.lastrowid, max(cursor.rowcount, 0)

    async def run_many(self, sql: str, rows: list[list[Any]]) -> tuple[int | None, int]:
        async with self.conn.cursor() as cursor:
            await cursor.executemany(sql, rows)
            return cursor.lastrowid, max(cursor.rowcount, 0)

    def usable(self) -> bool:
        return not self.conn.closed

    async def close(self) -> None:
        self.conn.close()

    def error(self, exc: BaseException) -> Error | None:
        from pymysql import err

        if isinstance(exc, err.IntegrityError):
            return IntegrityError(*exc.args)
        if isinstance(exc, (err.OperationalError, err.InterfaceError)):
            return OperationalError(*exc.args)
        if isinstance(exc, err.ProgrammingError):
            return ProgrammingError(*exc.args)
        if isinstance(exc, err.MySQLError):
            return Error(*exc.args)
        return None


_INSERT = re.compile(r"\s*insert\b", re.IGNORECASE)
_RETURNING = re.compile(r"\breturning\b", re.IGNORECASE)


class _PostgreSQL(_Backend):
    style = "numeric"

    @classmethod
    async def open(cls, url: str) -> _PostgreSQL:
        try:
            import asyncpg
        except ImportError as e:
            raise _missing("asyncpg", "postgresql") from e
        # asyncpg reads libpq's URL form itself (host=/socket/dir, sslmode=, ...).
        return cls(await asyncpg.connect(url))

    async def fetch(self, sql: str, params: list[Any]) -> list[Row]:
        return [Row(r.items()) for r in await self.conn.fetch(sql, *params)]

    async def stream(self, sql: str, params: list[Any]) -> AsyncIterator[Row]:
        # Server-side cursors live inside a transaction.
        if self.conn.is_in_transaction():
            async for record in self.conn.cursor(sql, *params):
                yield Row(record.items())
            return
        async with self.conn.transaction():
            async for record in self.conn.cursor(sql, *params):
                yield Row(record.items())

    async def run(self, sql: str, params: list[Any]) -> tuple[int | None, int]:
        if _INSERT.match(sql) and not _RETURNING.search(sql):
            # PostgreSQL has no "last insert id": the inserted rows say it themselves.
            rows = await self.conn.fetch(sql.rstrip().rstrip(";") + " RETURNING *", *params)
            if not rows:
                return None, 0
            last = rows[-1]
            return (last["id"] if "id" in last else last[0]), len(rows)
        status = await self.conn.execute(sql, *params)
        last_word = status.rsplit(" ", 1)[-1] if status else ""
        return None, int(last_word) if last_word.isdigit() else 0

    async def run_many(self, sql: str, rows: list[list[Any]]) -> tuple[int | None, int]:
        lastrowid, count = None, 0
        for params in rows:
            row_id, changed = await self.run(sql, params)
            lastrowid = row_id if row_id is not None else lastrowid
            count += changed
        return lastrowid, count

    def usable(self) -> bool:
        return not self.conn.is_closed()

    async def close(self) -> None:
        await self.conn.close()

    def error(self, exc: BaseException) -> Error | None:
        import asyncpg

        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            return IntegrityError(*exc.args)
        if isinstance(exc, (asyncpg.SyntaxOrAccessError, asyncpg.DataError)):
            return ProgrammingError(*exc.args)
        if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
            return OperationalError(*exc.args)
        if isinstance(exc, asyncpg.PostgresError):
            return Error(*exc.args)
        return None


class _Queries:
    """query/get/execute... over whatever connection ``_connection()`` lends."""

    def _connection(self) -> Any:
        raise NotImplementedError

    async def _call(self, name: str, sql: str, params: Any) -> Any:
        async with self._connection() as backend:
            try:
                return await getattr(backend, name)(sql, params)
            except Error:
                raise
            except Exception as e:
                error = backend.error(e)
                if error is None:
                    raise
                raise error from e

    async def query(self, query: str, *parameters: Any, **kwparameters: Any) -> list[Row]:
        """Every row of ``query``, as a list of :class:`Row`."""
        sql, params = await self._translate(query, parameters, kwparameters)
        rows: list[Row] = await self._call("fetch", sql, params)
        return rows

    async def get(self, query: str, *parameters: Any, **kwparameters: Any) -> Row | None:
        """The single row of ``query``, or None when there is none; more than one is an error."""
        rows = await self.query(query, *parameters, **kwparameters)
        if not rows:
            return None
        if len(rows) > 1:
            raise ProgrammingError("Multiple rows returned for Database.get() query")
        return rows[0]

    async def execute(self, query: str, *parameters: Any, **kwparameters: Any) -> int | None:
        """Run a statement; returns the id of the row it inserted."""
        return await self.execute_lastrowid(query, *parameters, **kwparameters)

    async def execute_lastrowid(
        self, query: str, *parameters: Any, **kwparameters: Any
    ) -> int | None:
        sql, params = await self._translate(query, parameters, kwparameters)
        lastrowid, _ = await self._call("run", sql, params)
        return lastrowid  # type: ignore[no-any-return]

    async def execute_rowcount(self, query: str, *parameters: Any, **kwparameters: Any) -> int:
        """Run a statement; returns the number of rows it changed."""
        sql, params = await self._translate(query, parameters, kwparameters)
        _, count = await self._call("run", sql, params)
        return count  # type: ignore[no-any-return]

    async def executemany(self, query: str, parameters: Sequence[Sequence[Any]]) -> int | None:
        """Run a statement once per parameter sequence; returns the last inserted id."""
        return await self.executemany_lastrowid(query, parameters)

    async def executemany_lastrowid(
        self, query: str, parameters: Sequence[Sequence[Any]]
    ) -> int | None:
        return (await self._many(query, parameters))[0]

    async def executemany_rowcount(self, query: str, parameters: Sequence[Sequence[Any]]) -> int:
        return (await self._many(query, parameters))[1]

    async def _many(
        self, query: str, parameters: Sequence[Sequence[Any]]
    ) -> tuple[int | None, int]:
        style = await self._style()
        rows = [translate(query, values, {}, style) for values in parameters]
        if not rows:
            return None, 0
        result: tuple[int | None, int] = await self._call(
            "run_many", rows[0][0], [params for _, params in rows]
        )
        return result

    async def iter(self, query: str, *parameters: Any, **kwparameters: Any) -> AsyncIterator[Row]:
        """The rows of ``query`` one by one, read from the server as they are consumed.

        The connection is held until the iteration ends: finish it, or use
        ``contextlib.aclosing``."""
        sql, params = await self._translate(query, parameters, kwparameters)
        async with self._connection() as backend:
            try:
                async for row in backend.stream(sql, params):
                    yield row
            except Error:
                raise
            except Exception as e:
                error = backend.error(e)
                if error is None:
                    raise
                raise error from e

    async def _style(self) -> str:
        raise NotImplementedError

    async def _translate(
        self, query: str, parameters: Sequence[Any], kwparameters: dict[str, Any]
    ) -> tuple[str, list[Any]]:
        return translate(query, parameters, kwparameters, await self._style())


class Database(_Queries):
    """A pool of connections to the database at ``url``, used through awaited calls.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite://`` (in
    memory), ``mysql://user:password@host:port/name`` (``?unix_socket=/path``,
    ``charset=``) and ``postgresql://user:password@host:port/name`` (asyncpg's URL; ``?host=``
    for a socket directory). Queries use ``%s`` and ``%(name)s`` placeholders on every
    backend; parameters always travel to the driver apart from the text.

    Connections are opened when first needed, at most ``max_size`` at once (an in-memory
    SQLite database has exactly one); a call waits for a free one. Create it anywhere, but
    use it on one event loop.
    """

    def __init__(self, url: str, *, max_size: int = 10) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0].lower()
        if scheme not in ("sqlite", "mysql", "mariadb", "postgresql", "postgres"):
            raise ValueError(f"unsupported database URL: {url!r}")
        self.url = url
        self.scheme = scheme
        self._parts = parts
        self._options = dict(parse_qsl(parts.query))
        if scheme == "sqlite":
            path = url.split("://", 1)[1]
            path = path[1:] if path.startswith("/") else path
            path = path.split("?", 1)[0]
            self._sqlite_path = path or ":memory:"
            if self._sqlite_path == ":memory:":
                max_size = 1
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self._idle: list[_Backend] = []
        self._open = 0
        self._slots: asyncio.Semaphore | None = None
        self._closed = False
        self._transaction: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
            f"asyncweb.database.transaction.{id(self)}", default=None
        )

    def __repr__(self) -> str:
        return f"<Database {self.scheme} {self._open} open>"

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open one connection now, so a wrong URL or password shows at start-up."""
        async with self._connection():
            pass

    async def close(self) -> None:
        """Close the idle connections; those in use close when they are given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for backend in idle:
            self._open -= 1
            await backend.close()

    def transaction(self) -> Transaction:
        """``async with db.transaction() as tx:``: one connection, committed at the end, rolled
        back when the block raises. Inside it, this task's calls on ``db`` (and on ``tx``) go
        to that connection; a nested ``transaction()`` is a savepoint. Other tasks, even those
        started inside the block, use other connections (so with ``max_size=1`` they wait for
        the transaction to end)."""
        return Transaction(self)

    def _current_transaction(self) -> Transaction | None:
        # A transaction belongs to the task that opened it: tasks it spawns (which inherit
        # the context) use connections of their own, never one busy with another exchange.
        transaction = self._transaction.get()
        if (
            transaction is not None
            and transaction._backend is not None
            and transaction._task is asyncio.current_task()
        ):
            return transaction
        return None

    async def _style(self) -> str:
        return {"sqlite": "qmark", "mysql": "format", "mariadb": "format"}.get(
            self.scheme, "numeric"
        )

    async def _new_backend(self) -> _Backend:
        if self.scheme == "sqlite":
            return await _SQLite.open(self._sqlite_path, self._options)
        if self.scheme in ("mysql", "mariadb"):
            return await _MySQL.open(self._parts, self._options)
        return await _PostgreSQL.open(self.url.replace("postgresql+asyncpg://", "postgresql://"))

    async def _acquire(self) -> _Backend:
        if self._closed:
            raise OperationalError("the database has been closed")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_size)
        await self._slots.acquire()
        try:
            while self._idle:
                backend = self._idle.pop()
                if backend.usable():
                    return backend
                self._open -= 1
                await backend.close()
            backend_new = self._new_backend()
            try:
                backend = await backend_new
            except Error:
                raise
            except ImportError:
                raise
            except Exception as e:
                raise OperationalError(f"cannot connect to {self.scheme}: {e}") from e
            self._open += 1
            return backend
        except BaseException:
            self._slots.release()
            raise

    async def _release(self, backend: _Backend, broken: bool) -> None:
        assert self._slots is not None
        try:
            if broken or self._closed or not backend.usable():
                self._open -= 1
                await backend.close()
            else:
                self._idle.append(backend)
        finally:
            self._slots.release()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Backend]:
        transaction = self._current_transaction()
        if transaction is not None:
            yield transaction._backend  # type: ignore[misc]
            return
        backend = await self._acquire()
        broken = False
        try:
            yield backend
        except Error as e:
            broken = isinstance(e, OperationalError) and backend.operational_breaks
            raise
        except BaseException as e:
            # Cancelled or failed mid-exchange: the connection's state is unknown.
            error = backend.error(e) if isinstance(e, Exception) else None
            broken = error is None or (
                isinstance(error, OperationalError) and backend.operational_breaks
            )
            raise
        finally:
            await self._release(backend, broken)


class Transaction(_Queries):
    """One transaction (or savepoint) on one connection; see :meth:`Database.transaction`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._backend: _Backend | None = None
        self._outer: Transaction | None = None
        self._savepoint: str | None = None
        self._token: contextvars.Token[Transaction | None] | None = None
        self._depth = 0
        self._task: asyncio.Task[Any] | None = None

    async def _style(self) -> str:
        return await self.db._style()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Backend]:
        if self._backend is None:
            raise ProgrammingError("the transaction is not open")
        yield self._backend

    async def _exec(self, sql: str) -> None:
        assert self._backend is not None
        try:
            await self._backend.run(sql, [])
        except Exception as e:
            error = self._backend.error(e)
            if error is None:
                raise
            raise error from e

    async def __aenter__(self) -> Transaction:
        if self._backend is not None:
            raise ProgrammingError("a Transaction is entered once")
        self._task = asyncio.current_task()
        outer = self.db._current_transaction()
        if outer is not None:
            self._outer = outer
            self._backend = outer._backend
            self._depth = outer._depth + 1
            self._savepoint = f"asyncweb_sp{self._depth}"
            await self._exec(f"SAVEPOINT {self._savepoint}")
        else:
            self._backend = await self.db._acquire()
            try:
                await self._exec(self._backend.begin)
            except BaseException:
                await self.db._release(self._backend, broken=True)
                self._backend = None
                raise
        self._token = self.db._transaction.set(self)
        return self

    async def __aexit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        backend = self._backend
        assert backend is not None and self._token is not None
        self.db._transaction.reset(self._token)
        if self._savepoint is not None:
            if typ is None:
                await self._exec(f"RELEASE SAVEPOINT {self._savepoint}")
            else:
                await self._exec(f"ROLLBACK TO SAVEPOINT {self._savepoint}")
            self._backend = None
            return
        broken = False
        try:
            await self._exec("COMMIT" if typ is None else "ROLLBACK")
        except BaseException:
            broken = True
            raise
        finally:
            self._backend = None
            await self.db._release(backend, broken)
