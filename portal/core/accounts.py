"""Staff and service accounts: administrators, helpdesk staff, and SDK callers.

SDK callers authenticate with HTTP Basic on every request. Checking argon2id each time
would cost ~0.2 s per call, so a successful check is remembered for a short time under an
HMAC of the credentials (never the password itself); a password change or a disabled
account clears this process's memory at once and other processes' within ``ttl`` seconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import Hasher
from .db import Database
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Throttled, Unauthorized
from .models import StaffAccount
from .throttle import Throttle

KINDS = ("staff", "service")
RIGHTS = (
    "change_phone", "change_method", "reset_pin", "generate_activation_code", "deactivate_device",
    "unblock", "clear_lockout", "bypass", "remove_oath_token", "reset_security_questions",
    "enable_disable", "view_audit", "create_user", "delete_user",
)
LOGIN_LIMIT, LOGIN_WINDOW = 10, 300


@dataclass(frozen=True)
class Principal:
    username: str
    kind: str
    role: str
    rights: frozenset[str]
    groups: frozenset[str]
    password_change_required: bool = False

    @property
    def actor_name(self) -> str:
        return f"{self.kind}:{self.username}"

    def can(self, right: str) -> bool:
        return self.role == "administrator" or right in self.rights


@dataclass(frozen=True)
class AccountInfo:
    """What the administrators' staff pages show of an account (never its secrets)."""

    username: str
    display_name: str | None
    kind: str
    role: str
    rights: tuple[str, ...]
    groups: tuple[str, ...]
    enabled: bool
    password_change_required: bool
    totp: str  # staff: none | pending | active; service accounts: ""
    created_at: dt.datetime
    last_login_at: dt.datetime | None


def _principal(a: StaffAccount) -> Principal:
    return Principal(a.username, a.kind, a.role, frozenset(json.loads(a.rights)), frozenset(json.loads(a.groups)),
                     a.password_change_required)


class AccountService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, hasher: Hasher, throttle: Throttle,
                 admins_group: str, cache_key: bytes, cache_ttl: float = 30.0) -> None:
        self._db, self._audit, self._clock, self._hasher = db, audit, clock, hasher
        self._throttle, self.admins_group = throttle, admins_group
        self._cache_key, self._ttl = cache_key, cache_ttl
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._inflight: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def create(self, actor: Actor, username: str, password: str, *, kind: str = "staff",
               role: str = "helpdesk", rights: tuple[str, ...] = (), groups: tuple[str, ...] = (),
               display_name: str | None = None, password_change_required: bool = False) -> Principal:
        username = v.username(username)
        kind = v.choice("kind", kind, KINDS)
        role = v.choice("role", role, _roles_of(kind))
        for right in rights:
            v.choice("rights", right, RIGHTS)
        if kind == "service" and rights:
            raise InvalidInput("rights", "a service account has no helpdesk rights")
        groups = tuple(v.text("groups", g, max_len=64) for g in groups)
        pw_hash = self._hasher.hash(v.password(password, min_len=12))
        now = self._clock.now()
        with self._db.write() as s:
            if s.scalar(select(StaffAccount.id).where(StaffAccount.username_key == username.lower())):
                raise Conflict(f"An account named {username!r} already exists.")
            a = StaffAccount(username=username, username_key=username.lower(),
                             display_name=v.text("display_name", display_name, max_len=128, required=False)
                             or None, password_hash=pw_hash, kind=kind, role=role,
                             rights=json.dumps(sorted(set(rights))), groups=json.dumps(sorted(set(groups))),
                             enabled=True, password_change_required=password_change_required,
                             failed_attempts=0, created_at=now)
            s.add(a)
            self._audit.append(s, actor, "account.create", username, kind=kind, role=role,
                               rights=sorted(set(rights)), groups=sorted(set(groups)))
            return _principal(a)

    def create_with_generated_password(self, actor: Actor, username: str, *, kind: str = "staff",
                                       role: str = "helpdesk", rights: tuple[str, ...] = (),
                                       groups: tuple[str, ...] = (),
                                       display_name: str | None = None) -> tuple[Principal, str]:
        """An account whose first password is generated, for the creator to pass on once. Staff
        change it at their first sign-in; a service account keeps it (it goes into a frontend's
        configuration)."""
        password = generate_password()
        created = self.create(actor, username, password, kind=kind, role=role, rights=rights, groups=groups,
                              display_name=display_name, password_change_required=kind == "staff")
        return created, password

    def principal(self, username: str) -> Principal | None:
        """The account as it is now (rights and role re-read), or None if gone or disabled."""
        with self._db.read() as s:
            a = s.scalar(select(StaffAccount).where(StaffAccount.username_key == username.lower()))
            return _principal(a) if a is not None and a.enabled else None

    def count(self) -> int:
        with self._db.read() as s:
            return s.scalar(select(func.count()).select_from(StaffAccount)) or 0

    def authenticate(self, actor: Actor, username: str, password: str) -> Principal:
        """Check a staff or service password, throttled per account and per client address.

        Concurrent requests with the same credentials wait for one argon2id check (a
        gunicorn worker's threads would otherwise all hash at once) and share its result.
        """
        cache_id = self._cache_id(username, password)
        cached = self._cached(cache_id)
        if cached is not None:
            return cached
        with self._lock:
            gate = self._inflight.setdefault(cache_id, threading.Lock())
        with gate:
            cached = self._cached(cache_id)
            if cached is not None:
                return cached
            try:
                principal = self._verify(actor, username, password)
            finally:
                with self._lock:
                    self._inflight.pop(cache_id, None)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[cache_id] = (time.monotonic() + self._ttl, principal)
            return principal

    def _cached(self, cache_id: str) -> Principal | None:
        with self._lock:
            hit = self._cache.get(cache_id)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    def _verify(self, actor: Actor, username: str, password: str) -> Principal:
        keys = [f"acct:{username.lower()}"] + ([f"acct-ip:{actor.client_ip}"] if actor.client_ip else [])
        try:
            for key in keys:
                self._throttle.check(key, LOGIN_LIMIT, LOGIN_WINDOW)
        except Throttled:
            with self._db.write() as s:
                self._audit.append(s, actor, "account.login", username[:128], outcome="throttled")
            raise
        with self._db.read() as s:
            a = s.scalar(select(StaffAccount).where(StaffAccount.username_key == username.lower()))
            stored = a.password_hash if a is not None else None
            principal = _principal(a) if a is not None else None
            enabled = a is not None and a.enabled
        ok = self._hasher.verify(stored, password) and enabled
        if not ok or principal is None:
            for key in keys:
                self._throttle.fail(key, LOGIN_WINDOW)
            with self._db.write() as s:
                self._audit.append(s, actor, "account.login", username[:128], outcome="failure")
            raise Unauthorized()
        self._throttle.reset(keys[0])
        with self._db.write() as s:
            acct = s.scalar(select(StaffAccount).where(StaffAccount.username_key == username.lower()))
            if acct is not None:
                acct.last_login_at = self._clock.now()
            self._audit.append(s, actor, "account.login", principal.username)
        return principal

    def authenticate_sdk(self, actor: Actor, username: str, password: str) -> Principal:
        """An SDK caller must also belong to the administrators group (MFA Server's PhoneFactor Admins)."""
        principal = self.authenticate(actor, username, password)
        if self.admins_group not in principal.groups:
            with self._db.write() as s:
                self._audit.append(s, actor, "sdk.forbidden", principal.username, outcome="failure",
                                   group=self.admins_group)
            raise Forbidden(f"The account is not a member of {self.admins_group!r}.")
        return principal

    def set_password(self, actor: Actor, username: str, password: str, *, change_required: bool = False,
                     reason: str = "") -> None:
        pw_hash = self._hasher.hash(v.password(password, min_len=12))
        with self._db.write() as s:
            a = _load(s, username)
            a.password_hash, a.password_change_required = pw_hash, change_required
            self._audit.append(s, actor, "account.set_password", a.username, reason=reason or None,
                               change_required=change_required)
        self.forget_cached()

    def reset_password(self, actor: Actor, username: str, reason: str) -> str:
        """A generated password, shown once. Staff must change it at their next sign-in; a
        service account's goes into its frontend's configuration as it is."""
        reason = v.text("reason", reason, max_len=256)
        password = generate_password()
        self.set_password(actor, username, password, change_required=self.info(username).kind == "staff",
                          reason=reason)
        return password

    def change_own_password(self, actor: Actor, username: str, current: str, new: str) -> None:
        """A staff member's own change: the current password again (throttled as a sign-in),
        a new one that differs from it; clears "password change required"."""
        new = v.password(new, "new_password", min_len=12)
        if new == current:
            raise InvalidInput("new_password", "must differ from the current password")
        key = f"acct:{username.lower()}"
        self._throttle.check(key, LOGIN_LIMIT, LOGIN_WINDOW)
        with self._db.read() as s:
            stored = s.scalar(select(StaffAccount.password_hash).where(StaffAccount.username_key == username.lower()))
        if not self._hasher.verify(stored, current):
            self._throttle.fail(key, LOGIN_WINDOW)
            with self._db.write() as s:
                self._audit.append(s, actor, "account.change_password", username[:128], outcome="failure")
            raise InvalidInput("current_password", "is not correct")
        pw_hash = self._hasher.hash(new)
        with self._db.write() as s:
            a = _load(s, username)
            a.password_hash, a.password_change_required = pw_hash, False
            self._audit.append(s, actor, "account.change_password", a.username)
        self.forget_cached()

    def set_enabled(self, actor: Actor, username: str, enabled: bool, reason: str = "") -> None:
        with self._db.write() as s:
            a = _load(s, username)
            if not enabled:
                _not_self(actor, a, "disable")
                if a.role == "administrator":
                    _keep_an_administrator(s, a)
            a.enabled = enabled
            self._audit.append(s, actor, "account.enable" if enabled else "account.disable", a.username,
                               reason=reason or None)
        self.forget_cached()

    # -- administration ------------------------------------------------------------------
    def info(self, username: str) -> AccountInfo:
        with self._db.read() as s:
            return _info(_load(s, username))

    def list_accounts(self) -> list[AccountInfo]:
        with self._db.read() as s:
            rows = s.scalars(select(StaffAccount).order_by(StaffAccount.kind, StaffAccount.username_key))
            return [_info(a) for a in rows]

    def update(self, actor: Actor, username: str, *, role: str | None = None, rights: tuple[str, ...] | None = None,
               groups: tuple[str, ...] | None = None, display_name: str | None = None) -> AccountInfo:
        """Change role, rights, groups or display name (None: leave as it is). Audited old -> new.

        A staff account is an administrator or helpdesk; a service account stays a service
        account. The last enabled administrator cannot be demoted, nor can you demote yourself.
        """
        clean_rights = sorted({v.choice("rights", r, RIGHTS) for r in rights}) if rights is not None else None
        clean_groups = sorted({v.text("groups", g, max_len=64) for g in groups}) if groups is not None else None
        with self._db.write() as s:
            a = _load(s, username)
            before = _info(a)
            if role is not None:
                role = v.choice("role", role, _roles_of(a.kind))
                if a.role == "administrator" and role != "administrator":
                    _not_self(actor, a, "demote")
                    _keep_an_administrator(s, a)
                a.role = role
            if clean_rights is not None:
                a.rights = json.dumps(clean_rights)
            if clean_groups is not None:
                a.groups = json.dumps(clean_groups)
            if display_name is not None:
                a.display_name = v.text("display_name", display_name, max_len=128, required=False) or None
            after = _info(a)
            changes = {f: [getattr(before, f), getattr(after, f)]
                       for f in ("role", "rights", "groups", "display_name") if getattr(before, f) != getattr(after, f)}
            if changes:
                self._audit.append(s, actor, "account.update", a.username, changes=changes)
        self.forget_cached()
        return after

    def forget_cached(self) -> None:
        with self._lock:
            self._cache.clear()

    def bootstrap(self, username: str | None, password: str | None) -> tuple[str, str | None] | None:
        """Create the first administrator if there is no account yet.

        Returns ``(username, generated_password)`` when an account was created; the
        password is None when it came from configuration. Returns None otherwise.
        """
        if self.count():
            return None
        generated = None
        if not password:
            generated = password = generate_password()
        self.create(Actor("system"), username or "admin", password, kind="staff", role="administrator",
                    groups=(self.admins_group,), display_name="Administrator",
                    password_change_required=generated is not None)
        return (username or "admin", generated)

    def _cache_id(self, username: str, password: str) -> str:
        msg = username.lower().encode() + b"\x00" + password.encode()
        return hmac.new(self._cache_key, msg, hashlib.sha256).hexdigest()


def _roles_of(kind: str) -> tuple[str, ...]:
    """A staff member is an administrator or helpdesk; a service account is only that."""
    return ("service",) if kind == "service" else ("administrator", "helpdesk")


def generate_password() -> str:
    """A first or reset password an administrator passes on: 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


def _load(s: Session, username: str) -> StaffAccount:
    a = s.scalar(select(StaffAccount).where(StaffAccount.username_key == v.username(username).lower()))
    if a is None:
        raise NotFound(f"No staff or service account named {username!r}.")
    return a


def _info(a: StaffAccount) -> AccountInfo:
    totp = "" if a.kind != "staff" else "none" if a.totp_seed_encrypted is None else (
        "active" if a.totp_confirmed else "pending")
    return AccountInfo(a.username, a.display_name, a.kind, a.role, tuple(json.loads(a.rights)),
                       tuple(json.loads(a.groups)), a.enabled, a.password_change_required, totp, a.created_at,
                       a.last_login_at)


def _not_self(actor: Actor, a: StaffAccount, what: str) -> None:
    if actor.name == f"staff:{a.username}":
        raise Conflict(f"You cannot {what} your own account; ask another administrator.")


def _keep_an_administrator(s: Session, leaving: StaffAccount) -> None:
    """Refuse to remove the last enabled administrator. Every administrator row is locked, in id
    order (PostgreSQL; SQLite writes are serial anyway), so two administrators demoting each other
    at once neither both succeed nor deadlock: the second waits, then sees the first's change."""
    admins = s.scalars(select(StaffAccount.id).where(
        StaffAccount.kind == "staff", StaffAccount.role == "administrator", StaffAccount.enabled.is_(True))
        .order_by(StaffAccount.id).with_for_update()).all()
    if not [i for i in admins if i != leaving.id]:
        raise Conflict("This is the last enabled administrator; make another administrator first.")


