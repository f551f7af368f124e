"""The phone side of the protocol: key pair, activation, signed requests, answers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class PhoneError(Exception):
    """The server's error envelope (or a transport failure), as one exception."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass
class PhoneState:
    """What the app keeps after activation."""

    url: str  # the Mobile App Web Service URL, e.g. https://mfa.example.com/PA
    device_id: str
    username: str
    account_name: str
    private_key_pem: str
    oath_secret: str | None = None

    def save(self, path: Path) -> None:
        """Write the state (it holds the private key) readable by its owner only."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> PhoneState:
        return cls(**json.loads(Path(path).read_text()))


def parse_activation(payload: str) -> tuple[str, str]:
    """The URL and code held by an activation QR code (``<url>?code=...&account=...``)."""
    parts = urlsplit(payload.strip())
    code = parse_qs(parts.query).get("code", [""])[0]
    if not parts.scheme.startswith("http") or not code:
        raise ValueError("not an activation QR code (expected https://host/PA?code=...)")
    return f"{parts.scheme}://{parts.netloc}{parts.path}", code


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign(key: ec.EllipticCurvePrivateKey, method: str, path: str, timestamp_ms: int, body: bytes) -> str:
    """The request signature: ECDSA P-256/SHA-256 over METHOD\\nPATH\\nTIMESTAMP\\nSHA256(body)."""
    message = f"{method.upper()}\n{path}\n{timestamp_ms}\n{hashlib.sha256(body).hexdigest()}".encode()
    return base64.urlsafe_b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).rstrip(b"=").decode()


class PhoneClient:
    def __init__(self, state: PhoneState, *, verify: str | bool = True, timeout: float = 15) -> None:
        self.state = state
        self._key = serialization.load_pem_private_key(state.private_key_pem.encode(), None)
        assert isinstance(self._key, ec.EllipticCurvePrivateKey)
        self._http = requests.Session()
        self._http.trust_env = False
        self._http.verify = verify
        self._timeout = timeout

    # -- activation ---------------------------------------------------------------------------
    @classmethod
    def activate(cls, url: str, code: str, *, device_name: str = "Reference phone", platform: str = "other",
                 push_kind: str = "none", push_token: str | None = None, verify: str | bool = True,
                 timeout: float = 15) -> PhoneClient:
        key = new_key()
        body: dict[str, Any] = {"code": code, "device_name": device_name, "platform": platform,
                                "public_key": public_key_b64(key),
                "push": {"kind": push_kind, "token": push_token}}
        with requests.Session() as http:
            http.trust_env = False
            resp = http.post(url.rstrip("/") + "/v1/activate", json=body, verify=verify, timeout=timeout)
        data = _json(resp, expect=201)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        state = PhoneState(url.rstrip("/"), data["device_id"], data["username"], data["account_name"], pem,
                           (data.get("oath") or {}).get("secret"))
        return cls(state, verify=verify, timeout=timeout)

    # -- signed requests ------------------------------------------------------------------------
    def _signed(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> requests.Response:
        raw = json.dumps(body).encode() if body is not None else b""
        prefix = urlsplit(self.state.url).path.rstrip("/")
        stamp = int(time.time() * 1000)
        headers = {"X-MFA-Device": self.state.device_id, "X-MFA-Timestamp": str(stamp),
                   "X-MFA-Signature": sign(self._key, method, prefix + path, stamp, raw)}  # type: ignore[arg-type]
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._http.request(method, self.state.url + path, data=raw or None, headers=headers,
                                  timeout=timeout or self._timeout)

    def pending(self, wait: int = 0) -> list[dict[str, Any]]:
        resp = self._signed("GET", f"/v1/requests?wait={wait}", timeout=self._timeout + wait)
        return list(_json(resp)["requests"])

    def answer(self, transaction_id: str, result: str, *, pin: str | None = None,
               number: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"result": result}
        if pin is not None:
            body["pin"] = pin
        if number is not None:
            body["number"] = number
        return _json(self._signed("POST", f"/v1/requests/{transaction_id}/answer", body))

    def update_push(self, kind: str, token: str | None = None) -> None:
        _json(self._signed("PUT", "/v1/push", {"kind": kind, "token": token}), expect=204)

    def sign_out(self) -> None:
        _json(self._signed("DELETE", "/v1/device"), expect=204)


def _json(resp: requests.Response, expect: int = 200) -> dict[str, Any]:
    if resp.status_code == expect:
        return {} if expect == 204 else dict(resp.json())
    try:
        err = resp.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise PhoneError(resp.status_code, "HTTP", resp.text[:200]) from None
    raise PhoneError(resp.status_code, err.get("code", "?"), err.get("message", ""), err.get("field"))
