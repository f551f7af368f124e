"""What a phone may do after activation, each request signed with its key.

A phone signs every request with its ECDSA P-256 key over the canonical string

    METHOD \\n PATH \\n TIMESTAMP \\n SHA-256(BODY) in hex

(``PATH`` with its query string; ``TIMESTAMP`` in Unix milliseconds). The core checks the
signature against the key stored at activation, that the timestamp is within
``SIGNATURE_WINDOW`` of the server's clock, and that this signature was never seen before
(a conditional insert into ``device_requests``), so a captured request cannot be replayed.
The frontend that relays a phone's request never holds a key: it passes the proof on.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from . import validation as v
from .activation import ActivatedDevice, ActivationService, DeviceRegistration
from .audit import Actor, AuditLog
from .authn import AuthRequestInfo, AuthRequestService
from .clock import Clock
from .crypto import SecretBox
from .db import Database
from .errors import InvalidInput, NotFound, Unauthorized
from .models import AuthRequest, Device, DeviceRequest, User
from .throttle import Throttle
from .users import UserService

SIGNATURE_WINDOW = 120  # seconds either side of the server's clock
ACTIVATE_LIMIT, ACTIVATE_WINDOW = 10, 300  # attempts per client address / per code
MAX_WAIT = 60
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
DEVICE_ANSWERS = {"approve": "approved", "deny": "denied", "fraud": "fraud"}


@dataclass(frozen=True)
class DeviceProof:
    """A phone's signed request, as the phone API received it."""

    device_id: str
    method: str
    path: str
    timestamp: int  # Unix milliseconds
    body_sha256: str  # hex
    signature: str  # base64url (or base64) of the DER ECDSA signature

    def message(self) -> bytes:
        return f"{self.method.upper()}\n{self.path}\n{self.timestamp}\n{self.body_sha256}".encode()


@dataclass(frozen=True)
class PendingRequest:
    id: str
    username: str
    application: str | None
    client_ip: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    number_choices: tuple[int, ...]  # empty without number matching; the right one is among them
    pin_required: bool


@dataclass(frozen=True)
class VerifiedDevice:
    device_id: str
    user_id: int
    username: str
    mode: str


def canonical_signature(value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("The request signature is not valid.") from exc
    return raw


class DeviceService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, box: SecretBox, throttle: Throttle,
                 activation: ActivationService, requests: AuthRequestService, users: UserService) -> None:
        self._db, self._audit, self._clock, self._box, self._throttle = db, audit, clock, box, throttle
        self._activation, self._requests, self._users = activation, requests, users

    # -- activation ----------------------------------------------------------------------------
    def activate(self, actor: Actor, code: str, reg: DeviceRegistration) -> ActivatedDevice:
        """Activation, throttled per client address and per code (whatever the outcome)."""
        keys = [f"activate:ip:{actor.client_ip or '-'}",
                "activate:code:" + hashlib.sha256(str(code).replace(" ", "").encode()).hexdigest()[:32]]
        for key in keys:
            self._throttle.check(key, ACTIVATE_LIMIT, ACTIVATE_WINDOW)
        try:
            return self._activation.activate(actor, code, reg)
        except Exception:
            for key in keys:
                self._throttle.fail(key, ACTIVATE_WINDOW)
            raise

    # -- signed requests ------------------------------------------------------------------------
    def verify(self, proof: DeviceProof) -> VerifiedDevice:
        """Check a phone's signature, clock and freshness. One message for every failure."""
        device_id = v.text("device_id", proof.device_id, max_len=36)
        if not _HEX64.match(proof.body_sha256 or ""):
            raise InvalidInput("body_sha256", "must be 64 lowercase hex digits")
        now_ms = int(self._clock.time() * 1000)
        if abs(now_ms - int(proof.timestamp)) > SIGNATURE_WINDOW * 1000:
            raise Unauthorized("The request's timestamp is outside the allowed window; check the phone's clock.")
        signature = canonical_signature(v.text("signature", proof.signature, max_len=256))
        with self._db.read() as s:
            row = s.execute(select(Device.public_key, Device.user_id, User.username, User.mode)
                            .join(User, User.id == Device.user_id)
                            .where(Device.id == device_id, Device.status == "active")).first()
        if row is None:
            raise Unauthorized("Unknown or deactivated device.")
        key = load_der_public_key(row[0])
        assert isinstance(key, ec.EllipticCurvePublicKey)
        try:
            key.verify(signature, proof.message(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Unauthorized("The request signature is not valid.") from None
        self._remember(device_id, signature)
        return VerifiedDevice(device_id, row[1], row[2], row[3])

    def _remember(self, device_id: str, signature: bytes) -> None:
        """Refuse a signature seen before (replay); note the device as seen."""
        digest = hashlib.sha256(signature).hexdigest()
        now = self._clock.now()
        try:
            with self._db.write() as s:
                s.add(DeviceRequest(device_id=device_id, digest=digest, seen_at=now))
                s.flush()
                s.execute(delete(DeviceRequest).where(
                    DeviceRequest.seen_at < now - dt.timedelta(seconds=3 * SIGNATURE_WINDOW)))
                device = s.get(Device, device_id)
                if device is not None:
                    device.last_seen_at = now
        except IntegrityError:
            raise Unauthorized("This request was already received (replay).") from None

    # -- what the phone does ----------------------------------------------------------------------
    def pending(self, proof: DeviceProof, wait_seconds: float = 0) -> list[PendingRequest]:
        """The user's pending mobile-app requests; with ``wait_seconds``, wait for one to arrive."""
        device = self.verify(proof)
        wait_seconds = v.integer("waitSeconds", int(wait_seconds), minimum=0, maximum=MAX_WAIT)
        deadline = time.monotonic() + wait_seconds
        while True:
            found = self._open_requests(device)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            self._requests.arrivals.wait(min(0.05, remaining))

    def _open_requests(self, device: VerifiedDevice) -> list[PendingRequest]:
        now = self._clock.now()
        with self._db.read() as s:
            rows = list(s.scalars(select(AuthRequest).where(
                AuthRequest.user_id == device.user_id, AuthRequest.status == "pending",
                AuthRequest.method == "mobile_app", AuthRequest.expires_at > now).order_by(AuthRequest.created_at)))
        return [PendingRequest(r.id, device.username, r.application, r.client_ip, r.created_at, r.expires_at,
                               _choices(r.id, r.number_to_match), device.mode == "pin") for r in rows]

    def answer(self, actor: Actor, proof: DeviceProof, request_id: str, answer: str, *, pin: str | None = None,
               number: int | None = None) -> AuthRequestInfo:
        """Approve, deny or report fraud, with the PIN in PIN mode and the number where asked."""
        device = self.verify(proof)
        result = DEVICE_ANSWERS.get(v.choice("result", answer, tuple(DEVICE_ANSWERS)), "denied")
        actor = Actor(f"device:{device.device_id}", actor.client_ip, actor.correlation_id)
        info = self._requests.get(request_id)
        if info.username != device.username or info.method != "mobile_app":
            raise NotFound("No such authentication request.")
        if result == "approved":
            if device.mode == "pin":
                if not pin:
                    raise InvalidInput("pin", "is required: the user signs in with a PIN")
                if not self._users.check_pin(actor, device.username, pin):
                    return self._requests.complete(actor, request_id, "denied", reason="wrong_pin",
                                                   device_id=device.device_id)
            if info.number_to_match is not None and number != info.number_to_match:
                if number is None:
                    raise InvalidInput("number", "is required: choose the number the sign-in page shows")
                return self._requests.complete(actor, request_id, "denied", reason="wrong_number",
                                               device_id=device.device_id)
        return self._requests.complete(actor, request_id, result, device_id=device.device_id)

    def update_push(self, actor: Actor, proof: DeviceProof, kind: str, token: str | None) -> None:
        from .activation import PUSH_KINDS

        device = self.verify(proof)
        kind = v.choice("push_kind", kind, PUSH_KINDS)
        token = v.text("push_token", token, max_len=4096, required=kind != "none") or None
        with self._db.write() as s:
            d = s.get(Device, device.device_id)
            if d is None:
                raise NotFound("No such device.")
            d.push_kind = kind
            d.push_token_encrypted = self._box.encrypt(token.encode(), f"push:{d.id}") if token else None
            self._audit.append(s, Actor(f"device:{d.id}", actor.client_ip, actor.correlation_id),
                               "device.push_update", device.username, device_id=d.id, push_kind=kind)

    def sign_out(self, actor: Actor, proof: DeviceProof) -> None:
        """The app removed the account: deactivate this device."""
        device = self.verify(proof)
        self._activation.deactivate(Actor(f"device:{device.device_id}", actor.client_ip, actor.correlation_id),
                                    device.username, device.device_id)


def _choices(request_id: str, right: int | None) -> tuple[int, ...]:
    """Three numbers for the phone to offer, the right one among them; the same on every poll."""
    if right is None:
        return ()
    picked, digest = [right], hashlib.sha256(f"choices:{request_id}".encode()).digest()
    for byte in digest:
        n = 10 + byte % 90
        if n not in picked:
            picked.append(n)
        if len(picked) == 3:
            break
    return tuple(sorted(picked))
