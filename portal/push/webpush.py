"""Web Push / UnifiedPush: RFC 8030 delivery, RFC 8291 message encryption (``aes128gcm``,
RFC 8188), RFC 8292 VAPID.

The device's subscription is ``{"endpoint": ..., "keys": {"p256dh": ..., "auth": ...}}``
(its JSON is the device's push token). The payload is encrypted for the device's key, so
the push service relays only ciphertext.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..core.notify import PushWake as Wake
from . import PushError, jwt, payload

RECORD_SIZE = 4096


def _b64d(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes, *, salt: bytes | None = None,
            server_key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """RFC 8291: one aes128gcm record for the subscription's public key and auth secret."""
    salt = salt or os.urandom(16)
    server_key = server_key or ec.generate_private_key(ec.SECP256R1())
    ua_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    as_public = server_key.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
    shared = server_key.exchange(ec.ECDH(), ua_public)
    ikm = _hkdf(auth, shared, b"WebPush: info\x00" + p256dh + as_public, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # \x02: the last (only) record
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public
    return header + record


class WebPushProvider:
    def __init__(self, vapid_private_key_file: str | Path, subject: str, *, timeout: float = 10,
                 verify: str | bool = True) -> None:
        key = serialization.load_pem_private_key(Path(vapid_private_key_file).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise PushError("the VAPID key must be an ECDSA P-256 private key (PEM)")
        if not subject.startswith(("mailto:", "https:")):
            raise PushError("the VAPID subject must be a mailto: or https: URL")
        self._key, self._subject, self._timeout = key, subject, timeout
        self.public_key = jwt.b64url(key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
        self._http = requests.Session()
        self._http.trust_env = False
        self._http.verify = verify

    def request(self, w: Wake) -> tuple[str, dict[str, str], bytes]:
        try:
            sub: dict[str, Any] = json.loads(w.token)
            endpoint = sub["endpoint"]
            p256dh, auth = _b64d(sub["keys"]["p256dh"]), _b64d(sub["keys"]["auth"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PushError("the device's Web Push subscription is not valid") from exc
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise PushError("the subscription endpoint is not an http(s) URL")
        body = encrypt(json.dumps(payload(w)).encode(), p256dh, auth)
        token = jwt.sign({"aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + 12 * 3600,
                          "sub": self._subject}, self._key)
        headers = {"TTL": "120", "Urgency": "high", "Content-Encoding": "aes128gcm",
                   "Content-Type": "application/octet-stream",
                   "Authorization": f"vapid t={token}, k={self.public_key}"}
        return endpoint, headers, body

    def send(self, w: Wake) -> None:
        endpoint, headers, body = self.request(w)
        resp = self._http.post(endpoint, data=body, headers=headers, timeout=self._timeout)
        if resp.status_code not in (200, 201, 202):
            raise PushError(f"the push service refused the message: HTTP {resp.status_code}")
