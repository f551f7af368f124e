"""Wake-ups: a caller waiting for an answer, or a phone waiting for a request, is woken
the moment it happens, in this process and in the others.

* In this process: a condition variable per channel (:class:`Waiters`).
* Other processes on this machine (gunicorn workers): a datagram to each worker's Unix
  socket in a shared directory (``instance/wake`` by default), about 50 microseconds.
* Other machines: Redis pub/sub, when ``PORTAL_REDIS_URL`` is set.

A wake-up carries only the channel name, never an id or a secret. Waiters still re-read
the database every 50 ms, so a lost datagram or a Redis outage delays, never loses, an answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

log = logging.getLogger("portal.wakeup")
CHANNELS = ("done", "arrivals")  # a request left pending / a request was created
MAX_SOCKET_DIR = 80  # + "/<pid>-<8 hex>.sock" stays under the 108-byte limit of a Unix socket address


class Waiters:
    """Callers waiting in this process for something on one channel."""

    def __init__(self, channel: str = "local", bus: Bus | None = None) -> None:
        self.channel = channel
        self._bus = bus
        self._cond = threading.Condition()
        self._version = 0

    def notify(self) -> None:
        """Wake the waiters here and, through the bus, in every other process."""
        self.wake_local()
        if self._bus is not None:
            self._bus.publish(self.channel)

    def wake_local(self) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self._cond:
            start = self._version
            self._cond.wait_for(lambda: self._version != start, timeout)


class Bus(Protocol):
    def publish(self, channel: str) -> None: ...

    def subscribe(self, on_message: Callable[[str], None]) -> None: ...

    def close(self) -> None: ...


class SocketBus:
    """Processes on one machine: each binds a datagram socket in ``directory``; a publish
    sends the channel name to every other socket there (stale ones are removed)."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = socket_dir(directory)
        self._path = self._dir / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(str(self._path))
            os.chmod(self._path, 0o600)
        except OSError:
            self._sock.close()
            raise
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)
        self._closed = False
        # Closed with the bus, or when it is collected without close() (no ResourceWarning, no stale file).
        self._finalizer = weakref.finalize(self, _release, self._sock, self._out, self._path)

    def publish(self, channel: str) -> None:
        data = channel.encode()
        for peer in self._dir.glob("*.sock"):
            if peer == self._path:
                continue
            try:
                self._out.sendto(data, str(peer))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    peer.unlink()  # its process is gone
            except (BlockingIOError, OSError):
                pass  # a full queue: the receiver is busy and will re-read the database anyway

    def subscribe(self, on_message: Callable[[str], None]) -> None:
        sock = self._sock  # not self: the thread must not keep the bus alive

        def listen() -> None:
            while True:
                try:
                    data = sock.recv(64)
                except OSError:
                    return
                if not data:  # the empty datagram _release sends: the bus is closing
                    return
                on_message(data.decode(errors="replace"))

        threading.Thread(target=listen, name="wakeup-socket", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._finalizer()


def socket_dir(directory: str | Path) -> Path:
    """The directory for the sockets: ``directory`` itself, or, when its path is too long for a
    Unix socket address (108 bytes), a private directory in the temp dir named after it. Either
    way it must belong to this user and be closed to others."""
    d = Path(directory)
    if len(str(d)) > MAX_SOCKET_DIR:
        digest = hashlib.sha256(str(d.resolve()).encode()).hexdigest()[:16]
        d = Path(tempfile.gettempdir()) / f"portal-wake-{digest}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{d} must be a directory of this user, closed to others (mode 0700)")
    return d


def _release(sock: socket.socket, out: socket.socket, path: Path) -> None:
    with contextlib.suppress(OSError):
        out.sendto(b"", str(path))  # wakes this bus's own listener so that it ends
    for s in (sock, out):
        with contextlib.suppress(OSError):
            s.close()
    with contextlib.suppress(OSError):
        path.unlink()


class RedisBus:
    """Processes on several machines: Redis pub/sub on one channel per wake-up kind."""

    PREFIX = "portal:wake:"

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._closed = False

    def publish(self, channel: str) -> None:
        try:
            self._redis.publish(self.PREFIX + channel, b"1")
        except Exception as exc:
            log.warning("wake-up not published: %s", type(exc).__name__)

    def subscribe(self, on_message: Callable[[str], None]) -> None:
        self._pubsub.subscribe(*(self.PREFIX + c for c in CHANNELS))

        def listen() -> None:
            while not self._closed:
                try:
                    msg = self._pubsub.get_message(timeout=1.0)
                except Exception as exc:
                    if self._closed:
                        return
                    log.warning("wake-up listener: %s", type(exc).__name__)
                    threading.Event().wait(1.0)
                    continue
                if msg and msg.get("type") == "message":
                    on_message(msg["channel"].decode().removeprefix(self.PREFIX))

        threading.Thread(target=listen, name="wakeup-redis", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._pubsub.close()
            self._redis.close()


class MultiBus:
    def __init__(self, buses: list[Bus]) -> None:
        self._buses = buses

    def publish(self, channel: str) -> None:
        for bus in self._buses:
            bus.publish(channel)

    def subscribe(self, on_message: Callable[[str], None]) -> None:
        for bus in self._buses:
            bus.subscribe(on_message)

    def close(self) -> None:
        for bus in self._buses:
            bus.close()


def build_bus(directory: str | None, redis_url: str | None) -> Bus | None:
    buses: list[Bus] = []
    if directory:
        try:
            buses.append(SocketBus(directory))
        except OSError as exc:
            log.warning("local wake-ups off (%s); waiters fall back to the 50 ms database poll", exc)
    if redis_url:
        buses.append(RedisBus(redis_url))
    if not buses:
        return None
    return buses[0] if len(buses) == 1 else MultiBus(buses)
