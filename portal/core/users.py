"""Users: create, read, change, delete, find; blocking, lockout and PINs."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import Hasher
from .db import Database
from .errors import Conflict, InvalidInput, UserBlocked, UserDisabled, UserLockedOut, UserNotFound
from .models import User
from .settings import METHODS, MODES, PortalSettings, SettingsService

if TYPE_CHECKING:
    from .search import Page


@dataclass(frozen=True)
class TokenSummary:
    id: int
    kind: str
    otp_type: str
    serial: str | None
    verified: bool


@dataclass(frozen=True)
class DeviceSummary:
    id: str
    name: str
    platform: str
    status: str
    activated_at: dt.datetime
    last_seen_at: dt.datetime | None


@dataclass(frozen=True)
class UserInfo:
    username: str
    display_name: str | None
    email: str | None
    phone: str | None
    phone_extension: str | None
    backup_phone: str | None
    backup_extension: str | None
    language: str
    enabled: bool
    blocked: bool
    blocked_reason: str | None
    blocked_until: dt.datetime | None
    locked_until: dt.datetime | None
    method: str
    mode: str
    has_pin: bool
    pin_change_required: bool
    enrolled: bool
    created_at: dt.datetime
    tokens: tuple[TokenSummary, ...] = ()
    devices: tuple[DeviceSummary, ...] = ()

    @property
    def oath_token_serial_number(self) -> str | None:
        """MFA Server's ``OathTokenSerialNumber``: the first hardware token's serial."""
        return next((t.serial for t in self.tokens if t.serial), None)


@dataclass(frozen=True)
class UserFields:
    """The changeable fields of a user; ``None`` means "leave as it is"."""

    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_extension: str | None = None
    backup_phone: str | None = None
    backup_extension: str | None = None
    language: str | None = None
    method: str | None = None
    mode: str | None = None
    enabled: bool | None = None


def to_info(u: User, now: dt.datetime) -> UserInfo:
    return UserInfo(
        username=u.username,
        display_name=u.display_name,
        email=u.email,
        phone=u.phone,
        phone_extension=u.phone_extension,
        backup_phone=u.backup_phone,
        backup_extension=u.backup_extension,
        language=u.language,
        enabled=u.enabled,
        blocked=is_blocked(u, now),
        blocked_reason=u.blocked_reason if is_blocked(u, now) else None,
        blocked_until=u.blocked_until if is_blocked(u, now) else None,
        locked_until=u.locked_until if u.locked_until and u.locked_until > now else None,
        method=u.method,
        mode=u.mode,
        has_pin=u.pin_hash is not None,
        pin_change_required=u.pin_change_required,
        enrolled=u.enrolled_at is not None,
        created_at=u.created_at,
        tokens=tuple(TokenSummary(t.id, t.kind, t.otp_type, t.serial, t.verified) for t in u.tokens),
        devices=tuple(
            DeviceSummary(d.id, d.name, d.platform, d.status, d.activated_at, d.last_seen_at) for d in u.devices
        ),
    )


def is_blocked(u: User, now: dt.datetime) -> bool:
    return u.blocked and (u.blocked_until is None or u.blocked_until > now)


def _set_search_keys(u: User) -> None:
    u.email_key = u.email.lower() if u.email else None
    u.display_name_key = u.display_name.lower() if u.display_name else None


def load_user(s: Session, username: str, *, for_update: bool = False) -> User:
    q = select(User).where(User.username_key == username.lower())
    if for_update:
        q = q.with_for_update()
    user = s.scalar(q)
    if user is None:
        raise UserNotFound(username)
    return user


def ensure_can_authenticate(u: User, now: dt.datetime) -> None:
    if not u.enabled:
        raise UserDisabled()
    if is_blocked(u, now):
        raise UserBlocked()
    if u.locked_until and u.locked_until > now:
        raise UserLockedOut()


@dataclass(frozen=True)
class FailureState:
    attempts: int
    window_start: dt.datetime | None
    locked_until: dt.datetime | None  # set when this failure locks the user


def next_failure_state(attempts: int, window_start: dt.datetime | None, now: dt.datetime,
                       settings: PortalSettings) -> FailureState:
    """MFA Server's lockout: N denials within the reset window lock the user for a while."""
    if window_start is None or now - window_start > dt.timedelta(minutes=settings["lockout_reset_minutes"]):
        attempts, window_start = 0, now
    attempts += 1
    if attempts >= settings["lockout_threshold"]:
        return FailureState(0, None, now + dt.timedelta(minutes=settings["lockout_unblock_minutes"]))
    return FailureState(attempts, window_start, None)


def record_failure(u: User, now: dt.datetime, settings: PortalSettings) -> bool:
    """Count one denial; lock the user at the threshold. Returns True if this locked them."""
    state = next_failure_state(u.failed_attempts, u.failed_window_start, now, settings)
    u.failed_attempts, u.failed_window_start = state.attempts, state.window_start
    if state.locked_until is not None:
        u.locked_until = state.locked_until
        return True
    return False


def record_success(u: User) -> None:
    if u.failed_attempts:
        u.failed_attempts, u.failed_window_start = 0, None


class UserService:
    def __init__(
        self, db: Database, audit: AuditLog, clock: Clock, hasher: Hasher, settings: SettingsService
    ) -> None:
        self._db, self._audit, self._clock, self._hasher, self._settings = db, audit, clock, hasher, settings

    # -- reading -------------------------------------------------------------------------
    def get(self, username: str) -> UserInfo:
        username = v.username(username)
        with self._db.read() as s:
            u = s.scalar(
                select(User)
                .where(User.username_key == username.lower())
                .options(selectinload(User.tokens), selectinload(User.devices))
            )
            if u is None:
                raise UserNotFound(username)
            return to_info(u, self._clock.now())

    def exists(self, username: str) -> bool:
        with self._db.read() as s:
            return s.scalar(select(User.id).where(User.username_key == username.lower())) is not None

    def find(self, pattern: str, *, page: int = 1, page_size: int = 50, exact_total: bool = False) -> Page:
        """Username, name, e-mail or phone; ``*`` is a wildcard, otherwise a prefix match (see ``search``)."""
        from .search import find_users  # search builds on this module's UserInfo

        return find_users(self._db, self._clock, pattern, page=page, page_size=page_size, exact_total=exact_total)

    # -- writing -------------------------------------------------------------------------
    def create(
        self, actor: Actor, username: str, fields: UserFields | None = None, *, password: str | None = None
    ) -> UserInfo:
        username = v.username(username)
        settings = self._settings.get()
        fields = fields or UserFields()
        if fields.method is None:
            fields = replace(fields, method=settings["default_method"])
        if fields.mode is None:
            fields = replace(fields, mode=settings["default_mode"])
        clean = self._clean(fields)
        pw_hash = self._hasher.hash(v.password(password, min_len=8)) if password is not None else None
        now = self._clock.now()
        try:
            with self._db.write() as s:
                if s.scalar(select(User.id).where(User.username_key == username.lower())) is not None:
                    raise Conflict(f"A user named {username!r} already exists.")
                u = User(
                    username=username, username_key=username.lower(), created_at=now, updated_at=now,
                    password_hash=pw_hash, enabled=True, blocked=False, language="en",
                    failed_attempts=0, pin_change_required=False,
                )
                for key, value in clean.items():
                    setattr(u, key, value)
                _set_search_keys(u)
                s.add(u)
                s.flush()
                self._audit.append(s, actor, "user.create", username, fields=sorted(clean))
                return to_info(u, now)
        except IntegrityError as exc:  # a concurrent create of the same name
            raise Conflict(f"A user named {username!r} already exists.") from exc

    def update(self, actor: Actor, username: str, fields: UserFields) -> UserInfo:
        username = v.username(username)
        clean = self._clean(fields)
        if not clean:
            raise InvalidInput("settings", "no change given")
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, username, for_update=True)
            changed = sorted(k for k, val in clean.items() if getattr(u, k) != val)
            for key, value in clean.items():
                setattr(u, key, value)
            _set_search_keys(u)
            u.updated_at = now
            self._audit.append(s, actor, "user.update", u.username, fields=changed)
            s.flush()
            s.refresh(u)
            return to_info(u, now)

    def delete(self, actor: Actor, username: str) -> None:
        username = v.username(username)
        with self._db.write() as s:
            u = load_user(s, username, for_update=True)
            s.delete(u)
            self._audit.append(s, actor, "user.delete", u.username)

    def set_password(self, actor: Actor, username: str, password: str) -> None:
        pw_hash = self._hasher.hash(v.password(password, min_len=8))
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            u.password_hash, u.updated_at = pw_hash, self._clock.now()
            self._audit.append(s, actor, "user.set_password", u.username)

    def set_pin(self, actor: Actor, username: str, pin: str | None, *, change_required: bool = False) -> str:
        """Set a PIN, or generate one when ``pin`` is None (length max(4, minimum)). Returns it."""
        settings = self._settings.get()
        min_len = settings["pin_minimum_length"]
        if pin is None:
            pin = _generate_pin(max(4, min_len))
        pin = v.pin(pin, min_len=min_len)
        pin_hash = self._hasher.hash(pin)
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            u.pin_hash, u.pin_change_required, u.updated_at = pin_hash, change_required, self._clock.now()
            self._audit.append(s, actor, "user.set_pin", u.username, pin_change_required=change_required)
        return pin

    def check_pin(self, actor: Actor, username: str, pin: str) -> bool:
        """Check a PIN under the lockout policy (lockout applies to PIN entry, as in MFA Server)."""
        settings = self._settings.get()
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            ensure_can_authenticate(u, now)
            ok = u.pin_hash is not None and self._hasher.verify(u.pin_hash, pin)
            if ok:
                record_success(u)
            else:
                locked = record_failure(u, now, settings)
                if locked:
                    self._audit.append(s, actor, "user.locked_out", u.username, outcome="failure")
            self._audit.append(s, actor, "user.check_pin", u.username, outcome="success" if ok else "failure")
        return ok

    def set_pin_change_required(self, actor: Actor, username: str, required: bool) -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            u.pin_change_required, u.updated_at = required, self._clock.now()
            self._audit.append(s, actor, "user.pin_change_required", u.username, pin_change_required=required)

    def block(self, actor: Actor, username: str, reason: str, *, days: int | None = None) -> None:
        reason = v.text("reason", reason, max_len=256)
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            block_user(u, reason, now, days)
            self._audit.append(s, actor, "user.block", u.username, reason=reason, days=days)

    def unblock(self, actor: Actor, username: str, reason: str = "") -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            u.blocked, u.blocked_reason, u.blocked_until = False, None, None
            u.updated_at = self._clock.now()
            self._audit.append(s, actor, "user.unblock", u.username, reason=reason[:256])

    def clear_lockout(self, actor: Actor, username: str) -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            u.locked_until, u.failed_attempts, u.failed_window_start = None, 0, None
            self._audit.append(s, actor, "user.clear_lockout", u.username)

    def mark_enrolled(self, actor: Actor, username: str) -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            if u.enrolled_at is None:
                u.enrolled_at = self._clock.now()
                self._audit.append(s, actor, "user.enrolled", u.username)

    def _clean(self, f: UserFields) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if f.display_name is not None:
            out["display_name"] = v.text("display_name", f.display_name, max_len=128, required=False) or None
        if f.email is not None:
            out["email"] = v.email(f.email)
        if f.phone is not None:
            out["phone"] = v.phone(f.phone)
        if f.phone_extension is not None:
            out["phone_extension"] = v.extension(f.phone_extension, "phone_extension")
        if f.backup_phone is not None:
            out["backup_phone"] = v.phone(f.backup_phone, "backup_phone")
        if f.backup_extension is not None:
            out["backup_extension"] = v.extension(f.backup_extension, "backup_extension")
        if f.language is not None:
            out["language"] = v.language(f.language)
        if f.method is not None:
            out["method"] = v.choice("method", f.method, METHODS)
        if f.mode is not None:
            out["mode"] = v.choice("mode", f.mode, MODES)
        if f.enabled is not None:
            out["enabled"] = v.boolean("enabled", f.enabled)
        return out


def block_user(u: User, reason: str, now: dt.datetime, days: int | None) -> None:
    u.blocked, u.blocked_reason = True, reason
    u.blocked_until = now + dt.timedelta(days=days) if days else None
    u.updated_at = now


def _generate_pin(length: int) -> str:
    while True:
        pin = "".join(secrets.choice("0123456789") for _ in range(length))
        if not v.is_weak_pin(pin):
            return pin
