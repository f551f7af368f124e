"""Secrets at rest.

* :class:`SecretBox` encrypts OATH seeds and push tokens with AES-256-GCM. The key comes
  from configuration and never reaches the database; each ciphertext is bound to its row
  and purpose through the associated data, so a seed copied onto another row fails.
* :class:`Hasher` hashes passwords, PINs and security answers with argon2id.
* :func:`lookup_hmac` gives a keyed, deterministic digest for short-lived lookups
  (activation codes), so a database dump does not reveal codes.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import HashingConfig
from .errors import PortalError

_VERSION = b"\x01"


def derive_key(master: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose, so one configured key never serves two roles."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master)


class DecryptionError(PortalError):
    code = "DecryptionError"

    def __init__(self) -> None:
        super().__init__("A stored secret could not be decrypted (wrong PORTAL_ENCRYPTION_KEY?).")


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the encryption key must be 32 bytes")
        self._aead = AESGCM(derive_key(master_key, "portal:secrets-at-rest:v1"))

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, blob: bytes, context: str) -> bytes:
        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise DecryptionError()
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], context.encode())
        except InvalidTag as exc:
            raise DecryptionError() from exc


class Hasher:
    """argon2id for anything a person types and we must check later."""

    def __init__(self, cfg: HashingConfig) -> None:
        self._ph = PasswordHasher(
            time_cost=cfg.time_cost, memory_cost=cfg.memory_cost, parallelism=cfg.parallelism
        )
        # Verifying against this keeps the time of "no such account" close to a real check.
        self._dummy = self._ph.hash(os.urandom(16).hex())

    def hash(self, secret: str) -> str:
        return self._ph.hash(secret)

    def verify(self, stored: str | None, secret: str) -> bool:
        try:
            return self._ph.verify(stored or self._dummy, secret) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._ph.check_needs_rehash(stored)


def lookup_hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
