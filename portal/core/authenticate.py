"""``AuthenticateUser``: one sign-in, whatever the user's method.

Order of checks: disabled / blocked / locked (refused, no request) → one-time bypass
(consumed) → PIN when given → OTP when given (the user's OATH tokens, replay-protected)
→ otherwise the user's method: mobile app creates a pending request that the phone
answers (synchronous callers wait for it); phone call and text message need a
telephony provider, which is not configured yet, so they answer ``method_unavailable``.
Every outcome with a request is kept, so the helpdesk sees recent authentications.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from . import validation as v
from .audit import Actor, AuditLog
from .authn import AuthRequestInfo, AuthRequestService, _ip
from .clock import Clock
from .db import Database
from .errors import InvalidInput, UserBlocked, UserDisabled, UserLockedOut
from .models import AuthRequest
from .oath import OathService
from .users import UserService, ensure_can_authenticate, load_user


@dataclass(frozen=True)
class AuthOutcome:
    transaction_id: str | None
    status: str
    reason: str | None
    method: str
    number_to_match: int | None = None
    expires_at: dt.datetime | None = None

    @property
    def authenticated(self) -> bool:
        return self.status == "approved"


def outcome_of(info: AuthRequestInfo) -> AuthOutcome:
    return AuthOutcome(info.id, info.status, info.reason, info.method, info.number_to_match, info.expires_at)


class AuthenticationService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, users: UserService, oath: OathService,
                 requests: AuthRequestService) -> None:
        self._db, self._audit, self._clock = db, audit, clock
        self._users, self._oath, self._requests = users, oath, requests

    def authenticate(self, actor: Actor, username: str, *, otp: str | None = None, pin: str | None = None,
                     application: str | None = None, client_ip: str | None = None, asynchronous: bool = False,
                     timeout: int = 60, number_matching: bool = False) -> AuthOutcome:
        username = v.username(username)
        application = v.text("applicationName", application, max_len=128, required=False) or None
        client_ip = _ip(client_ip)
        timeout = v.integer("timeoutSeconds", timeout, minimum=5, maximum=300)
        if otp is not None and otp != "":
            otp = v.otp_code(otp, "otp")
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, username, for_update=True)
            method = u.method
            try:
                ensure_can_authenticate(u, now)
            except (UserDisabled, UserBlocked, UserLockedOut) as exc:
                status = {UserDisabled: "disabled", UserBlocked: "blocked", UserLockedOut: "locked_out"}[type(exc)]
                self._audit.append(s, actor, "auth.refused", u.username, outcome="failure", status=status,
                                   application=application)
                return AuthOutcome(None, status, exc.code, method)
            if u.bypass_until is not None and u.bypass_until > now:
                u.bypass_until = None  # one-time: consumed by this sign-in
                rid = self._record(s, u.id, method, "approved", "one_time_bypass", application, client_ip, now)
                self._audit.append(s, actor, "auth.bypass_used", u.username, request_id=rid)
                return AuthOutcome(rid, "approved", "one_time_bypass", method)
        if pin and not self._users.check_pin(actor, username, pin):
            return self._finish(actor, username, method, "denied", "wrong_pin", application, client_ip,
                                status="wrong_pin")
        if otp:
            result = self._oath.validate(actor, username, otp)
            status = "approved" if result.ok else "denied"
            return self._finish(actor, username, "oath_token", status, None if result.ok else "invalid_code",
                                application, client_ip)
        if method == "oath_token":
            raise InvalidInput("otp", "is required: the user's method is OATH token")
        if method in ("phone_call", "text_message"):
            return self._finish(actor, username, method, "denied", "no_telephony_provider", application,
                                client_ip, status="method_unavailable")
        info = self._requests.create(actor, username, method=method, application=application, client_ip=client_ip,
                                     number_match=number_matching, lifetime_seconds=timeout)
        if asynchronous:
            return outcome_of(info)
        return outcome_of(self._requests.wait(info.id, timeout + 0.5))

    def status(self, request_id: str, wait_seconds: int = 0) -> AuthOutcome:
        wait_seconds = v.integer("waitSeconds", wait_seconds, minimum=0, maximum=60)
        if wait_seconds:
            return outcome_of(self._requests.wait(request_id, wait_seconds))
        return outcome_of(self._requests.get(request_id))

    def _finish(self, actor: Actor, username: str, method: str, result: str, reason: str | None,
                application: str | None, client_ip: str | None, *, status: str | None = None) -> AuthOutcome:
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, username)
            rid = self._record(s, u.id, method, result, reason, application, client_ip, now)
            self._audit.append(s, actor, f"auth.{result}", u.username, request_id=rid, method=method,
                               reason=reason, application=application)
        return AuthOutcome(rid, status or result, reason, method)

    @staticmethod
    def _record(s, user_id: int, method: str, result: str, reason: str | None,  # type: ignore[no-untyped-def]
                application: str | None, client_ip: str | None, now: dt.datetime) -> str:
        rid = secrets.token_hex(16)
        s.add(AuthRequest(id=rid, user_id=user_id, method=method, status=result, reason=reason,
                          application=application, client_ip=client_ip, created_at=now, expires_at=now,
                          completed_at=now))
        return rid
