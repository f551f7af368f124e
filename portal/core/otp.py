"""HOTP (RFC 4226) and TOTP (RFC 6238), and the ``otpauth://`` Key URI.

Small enough to own: the checks against the RFC vectors and Debian's ``oathtool`` live
in the tests. Verification windows and replay protection are the OATH service's job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
# RFC 6238's reference seeds: the HMAC block-friendly length of each hash.
SEED_BYTES = {"SHA1": 20, "SHA256": 32, "SHA512": 64}


def hotp(key: bytes, counter: int, digits: int = 6, algorithm: str = "SHA1") -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(unix_time: float, period: int = 30, t0: int = 0) -> int:
    return int((unix_time - t0) // period)


def totp(key: bytes, unix_time: float, digits: int = 6, algorithm: str = "SHA1", period: int = 30) -> str:
    return hotp(key, time_step(unix_time, period), digits, algorithm)


def random_seed(algorithm: str = "SHA1") -> bytes:
    return secrets.token_bytes(SEED_BYTES[algorithm])


def b32encode(key: bytes) -> str:
    return base64.b32encode(key).decode().rstrip("=")


def b32decode(text: str) -> bytes:
    """Base32 as people type it: spaces, dashes and lower case tolerated, padding optional."""
    cleaned = text.replace(" ", "").replace("-", "").upper()
    cleaned += "=" * (-len(cleaned) % 8)
    return base64.b32decode(cleaned, casefold=False)


def key_uri(
    *,
    secret: bytes,
    account: str,
    issuer: str,
    algorithm: str = "SHA1",
    digits: int = 6,
    period: int = 30,
) -> str:
    """The Key URI that Microsoft Authenticator, Google Authenticator and RFC 6238 apps read."""
    label = quote(f"{issuer}:{account}", safe=":@")
    params = {"secret": b32encode(secret), "issuer": issuer}
    if algorithm != "SHA1":
        params["algorithm"] = algorithm
    if digits != 6:
        params["digits"] = str(digits)
    if period != 30:
        params["period"] = str(period)
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"
