"""The Mobile App Web Service at /PA: activation, signed requests, long poll, answers,
the error envelope, and the round trip application → SDK → phone → result."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
import requests

from portal.core.audit import Actor
from portal.core.users import UserFields
from portal.phone import PhoneClient, PhoneError
from portal.phone.client import parse_activation, sign

from .conftest import LiveServer

ADMIN = Actor("staff:test")


def phone_for(server: LiveServer, username: str, **fields: object) -> PhoneClient:
    server.services.users.create(ADMIN, username, UserFields(**fields))  # type: ignore[arg-type]
    code = server.services.activation.generate(ADMIN, username)
    url, parsed = parse_activation(code.qr_payload)
    assert url == server.base_url + "/PA" and parsed == code.code
    return PhoneClient.activate(url, code.code, device_name=f"{username}'s phone", platform="android")


def http() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def test_round_trip_application_sdk_phone_result(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "alice")
    assert phone.state.username == "alice" and phone.state.account_name == "MFA Portal"
    assert phone.state.oath_secret  # "Enable OATH codes in the mobile app" is on by default
    with http() as h:  # no push provider configured: the answer says so, and the phone polls
        from portal.phone.client import new_key, public_key_b64

        live_server.services.settings.update(ADMIN, {"device_limit": 2})
        code = live_server.services.activation.generate(ADMIN, "alice").code
        raw = h.post(live_server.base_url + "/PA/v1/activate", timeout=5, json={
            "code": code, "device_name": "second", "platform": "ios", "public_key": public_key_b64(new_key())})
        assert raw.status_code == 201 and raw.json()["push"] == {"kinds": [], "webpush_public_key": None}
    app = live_server.soap_backend()
    started = app.authenticate_user("alice", application_name="VPN", client_ip="198.51.100.7", asynchronous=True,
                                    number_matching=True)
    assert started.status == "pending" and started.number_to_match is not None
    [request] = phone.pending(wait=5)
    assert request["transaction_id"] == started.transaction_id
    assert request["application"] == "VPN" and request["client_ip"] == "198.51.100.7"
    assert started.number_to_match in request["number_choices"] and len(request["number_choices"]) == 3
    assert request["pin_required"] is False
    outcome = phone.answer(request["transaction_id"], "approve", number=started.number_to_match)
    assert outcome == {"transaction_id": started.transaction_id, "status": "approved", "authenticated": True}
    assert app.get_authentication_status(started.transaction_id).status == "approved"
    assert phone.pending() == []


def test_a_synchronous_caller_is_released_by_the_phone(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "bob")
    app = live_server.soap_backend()
    result: dict[str, object] = {}

    def call() -> None:
        result["r"] = app.authenticate_user("bob", application_name="Web", timeout_seconds=20)

    caller = threading.Thread(target=call)
    caller.start()
    [request] = phone.pending(wait=10)
    answered = time.monotonic()
    phone.answer(request["transaction_id"], "deny")
    caller.join(15)
    released = time.monotonic() - answered
    assert result["r"].status == "denied"  # type: ignore[attr-defined]
    assert released < 2.0  # the caller is woken, not left to time out


def test_a_waiting_poll_gets_a_new_request_at_once(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "cleo")
    got: dict[str, float] = {}

    def poll() -> None:
        found = phone.pending(wait=10)
        got["at"], got["n"] = time.monotonic(), len(found)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # the poll is waiting
    created = time.monotonic()
    live_server.services.authentication.authenticate(ADMIN, "cleo", asynchronous=True)
    poller.join(10)
    assert got["n"] == 1 and got["at"] - created < 1.0  # woken, not at the end of its 10 s


def test_pin_mode_and_number_matching(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "dora", mode="pin")
    live_server.services.users.set_pin(ADMIN, "dora", "4829")
    app = live_server.soap_backend()

    def start() -> tuple[str, int]:
        r = app.authenticate_user("dora", asynchronous=True, number_matching=True)
        return r.transaction_id or "", r.number_to_match or 0

    txn, number = start()
    [req] = phone.pending()
    assert req["pin_required"] is True
    with pytest.raises(PhoneError) as missing:
        phone.answer(txn, "approve", number=number)
    assert missing.value.status == 400 and missing.value.field == "pin"
    assert phone.answer(txn, "approve", pin="1111", number=number)["status"] == "wrong_pin"
    assert app.get_authentication_status(txn).status == "wrong_pin"
    txn, number = start()
    wrong = next(n for n in phone.pending()[0]["number_choices"] if n != number)
    assert phone.answer(txn, "approve", pin="4829", number=wrong)["status"] == "denied"
    txn, number = start()
    assert phone.answer(txn, "approve", pin="4829", number=number)["status"] == "approved"


def test_fraud_blocks_the_user_and_is_audited(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "eve")
    app = live_server.soap_backend()
    txn = app.authenticate_user("eve", asynchronous=True).transaction_id or ""
    assert phone.answer(txn, "fraud")["status"] == "fraud"
    assert app.get_user_info("eve").blocked
    assert app.authenticate_user("eve", asynchronous=True).status == "blocked"
    from portal.core.models import AuditEntry

    with live_server.services.db.read() as s:
        actions = [a for (a,) in s.query(AuditEntry.action).filter(AuditEntry.target == "eve")]
    assert "auth.fraud" in actions and "user.block" in actions


def test_two_devices_answer_one_request_once(live_server: LiveServer) -> None:
    live_server.services.settings.update(ADMIN, {"device_limit": 2})
    first = phone_for(live_server, "finn")
    second_code = live_server.services.activation.generate(ADMIN, "finn").code
    second = PhoneClient.activate(live_server.base_url + "/PA", second_code)
    txn = live_server.soap_backend().authenticate_user("finn", asynchronous=True).transaction_id or ""
    results: list[object] = []
    barrier = threading.Barrier(2)

    def answer(phone: PhoneClient, verdict: str) -> None:
        barrier.wait()
        try:
            results.append(phone.answer(txn, verdict)["status"])
        except PhoneError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=answer, args=(first, "approve")),
               threading.Thread(target=answer, args=(second, "deny"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results.count("RequestNotPending") == 1
    assert len([r for r in results if r in ("approved", "denied")]) == 1


def test_an_answer_after_expiry_is_refused(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "gus")
    txn = live_server.services.authentication.authenticate(ADMIN, "gus", asynchronous=True,
                                                           timeout=5).transaction_id
    with live_server.services.db.write() as s:
        from portal.core.models import AuthRequest

        s.get(AuthRequest, txn).expires_at = dt.datetime.utcnow() - dt.timedelta(seconds=1)  # type: ignore[union-attr]
    assert phone.pending() == []
    with pytest.raises(PhoneError) as late:
        phone.answer(txn or "", "approve")
    assert late.value.status == 409 and late.value.code == "RequestNotPending"


def test_signatures_are_checked_and_never_replayed(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "hal")
    url = live_server.base_url + "/PA/v1/requests?wait=0"
    stamp = int(time.time() * 1000)
    headers = {"X-MFA-Device": phone.state.device_id, "X-MFA-Timestamp": str(stamp),
               "X-MFA-Signature": sign(phone._key, "GET", "/PA/v1/requests?wait=0", stamp, b"")}  # type: ignore[arg-type]
    with http() as h:
        assert h.get(url, headers=headers, timeout=5).status_code == 200
        replay = h.get(url, headers=headers, timeout=5)
        assert replay.status_code == 401 and "replay" in replay.json()["error"]["message"]
        old = int(time.time() * 1000) - 10 * 60 * 1000
        stale = {**headers, "X-MFA-Timestamp": str(old),
                 "X-MFA-Signature": sign(phone._key, "GET", "/PA/v1/requests?wait=0", old, b"")}  # type: ignore[arg-type]
        assert h.get(url, headers=stale, timeout=5).status_code == 401
        other_path = {**headers, "X-MFA-Timestamp": str(stamp + 1),
                      "X-MFA-Signature": sign(phone._key, "GET", "/PA/v1/requests?wait=9", stamp + 1, b"")}  # type: ignore[arg-type]
        assert h.get(url, headers=other_path, timeout=5).status_code == 401  # signed for another query
        assert h.get(url, timeout=5).json()["error"]["code"] == "SignatureRejected"


def test_activation_errors_are_distinct_and_throttled(live_server: LiveServer) -> None:
    live_server.services.users.create(ADMIN, "ida")
    live_server.services.settings.update(ADMIN, {"device_limit": 3})
    code = live_server.services.activation.generate(ADMIN, "ida").code
    url = live_server.base_url + "/PA"
    with pytest.raises(PhoneError) as wrong:
        PhoneClient.activate(url, "000000000000")
    assert (wrong.value.status, wrong.value.code) == (400, "ActivationCodeInvalid")
    PhoneClient.activate(url, code)
    with pytest.raises(PhoneError) as used:
        PhoneClient.activate(url, code)
    assert used.value.code == "ActivationCodeUsed"
    expired = live_server.services.activation.generate(ADMIN, "ida").code
    with live_server.services.db.write() as s:
        from portal.core.models import ActivationCode

        for row in s.query(ActivationCode).filter(ActivationCode.used_at.is_(None)):
            row.expires_at = dt.datetime.utcnow() - dt.timedelta(seconds=1)
    with pytest.raises(PhoneError) as late:
        PhoneClient.activate(url, expired)
    assert late.value.code in ("ActivationCodeExpired", "Throttled")
    codes = []
    for _ in range(12):
        try:
            PhoneClient.activate(url, "111111111111")
        except PhoneError as exc:
            codes.append(exc.code)
    assert codes[-1] == "Throttled"


def test_bad_bodies_get_the_envelope_naming_the_field(live_server: LiveServer) -> None:
    url = live_server.base_url + "/PA/v1/activate"
    with http() as h:
        r = h.post(url, data="code=1", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
        assert r.status_code == 415 and r.json()["error"]["code"] == "UnsupportedMediaType"
        r = h.post(url, data="{not json", headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 400 and r.json()["error"]["field"] == "body"
        r = h.post(url, json={"code": "123456789012", "device_name": "x", "platform": "android"}, timeout=5)
        assert r.status_code == 400 and r.json()["error"]["field"] == "public_key"
        r = h.post(url, json={"code": 5, "device_name": "x", "platform": "android", "public_key": "k"}, timeout=5)
        assert r.json()["error"]["field"] == "code"
        r = h.post(url, json={"code": "123456789012", "device_name": "x", "platform": "android",
                              "public_key": "bm90IGEga2V5"}, timeout=5)
        assert r.json()["error"] == {"code": "InvalidArgument", "message": "is not a valid public key",
                                     "field": "public_key"}
        r = h.get(live_server.base_url + "/PA/v1/nothing", timeout=5)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
        assert h.delete(url, timeout=5).status_code == 405


def test_push_channel_and_sign_out(live_server: LiveServer) -> None:
    phone = phone_for(live_server, "jo")
    phone.update_push("fcm", "fcm-registration-token-123")
    with live_server.services.db.read() as s:
        from portal.core.models import Device

        d = s.get(Device, phone.state.device_id)
        assert d.push_kind == "fcm" and b"fcm-registration" not in d.push_token_encrypted  # type: ignore[union-attr]
    with pytest.raises(PhoneError) as bad:
        phone.update_push("carrier-pigeon")
    assert bad.value.field == "push_kind"
    phone.sign_out()
    with pytest.raises(PhoneError) as gone:
        phone.pending()
    assert gone.value.status == 401
    assert live_server.services.users.get("jo").devices[0].status == "deactivated"


def test_status_page_and_openapi_document(live_server: LiveServer) -> None:
    with http() as h:
        page = h.get(live_server.base_url + "/PA", timeout=5)
        assert page.status_code == 200 and "SDK connection: OK" in page.text
        assert "alice" not in page.text and "version" not in page.text.lower()
        doc = h.get(live_server.base_url + "/PA/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": live_server.base_url + "/PA"}]
    assert set(doc["paths"]) == {"/v1/activate", "/v1/requests", "/v1/requests/{transaction_id}/answer",
                                 "/v1/push", "/v1/device"}
    json.dumps(doc)


def test_the_state_file_is_private(live_server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    phone = phone_for(live_server, "kim")
    path = tmp_path / "phone.json"
    phone.state.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" in path.read_text()


@pytest.mark.parametrize("proxies", [0, 1])
def test_plain_http_is_refused_unless_a_trusted_proxy_vouches_for_tls(tmp_path, sqlite_url, proxies) -> None:  # type: ignore[no-untyped-def]
    from portal import create_app

    from ..conftest import app_settings

    app = create_app(app_settings(tmp_path, sqlite_url, BASE_URL="https://mfa.example.com", SSL_REQUIRED=True,
                                  TRUSTED_PROXIES=proxies))
    try:
        client = app.test_client()
        body = {"code": "123456789012", "device_name": "p", "platform": "android", "public_key": "x"}
        plain = client.post("/PA/v1/activate", json=body, base_url="http://mfa.example.com")
        assert plain.status_code == 403 and plain.get_json()["error"]["code"] == "HttpsRequired"
        offloaded = client.post("/PA/v1/activate", json=body, base_url="http://mfa.example.com",
                                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.4"})
        if proxies:
            assert offloaded.status_code == 400 and offloaded.get_json()["error"]["field"] == "public_key"
        else:  # nobody is trusted to say so
            assert offloaded.status_code == 403
    finally:
        app.extensions["portal.services"].close()
