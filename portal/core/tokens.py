"""Third-party OATH tokens: the administrator's inventory and the user's association.

An administrator imports hardware tokens (serial, seed, type) into an inventory; the
seeds are encrypted as everywhere else. A user, where "Allow users to associate
third-party OATH token" is on, claims one with its serial number and the code it shows
now: the code proves possession, the token moves to the user (verified, with the code's
step or counter recorded, so that code cannot be replayed) and leaves the inventory.
Wrong codes count toward the user's lockout, as any wrong code does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import otp
from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import SecretBox
from .db import Database
from .errors import Conflict, Forbidden
from .models import OathToken, TokenInventory
from .oath import HOTP_LOOKAHEAD, TOTP_WINDOW, OathService, hardware_token_spec
from .settings import SettingsService
from .users import ensure_can_authenticate, load_user, record_failure, record_success


@dataclass(frozen=True)
class ImportedToken:
    serial: str
    otp_type: str
    algorithm: str
    digits: int
    period: int


def _context(inventory_id: int) -> str:
    return f"oath-inventory:{inventory_id}"


class TokenInventoryService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, box: SecretBox, settings: SettingsService,
                 oath: OathService) -> None:
        self._db, self._audit, self._clock, self._box = db, audit, clock, box
        self._settings, self._oath = settings, oath

    def add(self, actor: Actor, *, serial: str, secret_base32: str, otp_type: str = "totp",
            algorithm: str = "SHA1", digits: int = 6, period: int = 30) -> ImportedToken:
        spec = hardware_token_spec(serial, secret_base32, otp_type, algorithm, digits, period)
        serial, otp_type, algorithm, digits, period, seed = (spec.serial, spec.otp_type, spec.algorithm,
                                                             spec.digits, spec.period, spec.seed)
        try:
            with self._db.write() as s:
                if s.scalar(select(OathToken.id).where(OathToken.serial == serial)) is not None or \
                        s.scalar(select(TokenInventory.id).where(TokenInventory.serial == serial)) is not None:
                    raise Conflict(f"A token with serial {serial!r} already exists.")
                row = TokenInventory(serial=serial, otp_type=otp_type, algorithm=algorithm, digits=digits,
                                     period=period, seed_encrypted=b"", imported_at=self._clock.now(),
                                     imported_by=actor.name)
                s.add(row)
                s.flush()
                row.seed_encrypted = self._box.encrypt(seed, _context(row.id))
                self._audit.append(s, actor, "oath.inventory_add", serial, otp_type=otp_type)
        except IntegrityError as exc:
            raise Conflict(f"A token with serial {serial!r} already exists.") from exc
        return ImportedToken(serial, otp_type, algorithm, digits, period)

    def associate(self, actor: Actor, username: str, serial: str, code: str) -> bool:
        """Give the user the inventory token ``serial`` if ``code`` is its current code.

        The answer is the same (False) for an unknown serial and a wrong code, so serial
        numbers cannot be probed; both count toward the user's lockout.
        """
        settings = self._settings.get()
        if not settings["allow_users_to_associate_third_party_oath_token"]:
            raise Forbidden("Associating third-party OATH tokens is not allowed.")
        serial = v.serial(serial)
        code = v.otp_code(code)
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            ensure_can_authenticate(u, now)
            row = s.scalar(select(TokenInventory).where(TokenInventory.serial == serial).with_for_update())
            matched = self._match(row, code) if row is not None else None
            if row is None or matched is None:
                if record_failure(u, now, settings):
                    self._audit.append(s, actor, "user.locked_out", u.username, outcome="failure")
                self._audit.append(s, actor, "oath.associate", u.username, outcome="failure", serial=serial)
                return False
            record_success(u)
            seed = self._box.decrypt(row.seed_encrypted, _context(row.id))
            s.delete(row)
            s.flush()  # the serial leaves the inventory as it joins the user's tokens
            token = self._oath.insert(s, u, "hardware", row.otp_type, row.algorithm, row.digits, row.period, seed,
                                      serial, verified=True)
            if row.otp_type == "totp":
                token.last_step = matched
            else:
                token.counter = matched + 1
            token.last_used_at = now
            self._audit.append(s, actor, "oath.associate", u.username, serial=serial, token_id=token.id)
            return True

    def _match(self, row: TokenInventory, code: str) -> int | None:
        """The time step or counter ``code`` belongs to, or None."""
        if len(code) != row.digits:
            return None
        seed = self._box.decrypt(row.seed_encrypted, _context(row.id))
        if row.otp_type == "totp":
            current = otp.time_step(self._clock.time(), row.period)
            candidates = range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1)
        else:
            candidates = range(0, HOTP_LOOKAHEAD * 10)  # a new token: its counter is near the start
        for n in candidates:
            if v.constant_time_code(otp.hotp(seed, n, row.digits, row.algorithm), code):
                return n
        return None
