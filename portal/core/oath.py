"""OATH tokens: authenticator apps (TOTP) and hardware tokens (TOTP or HOTP).

Seeds are AES-GCM encrypted, bound to the token row. A code is accepted once: the
accepting transaction moves ``last_step`` (TOTP) or ``counter`` (HOTP) forward with a
conditional UPDATE, so two requests racing with one code get exactly one success.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import otp
from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import SecretBox
from .db import Database
from .errors import Conflict, InvalidInput, NotFound, UserBlocked, UserDisabled, UserLockedOut, UserNotFound
from .models import OathToken, User
from .settings import SettingsService
from .sql import Raw, Sql, read_datetime
from .users import load_user, next_failure_state

TOTP_WINDOW = 1  # steps accepted either side of now: clock drift of ±30 s
HOTP_LOOKAHEAD = 10

# The sign-in hot path runs on the driver connection (see portal.core.sql). A claim is one
# conditional UPDATE: of two requests racing with one code, exactly one sees rowcount 1.
_HOT_USER_SELECT = """
    SELECT u.id, u.username, u.enabled,
           CASE WHEN u.blocked AND (u.blocked_until IS NULL OR u.blocked_until > %(now)s) THEN 1 ELSE 0 END,
           CASE WHEN u.locked_until IS NOT NULL AND u.locked_until > %(now)s THEN 1 ELSE 0 END,
           CASE WHEN u.bypass_until IS NOT NULL AND u.bypass_until > %(now)s THEN 1 ELSE 0 END,
           u.failed_attempts, u.failed_window_start, u.method,
           t.id, t.user_id, t.otp_type, t.algorithm, t.digits, t.period, t.seed_encrypted, t.counter
    FROM users u LEFT JOIN oath_tokens t ON t.user_id = u.id AND t.verified = %(yes)s
    WHERE u.username_key = %(key)s ORDER BY t.id"""
# PostgreSQL locks the user's row; SQLite's write transaction already excludes other writers.
_HOT_USER = Sql(_HOT_USER_SELECT + " FOR UPDATE OF u", sqlite=_HOT_USER_SELECT)
_RESET_FAILURES = Sql("UPDATE users SET failed_attempts = 0, failed_window_start = NULL WHERE id = %(uid)s")
_SET_FAILURES = Sql("""UPDATE users SET failed_attempts = %(attempts)s, failed_window_start = %(start)s,
                       locked_until = COALESCE(%(locked)s, locked_until) WHERE id = %(uid)s""")
_CLAIM_STEP = Sql("""UPDATE oath_tokens SET last_step = %(step)s, last_used_at = %(used)s
                     WHERE id = %(tid)s AND (last_step IS NULL OR last_step < %(step)s)""")
_CLAIM_COUNTER = Sql("""UPDATE oath_tokens SET counter = %(next)s, last_used_at = %(used)s
                        WHERE id = %(tid)s AND counter <= %(seen)s""")


class TokenRow(NamedTuple):
    id: int
    user_id: int
    otp_type: str
    algorithm: str
    digits: int
    period: int
    seed_encrypted: bytes
    counter: int


@dataclass(frozen=True)
class HotUser:
    """What a sign-in needs of a user, read (and on PostgreSQL locked) in one statement."""

    id: int
    username: str
    enabled: bool
    blocked: bool
    locked: bool
    bypass: bool
    failed_attempts: int
    failed_window_start: dt.datetime | None
    method: str
    tokens: tuple[TokenRow, ...]

    def ensure_can_authenticate(self) -> None:
        if not self.enabled:
            raise UserDisabled()
        if self.blocked:
            raise UserBlocked()
        if self.locked:
            raise UserLockedOut()


def load_hot_user(raw: Raw, username: str, now: dt.datetime) -> HotUser:
    rows = raw.all(_HOT_USER, {"key": username.lower(), "now": now, "yes": True})
    if not rows:
        raise UserNotFound(username)
    r = rows[0]
    tokens = tuple(TokenRow(*row[9:17]) for row in rows if row[9] is not None)
    return HotUser(r[0], r[1], bool(r[2]), bool(r[3]), bool(r[4]), bool(r[5]), r[6] or 0, read_datetime(r[7]),
                   r[8], tokens)


@dataclass(frozen=True)
class NewToken:
    """What the caller shows once: the seed, and the Key URI for the QR code."""

    token_id: int
    secret_base32: str
    key_uri: str


@dataclass(frozen=True)
class OathResult:
    ok: bool
    token_id: int | None = None


@dataclass(frozen=True)
class HardwareTokenSpec:
    serial: str
    otp_type: str
    algorithm: str
    digits: int
    period: int
    seed: bytes


def hardware_token_spec(serial: str, secret_base32: str, otp_type: str, algorithm: str, digits: int,
                        period: int) -> HardwareTokenSpec:
    """A third-party token's description, checked (each error names its field)."""
    serial = v.serial(serial)
    otp_type = v.choice("otp_type", str(otp_type).lower(), ("totp", "hotp"))
    algorithm = v.choice("algorithm", str(algorithm).upper(), tuple(otp.ALGORITHMS))
    digits = v.choice("digits", int(digits), (6, 8))
    period = v.integer("period", period, minimum=10, maximum=120)
    try:
        seed = otp.b32decode(v.text("secret", secret_base32, max_len=256))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("secret", "is not valid Base32") from exc
    if len(seed) < 10:
        raise InvalidInput("secret", "is too short (at least 80 bits)")
    return HardwareTokenSpec(serial, otp_type, algorithm, digits, period, seed)


def _seed_context(token_id: int, user_id: int) -> str:
    return f"oath-seed:{token_id}:{user_id}"


class OathService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, box: SecretBox, settings: SettingsService) -> None:
        self._db, self._audit, self._clock, self._box, self._settings = db, audit, clock, box, settings

    def add_software_token(self, actor: Actor, username: str, *, algorithm: str = "SHA1",
                           digits: int = 6, period: int = 30) -> NewToken:
        """A new authenticator-app token; it counts only after :meth:`confirm_token`."""
        algorithm = v.choice("algorithm", algorithm, tuple(otp.ALGORITHMS))
        digits = v.choice("digits", digits, (6, 8))
        period = v.choice("period", period, (30, 60))
        seed = otp.random_seed(algorithm)
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            # An unconfirmed app token from an abandoned attempt is replaced, not piled up.
            for old in [t for t in u.tokens if t.kind == "software" and not t.verified]:
                s.delete(old)
            token = self.insert(s, u, "software", "totp", algorithm, digits, period, seed, None, verified=False)
            self._audit.append(s, actor, "oath.add", u.username, token_id=token.id, kind="software")
            account = self._settings.get()["account_name"]
            uri = otp.key_uri(secret=seed, account=u.username, issuer=account,
                              algorithm=algorithm, digits=digits, period=period)
            return NewToken(token.id, otp.b32encode(seed), uri)

    def add_hardware_token(self, actor: Actor, username: str, *, serial: str, secret_base32: str,
                           otp_type: str = "totp", algorithm: str = "SHA1", digits: int = 6,
                           period: int = 30, verified: bool = True) -> int:
        spec = hardware_token_spec(serial, secret_base32, otp_type, algorithm, digits, period)
        serial, otp_type, algorithm, digits, period, seed = (spec.serial, spec.otp_type, spec.algorithm,
                                                             spec.digits, spec.period, spec.seed)
        try:
            with self._db.write() as s:
                u = load_user(s, v.username(username), for_update=True)
                if s.scalar(select(OathToken.id).where(OathToken.serial == serial)) is not None:
                    raise Conflict(f"A token with serial {serial!r} is already assigned.")
                token = self.insert(s, u, "hardware", otp_type, algorithm, digits, period, seed, serial, verified)
                self._audit.append(s, actor, "oath.add", u.username, token_id=token.id, kind="hardware",
                                   serial=serial)
                return token.id
        except IntegrityError as exc:
            raise Conflict(f"A token with serial {serial!r} is already assigned.") from exc

    def confirm_token(self, actor: Actor, username: str, token_id: int, code: str) -> bool:
        """The user proves a code from a new token; only then does it count."""
        code = v.otp_code(code)
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            token = s.get(OathToken, token_id)
            if token is None or token.user_id != u.id:
                raise NotFound("No such token.")
            ok = self._check(Raw.of(s), token, code)
            if ok:
                token.verified = True
            self._audit.append(s, actor, "oath.confirm", u.username, outcome="success" if ok else "failure",
                               token_id=token_id)
            return ok

    def validate(self, actor: Actor, username: str, code: str) -> OathResult:
        """Check a code against the user's confirmed tokens, under the lockout policy."""
        code = v.otp_code(code)
        username = v.username(username)
        with self._db.raw_write() as raw:
            user = load_hot_user(raw, username, self._clock.now())
            user.ensure_can_authenticate()
            return self.check_in(raw, actor, user, code)

    def check_in(self, raw: Raw, actor: Actor, user: HotUser, code: str) -> OathResult:
        """The code check inside the caller's transaction: claim, reset or count failures, audit."""
        matched = next((t for t in user.tokens if self._check(raw, t, code)), None)
        if matched is not None:
            if user.failed_attempts:
                raw.execute(_RESET_FAILURES, {"uid": user.id}).close()
            self._audit.append_raw(raw, actor, "oath.validate", user.username, "success", {"token_id": matched.id})
            return OathResult(True, matched.id)
        now = self._clock.now()
        state = next_failure_state(user.failed_attempts, user.failed_window_start, now, self._settings.get())
        raw.execute(_SET_FAILURES, {"uid": user.id, "attempts": state.attempts, "start": state.window_start,
                                    "locked": state.locked_until}).close()
        if state.locked_until is not None:
            self._audit.append_raw(raw, actor, "user.locked_out", user.username, "failure", {})
        self._audit.append_raw(raw, actor, "oath.validate", user.username, "failure", {})
        return OathResult(False)

    def remove_token(self, actor: Actor, username: str, token_id: int, *, keep_sign_in_token: bool = False) -> None:
        """Remove a token. With ``keep_sign_in_token`` (the user's own portal), refuse to remove the
        last confirmed token of a user who signs in with OATH codes: they would be locked out. The
        check runs under the user's row lock, so two removals at once cannot both pass it."""
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            token = s.get(OathToken, token_id)
            if token is None or token.user_id != u.id:
                raise NotFound("No such token.")
            if keep_sign_in_token and u.method == "oath_token" and token.verified:
                others = s.scalar(select(func.count()).select_from(OathToken).where(
                    OathToken.user_id == u.id, OathToken.verified.is_(True), OathToken.id != token.id))
                if not others:
                    raise Conflict("This is the token the user signs in with; choose another method first.")
            s.delete(token)
            self._audit.append(s, actor, "oath.remove", u.username, token_id=token_id, serial=token.serial)

    def seed_for_device(self, s: Session, user: User) -> tuple[int, str]:
        """A fresh TOTP seed for the mobile app's offline code mode (issued at activation)."""
        seed = otp.random_seed("SHA1")
        token = self.insert(s, user, "software", "totp", "SHA1", 6, 30, seed, None, verified=True)
        return token.id, otp.b32encode(seed)

    # -- internals -----------------------------------------------------------------------
    def insert(self, s: Session, u: User, kind: str, otp_type: str, algorithm: str, digits: int,
                period: int, seed: bytes, serial: str | None, verified: bool) -> OathToken:
        token = OathToken(user_id=u.id, kind=kind, otp_type=otp_type, algorithm=algorithm, digits=digits,
                          period=period, seed_encrypted=b"", counter=0, serial=serial, verified=verified,
                          created_at=self._clock.now())
        s.add(token)
        s.flush()  # the id binds the ciphertext to this row
        token.seed_encrypted = self._box.encrypt(seed, _seed_context(token.id, u.id))
        return token

    def _check(self, raw: Raw, t: OathToken | TokenRow, code: str) -> bool:
        if len(code) != t.digits:
            return False
        seed = self._box.decrypt(t.seed_encrypted, _seed_context(t.id, t.user_id))
        now = self._clock.now()
        if t.otp_type == "totp":
            current = otp.time_step(self._clock.time(), t.period)
            for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
                if v.constant_time_code(otp.hotp(seed, step, t.digits, t.algorithm), code):
                    return raw.rowcount(_CLAIM_STEP, {"tid": t.id, "step": step, "used": now}) == 1
            return False
        for counter in range(t.counter, t.counter + HOTP_LOOKAHEAD):
            if v.constant_time_code(otp.hotp(seed, counter, t.digits, t.algorithm), code):
                params = {"tid": t.id, "seen": counter, "next": counter + 1, "used": now}
                return raw.rowcount(_CLAIM_COUNTER, params) == 1
        return False
