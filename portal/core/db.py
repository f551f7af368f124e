"""The database: one engine, short transactions, SQLite tuned for concurrent use.

Every service method runs in one transaction (``with db.write() as s``), which commits
on success and rolls back on any error, so nothing half-written stays behind. On SQLite
a write transaction starts with ``BEGIN IMMEDIATE``: writers queue on the busy timeout
instead of failing with "database is locked" when a read lock would need upgrading.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def read(self) -> AbstractContextManager[Session]:
        return self._transaction("DEFERRED")

    def write(self) -> AbstractContextManager[Session]:
        return self._transaction("IMMEDIATE")

    @contextmanager
    def _transaction(self, sqlite_begin: str) -> Iterator[Session]:
        with self._sessions() as session:
            # Procuring the connection first applies the begin mode before BEGIN is sent.
            session.connection(execution_options={"sqlite_begin": sqlite_begin} if self.is_sqlite else None)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
