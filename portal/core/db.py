"""The database: one engine, short transactions, SQLite tuned for concurrent use.

Every service method runs in one transaction (``with db.write() as s``), which commits
on success and rolls back on any error, so nothing half-written stays behind. On SQLite
a write transaction starts with ``BEGIN IMMEDIATE``: writers queue on the busy timeout
instead of failing with "database is locked" when a read lock would need upgrading, and
the WAL is checkpointed by a background thread, not inside a writer's commit.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from .sql import Raw

log = logging.getLogger("portal.db")
# SQLite checkpoints inside a COMMIT only past this many WAL pages (40 MB): a fallback for when
# the background checkpointer is not keeping up. SQLite's default is 1,000.
FALLBACK_AUTOCHECKPOINT_PAGES = 10_000


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Every transaction here ends in commit or rollback (and Connection.close rolls back
        # an open one), so the pool's extra rollback on each check-in is skipped.
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "pool_reset_on_return": None}
        if self.is_sqlite:
            _create_private(make_url(url).database)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: Engine = create_engine(url, **kwargs)
        database = self.engine.url.database if self.is_sqlite else None
        on_disk = bool(database) and database != ":memory:"
        if self.is_sqlite:
            _tune_sqlite(self.engine, autocheckpoint=FALLBACK_AUTOCHECKPOINT_PAGES if on_disk else 1000)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = _WriterQueue(database) if self.is_sqlite else None
        self.checkpointer = _Checkpointer(database) if on_disk and database else None

    def read(self) -> AbstractContextManager[Session]:
        return self._transaction("DEFERRED")

    @contextmanager
    def write(self) -> Iterator[Session]:
        if self._writer is None:
            with self._transaction("IMMEDIATE") as session:
                yield session
            return
        with self._writer, self._transaction("IMMEDIATE") as session:
            yield session
        if self.checkpointer is not None:
            self.checkpointer.wake()

    @contextmanager
    def raw_write(self) -> Iterator[Raw]:
        """A write transaction on a pooled driver connection, without ORM machinery.

        For the sign-in hot path only; everything else uses :meth:`write`.
        """
        with self._writer if self._writer is not None else nullcontext():
            pooled = self.engine.raw_connection()
            try:
                if self.is_sqlite:
                    pooled.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                yield Raw(pooled.driver_connection, self.is_sqlite)
                pooled.commit()
            except BaseException:
                pooled.rollback()
                raise
            finally:
                pooled.close()
        if self.checkpointer is not None:
            self.checkpointer.wake()

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
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()
        if self._writer is not None:
            self._writer.close()


def _create_private(path: str | None) -> None:
    """Create a new SQLite file readable by its owner only (its -wal and -shm files follow)."""
    if path and path != ":memory:" and not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


class FifoLock:
    """A lock handed to its waiters in the order they came.

    ``threading.Lock`` is not fair: a releasing thread that wants it again, or any thread that
    happens to hold the GIL, can take it before those asleep on it, so some writers waited
    10-30 ms while most waited none. Here each waiter sleeps on a lock of its own, and
    ``release`` passes ownership straight to the oldest. Measured on the SDK benchmark (2 gunicorn
    workers x 8 threads): 22% more validations per second, and p99 from 17-22 ms to 13-15 ms.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder before us: the lock is ours, still marked held

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _WriterQueue:
    """SQLite writers wait in line on a blocking lock instead of in SQLite's busy handler.

    The busy handler polls with sleeps of up to 100 ms, which under concurrency turns a
    1 ms write into a long tail. A first-come first-served lock (within the process) plus
    ``flock`` on a file beside the database (across processes, e.g. gunicorn workers) queues
    writers, and the kernel wakes the next one the moment the lock is released.
    """

    def __init__(self, database: str | None) -> None:
        self._thread_lock = FifoLock()
        self._local = threading.local()
        self._fd: int | None = None
        self._path: str | None = f"{database}.writelock" if database and database != ":memory:" else None

    def __enter__(self) -> None:
        if getattr(self._local, "held", False):
            raise RuntimeError("nested write transaction: it would wait for itself")
        self._thread_lock.acquire()
        try:
            if self._path is not None:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        self._local.held = True

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __exit__(self, *exc: object) -> None:
        self._local.held = False
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class _Checkpointer:
    """Copies the WAL into the database file from a background thread, off the writers' path.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, while
    that writer still holds the write lock, so every writer queued behind it waits too
    (measured: about one SDK validation in a hundred took 3-4 ms instead of 0.3 ms). Here a
    daemon thread, started at the first commit in each process (gunicorn workers fork
    first), runs a PASSIVE checkpoint - which never waits for readers or writers - at most
    every ``interval`` seconds while there are commits. SQLite releases the GIL meanwhile.
    The pooled connections keep an automatic checkpoint far out as a fallback.
    """

    def __init__(self, path: str, interval: float = 0.1) -> None:
        self._path, self._interval = path, interval
        self._dirty, self._stop = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.runs = 0
        self.last: tuple[int, int, int] | None = None  # (busy, WAL frames, frames checkpointed)

    def wake(self) -> None:
        self._dirty.set()
        if self._pid != os.getpid() and not self._stop.is_set():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid() or self._stop.is_set():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                if not self._dirty.is_set():
                    continue
                self._dirty.clear()
                try:
                    self.last = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error as exc:  # e.g. the file went away in a test; try again later
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=2)


def _tune_sqlite(engine: Engine, autocheckpoint: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
