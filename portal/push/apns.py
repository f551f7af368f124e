"""Apple Push Notification service, token-based (HTTP/2, ES256 provider token).

``POST {endpoint}/3/device/{device token}`` over HTTP/2 with ``authorization: bearer <JWT>``
(header ``kid`` = key id, claims ``iss`` = team id and ``iat``; renewed every 50 minutes, as
Apple accepts a token for an hour), ``apns-topic`` (the app's bundle id), and a background
push (``apns-push-type: background``, priority 5, ``content-available``) carrying only the
wake-up. Endpoint: ``https://api.push.apple.com`` (``https://api.sandbox.push.apple.com``
for development builds).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..core.notify import PushWake as Wake
from . import PushError, jwt, payload

TOKEN_LIFETIME = 50 * 60


class ApnsProvider:
    def __init__(self, key_file: str | Path, *, key_id: str, team_id: str, topic: str,
                 endpoint: str = "https://api.push.apple.com", timeout: float = 10,
                 verify: str | bool = True) -> None:
        key = load_pem_private_key(Path(key_file).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise PushError("the APNs key (.p8) must be an ECDSA P-256 private key")
        if not key_id or not team_id or not topic:
            raise PushError("APNs needs the key id, the team id and the topic (bundle id)")
        self._key, self._key_id, self._team, self._topic = key, key_id, team_id, topic
        self._endpoint = endpoint.rstrip("/")
        tls = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        self._client = httpx.Client(http2=True, http1=False, verify=tls, timeout=timeout, trust_env=False)
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def _provider_token(self) -> str:
        with self._lock:
            if self._token is None or self._token[1] < time.time():
                now = int(time.time())
                self._token = (jwt.sign({"iss": self._team, "iat": now}, self._key, {"kid": self._key_id}),
                               now + TOKEN_LIFETIME)
            return self._token[0]

    def send(self, w: Wake) -> None:
        body = json.dumps({"aps": {"content-available": 1}, **payload(w)}).encode()
        resp = self._client.post(f"{self._endpoint}/3/device/{w.token}", content=body, headers={
            "authorization": f"bearer {self._provider_token()}", "apns-topic": self._topic,
            "apns-push-type": "background", "apns-priority": "5",
            "apns-expiration": str(int(time.time()) + 120), "content-type": "application/json"})
        if resp.status_code == 403 and b"ExpiredProviderToken" in resp.content:
            self._token = None
        if resp.status_code != 200:
            reason = ""
            with contextlib.suppress(ValueError):
                reason = str(resp.json().get("reason", ""))
            raise PushError(f"APNs refused the push: HTTP {resp.status_code} {reason}".strip())

    def close(self) -> None:
        self._client.close()
