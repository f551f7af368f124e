"""The helpdesk console's second factor and its rights.

Staff sign in with their password and then a code from an authenticator app (TOTP). A
staff account without one sets it up at its first sign-in (QR code, then a code proves
it); an administrator can reset it. Codes are single-use (the last accepted time step is
claimed with a conditional update) and wrong ones are throttled per account.

``authorize`` is the one place a right is checked: a refusal raises ``Forbidden`` and is
audited with the actor, the right and the target.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from . import otp
from . import validation as v
from .accounts import Principal
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import SecretBox
from .db import Database
from .errors import Forbidden, InvalidInput, NotFound, Throttled
from .models import StaffAccount
from .oath import TOTP_WINDOW
from .sql import rowcount
from .throttle import Throttle

CODE_LIMIT, CODE_WINDOW = 5, 300


@dataclass(frozen=True)
class StaffTotp:
    secret_base32: str
    key_uri: str


def _context(account_id: int) -> str:
    return f"staff-totp:{account_id}"


class StaffSecurity:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, box: SecretBox, throttle: Throttle,
                 issuer: str = "MFA Portal helpdesk") -> None:
        self._db, self._audit, self._clock, self._box, self._throttle = db, audit, clock, box, throttle
        self._issuer = issuer

    def totp_state(self, username: str) -> str:
        """``none`` (set it up), ``pending`` (shown, not proven) or ``active``."""
        with self._db.read() as s:
            a = _load(s, username)
            if a.totp_seed_encrypted is None:
                return "none"
            return "active" if a.totp_confirmed else "pending"

    def begin_totp(self, actor: Actor, username: str) -> StaffTotp:
        """A new authenticator-app secret for an account that has none in use."""
        seed = otp.random_seed("SHA1")
        with self._db.write() as s:
            a = _load(s, username)
            if a.totp_confirmed:
                raise Forbidden("This account already has an authenticator app; an administrator can reset it.")
            a.totp_seed_encrypted = self._box.encrypt(seed, _context(a.id))
            a.totp_last_step = None
            self._audit.append(s, actor, "staff.totp_begin", a.username)
            uri = otp.key_uri(secret=seed, account=a.username, issuer=self._issuer, algorithm="SHA1", digits=6,
                              period=30)
            return StaffTotp(otp.b32encode(seed), uri)

    def verify_totp(self, actor: Actor, username: str, code: str) -> bool:
        """Check a code (the pending secret's first code confirms it). Throttled; single-use."""
        code = v.otp_code(code)
        key = f"staff-code:{username.lower()}"
        try:
            self._throttle.check(key, CODE_LIMIT, CODE_WINDOW)
        except Throttled:
            with self._db.write() as s:
                self._audit.append(s, actor, "staff.totp_verify", username[:128], outcome="throttled")
            raise
        with self._db.write() as s:
            a = _load(s, username)
            if a.totp_seed_encrypted is None:
                raise NotFound("No authenticator app is set up for this account.")
            seed = self._box.decrypt(a.totp_seed_encrypted, _context(a.id))
            current = otp.time_step(self._clock.time())
            matched = next((step for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1)
                            if v.constant_time_code(otp.hotp(seed, step), code)), None)
            ok = matched is not None and rowcount(s.execute(
                update(StaffAccount)
                .where(StaffAccount.id == a.id,
                       (StaffAccount.totp_last_step.is_(None)) | (StaffAccount.totp_last_step < matched))
                .values(totp_last_step=matched, totp_confirmed=True)
                .execution_options(synchronize_session=False))) == 1
            self._audit.append(s, actor, "staff.totp_verify", a.username, outcome="success" if ok else "failure")
        if ok:
            self._throttle.reset(key)
        else:
            self._throttle.fail(key, CODE_WINDOW)
        return ok

    def reset_totp(self, actor: Actor, username: str, reason: str) -> None:
        reason = v.text("reason", reason, max_len=256)
        with self._db.write() as s:
            a = _load(s, username)
            a.totp_seed_encrypted, a.totp_confirmed, a.totp_last_step = None, False, None
            self._audit.append(s, actor, "staff.totp_reset", a.username, reason=reason)

    def authorize(self, actor: Actor, principal: Principal, right: str, target: str | None = None) -> None:
        """Refuse (and audit) an action the principal has no right to."""
        if principal.can(right):
            return
        with self._db.write() as s:
            self._audit.append(s, actor, "helpdesk.refused", target, outcome="failure", right=right)
        raise Forbidden(f"Your account does not have the right {right!r}.")


def _load(s, username: str) -> StaffAccount:  # type: ignore[no-untyped-def]
    name = v.text("username", username, max_len=128)
    a = s.scalar(select(StaffAccount).where(StaffAccount.username_key == name.lower()))
    if a is None:
        raise InvalidInput("username", "no such staff account")
    return a  # type: ignore[no-any-return]
