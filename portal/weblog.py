"""Request logging: one line per request with a correlation id; never a query string, body,
header value or form field, so no code, password or OTP can reach a log through it."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from flask import Flask, Response, g, request

from .core.audit import Actor

log = logging.getLogger("portal.request")
_RID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class _RequestIds:
    """Unique, unguessable-enough ids without a system call per request: a random
    per-process prefix and a counter (the ids correlate logs; they guard nothing)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():  # a fork (gunicorn worker) gets its own prefix
            self._pid, self._prefix, self._counter = os.getpid(), secrets.token_hex(8), itertools.count()
        return f"{self._prefix}{next(self._counter):08x}"


_ids = _RequestIds()


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("portal").setLevel(level.upper())
    # zeep at DEBUG logs whole SOAP bodies, credentials included.
    logging.getLogger("zeep").setLevel(max(logging.INFO, logging.getLevelName(level.upper()) or 0))


def correlation_id(incoming: str) -> str:
    """The caller's X-Request-ID when it looks like one, else a new id."""
    return incoming if _RID.match(incoming) else _ids.next()


def log_request(method: str, path: str, status: int, started: float, rid: str) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info("%s %s %s %.1fms rid=%s", method[:16], _printable(path[:200]), status,
                 (time.perf_counter() - started) * 1000, rid)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.correlation_id = correlation_id(request.headers.get("X-Request-ID", ""))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        rid = g.get("correlation_id", "-")
        response.headers["X-Request-ID"] = rid
        log_request(request.method, request.path, response.status_code, g.get("started", time.perf_counter()), rid)
        return response


def _printable(text: str) -> str:
    """Escape control characters so a crafted path cannot forge a second log line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def actor(name: str) -> Actor:
    """An audit actor for the current request."""
    return Actor(name, request.remote_addr, g.get("correlation_id"))
