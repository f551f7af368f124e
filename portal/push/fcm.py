"""Firebase Cloud Messaging, HTTP v1 API.

OAuth2 with the service account (RFC 7523 JWT bearer grant, scope
``https://www.googleapis.com/auth/firebase.messaging``), the token cached until a minute
before it expires; then ``POST {endpoint}/v1/projects/{project_id}/messages:send`` with
``Authorization: Bearer``. The message is data-only, high priority, 120 s TTL, and for
iOS devices on FCM a background (content-available) APNs push.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..core.notify import PushWake as Wake
from . import PushError, jwt, payload

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class FcmProvider:
    def __init__(self, service_account_file: str | Path, *, endpoint: str = "https://fcm.googleapis.com",
                 token_uri: str | None = None, timeout: float = 10, verify: str | bool = True) -> None:
        info = json.loads(Path(service_account_file).read_text())
        try:
            self._email, self._project = info["client_email"], info["project_id"]
            key = load_pem_private_key(info["private_key"].encode(), None)
        except (KeyError, ValueError) as exc:
            raise PushError(f"{service_account_file} is not a Google service account key file") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PushError("the service account key must be RSA")
        self._key = key
        self._key_id = info.get("private_key_id")
        self._token_uri = token_uri or info.get("token_uri") or "https://oauth2.googleapis.com/token"
        self._url = f"{endpoint.rstrip('/')}/v1/projects/{self._project}/messages:send"
        self._timeout = timeout
        self._http = requests.Session()
        self._http.trust_env = False
        self._http.verify = verify
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def _access_token(self) -> str:
        with self._lock:
            if self._token and self._token[1] > time.time() + 60:
                return self._token[0]
            now = int(time.time())
            assertion = jwt.sign({"iss": self._email, "scope": SCOPE, "aud": self._token_uri, "iat": now,
                                  "exp": now + 3600}, self._key, {"kid": self._key_id} if self._key_id else None)
            resp = self._http.post(self._token_uri, timeout=self._timeout, data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
            if resp.status_code != 200:
                raise PushError(f"OAuth2 token request refused: HTTP {resp.status_code}")
            body = resp.json()
            self._token = (body["access_token"], now + int(body.get("expires_in", 3600)))
            return self._token[0]

    def message(self, w: Wake) -> dict[str, Any]:
        return {"message": {
            "token": w.token,
            "data": payload(w),
            "android": {"priority": "high", "ttl": "120s"},
            "apns": {"headers": {"apns-priority": "5", "apns-push-type": "background"},
                     "payload": {"aps": {"content-available": 1}}},
        }}

    def send(self, w: Wake) -> None:
        resp = self._http.post(self._url, json=self.message(w), timeout=self._timeout,
                               headers={"Authorization": f"Bearer {self._access_token()}"})
        if resp.status_code == 401:
            self._token = None  # revoked or expired early: the next send gets a new one
        if resp.status_code != 200:
            raise PushError(f"FCM refused the message: HTTP {resp.status_code}")
