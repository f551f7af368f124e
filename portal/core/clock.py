"""Time, injected, so expiry and TOTP tests never sleep."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


def utcnow() -> dt.datetime:
    """Naive UTC now: the database stores naive UTC timestamps on every backend."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Naive UTC."""
        ...

    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return utcnow()

    def time(self) -> float:
        return dt.datetime.now(dt.UTC).timestamp()


class FixedClock:
    """A clock for tests: stands still until told to move."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, 12, 0, 0)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.now().replace(tzinfo=dt.UTC).timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = when
