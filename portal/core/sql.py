"""Plain SQL on the driver connection, for the few statements on the sign-in hot path.

SQLAlchemy's per-statement overhead (about 0.1 ms) is ten times SQLite's own cost for
these small statements, and a sign-in runs several while holding the write lock. The
statements here are written once in ``%(name)s`` style and converted for sqlite3's
``:name`` style; they run inside the caller's SQLAlchemy transaction, on its connection.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

_NAMED = re.compile(r"%\((\w+)\)s")


class Sql:
    """One statement, prepared for both drivers (``sqlite`` gives SQLite its own text)."""

    def __init__(self, text: str, sqlite: str | None = None) -> None:
        self.pyformat = " ".join(text.split())
        self.named = _NAMED.sub(r":\1", " ".join((sqlite or text).split()))


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's SQLite DateTime format, so raw and ORM rows compare as equals.
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def read_datetime(value: Any) -> dt.datetime | None:
    """A timestamp as the driver returns it (SQLite: text) as a naive UTC datetime."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


class Raw:
    """A driver connection inside an open transaction."""

    def __init__(self, driver: Any, sqlite: bool) -> None:
        self._driver = driver
        self._sqlite = sqlite

    @classmethod
    def of(cls, session: Session) -> Raw:
        """The driver connection of the session's current transaction."""
        conn = session.connection()
        return cls(conn.connection.driver_connection, conn.dialect.name == "sqlite")

    def execute(self, stmt: Sql, params: Mapping[str, Any] | None = None) -> Any:
        cur = self._driver.cursor()
        if self._sqlite:
            cur.execute(stmt.named, {k: _sqlite_value(v) for k, v in (params or {}).items()})
        else:
            cur.execute(stmt.pyformat, params or {})
        return cur

    def one(self, stmt: Sql, params: Mapping[str, Any] | None = None) -> Sequence[Any] | None:
        cur = self.execute(stmt, params)
        row = cur.fetchone()
        cur.close()
        return row  # type: ignore[no-any-return]

    def all(self, stmt: Sql, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        cur = self.execute(stmt, params)
        rows = cur.fetchall()
        cur.close()
        return rows  # type: ignore[no-any-return]

    def rowcount(self, stmt: Sql, params: Mapping[str, Any] | None = None) -> int:
        cur = self.execute(stmt, params)
        count = cur.rowcount
        cur.close()
        return int(count)


def rowcount(result: Any) -> int:
    """Rows an UPDATE or DELETE touched (SQLAlchemy types ``execute`` as a plain Result)."""
    return int(result.rowcount)
