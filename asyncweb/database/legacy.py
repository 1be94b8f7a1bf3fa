"""Tornado 2.x's ``tornado.database``: a blocking MySQL connection (PyMySQL underneath).

Every call here blocks the thread, and so the whole event loop, until MySQL answers: while one
request waits for a slow query, no other request of the process is served. That is how
``tornado.database`` always behaved; it is kept so that legacy applications run unchanged.
New code should use :class:`asyncweb.database.Database`, whose calls are awaited.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ._common import Error, IntegrityError, OperationalError, ProgrammingError, Row, translate

log = logging.getLogger("asyncweb.database")


def _pymysql() -> Any:
    try:
        import pymysql
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "asyncweb.database.Connection needs PyMySQL: pip install 'asyncweb[mysql]'"
        ) from e
    return pymysql


def _translate_error(error: BaseException) -> Error | None:
    err = _pymysql().err
    if isinstance(error, err.IntegrityError):
        return IntegrityError(*error.args)
    if isinstance(error, (err.OperationalError, err.InterfaceError)):
        return OperationalError(*error.args)
    if isinstance(error, err.ProgrammingError):
        return ProgrammingError(*error.args)
    if isinstance(error, err.MySQLError):
        return Error(*error.args)
    return None


class Connection:
    """A blocking connection to a MySQL or MariaDB database (Tornado 2.x's API).

    ``host`` is ``"host"``, ``"host:port"`` or the path of a Unix socket. The connection is
    opened here; if that fails the error is logged and the first query tries again. A
    connection idle for longer than ``max_idle_time`` seconds is reopened before use, and
    every statement commits on its own (autocommit).

    **This blocks the event loop** for the duration of every query: see the module docstring.
    """

    def __init__(
        self,
        host: str,
        database: str,
        user: str | None = None,
        password: str | None = None,
        max_idle_time: float = 7 * 3600,
        connect_timeout: float = 0,
        time_zone: str = "+0:00",
        charset: str = "utf8",
        sql_mode: str = "TRADITIONAL",
    ) -> None:
        self.host = host
        self.database = database
        self.max_idle_time = float(max_idle_time)
        args: dict[str, Any] = {
            "database": database,
            "charset": charset,
            "sql_mode": sql_mode,
            "init_command": f"SET time_zone = '{time_zone}'",
            "autocommit": True,
        }
        if user is not None:
            args["user"] = user
        if password is not None:
            args["password"] = password
        if connect_timeout:  # 0: the driver's default, as with MySQLdb
            args["connect_timeout"] = connect_timeout
        if "/" in host:
            args["unix_socket"] = host
        else:
            name, _, port = host.partition(":")
            args["host"] = name or "127.0.0.1"
            args["port"] = int(port) if port else 3306
        self._db_args = args
        self._db: Any = None
        self._last_use_time = time.time()
        try:
            self.reconnect()
        except Exception:
            log.error("Cannot connect to MySQL on %s", self.host, exc_info=True)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later query opens a new one)."""
        db, self._db = getattr(self, "_db", None), None
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    def reconnect(self) -> None:
        """Close the connection if open, and open a new one."""
        self.close()
        pymysql = _pymysql()
        try:
            self._db = pymysql.connect(**self._db_args)
        except pymysql.err.MySQLError as e:
            raise (_translate_error(e) or e) from e
        self._last_use_time = time.time()

    def iter(self, query: str, *parameters: Any, **kwparameters: Any) -> Iterator[Row]:
        """The rows of ``query`` one by one, streamed from the server (an unbuffered cursor)."""
        pymysql = _pymysql()
        self._ensure_connected()
        cursor = pymysql.cursors.SSCursor(self._db)
        try:
            self._run(cursor, query, parameters, kwparameters)
            names = [d[0] for d in cursor.description or ()]
            for values in cursor:
                yield Row(zip(names, values, strict=True))
        finally:
            cursor.close()

    def query(self, query: str, *parameters: Any, **kwparameters: Any) -> list[Row]:
        """Every row of ``query``, as a list of :class:`Row`."""
        cursor = self._cursor()
        try:
            self._run(cursor, query, parameters, kwparameters)
            names = [d[0] for d in cursor.description or ()]
            return [Row(zip(names, values, strict=True)) for values in cursor.fetchall()]
        finally:
            cursor.close()

    def get(self, query: str, *parameters: Any, **kwparameters: Any) -> Row | None:
        """The single row of ``query``, or None when there is none; more than one is an error."""
        rows = self.query(query, *parameters, **kwparameters)
        if not rows:
            return None
        if len(rows) > 1:
            raise ProgrammingError("Multiple rows returned for Database.get() query")
        return rows[0]

    def execute(self, query: str, *parameters: Any, **kwparameters: Any) -> int | None:
        """Run a statement; returns the id of the row it inserted (``lastrowid``)."""
        return self.execute_lastrowid(query, *parameters, **kwparameters)

    def execute_lastrowid(self, query: str, *parameters: Any, **kwparameters: Any) -> int | None:
        cursor = self._cursor()
        try:
            self._run(cursor, query, parameters, kwparameters)
            return cursor.lastrowid  # type: ignore[no-any-return]
        finally:
            cursor.close()

    def execute_rowcount(self, query: str, *parameters: Any, **kwparameters: Any) -> int:
        """Run a statement; returns the number of rows it changed."""
        cursor = self._cursor()
        try:
            self._run(cursor, query, parameters, kwparameters)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany(self, query: str, parameters: Sequence[Sequence[Any]]) -> int | None:
        """Run a statement once per parameter sequence; returns the last inserted id."""
        return self.executemany_lastrowid(query, parameters)

    def executemany_lastrowid(self, query: str, parameters: Sequence[Sequence[Any]]) -> int | None:
        cursor = self._cursor()
        try:
            self._run_many(cursor, query, parameters)
            return cursor.lastrowid  # type: ignore[no-any-return]
        finally:
            cursor.close()

    def executemany_rowcount(self, query: str, parameters: Sequence[Sequence[Any]]) -> int:
        cursor = self._cursor()
        try:
            self._run_many(cursor, query, parameters)
            return max(int(cursor.rowcount), 0)
        finally:
            cursor.close()

    def _ensure_connected(self) -> None:
        # MySQL drops connections idle past wait_timeout (8 hours by default) without telling
        # the client; reopening before that avoids a failed query.
        if self._db is None or time.time() - self._last_use_time > self.max_idle_time:
            self.reconnect()
        self._last_use_time = time.time()

    def _cursor(self) -> Any:
        self._ensure_connected()
        return self._db.cursor()

    def _run(
        self, cursor: Any, query: str, parameters: Sequence[Any], kwparameters: dict[str, Any]
    ) -> None:
        sql, params = translate(query, parameters, kwparameters, "format")
        self._call(cursor.execute, sql, params)

    def _run_many(self, cursor: Any, query: str, parameters: Sequence[Sequence[Any]]) -> None:
        rows = [translate(query, values, {}, "format") for values in parameters]
        if rows:
            self._call(cursor.executemany, rows[0][0], [params for _, params in rows])

    def _call(self, method: Any, sql: str, params: Any) -> None:
        pymysql = _pymysql()
        try:
            method(sql, params)
        except pymysql.err.OperationalError as e:
            log.error("Error connecting to MySQL on %s", self.host)
            self.close()
            raise OperationalError(*e.args) from e
        except pymysql.err.MySQLError as e:
            raise (_translate_error(e) or e) from e
