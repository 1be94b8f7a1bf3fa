"""Databases: Tornado 2.x's blocking ``Connection`` and an awaitable ``Database``.

``Connection`` is ``tornado.database`` as Tornado 2.x had it (MySQL, through PyMySQL). It
**blocks**: while a query runs, the whole event loop waits, so one slow query delays every
other request of the process. It exists so that legacy code keeps working.

``Database(url)`` has the same methods as coroutines, a connection pool and transactions, on
SQLite (aiosqlite), MySQL/MariaDB (aiomysql) or PostgreSQL (asyncpg)::

    db = Database("sqlite:///blog.db")
    rows = await db.query("SELECT * FROM entries WHERE author_id = %s", author_id)
    async with db.transaction():
        await db.execute("UPDATE ...", ...)

See docs/database.md.
"""

from ._common import Error, IntegrityError, OperationalError, ProgrammingError, Row
from .aio import Database, Transaction
from .legacy import Connection

__all__ = [
    "Connection",
    "Database",
    "Error",
    "IntegrityError",
    "OperationalError",
    "ProgrammingError",
    "Row",
    "Transaction",
]
