"""Both throttle stores count, refuse and reset the same way; Redis is the real server on 127.0.0.1."""

from __future__ import annotations

import secrets

import pytest
import redis

from portal.core.errors import Throttled
from portal.core.throttle import MemoryThrottle, RedisThrottle
from tests.conftest import require_outside

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return MemoryThrottle()
    require_outside("Redis on 127.0.0.1:6379", _redis_up())
    return RedisThrottle(REDIS_URL)


def test_refuses_at_the_limit_and_resets(store) -> None:
    key = f"test:{secrets.token_hex(6)}"
    for i in range(3):
        store.check(key, 3, 60)
        assert store.fail(key, 60) == i + 1
    with pytest.raises(Throttled) as err:
        store.check(key, 3, 60)
    assert 0 < err.value.retry_after <= 60
    store.reset(key)
    store.check(key, 3, 60)


def test_keys_are_independent(store) -> None:
    a, b = f"test:{secrets.token_hex(6)}", f"test:{secrets.token_hex(6)}"
    for _ in range(3):
        store.fail(a, 60)
    store.check(b, 3, 60)


def test_the_window_ends(store) -> None:
    key = f"test:{secrets.token_hex(6)}"
    if isinstance(store, MemoryThrottle):
        now = [1000.0]
        store = MemoryThrottle(now=lambda: now[0])
        for _ in range(3):
            store.fail(key, 10)
        now[0] += 10
        store.check(key, 3, 10)
    else:
        for _ in range(3):
            store.fail(key, 1)
        redis.Redis.from_url(REDIS_URL).delete(f"portal:throttle:{key}")  # what expiry does
        store.check(key, 3, 1)


@pytest.mark.redis
def test_redis_url_makes_every_worker_share_the_counts(tmp_path, sqlite_url) -> None:
    require_outside("Redis on 127.0.0.1:6379", _redis_up())
    from portal import create_app
    from tests.conftest import app_settings

    apps = [create_app(app_settings(tmp_path / str(i), sqlite_url, REDIS_URL=REDIS_URL)) for i in range(2)]
    try:
        first, second = (a.extensions["portal.services"] for a in apps)
        assert isinstance(first.throttle, RedisThrottle)
        key = f"shared:{secrets.token_hex(6)}"
        for _ in range(3):
            first.throttle.fail(key, 60)
        with pytest.raises(Throttled):
            second.throttle.check(key, 3, 60)  # another "worker" sees the same count
    finally:
        for a in apps:
            a.extensions["portal.services"].close()
