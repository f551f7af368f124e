"""Mobile app activation codes and devices.

A code is random, shown once, stored as an HMAC, lives ``activation_code_minutes``
(10 by default), and is claimed with one conditional UPDATE: twenty phones racing
with one code get exactly one device. Generating a new code voids the user's older ones.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .config import CoreConfig
from .crypto import SecretBox, lookup_hmac
from .db import Database
from .errors import CodeExpired, CodeInvalid, CodeUsed, DeviceLimitReached, Forbidden, InvalidInput, NotFound
from .models import ActivationCode, Device, User
from .oath import OathService
from .settings import SettingsService
from .sql import rowcount
from .users import ensure_can_authenticate, load_user

CODE_DIGITS = 12
PLATFORMS = ("android", "ios", "web", "desktop", "other")
PUSH_KINDS = ("none", "fcm", "apns", "webpush")


@dataclass(frozen=True)
class ActivationInfo:
    code: str  # 12 digits; shown once
    url: str  # the short mobile app URL (base URL + /PA)
    account_name: str
    username: str
    expires_at: dt.datetime

    @property
    def code_grouped(self) -> str:
        return " ".join(self.code[i : i + 3] for i in range(0, len(self.code), 3))

    @property
    def qr_payload(self) -> str:
        """What the activation QR code holds: the short URL with the code."""
        return f"{self.url}?{urlencode({'code': self.code, 'account': self.account_name})}"


@dataclass(frozen=True)
class DeviceRegistration:
    name: str
    platform: str
    public_key: str | bytes  # PEM text or DER bytes of an ECDSA P-256 key
    push_kind: str = "none"
    push_token: str | None = None


@dataclass(frozen=True)
class ActivatedDevice:
    device_id: str
    username: str
    account_name: str
    oath_secret_base32: str | None


def parse_public_key(value: str | bytes) -> bytes:
    """Check a device key is ECDSA P-256 and return it as DER SubjectPublicKeyInfo."""
    try:
        if isinstance(value, str):
            key = (load_pem_public_key(value.encode()) if "BEGIN" in value
                   else load_der_public_key(base64.b64decode(value, validate=True)))
        else:
            key = load_der_public_key(value)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInput("public_key", "is not a valid public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("public_key", "must be an ECDSA P-256 key")
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


class ActivationService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, box: SecretBox, cfg: CoreConfig,
                 settings: SettingsService, oath: OathService, lookup_key: bytes) -> None:
        self._db, self._audit, self._clock, self._box = db, audit, clock, box
        self._cfg, self._settings, self._oath, self._key = cfg, settings, oath, lookup_key

    def generate(self, actor: Actor, username: str) -> ActivationInfo:
        settings = self._settings.get()
        now = self._clock.now()
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        expires = now + dt.timedelta(minutes=settings["activation_code_minutes"])
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            ensure_can_authenticate(u, now)
            self._check_limit(s, u.id, settings["device_limit"])
            s.execute(
                update(ActivationCode)
                .where(ActivationCode.user_id == u.id, ActivationCode.used_at.is_(None),
                       ActivationCode.voided_at.is_(None))
                .values(voided_at=now)
            )
            s.add(ActivationCode(user_id=u.id, code_hmac=lookup_hmac(self._key, code), created_at=now,
                                 expires_at=expires, created_by=actor.name))
            self._audit.append(s, actor, "activation.generate", u.username, code_expires_at=expires)
            return ActivationInfo(code, self._cfg.mobile_app_url, settings["account_name"], u.username, expires)

    def activate(self, actor: Actor, code: str, reg: DeviceRegistration) -> ActivatedDevice:
        code = v.text("code", code, max_len=32).replace(" ", "").replace("-", "")
        if not code.isdigit() or len(code) != CODE_DIGITS:
            raise InvalidInput("code", f"must be {CODE_DIGITS} digits")
        name = v.text("device_name", reg.name, max_len=64)
        platform = v.choice("platform", reg.platform, PLATFORMS)
        push_kind = v.choice("push_kind", reg.push_kind, PUSH_KINDS)
        push_token = v.text("push_token", reg.push_token, max_len=4096, required=push_kind != "none")
        public_key = parse_public_key(reg.public_key)
        settings = self._settings.get()
        digest = lookup_hmac(self._key, code)
        now = self._clock.now()
        with self._db.write() as s:
            claimed = rowcount(s.execute(
                update(ActivationCode)
                .where(ActivationCode.code_hmac == digest, ActivationCode.used_at.is_(None),
                       ActivationCode.voided_at.is_(None), ActivationCode.expires_at > now)
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ))
            row = s.scalar(select(ActivationCode).where(ActivationCode.code_hmac == digest))
            if claimed != 1 or row is None:
                if row is None:
                    raise CodeInvalid()
                if row.used_at is not None or row.voided_at is not None:
                    raise CodeUsed()
                raise CodeExpired()
            u = load_user(s, _username_of(s, row.user_id), for_update=True)
            ensure_can_authenticate(u, now)
            self._check_limit(s, u.id, settings["device_limit"])
            device = Device(id=str(uuid.uuid4()), user_id=u.id, name=name, platform=platform,
                            public_key=public_key, push_kind=push_kind, status="active", activated_at=now)
            if push_token:
                device.push_token_encrypted = self._box.encrypt(push_token.encode(), f"push:{device.id}")
            s.add(device)
            row.device_id = device.id
            secret = None
            if settings["mobile_app_oath_enabled"]:
                _token_id, secret = self._oath.seed_for_device(s, u)
            self._audit.append(s, actor, "device.activate", u.username, device_id=device.id,
                               platform=platform, push_kind=push_kind)
            return ActivatedDevice(device.id, u.username, settings["account_name"], secret)

    def status(self, username: str) -> str:
        """State of the user's newest code: none | pending | completed | expired | voided."""
        now = self._clock.now()
        with self._db.read() as s:
            u = load_user(s, v.username(username))
            row = s.scalar(select(ActivationCode).where(ActivationCode.user_id == u.id)
                           .order_by(ActivationCode.id.desc()).limit(1))
            if row is None:
                return "none"
            if row.used_at is not None:
                return "completed"
            if row.voided_at is not None:
                return "voided"
            return "expired" if row.expires_at <= now else "pending"

    def deactivate(self, actor: Actor, username: str, device_id: str) -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            device = s.get(Device, device_id)
            if device is None or device.user_id != u.id or device.status != "active":
                raise NotFound("No such active device.")
            device.status, device.deactivated_at = "deactivated", self._clock.now()
            device.push_token_encrypted = None
            self._audit.append(s, actor, "device.deactivate", u.username, device_id=device_id)

    def _check_limit(self, s: Session, user_id: int, limit: int) -> None:
        active = s.scalar(select(func.count()).select_from(Device)
                          .where(Device.user_id == user_id, Device.status == "active")) or 0
        if active >= limit:
            raise DeviceLimitReached(limit)


def _username_of(s: Session, user_id: int) -> str:
    name = s.scalar(select(User.username).where(User.id == user_id))
    if name is None:
        raise Forbidden("The user of this activation code no longer exists.")
    return str(name)
