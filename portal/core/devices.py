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
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import validation as v
from .activation import ActivatedDevice, ActivationService, DeviceRegistration
from .audit import Actor, AuditLog
from .authn import AuthRequestInfo, AuthRequestService
from .clock import Clock
from .crypto import SecretBox
from .db import Database
from .errors import InvalidInput, NotFound, SignatureRejected
from .models import AuthRequest, Device, User
from .notify import PushPort, PushWake
from .sql import Raw, Sql, read_datetime
from .throttle import Throttle
from .users import UserService

SIGNATURE_WINDOW = 120  # seconds either side of the server's clock
ACTIVATE_LIMIT, ACTIVATE_WINDOW = 10, 300  # attempts per client address / per code
MAX_WAIT = 60
PURGE_EVERY = 200  # requests between clean-ups of old replay records
LAST_SEEN_EVERY = 30  # seconds: "last seen" is kept to this precision, not written on every poll
_DEVICE = Sql("""SELECT d.public_key, d.user_id, u.username, u.mode, d.last_seen_at FROM devices d
                 JOIN users u ON u.id = d.user_id WHERE d.id = %(id)s AND d.status = 'active'""")
_SEEN = Sql("""INSERT INTO device_requests (device_id, digest, seen_at) VALUES (%(device)s, %(digest)s, %(now)s)
               ON CONFLICT (digest) DO NOTHING""")
_TOUCH = Sql("UPDATE devices SET last_seen_at = %(now)s WHERE id = %(id)s")
_PURGE = Sql("DELETE FROM device_requests WHERE seen_at < %(before)s")
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
        raise SignatureRejected("The request signature is not valid.") from exc
    return raw


class DeviceService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, box: SecretBox, throttle: Throttle,
                 activation: ActivationService, requests: AuthRequestService, users: UserService,
                 push: PushPort | None = None) -> None:
        self._db, self._audit, self._clock, self._box, self._throttle = db, audit, clock, box, throttle
        self._activation, self._requests, self._users = activation, requests, users
        self._since_purge = 0
        self._push = push
        requests.on_created = self.wake_phones

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
        with self._db.write() as s:
            return self._verify_in(s, proof)

    def _verify_in(self, s: Session, proof: DeviceProof) -> VerifiedDevice:
        """:meth:`verify` inside the caller's write transaction, so the replay record and what
        the request does are committed together."""
        device_id = v.text("device_id", proof.device_id, max_len=36)
        if not _HEX64.match(proof.body_sha256 or ""):
            raise InvalidInput("body_sha256", "must be 64 lowercase hex digits")
        now_ms = int(self._clock.time() * 1000)
        if abs(now_ms - int(proof.timestamp)) > SIGNATURE_WINDOW * 1000:
            raise SignatureRejected("The request's timestamp is outside the allowed window; check the phone's clock.")
        signature = canonical_signature(v.text("signature", proof.signature, max_len=256))
        raw = Raw.of(s)
        row = raw.one(_DEVICE, {"id": device_id})
        if row is None:
            raise SignatureRejected("Unknown or deactivated device.")
        key = load_der_public_key(bytes(row[0]))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        try:
            key.verify(signature, proof.message(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SignatureRejected("The request signature is not valid.") from None
        now = self._clock.now()
        fresh = raw.rowcount(_SEEN, {"device": device_id, "digest": hashlib.sha256(signature).hexdigest(),
                                     "now": now})
        if fresh != 1:
            raise SignatureRejected("This request was already received (replay).")
        last_seen = read_datetime(row[4])
        if last_seen is None or (now - last_seen).total_seconds() > LAST_SEEN_EVERY:
            raw.execute(_TOUCH, {"id": device_id, "now": now}).close()
        if self._purge_due():
            raw.execute(_PURGE, {"before": now - dt.timedelta(seconds=3 * SIGNATURE_WINDOW)}).close()
        return VerifiedDevice(device_id, row[1], row[2], row[3])

    def _purge_due(self) -> bool:
        """Old replay records go now and then, not on every request."""
        self._since_purge += 1
        if self._since_purge >= PURGE_EVERY:
            self._since_purge = 0
            return True
        return False

    # -- what the phone does ----------------------------------------------------------------------
    def pending(self, proof: DeviceProof, wait_seconds: float = 0) -> list[PendingRequest]:
        """The user's pending mobile-app requests; with ``wait_seconds``, wait for one to arrive."""
        wait_seconds = v.integer("waitSeconds", int(wait_seconds), minimum=0, maximum=MAX_WAIT)
        with self._db.write() as s:
            device = self._verify_in(s, proof)
            found = self._open_requests(s, device)
        deadline = time.monotonic() + wait_seconds
        while not found and time.monotonic() < deadline:
            self._requests.arrivals.wait(min(0.05, deadline - time.monotonic()))
            with self._db.read() as s:
                found = self._open_requests(s, device)
        return found

    def _open_requests(self, s: Session, device: VerifiedDevice) -> list[PendingRequest]:
        now = self._clock.now()
        rows = s.execute(select(AuthRequest.id, AuthRequest.application, AuthRequest.client_ip,
                                AuthRequest.created_at, AuthRequest.expires_at, AuthRequest.number_to_match)
                         .where(AuthRequest.user_id == device.user_id, AuthRequest.status == "pending",
                                AuthRequest.method == "mobile_app", AuthRequest.expires_at > now)
                         .order_by(AuthRequest.created_at)).all()
        return [PendingRequest(r[0], device.username, r[1], r[2], r[3], r[4], _choices(r[0], r[5]),
                               device.mode == "pin") for r in rows]

    def answer(self, actor: Actor, proof: DeviceProof, request_id: str, answer: str, *, pin: str | None = None,
               number: int | None = None) -> AuthRequestInfo:
        """Approve, deny or report fraud, with the PIN in PIN mode and the number where asked.

        The signature check and the answer are one transaction (a wrong PIN is checked
        in between, under the lockout policy, when the user is in PIN mode).
        """
        result = DEVICE_ANSWERS[v.choice("result", answer, tuple(DEVICE_ANSWERS))]
        request_id = v.text("transaction_id", request_id, max_len=64)
        if result == "approved" and pin is not None:
            pin = v.text("pin", pin, max_len=16)
        with self._db.write() as s:
            device = self._verify_in(s, proof)
            device_actor = Actor(f"device:{device.device_id}", actor.client_ip, actor.correlation_id)
            row = s.execute(select(AuthRequest.user_id, AuthRequest.method, AuthRequest.number_to_match)
                            .where(AuthRequest.id == request_id)).first()
            if row is None or row[0] != device.user_id or row[1] != "mobile_app":
                raise NotFound("No such authentication request.")
            reason = None
            if result == "approved":
                if device.mode == "pin" and not pin:
                    raise InvalidInput("pin", "is required: the user signs in with a PIN")
                if row[2] is not None and number is None:
                    raise InvalidInput("number", "is required: choose the number the sign-in page shows")
                if row[2] is not None and number != row[2]:
                    result, reason = "denied", "wrong_number"
            if device.mode != "pin" or result != "approved":
                info, blocked = self._requests.complete_in(s, device_actor, request_id, result, reason=reason,
                                                           device_id=device.device_id)
        if device.mode == "pin" and result == "approved":
            # check_pin has its own transaction (it counts failures even when the answer fails)
            ok = self._users.check_pin(device_actor, device.username, pin or "")
            return self._requests.complete(device_actor, request_id, "approved" if ok else "denied",
                                           reason=None if ok else "wrong_pin", device_id=device.device_id)
        self._requests.after_completion(info, blocked)
        return info

    def wake_phones(self, info: AuthRequestInfo) -> None:
        """Push a wake-up to each of the user's active devices that has a push channel."""
        if self._push is None or info.method != "mobile_app" or not info.pending:
            return
        with self._db.read() as s:
            rows = s.execute(select(Device.id, Device.push_kind, Device.push_token_encrypted)
                             .join(User, User.id == Device.user_id)
                             .where(User.username_key == info.username.lower(), Device.status == "active",
                                    Device.push_kind != "none", Device.push_token_encrypted.is_not(None))).all()
        wakes = [PushWake(d_id, kind, self._box.decrypt(blob, f"push:{d_id}").decode(), info.id)
                 for d_id, kind, blob in rows if blob is not None]
        if wakes:
            self._push.wake(wakes)

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
