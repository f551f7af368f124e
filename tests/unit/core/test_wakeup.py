"""Wake-ups between processes: Unix datagram sockets on one machine, Redis pub/sub across machines."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from portal.core.wakeup import RedisBus, SocketBus, Waiters, build_bus

from ...conftest import require_outside

REDIS_URL = "redis://127.0.0.1:6379/15"


def _collect(bus) -> tuple[list[str], threading.Event]:  # type: ignore[no-untyped-def]
    got: list[str] = []
    event = threading.Event()

    def on(name: str) -> None:
        got.append(name)
        event.set()

    bus.subscribe(on)
    return got, event


def test_a_socket_wake_up_reaches_the_other_processes_not_itself(tmp_path: Path) -> None:
    a, b, c = SocketBus(tmp_path), SocketBus(tmp_path), SocketBus(tmp_path)
    try:
        got_a, _ = _collect(a)
        got_b, seen_b = _collect(b)
        got_c, seen_c = _collect(c)
        a.publish("done")
        assert seen_b.wait(2) and seen_c.wait(2)
        time.sleep(0.05)
        assert got_b == ["done"] and got_c == ["done"] and got_a == []
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in tmp_path.glob("*.sock"))
    finally:
        for bus in (a, b, c):
            bus.close()
    assert list(tmp_path.glob("*.sock")) == []


def test_a_dead_peers_socket_is_removed(tmp_path: Path) -> None:
    dead = tmp_path / "12345-dead.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(dead))
    s.close()  # bound, never unlinked: its process died
    bus = SocketBus(tmp_path)
    try:
        bus.publish("arrivals")
        assert not dead.exists()
    finally:
        bus.close()


def test_waiters_wake_locally_and_publish(tmp_path: Path) -> None:
    a, b = SocketBus(tmp_path), SocketBus(tmp_path)
    try:
        here, there = Waiters("done", a), Waiters("done", b)
        b.subscribe(lambda name: there.wake_local())
        woken: dict[str, float] = {}

        def wait(w: Waiters, key: str) -> None:
            start = time.monotonic()
            w.wait(5)
            woken[key] = time.monotonic() - start

        threads = [threading.Thread(target=wait, args=(here, "here")),
                   threading.Thread(target=wait, args=(there, "there"))]
        for t in threads:
            t.start()
        time.sleep(0.1)
        here.notify()
        for t in threads:
            t.join(6)
        assert woken["here"] < 1 and woken["there"] < 1  # not the 5 s timeout
    finally:
        a.close()
        b.close()


def test_redis_carries_wake_ups_between_machines() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        ok = True
    except redis.RedisError:
        ok = False
    require_outside("Redis on 127.0.0.1:6379", ok)
    a, b = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
    try:
        got, seen = _collect(b)
        time.sleep(0.2)  # the subscription is in place
        a.publish("arrivals")
        assert seen.wait(3) and got == ["arrivals"]
    finally:
        a.close()
        b.close()


def test_no_bus_without_a_directory_or_redis() -> None:
    assert build_bus(None, None) is None


def test_an_unusable_directory_falls_back_to_polling() -> None:
    import shutil
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="wk"))  # short enough to be used as it is
    try:
        blocker = short / "file"
        blocker.write_text("not a directory")
        assert build_bus(str(blocker / "wake"), None) is None
    finally:
        shutil.rmtree(short)


@pytest.mark.parametrize("channel", ["done", "arrivals"])
def test_services_wake_a_waiter_in_another_process_by_socket(tmp_path: Path, channel: str) -> None:
    """Two services (as two gunicorn workers) sharing a wake directory."""
    from portal.core.config import CoreConfig, HashingConfig
    from portal.core.migrate import upgrade
    from portal.core.services import build_services

    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    cfg = CoreConfig(database_url=url, encryption_key=bytes(range(32)), hashing=HashingConfig(1, 8192, 1),
                     wake_dir=str(tmp_path / "wake"))
    one, two = build_services(cfg), build_services(cfg)
    try:
        target = two.auth_requests.waiters if channel == "done" else two.auth_requests.arrivals
        source = one.auth_requests.waiters if channel == "done" else one.auth_requests.arrivals
        start = time.monotonic()
        threading.Timer(0.1, source.notify).start()
        target.wait(5)
        assert time.monotonic() - start < 1
    finally:
        one.close()
        two.close()


def test_closing_a_bus_ends_its_listener_and_removes_its_socket(tmp_path: Path) -> None:
    before = {t for t in threading.enumerate() if t.name == "wakeup-socket"}
    bus = SocketBus(tmp_path)
    bus.subscribe(lambda name: None)
    listener = next(t for t in threading.enumerate() if t.name == "wakeup-socket" and t not in before)
    bus.close()
    listener.join(2)
    assert not listener.is_alive() and list(tmp_path.glob("*.sock")) == []


def test_a_directory_too_long_for_a_socket_address_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "wake"
    a, b = SocketBus(deep), SocketBus(deep)
    try:
        got, seen = _collect(b)
        a.publish("done")
        assert seen.wait(2) and got == ["done"]
    finally:
        a.close()
        b.close()


def test_a_directory_open_to_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "wake"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(OSError):
        SocketBus(shared)
    assert build_bus(str(shared), None) is None  # falls back to the database poll
