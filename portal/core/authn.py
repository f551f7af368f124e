"""Authentication requests: the life cycle behind ``AuthenticateUser``.

``pending → approved | denied | fraud | expired | cancelled``. Every transition out
of ``pending`` is one conditional UPDATE, so two answers racing for one request give
one result, never two. Expiry comes from the injected clock; a pending request past its
``expires_at`` is reported (and stored) as expired the first time anyone looks.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import validation as v
from .audit import SYSTEM, Actor, AuditLog
from .clock import Clock
from .db import Database
from .errors import InvalidInput, NotFound, RequestNotPending
from .models import AuthRequest, User
from .notify import NoNotifier, Notifier
from .settings import METHODS, SettingsService
from .sql import rowcount
from .users import block_user, ensure_can_authenticate, load_user
from .wakeup import Bus, Waiters

FINAL = ("approved", "denied", "fraud", "expired", "cancelled")
ANSWERS = ("approved", "denied", "fraud")


@dataclass(frozen=True)
class AuthRequestInfo:
    id: str
    username: str
    method: str
    status: str
    reason: str | None
    application: str | None
    client_ip: str | None
    number_to_match: int | None
    created_at: dt.datetime
    expires_at: dt.datetime
    completed_at: dt.datetime | None

    @property
    def pending(self) -> bool:
        return self.status == "pending"


def _info(r: AuthRequest, username: str) -> AuthRequestInfo:
    return AuthRequestInfo(r.id, username, r.method, r.status, r.reason, r.application, r.client_ip,
                           r.number_to_match, r.created_at, r.expires_at, r.completed_at)


class AuthRequestService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, settings: SettingsService,
                 lifetime_seconds: int, notifier: Notifier | None = None, bus: Bus | None = None) -> None:
        self._db, self._audit, self._clock, self._settings = db, audit, clock, settings
        self._notifier = notifier or NoNotifier()
        self._lifetime = lifetime_seconds
        self.on_created: Callable[[AuthRequestInfo], None] | None = None  # e.g. wake the phones
        self.waiters = Waiters("done", bus)  # a request left pending
        self.arrivals = Waiters("arrivals", bus)  # a request was created (phones waiting for one)
        if bus is not None:
            channels = {"done": self.waiters, "arrivals": self.arrivals}
            bus.subscribe(lambda name: channels[name].wake_local() if name in channels else None)

    def create(self, actor: Actor, username: str, *, method: str, application: str | None = None,
               client_ip: str | None = None, number_match: bool = False,
               lifetime_seconds: int | None = None) -> AuthRequestInfo:
        method = v.choice("method", method, METHODS)
        application = v.text("application", application, max_len=128, required=False) or None
        client_ip = v.ip_address(client_ip)
        lifetime = v.integer("timeout", lifetime_seconds if lifetime_seconds is not None else self._lifetime,
                             minimum=5, maximum=600)
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, v.username(username))
            ensure_can_authenticate(u, now)
            r = AuthRequest(id=secrets.token_hex(16), user_id=u.id, method=method, status="pending",
                            application=application, client_ip=client_ip,
                            number_to_match=secrets.randbelow(90) + 10 if number_match else None,
                            created_at=now, expires_at=now + dt.timedelta(seconds=lifetime))
            s.add(r)
            self._audit.append(s, actor, "auth.start", u.username, request_id=r.id, method=method,
                               application=application)
            info = _info(r, u.username)
        self.arrivals.notify()
        if self.on_created is not None:
            self.on_created(info)
        return info

    def get(self, request_id: str) -> AuthRequestInfo:
        request_id = _request_id(request_id)
        now = self._clock.now()
        with self._db.read() as s:
            r = s.get(AuthRequest, request_id)
            if r is None:
                raise NotFound("No such authentication request.")
            username = s.scalar(select(User.username).where(User.id == r.user_id)) or ""
            info = _info(r, username)
        if info.pending and info.expires_at <= now:
            self._expire(request_id)
            return self.get(request_id)
        return info

    def pending_for_user(self, username: str) -> list[AuthRequestInfo]:
        now = self._clock.now()
        with self._db.read() as s:
            u = load_user(s, v.username(username))
            rows = s.scalars(select(AuthRequest).where(AuthRequest.user_id == u.id,
                                                       AuthRequest.status == "pending",
                                                       AuthRequest.expires_at > now)
                             .order_by(AuthRequest.created_at))
            return [_info(r, u.username) for r in rows]

    def complete(self, actor: Actor, request_id: str, result: str, *, reason: str | None = None,
                 device_id: str | None = None) -> AuthRequestInfo:
        """Record the answer. Exactly one answer wins; later ones get :class:`RequestNotPending`."""
        with self._db.write() as s:
            info, blocked = self.complete_in(s, actor, request_id, result, reason=reason, device_id=device_id)
        self.after_completion(info, blocked)
        return info

    def complete_in(self, s: Session, actor: Actor, request_id: str, result: str, *, reason: str | None = None,
                    device_id: str | None = None) -> tuple[AuthRequestInfo, bool]:
        """:meth:`complete` inside the caller's write transaction (the phone's answer shares
        one with its signature check); call :meth:`after_completion` once it is committed."""
        request_id = _request_id(request_id)
        result = v.choice("result", result, ANSWERS)
        now = self._clock.now()
        won = self._transition(s, request_id, result, reason, now, device_id)
        r = s.get(AuthRequest, request_id, populate_existing=True)  # the UPDATE above bypassed the session
        if r is None:
            raise NotFound("No such authentication request.")
        u = s.get(User, r.user_id)
        assert u is not None
        if not won:
            raise RequestNotPending(r.status if r.status != "pending" else "expired")
        self._audit.append(s, actor, f"auth.{result}", u.username,
                           outcome="success" if result == "approved" else "failure",
                           request_id=request_id, reason=reason, device_id=device_id)
        blocked = self._on_fraud(s, actor, u, now) if result == "fraud" else False
        return _info(r, u.username), blocked

    def after_completion(self, info: AuthRequestInfo, blocked: bool) -> None:
        """Wake the waiting callers; tell the administrators about fraud."""
        self.waiters.notify()
        if info.status == "fraud":
            self._notifier.fraud_reported(info, blocked)

    def cancel(self, actor: Actor, request_id: str) -> AuthRequestInfo:
        request_id = _request_id(request_id)
        now = self._clock.now()
        with self._db.write() as s:
            won = self._transition(s, request_id, "cancelled", "cancelled", now, None)
            r = s.get(AuthRequest, request_id)
            if r is None:
                raise NotFound("No such authentication request.")
            username = s.scalar(select(User.username).where(User.id == r.user_id)) or ""
            if not won:
                raise RequestNotPending(r.status if r.status != "pending" else "expired")
            self._audit.append(s, actor, "auth.cancel", username, request_id=request_id)
            info = _info(r, username)
        self.waiters.notify()
        return info

    def wait(self, request_id: str, timeout: float, poll_interval: float = 0.05) -> AuthRequestInfo:
        """Block until the request leaves ``pending`` or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.get(request_id)
            remaining = deadline - time.monotonic()
            if not info.pending or remaining <= 0:
                return info
            self.waiters.wait(min(poll_interval, remaining))

    def _transition(self, s: Session, request_id: str, status: str, reason: str | None,
                    now: dt.datetime, device_id: str | None) -> bool:
        return rowcount(s.execute(
            update(AuthRequest)
            .where(AuthRequest.id == request_id, AuthRequest.status == "pending", AuthRequest.expires_at > now)
            .values(status=status, reason=reason, completed_at=now, device_id=device_id)
            .execution_options(synchronize_session=False)
        )) == 1

    def _expire(self, request_id: str) -> None:
        now = self._clock.now()
        with self._db.write() as s:
            done = rowcount(s.execute(
                update(AuthRequest)
                .where(AuthRequest.id == request_id, AuthRequest.status == "pending", AuthRequest.expires_at <= now)
                .values(status="expired", reason="timeout", completed_at=now)
            ))
            if done:
                r = s.get(AuthRequest, request_id)
                username = s.scalar(select(User.username).where(User.id == r.user_id)) if r else None
                self._audit.append(s, SYSTEM, "auth.expired", username, request_id=request_id)

    def _on_fraud(self, s: Session, actor: Actor, u: User, now: dt.datetime) -> bool:
        """Block the user when the setting says so; True if blocked."""
        settings = self._settings.get()
        if not settings["block_user_when_fraud_is_reported"]:
            return False
        block_user(u, "Fraud reported", now, settings["fraud_block_days"])
        self._audit.append(s, actor, "user.block", u.username, reason="Fraud reported",
                           days=settings["fraud_block_days"])
        return True


def _request_id(value: str) -> str:
    value = v.text("transaction_id", value, max_len=64)
    if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidInput("transaction_id", "is not a valid transaction id")
    return value
