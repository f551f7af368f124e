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
from .authn import AuthRequestInfo, AuthRequestService
from .clock import Clock
from .db import Database
from .errors import InvalidInput, UserBlocked, UserDisabled, UserLockedOut
from .oath import OathService, load_hot_user
from .settings import METHODS
from .sql import Raw, Sql
from .users import UserService


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
    """A request as the caller sees it; a denial for a wrong PIN reads ``wrong_pin``."""
    status = "wrong_pin" if info.status == "denied" and info.reason == "wrong_pin" else info.status
    return AuthOutcome(info.id, status, info.reason, info.method, info.number_to_match, info.expires_at)


class AuthenticationService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, users: UserService, oath: OathService,
                 requests: AuthRequestService) -> None:
        self._db, self._audit, self._clock = db, audit, clock
        self._users, self._oath, self._requests = users, oath, requests

    def authenticate(self, actor: Actor, username: str, *, otp: str | None = None, pin: str | None = None,
                     application: str | None = None, client_ip: str | None = None, asynchronous: bool = False,
                     timeout: int = 60, number_matching: bool = False, method: str | None = None) -> AuthOutcome:
        """``method`` asks a method other than the user's own (the portal's "Authenticate me
        now" for a method being set up); None uses the user's method."""
        username = v.username(username)
        asked = v.choice("method", method, METHODS) if method else None
        application = v.text("applicationName", application, max_len=128, required=False) or None
        client_ip = v.ip_address(client_ip)
        timeout = v.integer("timeoutSeconds", timeout, minimum=5, maximum=300)
        if otp is not None and otp != "":
            otp = v.otp_code(otp, "otp")
        now = self._clock.now()
        with self._db.raw_write() as raw:
            user = load_hot_user(raw, username, now)
            method = asked or user.method
            try:
                user.ensure_can_authenticate()
            except (UserDisabled, UserBlocked, UserLockedOut) as exc:
                status = {UserDisabled: "disabled", UserBlocked: "blocked", UserLockedOut: "locked_out"}[type(exc)]
                self._audit.append_raw(raw, actor, "auth.refused", user.username, "failure",
                                       {"status": status, "application": application})
                return AuthOutcome(None, status, exc.code, method)
            if user.bypass:
                raw.execute(_END_BYPASS, {"uid": user.id}).close()  # one-time: consumed by this sign-in
                rid = self._record(raw, user.id, method, "approved", "one_time_bypass", application, client_ip, now)
                self._audit.append_raw(raw, actor, "auth.bypass_used", user.username, "success", {"request_id": rid})
                return AuthOutcome(rid, "approved", "one_time_bypass", method)
            if otp and not pin:
                # The common OATH sign-in: check, record and audit in one transaction.
                ok = self._oath.check_in(raw, actor, user, otp).ok
                result, reason = ("approved", None) if ok else ("denied", "invalid_code")
                rid = self._record(raw, user.id, "oath_token", result, reason, application, client_ip, now)
                self._audit.append_raw(raw, actor, f"auth.{result}", user.username, _outcome(result),
                                       {"request_id": rid, "method": "oath_token", "reason": reason,
                                        "application": application})
                return AuthOutcome(rid, result, reason, "oath_token")
        if pin and not self._users.check_pin(actor, username, pin):
            return self._finish(actor, username, method, "denied", "wrong_pin", application, client_ip,
                                status="wrong_pin")
        if otp:  # with a PIN that was right
            ok = self._oath.validate(actor, username, otp).ok
            return self._finish(actor, username, "oath_token", "approved" if ok else "denied",
                                None if ok else "invalid_code", application, client_ip)
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
        with self._db.raw_write() as raw:
            user = load_hot_user(raw, username, now)
            rid = self._record(raw, user.id, method, result, reason, application, client_ip, now)
            self._audit.append_raw(raw, actor, f"auth.{result}", user.username, _outcome(result),
                                   {"request_id": rid, "method": method, "reason": reason, "application": application})
        return AuthOutcome(rid, status or result, reason, method)

    @staticmethod
    def _record(raw: Raw, user_id: int, method: str, result: str, reason: str | None, application: str | None,
                client_ip: str | None, now: dt.datetime) -> str:
        """Keep a finished sign-in among the user's recent authentications."""
        rid = secrets.token_hex(16)
        raw.execute(_RECORD, {"id": rid, "uid": user_id, "method": method, "status": result, "reason": reason,
                              "application": application, "client_ip": client_ip, "now": now}).close()
        return rid


def _outcome(result: str) -> str:
    """Audit outcome of a sign-in: only an approval is a success."""
    return "success" if result == "approved" else "failure"


_END_BYPASS = Sql("UPDATE users SET bypass_until = NULL WHERE id = %(uid)s")
_RECORD = Sql("""INSERT INTO auth_requests (id, user_id, method, status, reason, application, client_ip,
                 created_at, expires_at, completed_at)
                 VALUES (%(id)s, %(uid)s, %(method)s, %(status)s, %(reason)s, %(application)s, %(client_ip)s,
                 %(now)s, %(now)s, %(now)s)""")
