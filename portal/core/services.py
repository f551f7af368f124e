"""Wiring: builds every service once from a :class:`CoreConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from . import validation as v
from .accounts import AccountService
from .activation import ActivationService
from .audit import Actor, AuditLog
from .authenticate import AuthenticationService
from .authn import AuthRequestService
from .clock import Clock, SystemClock
from .config import CoreConfig
from .crypto import Hasher, SecretBox, derive_key
from .db import Database
from .devices import DeviceService
from .directory import LocalDirectory, UserDirectory
from .enrollment import EnrollmentService
from .errors import Unauthorized
from .notify import PushPort, build_notifier
from .oath import OathService
from .questions import SecurityQuestionService
from .reports import Reports
from .settings import SettingsService
from .staff import StaffSecurity
from .throttle import MemoryThrottle, RedisThrottle, Throttle
from .tokens import TokenInventoryService
from .users import UserService
from .wakeup import Bus, build_bus

PRIMARY_LIMIT, PRIMARY_WINDOW = 10, 300


class PrimaryAuthService:
    """``ValidatePrimaryCredentials``: the directory password, throttled and audited."""

    def __init__(self, db: Database, audit: AuditLog, directory: UserDirectory, throttle: Throttle) -> None:
        self._db, self._audit, self._directory, self._throttle = db, audit, directory, throttle

    def validate(self, actor: Actor, username: str, password: str) -> bool:
        username = v.username(username)
        password = v.password(password)
        keys = [f"primary:{username.lower()}"] + ([f"primary-ip:{actor.client_ip}"] if actor.client_ip else [])
        for key in keys:
            self._throttle.check(key, PRIMARY_LIMIT, PRIMARY_WINDOW)
        ok = self._directory.authenticate(username, password)
        if ok:
            self._throttle.reset(keys[0])
        else:
            for key in keys:
                self._throttle.fail(key, PRIMARY_WINDOW)
        with self._db.write() as s:
            self._audit.append(s, actor, "primary.validate", username, outcome="success" if ok else "failure",
                               directory=self._directory.name)
        return ok

    def require(self, actor: Actor, username: str, password: str) -> None:
        if not self.validate(actor, username, password):
            raise Unauthorized()


@dataclass
class Services:
    config: CoreConfig
    db: Database
    clock: Clock
    audit: AuditLog
    box: SecretBox
    hasher: Hasher
    throttle: Throttle
    settings: SettingsService
    users: UserService
    oath: OathService
    activation: ActivationService
    auth_requests: AuthRequestService
    accounts: AccountService
    questions: SecurityQuestionService
    primary: PrimaryAuthService
    authentication: AuthenticationService
    enrollment: EnrollmentService
    tokens: TokenInventoryService
    devices: DeviceService
    staff: StaffSecurity | None = None
    reports: Reports | None = None
    bus: Bus | None = None
    push: PushPort | None = None

    def close(self) -> None:
        if self.push is not None:
            self.push.close()
        if self.bus is not None:
            self.bus.close()
        self.db.dispose()


def build_services(cfg: CoreConfig, *, clock: Clock | None = None, throttle: Throttle | None = None,
                   push: PushPort | None = None) -> Services:
    clock = clock or SystemClock()
    db = Database(cfg.database_url, echo=cfg.sql_echo)
    audit = AuditLog(derive_key(cfg.encryption_key, "portal:audit-chain:v1"), clock)
    box = SecretBox(cfg.encryption_key)
    hasher = Hasher(cfg.hashing)
    if throttle is None:
        throttle = RedisThrottle(cfg.redis_url) if cfg.redis_url else MemoryThrottle()
    settings = SettingsService(db, audit, clock)
    users = UserService(db, audit, clock, hasher, settings)
    oath = OathService(db, audit, clock, box, settings)
    activation = ActivationService(db, audit, clock, box, cfg, settings, oath,
                                   derive_key(cfg.encryption_key, "portal:activation-lookup:v1"))
    bus = build_bus(cfg.wake_dir, cfg.redis_url)
    auth_requests = AuthRequestService(db, audit, clock, settings, cfg.auth_request_lifetime,
                                       build_notifier(cfg.smtp), bus)
    accounts = AccountService(db, audit, clock, hasher, throttle, cfg.admins_group,
                              derive_key(cfg.encryption_key, "portal:credential-cache:v1"))
    questions = SecurityQuestionService(db, audit, clock, hasher, settings)
    primary = PrimaryAuthService(db, audit, LocalDirectory(db, hasher), throttle)
    authentication = AuthenticationService(db, audit, clock, users, oath, auth_requests)
    enrollment = EnrollmentService(db, audit, clock, settings)
    tokens = TokenInventoryService(db, audit, clock, box, settings, oath)
    devices = DeviceService(db, audit, clock, box, throttle, activation, auth_requests, users, push)
    return Services(cfg, db, clock, audit, box, hasher, throttle, settings, users, oath, activation,
                    auth_requests, accounts, questions, primary, authentication, enrollment, tokens, devices,
                    StaffSecurity(db, audit, clock, box, throttle), Reports(db, clock), bus, push)
