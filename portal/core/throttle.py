"""Throttling of guesses: passwords, PINs, OTPs, activation codes, SDK credentials.

A port with two adapters: :class:`MemoryThrottle` for one process (the embedded
default) and :class:`RedisThrottle` when several workers or nodes must share counts.
Keys are HMAC'd before use so a Redis dump shows no usernames or codes.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from .errors import Throttled


class Throttle(Protocol):
    def check(self, key: str, limit: int, window: int) -> None:
        """Raise :class:`Throttled` if ``key`` has ``limit`` failures inside ``window`` seconds."""
        ...

    def fail(self, key: str, window: int) -> int:
        """Count one failure; return the count in the current window."""
        ...

    def reset(self, key: str) -> None: ...


class MemoryThrottle:
    def __init__(self, now: object = time.monotonic) -> None:
        self._now = now
        self._hits: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _current(self, key: str, window: int) -> tuple[int, float]:
        count, start = self._hits.get(key, (0, 0.0))
        now = self._now()  # type: ignore[operator]
        if now - start >= window:
            return 0, now
        return count, start

    def check(self, key: str, limit: int, window: int) -> None:
        with self._lock:
            count, start = self._current(key, window)
            if count >= limit:
                raise Throttled(max(1, int(window - (self._now() - start))))  # type: ignore[operator]

    def fail(self, key: str, window: int) -> int:
        with self._lock:
            count, start = self._current(key, window)
            self._hits[key] = (count + 1, start)
            if len(self._hits) > 100_000:  # bound memory under a spray of keys
                cutoff = self._now() - 3600  # type: ignore[operator]
                self._hits = {k: v for k, v in self._hits.items() if v[1] > cutoff}
            return count + 1

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)


class RedisThrottle:
    def __init__(self, url: str) -> None:
        import redis

        self._r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def check(self, key: str, limit: int, window: int) -> None:
        k = f"portal:throttle:{key}"
        count = self._r.get(k)
        if count is not None and int(count) >= limit:
            ttl = self._r.ttl(k)
            raise Throttled(max(1, int(ttl) if isinstance(ttl, int) and ttl > 0 else window))

    def fail(self, key: str, window: int) -> int:
        k = f"portal:throttle:{key}"
        pipe = self._r.pipeline()
        pipe.incr(k)
        pipe.expire(k, window, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def reset(self, key: str) -> None:
        self._r.delete(f"portal:throttle:{key}")
