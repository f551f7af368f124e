"""Staff and service accounts: administrators, helpdesk staff, and SDK callers.

SDK callers authenticate with HTTP Basic on every request. Checking argon2id each time
would cost ~0.2 s per call, so a successful check is remembered for a short time under an
HMAC of the credentials (never the password itself); a password change or a disabled
account clears this process's memory at once and other processes' within ``ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import Hasher
from .db import Database
from .errors import Conflict, Forbidden, Throttled, Unauthorized
from .models import StaffAccount
from .throttle import Throttle

ROLES = ("administrator", "helpdesk", "service")
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
        role = v.choice("role", role, ROLES)
        for right in rights:
            v.choice("rights", right, RIGHTS)
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

    def set_password(self, actor: Actor, username: str, password: str, *, change_required: bool = False) -> None:
        pw_hash = self._hasher.hash(v.password(password, min_len=12))
        with self._db.write() as s:
            a = s.scalar(select(StaffAccount).where(StaffAccount.username_key == v.username(username).lower()))
            if a is None:
                raise Unauthorized("No such account.")
            a.password_hash, a.password_change_required = pw_hash, change_required
            self._audit.append(s, actor, "account.set_password", a.username)
        self.forget_cached()

    def set_enabled(self, actor: Actor, username: str, enabled: bool) -> None:
        with self._db.write() as s:
            a = s.scalar(select(StaffAccount).where(StaffAccount.username_key == v.username(username).lower()))
            if a is None:
                raise Unauthorized("No such account.")
            a.enabled = enabled
            self._audit.append(s, actor, "account.enable" if enabled else "account.disable", a.username)
        self.forget_cached()

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
            generated = password = secrets.token_urlsafe(15)
        self.create(Actor("system"), username or "admin", password, kind="staff", role="administrator",
                    groups=(self.admins_group,), display_name="Administrator",
                    password_change_required=generated is not None)
        return (username or "admin", generated)

    def _cache_id(self, username: str, password: str) -> str:
        msg = username.lower().encode() + b"\x00" + password.encode()
        return hmac.new(self._cache_key, msg, hashlib.sha256).hexdigest()


