"""Local stand-ins for the push services, checking each request as the real service documents it.

* Google OAuth2 token endpoint (RFC 7523 JWT bearer grant) and FCM HTTP v1 ``messages:send``.
* A Web Push service (RFC 8030) that checks VAPID (RFC 8292) and decrypts the ``aes128gcm``
  body with ``http_ece``, as the receiving device would (RFC 8291).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from flask import Flask, abort, jsonify, request
from werkzeug.serving import make_server


def b64d(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    h, c, s = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(c)), f"{h}.{c}".encode(), b64d(s)


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


class FakeFcm:
    ACCESS_TOKEN = "ya29.local-test-token"

    def __init__(self, project: str, client_email: str, key_id: str, public_key: rsa.RSAPublicKey) -> None:
        self.project, self.email, self.key_id, self.public_key = project, client_email, key_id, public_key
        self.base = ""
        self.token_requests: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.received = threading.Event()
        self.app = self._build()

    def _fail(self, why: str) -> None:
        self.errors.append(why)
        abort(400, why)

    def _build(self) -> Flask:
        app = Flask("fake-fcm")

        @app.post("/token")
        def token() -> Any:
            if request.mimetype != "application/x-www-form-urlencoded":
                self._fail("token request must be form-encoded")
            if request.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                self._fail("wrong grant_type")
            header, claims, signed, sig = jws(request.form.get("assertion", ".."))
            if header.get("alg") != "RS256" or header.get("kid") != self.key_id:
                self._fail(f"bad JWT header {header}")
            try:
                self.public_key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                self._fail("JWT signature does not verify with the service account key")
            now = time.time()
            if (claims.get("iss") != self.email or claims.get("aud") != self.base + "/token"
                    or claims.get("scope") != "https://www.googleapis.com/auth/firebase.messaging"
                    or not now - 60 <= claims.get("iat", 0) <= now + 5 or claims.get("exp", 0) - claims["iat"] > 3600):
                self._fail(f"bad JWT claims {claims}")
            self.token_requests.append(claims)
            return jsonify({"access_token": self.ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})

        @app.post("/v1/projects/<project>/messages:send")
        def send(project: str) -> Any:
            if project != self.project:
                self._fail("wrong project")
            if request.headers.get("Authorization") != f"Bearer {self.ACCESS_TOKEN}":
                return jsonify({"error": {"code": 401, "status": "UNAUTHENTICATED"}}), 401
            body = request.get_json(silent=True) or {}
            msg = body.get("message") or {}
            if set(body) != {"message"} or not msg.get("token"):
                self._fail("body must be {message: {token, ...}}")
            data = msg.get("data") or {}
            if not data or not all(isinstance(v, str) for v in data.values()):
                self._fail("data values must be strings")
            if msg.get("android", {}).get("priority") not in ("high", "normal", None):
                self._fail("bad android priority")
            if "notification" in msg:
                self._fail("a wake-up carries no notification text")
            self.messages.append(msg)
            self.received.set()
            return jsonify({"name": f"projects/{project}/messages/{len(self.messages)}"})

        return app


class FakeWebPush:
    """A push service endpoint per subscription; decrypts like the browser/device would."""

    def __init__(self, device_key: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> None:
        self.device_key, self.auth = device_key, auth_secret
        self.base = ""
        self.payloads: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.received = threading.Event()
        self.app = self._build()

    def _build(self) -> Flask:
        app = Flask("fake-webpush")

        @app.post("/push/<subscription>")
        def push(subscription: str) -> Any:
            try:
                self._check()
            except AssertionError as exc:
                self.errors.append(str(exc))
                return str(exc), 400
            return "", 201

        return app

    def _check(self) -> None:
        h = request.headers
        assert h.get("Content-Encoding") == "aes128gcm", "Content-Encoding must be aes128gcm"
        assert h.get("TTL", "").isdigit(), "TTL header required (RFC 8030)"
        assert h.get("Urgency") in ("very-low", "low", "normal", "high"), "bad Urgency"
        auth = h.get("Authorization", "")
        assert auth.startswith("vapid "), "VAPID authorization required (RFC 8292)"
        params = dict(p.strip().split("=", 1) for p in auth[len("vapid "):].split(","))
        header, claims, signed, sig = jws(params["t"])
        assert header.get("alg") == "ES256", "VAPID JWT must be ES256"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(params["k"]))
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        assert claims.get("aud") == self.base, f"aud must be the push service origin, got {claims.get('aud')}"
        assert time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600, "exp within 24 hours"
        assert str(claims.get("sub", "")).startswith(("mailto:", "https:")), "sub must be mailto: or https:"
        plain = http_ece.decrypt(request.get_data(), private_key=self.device_key, auth_secret=self.auth,
                                 version="aes128gcm")
        self.payloads.append(json.loads(plain))
        self.received.set()
