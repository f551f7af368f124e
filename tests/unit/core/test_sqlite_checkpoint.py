"""SQLite's WAL is checkpointed by a background thread, not inside a writer's COMMIT (where it
made every queued writer wait): commits leave the checkpoint to the thread, which runs it soon
after, and stops with the database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from portal.core.db import FALLBACK_AUTOCHECKPOINT_PAGES, Database


def test_commits_leave_the_checkpoint_to_the_background_thread(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == FALLBACK_AUTOCHECKPOINT_PAGES
        with db.write() as s:
            s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
        assert db.checkpointer is not None
        for _ in range(300):  # about 300 pages: SQLite's default would not checkpoint yet either
            with db.write() as s:
                s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": bytes(3000)})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (db.checkpointer.last and db.checkpointer.last[2] >= 300):
            time.sleep(0.02)
        busy, frames, copied = db.checkpointer.last  # type: ignore[misc]
        assert busy == 0 and frames >= 300 and copied == frames  # all of the WAL went into the file
        with sqlite3.connect(path) as check:  # and the data is there for a new reader
            assert check.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 300
    finally:
        db.dispose()
    runs = db.checkpointer.runs
    time.sleep(0.3)
    assert db.checkpointer.runs == runs and not db.checkpointer._thread.is_alive()  # stopped with the database


def test_no_thread_for_memory_databases_or_postgresql() -> None:
    db = Database("sqlite://")
    try:
        assert db.checkpointer is None
        with db.write() as s:
            s.execute(text("SELECT 1"))
    finally:
        db.dispose()


def test_writers_get_the_lock_in_the_order_they_asked() -> None:
    """threading.Lock lets a late thread overtake sleeping ones (a 10-30 ms tail for some SDK
    calls under load); the writers' lock hands itself to the oldest waiter."""
    import threading

    from portal.core.db import FifoLock

    lock, order = FifoLock(), []
    lock.acquire()

    def writer(n: int) -> None:
        with lock:
            order.append(n)

    threads = []
    for n in range(6):
        t = threading.Thread(target=writer, args=(n,))
        t.start()
        deadline = time.monotonic() + 5
        while len(lock._waiters) < n + 1 and time.monotonic() < deadline:  # queued before the next comes
            time.sleep(0.001)
        threads.append(t)
    lock.release()
    for t in threads:
        t.join(timeout=5)
    assert order == list(range(6))
    with lock:  # free again, and reusable
        pass
