"""OATH tokens: authenticator apps (TOTP) and hardware tokens (TOTP or HOTP).

Seeds are AES-GCM encrypted, bound to the token row. A code is accepted once: the
accepting transaction moves ``last_step`` (TOTP) or ``counter`` (HOTP) forward with a
conditional UPDATE, so two requests racing with one code get exactly one success.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import otp
from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import SecretBox
from .db import Database
from .errors import Conflict, InvalidInput, NotFound
from .models import OathToken, User
from .settings import SettingsService
from .users import ensure_can_authenticate, load_user, record_failure, record_success

TOTP_WINDOW = 1  # steps accepted either side of now: clock drift of ±30 s
HOTP_LOOKAHEAD = 10


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
            token = self._insert(s, u, "software", "totp", algorithm, digits, period, seed, None, verified=False)
            self._audit.append(s, actor, "oath.add", u.username, token_id=token.id, kind="software")
            account = self._settings.get()["account_name"]
            uri = otp.key_uri(secret=seed, account=u.username, issuer=account,
                              algorithm=algorithm, digits=digits, period=period)
            return NewToken(token.id, otp.b32encode(seed), uri)

    def add_hardware_token(self, actor: Actor, username: str, *, serial: str, secret_base32: str,
                           otp_type: str = "totp", algorithm: str = "SHA1", digits: int = 6,
                           period: int = 30, verified: bool = True) -> int:
        serial = v.serial(serial)
        otp_type = v.choice("otp_type", otp_type, ("totp", "hotp"))
        algorithm = v.choice("algorithm", algorithm, tuple(otp.ALGORITHMS))
        digits = v.choice("digits", digits, (6, 8))
        period = v.integer("period", period, minimum=10, maximum=120)
        try:
            seed = otp.b32decode(v.text("secret", secret_base32, max_len=256))
        except (ValueError, TypeError) as exc:
            raise InvalidInput("secret", "is not valid Base32") from exc
        if len(seed) < 10:
            raise InvalidInput("secret", "is too short (at least 80 bits)")
        try:
            with self._db.write() as s:
                u = load_user(s, v.username(username), for_update=True)
                if s.scalar(select(OathToken.id).where(OathToken.serial == serial)) is not None:
                    raise Conflict(f"A token with serial {serial!r} is already assigned.")
                token = self._insert(s, u, "hardware", otp_type, algorithm, digits, period, seed, serial, verified)
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
            ok = self._check(s, token, code)
            if ok:
                token.verified = True
            self._audit.append(s, actor, "oath.confirm", u.username, outcome="success" if ok else "failure",
                               token_id=token_id)
            return ok

    def validate(self, actor: Actor, username: str, code: str) -> OathResult:
        """Check a code against the user's confirmed tokens, under the lockout policy."""
        code = v.otp_code(code)
        settings = self._settings.get()
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            now = self._clock.now()
            ensure_can_authenticate(u, now)
            matched = next((t for t in u.tokens if t.verified and self._check(s, t, code)), None)
            if matched is not None:
                record_success(u)
                self._audit.append(s, actor, "oath.validate", u.username, token_id=matched.id)
                return OathResult(True, matched.id)
            if record_failure(u, now, settings):
                self._audit.append(s, actor, "user.locked_out", u.username, outcome="failure")
            self._audit.append(s, actor, "oath.validate", u.username, outcome="failure")
            return OathResult(False)

    def remove_token(self, actor: Actor, username: str, token_id: int) -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            token = s.get(OathToken, token_id)
            if token is None or token.user_id != u.id:
                raise NotFound("No such token.")
            s.delete(token)
            self._audit.append(s, actor, "oath.remove", u.username, token_id=token_id, serial=token.serial)

    def seed_for_device(self, s: Session, user: User) -> tuple[int, str]:
        """A fresh TOTP seed for the mobile app's offline code mode (issued at activation)."""
        seed = otp.random_seed("SHA1")
        token = self._insert(s, user, "software", "totp", "SHA1", 6, 30, seed, None, verified=True)
        return token.id, otp.b32encode(seed)

    # -- internals -----------------------------------------------------------------------
    def _insert(self, s: Session, u: User, kind: str, otp_type: str, algorithm: str, digits: int,
                period: int, seed: bytes, serial: str | None, verified: bool) -> OathToken:
        token = OathToken(user_id=u.id, kind=kind, otp_type=otp_type, algorithm=algorithm, digits=digits,
                          period=period, seed_encrypted=b"", counter=0, serial=serial, verified=verified,
                          created_at=self._clock.now())
        s.add(token)
        s.flush()  # the id binds the ciphertext to this row
        token.seed_encrypted = self._box.encrypt(seed, _seed_context(token.id, u.id))
        return token

    def _check(self, s: Session, t: OathToken, code: str) -> bool:
        if len(code) != t.digits:
            return False
        seed = self._box.decrypt(t.seed_encrypted, _seed_context(t.id, t.user_id))
        now = self._clock.now()
        if t.otp_type == "totp":
            current = otp.time_step(self._clock.time(), t.period)
            for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
                if v.constant_time_code(otp.hotp(seed, step, t.digits, t.algorithm), code):
                    claimed = s.execute(
                        update(OathToken)
                        .where(OathToken.id == t.id)
                        .where((OathToken.last_step.is_(None)) | (OathToken.last_step < step))
                        .values(last_step=step, last_used_at=now)
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    return claimed == 1
            return False
        for counter in range(t.counter, t.counter + HOTP_LOOKAHEAD):
            if v.constant_time_code(otp.hotp(seed, counter, t.digits, t.algorithm), code):
                claimed = s.execute(
                    update(OathToken)
                    .where(OathToken.id == t.id, OathToken.counter <= counter)
                    .values(counter=counter + 1, last_used_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                return claimed == 1
        return False
