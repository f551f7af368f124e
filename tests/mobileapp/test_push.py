"""Push providers against local services that check each request as the real ones document it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from portal.core.audit import Actor
from portal.phone import PhoneClient

from ..conftest import app_settings
from .fake_push import FakeFcm, FakeWebPush, serve

ADMIN = Actor("staff:test")


def _app(tmp_path: Path, sqlite_url: str, **extra: object):  # type: ignore[no-untyped-def]
    from portal import create_app

    return create_app(app_settings(tmp_path, sqlite_url, **extra))


def _activate(app, username: str, kind: str, token: str):  # type: ignore[no-untyped-def]
    """Activate a device with a push channel, through the port as /PA does."""
    from portal.extensions import backend
    from portal.phone.client import new_key, public_key_b64
    from portal.sdk.backend import DeviceRegistrationInput

    services = app.extensions["portal.services"]
    services.users.create(ADMIN, username)
    code = services.activation.generate(ADMIN, username).code
    with app.app_context():
        return backend().activate_device(code, DeviceRegistrationInput("phone", "android",
                                                                       public_key_b64(new_key()), kind, token))


def test_fcm_gets_an_oauth2_bearer_and_a_data_only_wake_up(tmp_path: Path, sqlite_url: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = FakeFcm("mfa-test-project", "push@mfa-test-project.iam.gserviceaccount.com", "key-1", key.public_key())
    with serve(fake.app) as base:
        fake.base = base
        creds = tmp_path / "service-account.json"
        creds.write_text(json.dumps({
            "type": "service_account", "project_id": "mfa-test-project", "private_key_id": "key-1",
            "private_key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode(),
            "client_email": "push@mfa-test-project.iam.gserviceaccount.com", "token_uri": f"{base}/token"}))
        app = _app(tmp_path, sqlite_url, PUSH_FCM_CREDENTIALS=str(creds), PUSH_FCM_ENDPOINT=base)
        services = app.extensions["portal.services"]
        try:
            _activate(app, "fay", "fcm", "fcm-device-token-1")
            first = services.authentication.authenticate(ADMIN, "fay", asynchronous=True)
            assert fake.received.wait(10), fake.errors
            fake.received.clear()
            second = services.authentication.authenticate(ADMIN, "fay", asynchronous=True)
            assert fake.received.wait(10), fake.errors
        finally:
            services.close()
    assert fake.errors == []
    assert [m["token"] for m in fake.messages] == ["fcm-device-token-1"] * 2
    assert [m["data"] for m in fake.messages] == [{"type": "mfa-wake", "request_id": first.transaction_id},
                                                  {"type": "mfa-wake", "request_id": second.transaction_id}]
    assert fake.messages[0]["android"] == {"priority": "high", "ttl": "120s"}
    assert len(fake.token_requests) == 1  # the access token is cached


def test_web_push_is_encrypted_for_the_device_and_signed_with_vapid(tmp_path: Path, sqlite_url: str) -> None:
    device_key = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    fake = FakeWebPush(device_key, auth)
    vapid = tmp_path / "vapid.pem"
    vapid.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with serve(fake.app) as base:
        fake.base = base
        subscription = json.dumps({"endpoint": f"{base}/push/sub-123", "keys": {
            "p256dh": base64.urlsafe_b64encode(device_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).rstrip(b"=").decode(),
            "auth": base64.urlsafe_b64encode(auth).rstrip(b"=").decode()}})
        app = _app(tmp_path, sqlite_url, PUSH_WEBPUSH_VAPID_KEY=str(vapid),
                   PUSH_WEBPUSH_SUBJECT="mailto:it@example.com")
        services = app.extensions["portal.services"]
        try:
            done = _activate(app, "gil", "webpush", subscription)
            # the phone learns which key to subscribe with
            assert done.push_kinds == ("webpush",)
            assert done.webpush_public_key == services.push.webpush_public_key and done.webpush_public_key
            started = services.authentication.authenticate(ADMIN, "gil", asynchronous=True)
            assert fake.received.wait(10), fake.errors
        finally:
            services.close()
    assert fake.errors == []
    assert fake.payloads == [{"type": "mfa-wake", "request_id": started.transaction_id}]


def test_a_failing_push_service_never_delays_or_breaks_the_sign_in(tmp_path: Path, sqlite_url: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    vapid = tmp_path / "vapid.pem"
    vapid.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    app = _app(tmp_path, sqlite_url, PUSH_WEBPUSH_VAPID_KEY=str(vapid), PUSH_WEBPUSH_SUBJECT="mailto:it@example.com")
    services = app.extensions["portal.services"]
    secret_endpoint = "http://127.0.0.1:9/push/secret-capability-url"  # nothing listens on port 9
    try:
        _activate(app, "hap", "webpush", json.dumps({"endpoint": secret_endpoint, "keys": {
            "p256dh": base64.urlsafe_b64encode(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)).rstrip(b"=").decode(),
            "auth": "MDEyMzQ1Njc4OWFiY2RlZg"}}))
        import time

        t0 = time.monotonic()
        started = services.authentication.authenticate(ADMIN, "hap", asynchronous=True)
        assert time.monotonic() - t0 < 1 and started.status == "pending"
    finally:
        services.close()  # waits for the queued send
    assert "push to device" in caplog.text and "ConnectionError" in caplog.text
    assert "secret-capability-url" not in caplog.text


def test_the_phone_client_sets_its_push_channel(live_server) -> None:  # type: ignore[no-untyped-def]
    live_server.services.users.create(ADMIN, "ivo")
    phone = PhoneClient.activate(live_server.base_url + "/PA",
                                 live_server.services.activation.generate(ADMIN, "ivo").code)
    phone.update_push("none")
    phone.update_push("fcm", "new-token")
    assert live_server.services.users.get("ivo").devices[0].status == "active"


def test_apns_gets_http2_with_an_es256_provider_token(tmp_path: Path, sqlite_url: str, test_ca) -> None:  # type: ignore[no-untyped-def]
    from .fake_apns import FakeApns

    key = ec.generate_private_key(ec.SECP256R1())
    p8 = tmp_path / "AuthKey_ABC123DEFG.p8"
    p8.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    fake = FakeApns(str(test_ca.cert_file), str(test_ca.key_file), key_id="ABC123DEFG", team_id="TEAM123456",
                    topic="org.example.mfa", public_key=key.public_key())
    app = _app(tmp_path, sqlite_url, PUSH_APNS_KEY=str(p8), PUSH_APNS_KEY_ID="ABC123DEFG",
               PUSH_APNS_TEAM_ID="TEAM123456", PUSH_APNS_TOPIC="org.example.mfa", PUSH_APNS_ENDPOINT=fake.url,
               PUSH_CA_FILE=str(test_ca.ca_file))
    services = app.extensions["portal.services"]
    try:
        _activate(app, "jan", "apns", "a1b2c3d4e5f6")
        started = services.authentication.authenticate(ADMIN, "jan", asynchronous=True)
        assert fake.received.wait(10), fake.errors
    finally:
        services.close()
        fake.close()
    assert fake.errors == [] and fake.alpn == ["h2"]
    [push] = fake.pushes
    assert push["token"] == "a1b2c3d4e5f6"
    assert push["body"] == {"aps": {"content-available": 1}, "type": "mfa-wake", "request_id": started.transaction_id}
    assert push["headers"]["apns-push-type"] == "background" and push["headers"]["apns-priority"] == "5"
