"""One contract, every adapter: LocalBackend, SoapBackend over HTTP, over HTTPS with a test CA,
and over HTTP to a server on PostgreSQL. Each test runs on all of them and expects the same."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from portal.core import otp
from portal.core import search as search_module
from portal.core.activation import DeviceRegistration
from portal.core.audit import Actor
from portal.core.errors import (
    BackendUnavailable,
    CodeExpired,
    CodeInvalid,
    CodeUsed,
    Conflict,
    DeviceLimitReached,
    Forbidden,
    InvalidInput,
    NotFound,
    RequestNotPending,
    SignatureRejected,
    Throttled,
    UserNotFound,
)
from portal.sdk.backend import ActivatedDeviceInfo, DeviceProof, DeviceRegistrationInput, UserSettingsInput
from portal.sdk.soap_client import SoapBackend

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PHONE = Actor("device:test")


def _code() -> str:
    return otp.totp(otp.b32decode(SEED), time.time())


def _field(exc: InvalidInput) -> str:
    return exc.field.lower()


def _codes(secret_base32: str) -> tuple[str, set[str]]:
    """The current TOTP code of a secret, and every code that would be accepted around now."""
    key, now = otp.b32decode(secret_base32), time.time()
    return otp.totp(key, now), {otp.totp(key, now + step) for step in (-60, -30, 0, 30, 60)}


def _wrong_code(accepted: set[str]) -> str:
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in accepted)


def _public_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.DER,
                                                                             PublicFormat.SubjectPublicKeyInfo)


def _spki_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The public half as the phone sends it: base64 of the DER SubjectPublicKeyInfo."""
    return base64.b64encode(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()


def _sign(key: ec.EllipticCurvePrivateKey, device_id: str, now_seconds: float, *, method: str = "GET",
          path: str = "/api/v1/authentications/pending", body: bytes = b"", offset_ms: int = 0) -> DeviceProof:
    """A phone's signed request (core/devices.py): ECDSA P-256 / SHA-256 over
    ``METHOD\\nPATH\\nTIMESTAMP\\nSHA-256(BODY) hex``, DER, base64url without padding."""
    timestamp = int(now_seconds * 1000) + offset_ms
    digest = hashlib.sha256(body).hexdigest()
    signature = key.sign(f"{method}\n{path}\n{timestamp}\n{digest}".encode(), ec.ECDSA(hashes.SHA256()))
    return DeviceProof(device_id, method, path, timestamp, digest,
                       base64.urlsafe_b64encode(signature).rstrip(b"=").decode())


class Phone:
    """An activated phone of a test user: signs each request with its own key, now by the server's clock."""

    def __init__(self, any_backend, username: str) -> None:  # type: ignore[no-untyped-def]
        self.services = any_backend.services
        self.key = ec.generate_private_key(ec.SECP256R1())
        code = self.services.activation.generate(Actor("staff:test"), username)
        self.info: ActivatedDeviceInfo = any_backend.backend.activate_device(
            code.code, DeviceRegistrationInput("Pixel", "android", _spki_b64(self.key)))
        self.device_id = self.info.device_id

    def proof(self, **kw: object) -> DeviceProof:
        return _sign(self.key, self.device_id, self.services.clock.time(), **kw)  # type: ignore[arg-type]


def test_connection(any_backend) -> None:
    info = any_backend.backend.test_connection()
    assert info.status == "OK" and info.server_version.startswith("mfa-portal")
    assert abs((info.server_time - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()) < 5


def test_create_get_update_find_delete(any_backend) -> None:
    b = any_backend.backend
    u = b.create_user("Alice", UserSettingsInput(display_name="Alice A", email="alice@example.com",
                                                 phone="+44 20 7946 0000", phone_extension="12#",
                                                 backup_phone="0044 20 7946 0001", language="fr",
                                                 method="oath_token", mode="pin", pin="4827",
                                                 pin_change_required=True), password="alice-password-1")
    assert (u.username, u.phone, u.backup_phone, u.phone_extension) == ("Alice", "+442079460000", "+442079460001",
                                                                        "12#")
    assert (u.method, u.mode, u.has_pin, u.pin_change_required, u.language) == ("oath_token", "pin", True, True,
                                                                                 "fr")
    assert u.enabled and not u.blocked and not u.enrolled
    assert u.created_at == any_backend.services.users.get("alice").created_at

    changed = b.update_user_settings("alice", UserSettingsInput(email="a2@example.com", phone=""))
    assert changed.email == "a2@example.com" and changed.phone is None and changed.display_name == "Alice A"
    assert b.update_user_settings("alice", UserSettingsInput(blocked=True, blocked_reason="lost phone")).blocked
    assert not b.update_user_settings("alice", UserSettingsInput(blocked=False)).blocked

    b.create_user("alan")
    page = b.find_users("al*", page=1, page_size=1)
    assert page.total == 2 and [x.username for x in page.users] == ["alan"]  # ordered by name
    assert [x.username for x in b.find_users("al*", page=2, page_size=1).users] == ["Alice"]
    assert b.find_users("a2@example").total == 1  # prefix of the e-mail
    assert b.find_users("*lice A").total == 1  # wildcard in the display name

    assert b.validate_primary_credentials("alice", "alice-password-1") is True
    assert b.validate_primary_credentials("alice", "wrong-password-1") is False

    b.delete_user("ALICE")
    with pytest.raises(UserNotFound):
        b.get_user_info("alice")
    with pytest.raises(UserNotFound):
        b.delete_user("alice")


def test_find_users_with_wildcards_inside(any_backend, monkeypatch) -> None:
    b = any_backend.backend
    for name, display, email, phone in (("ann.lindberg", "Ann Lindberg", "ann@north.example", "+442079460001"),
                                        ("bo", "Bo Berger", "bo@south.example", "+491701234567"),
                                        ("cy", "Cy Young", "Cy@North.Example", "+33149174917")):
        b.create_user(name, UserSettingsInput(display_name=display, email=email, phone=phone))
    assert [u.username for u in b.find_users("*@north.example").users] == ["ann.lindberg", "cy"]
    assert [u.username for u in b.find_users("*BERG*").users] == ["ann.lindberg", "bo"]
    assert [u.username for u in b.find_users("*9174917").users] == ["cy"]
    assert b.find_users("*n_b*").total == 0  # "_" is literal
    # Total stays every match, as the contract says, beyond the count the helpdesk stops at.
    monkeypatch.setattr(search_module, "COUNT_LIMIT", 1)
    page = b.find_users("*.example", page=2, page_size=1)
    assert page.total == 3 and [u.username for u in page.users] == ["bo"]


def test_errors_mean_the_same_on_every_adapter(any_backend) -> None:
    b = any_backend.backend
    b.create_user("bob")
    with pytest.raises(Conflict):
        b.create_user("BOB")
    cases = [
        (lambda: b.create_user("bad name!"), "username"),
        (lambda: b.create_user("x" * 129), "username"),
        (lambda: b.create_user("c", UserSettingsInput(phone="12345")), "phone"),
        (lambda: b.create_user("c", UserSettingsInput(email="x@")), "email"),
        (lambda: b.create_user("c", UserSettingsInput(blocked=True)), "blocked"),
        (lambda: b.update_user_settings("bob", UserSettingsInput(pin="1111")), "pin"),
        (lambda: b.update_user_settings("bob", UserSettingsInput()), "usersettings"),
        (lambda: b.find_users("b*", page_size=501), "page_size"),
        (lambda: b.get_authentication_status("nope"), "transaction_id"),
        (lambda: b.authenticate_user("bob", client_ip="999.1.1.1", otp="123456"), "client_ip"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as err:
            call()
        assert _field(err.value) == field, (any_backend.kind, err.value)
    with pytest.raises(NotFound):
        b.get_authentication_status("0" * 32)
    with pytest.raises(UserNotFound):
        b.get_user_info("ghost")


def test_primary_credentials_are_throttled(any_backend) -> None:
    b = any_backend.backend
    b.create_user("carl", password="carl-password-1")
    for _ in range(10):
        assert b.validate_primary_credentials("carl", "wrong-password") is False
    with pytest.raises(Throttled):
        b.validate_primary_credentials("carl", "carl-password-1")


def test_authenticate_with_otp_once_then_replay_denied(any_backend) -> None:
    b = any_backend.backend
    b.create_user("dana", UserSettingsInput(method="oath_token"))
    any_backend.services.oath.add_hardware_token(Actor("t"), "dana", serial="HW-D", secret_base32=SEED)
    assert b.get_user_info("dana").oath_token_serial_number == "HW-D"
    code = _code()
    first = b.authenticate_user("dana", otp=code, application_name="VPN", client_ip="203.0.113.7")
    assert (first.status, first.authenticated, first.method) == ("approved", True, "oath_token")
    again = b.authenticate_user("dana", otp=code)
    assert (again.status, again.authenticated, again.reason) == ("denied", False, "invalid_code")
    with pytest.raises(InvalidInput) as err:
        b.authenticate_user("dana")  # OATH users must give a code
    assert _field(err.value) == "otp"
    assert b.validate_oath_code("dana", "000000").valid is False


def test_user_states_come_back_as_statuses(any_backend) -> None:
    b = any_backend.backend
    b.create_user("eve", UserSettingsInput(method="phone_call"))
    assert b.authenticate_user("eve").status == "method_unavailable"
    b.update_user_settings("eve", UserSettingsInput(enabled=False))
    assert b.authenticate_user("eve").status == "disabled"
    b.update_user_settings("eve", UserSettingsInput(enabled=True, blocked=True, blocked_reason="test"))
    result = b.authenticate_user("eve")
    assert (result.status, result.authenticated, result.transaction_id) == ("blocked", False, None)
    assert b.validate_oath_code("eve", "123456").reason == "UserBlocked"


def test_lockout_after_five_wrong_codes(any_backend) -> None:
    b = any_backend.backend
    b.create_user("fred", UserSettingsInput(method="oath_token"))
    any_backend.services.oath.add_hardware_token(Actor("t"), "fred", serial="HW-F", secret_base32=SEED)
    for _ in range(5):
        b.authenticate_user("fred", otp="000000")
    assert b.authenticate_user("fred", otp=_code()).status == "locked_out"
    assert b.get_user_info("fred").locked_until is not None


def test_one_time_bypass_is_used_once(any_backend) -> None:
    b = any_backend.backend
    b.create_user("gail")
    with any_backend.services.db.write() as s:
        from portal.core.models import User

        user = s.query(User).filter_by(username_key="gail").one()
        user.bypass_until = any_backend.services.clock.now() + dt.timedelta(minutes=5)
    first = b.authenticate_user("gail", asynchronous=True)
    assert (first.status, first.reason) == ("approved", "one_time_bypass")
    assert b.authenticate_user("gail", asynchronous=True).status == "pending"


def test_mobile_app_request_answered_by_the_phone(any_backend) -> None:
    b = any_backend.backend
    b.create_user("hank")
    pending = b.authenticate_user("hank", asynchronous=True, number_matching=True, application_name="VPN")
    assert pending.status == "pending" and len(pending.transaction_id) == 32
    assert 10 <= pending.number_to_match <= 99 and pending.expires_at is not None
    assert b.get_authentication_status(pending.transaction_id).status == "pending"

    def answer() -> None:
        time.sleep(0.3)
        any_backend.services.auth_requests.complete(PHONE, pending.transaction_id, "approved")

    threading.Thread(target=answer).start()
    started = time.monotonic()
    waited = b.get_authentication_status(pending.transaction_id, wait_seconds=10)
    assert waited.status == "approved" and waited.authenticated
    assert time.monotonic() - started < 3  # woken by the answer, not by the timeout
    with pytest.raises(RequestNotPending):
        b.cancel_authentication(pending.transaction_id)


def test_synchronous_authentication_returns_when_the_phone_answers(any_backend) -> None:
    b = any_backend.backend
    b.create_user("iris")

    def phone() -> None:
        for _ in range(100):
            pending = any_backend.services.auth_requests.pending_for_user("iris")
            if pending:
                any_backend.services.auth_requests.complete(PHONE, pending[0].id, "approved")
                return
            time.sleep(0.05)

    threading.Thread(target=phone).start()
    started = time.monotonic()
    result = b.authenticate_user("iris", timeout_seconds=10)
    assert result.status == "approved" and time.monotonic() - started < 5


def test_fraud_blocks_the_user_and_cancel_works(any_backend) -> None:
    b = any_backend.backend
    b.create_user("jack")
    first = b.authenticate_user("jack", asynchronous=True)
    any_backend.services.auth_requests.complete(PHONE, first.transaction_id, "fraud")
    assert b.get_authentication_status(first.transaction_id).status == "fraud"
    assert b.get_user_info("jack").blocked
    b.update_user_settings("jack", UserSettingsInput(blocked=False))
    second = b.authenticate_user("jack", asynchronous=True)
    assert b.cancel_authentication(second.transaction_id).status == "cancelled"


def test_activation_codes(any_backend) -> None:
    b = any_backend.backend
    b.create_user("kim")
    code = b.generate_activation_code("kim")
    assert len(code.code) == 12 and code.code.isdigit()
    assert code.url == any_backend.server.base_url + "/PA" and code.account_name == "MFA Portal"
    assert dt.timedelta(minutes=9) < code.expires_at - dt.datetime.now(dt.UTC).replace(tzinfo=None) \
        <= dt.timedelta(minutes=10, seconds=5)
    assert f"code={code.code}" in code.qr_payload
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.DER,
                                                                            PublicFormat.SubjectPublicKeyInfo)
    any_backend.services.activation.activate(PHONE, code.code, DeviceRegistration("Pixel", "android", key))
    devices = b.get_user_info("kim").devices
    assert [(d.name, d.platform, d.status) for d in devices] == [("Pixel", "android", "active")]
    with pytest.raises(DeviceLimitReached):
        b.generate_activation_code("kim")


def test_portal_settings_come_back_with_their_types(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    services.settings.update(Actor("t"), {"account_name": "12345", "device_limit": 3, "method_text_message": False})
    values = b.get_portal_settings()
    expected = {**services.settings.get(), "offered_methods": "mobile_app,oath_token"}  # no phone provider
    assert values == expected
    assert {k: type(v) for k, v in values.items()} == {k: type(v) for k, v in expected.items()}
    assert values["account_name"] == "12345" and values["device_limit"] == 3
    assert values["method_text_message"] is False and values["allow_users_to_log_in"] is True
    assert values["default_method"] == "mobile_app"


def test_oath_token_added_confirmed_and_removed(any_backend) -> None:
    b = any_backend.backend
    b.create_user("olga")
    token = b.add_oath_token("olga")
    assert token.key_uri.startswith("otpauth://totp/") and f"secret={token.secret_base32}" in token.key_uri
    assert [(t.id, t.kind, t.verified) for t in b.get_user_info("olga").oath_tokens] == [
        (token.token_id, "software", False)]
    code, accepted = _codes(token.secret_base32)
    assert b.confirm_oath_token("olga", token.token_id, _wrong_code(accepted)) is False
    assert not b.get_user_info("olga").oath_tokens[0].verified
    assert b.confirm_oath_token("olga", token.token_id, code) is True
    assert [(t.id, t.verified) for t in b.get_user_info("olga").oath_tokens] == [(token.token_id, True)]
    with pytest.raises(InvalidInput) as err:
        b.confirm_oath_token("olga", token.token_id, "12")
    assert _field(err.value) == "code"
    with pytest.raises(NotFound):
        b.confirm_oath_token("olga", token.token_id + 1000, code)
    b.remove_oath_token("olga", token.token_id)
    assert b.get_user_info("olga").oath_tokens == ()
    with pytest.raises(NotFound):
        b.remove_oath_token("olga", token.token_id)
    with pytest.raises(UserNotFound):
        b.add_oath_token("ghost")


def test_the_portal_cannot_remove_the_token_a_user_signs_in_with(any_backend) -> None:
    b = any_backend.backend
    b.create_user("otto")
    first = b.add_oath_token("otto")
    assert b.confirm_oath_token("otto", first.token_id, _codes(first.secret_base32)[0]) is True
    b.update_user_settings("otto", UserSettingsInput(method="oath_token"))
    with pytest.raises(Conflict):
        b.remove_oath_token("otto", first.token_id, keep_sign_in_token=True)
    second = b.add_oath_token("otto")  # not confirmed yet: it does not count
    with pytest.raises(Conflict):
        b.remove_oath_token("otto", first.token_id, keep_sign_in_token=True)
    b.remove_oath_token("otto", second.token_id, keep_sign_in_token=True)  # an unconfirmed one may go
    third = b.add_oath_token("otto")
    assert b.confirm_oath_token("otto", third.token_id, _codes(third.secret_base32)[0]) is True
    b.remove_oath_token("otto", first.token_id, keep_sign_in_token=True)  # another confirmed one remains
    b.remove_oath_token("otto", third.token_id)  # an administrator's removal is not refused
    assert b.get_user_info("otto").oath_tokens == ()


def test_security_questions_set_challenged_and_verified(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    catalogue = b.get_security_questions()
    assert catalogue.required == 4 and len(catalogue.questions) == 8
    assert [(q.id, q.text) for q in catalogue.questions] == [(q.id, q.text) for q in services.questions.catalogue()]
    assert b.get_security_questions("xx").questions == ()
    b.create_user("quinn")
    assert b.get_security_challenge("quinn") == ()
    chosen = catalogue.questions[:4]
    answers = {q.id: a for q, a in zip(chosen, ["Rex", "Zürich", "Elm Street", "Ford"], strict=True)}
    with pytest.raises(InvalidInput) as err:
        b.set_security_answers("quinn", dict(list(answers.items())[:3]))  # fewer than required
    assert _field(err.value) == "answers"
    b.set_security_answers("quinn", answers)
    asked = b.get_security_challenge("quinn")
    assert len(asked) == 2 and len({q.id for q in asked}) == 2  # "Questions to answer" (default 2)
    assert {(q.id, q.text) for q in asked} <= {(q.id, q.text) for q in chosen}
    assert b.verify_security_answers("quinn", {q.id: answers[q.id].upper() for q in asked}) is True
    assert b.verify_security_answers("quinn", {q.id: "wrong answer" for q in asked}) is False
    with pytest.raises(InvalidInput) as err:
        b.verify_security_answers("quinn", {asked[0].id: answers[asked[0].id]})  # fewer than asked for
    assert _field(err.value) == "answers"
    with pytest.raises(UserNotFound):
        b.get_security_challenge("ghost")


def test_activation_status_and_device_deactivation(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    b.create_user("dora")
    assert b.get_activation_status("dora") == "none"
    code = b.generate_activation_code("dora")
    assert b.get_activation_status("dora") == "pending"
    device = services.activation.activate(PHONE, code.code, DeviceRegistration("Pixel", "android", _public_key()))
    assert b.get_activation_status("dora") == "completed"
    assert [(d.id, d.status) for d in b.get_user_info("dora").devices] == [(device.device_id, "active")]
    with pytest.raises(NotFound):
        b.deactivate_device("dora", "00000000-0000-0000-0000-000000000000")
    b.deactivate_device("dora", device.device_id)
    assert [(d.id, d.status) for d in b.get_user_info("dora").devices] == [(device.device_id, "deactivated")]
    with pytest.raises(NotFound):
        b.deactivate_device("dora", device.device_id)  # no longer active
    b.generate_activation_code("dora")  # the device no longer counts toward the limit
    assert b.get_activation_status("dora") == "pending"
    with pytest.raises(UserNotFound):
        b.get_activation_status("ghost")


def test_one_time_bypass_only_when_the_setting_allows_it(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    b.create_user("bea")
    with pytest.raises(Forbidden) as refused:
        b.set_one_time_bypass("bea")
    assert type(refused.value) is Forbidden
    services.settings.update(Actor("t"), {"allow_users_to_initiate_one_time_bypass": True})
    until = b.set_one_time_bypass("bea", seconds=60)  # the user may not choose: the default applies
    assert dt.timedelta(seconds=290) < until - services.clock.now() <= dt.timedelta(seconds=300)
    with services.db.read() as s:
        from portal.core.models import User

        assert s.query(User).filter_by(username_key="bea").one().bypass_until == until
    services.settings.update(Actor("t"), {"prompt_for_bypass_seconds": True})
    until = b.set_one_time_bypass("bea", seconds=60)
    assert dt.timedelta(seconds=50) < until - services.clock.now() <= dt.timedelta(seconds=60)
    with pytest.raises(InvalidInput) as err:
        b.set_one_time_bypass("bea", seconds=0)
    assert _field(err.value) == "seconds"
    first = b.authenticate_user("bea", asynchronous=True)
    assert (first.status, first.reason) == ("approved", "one_time_bypass")


def test_complete_enrollment_needs_a_proven_method(any_backend) -> None:
    b = any_backend.backend
    b.create_user("ella")
    with pytest.raises(InvalidInput) as err:
        b.complete_enrollment("ella", "oath_token")
    assert _field(err.value) == "oath_token"
    token = b.add_oath_token("ella")
    with pytest.raises(InvalidInput) as err:
        b.complete_enrollment("ella", "oath_token")  # added, not yet proven
    assert _field(err.value) == "oath_token"
    assert b.confirm_oath_token("ella", token.token_id, _codes(token.secret_base32)[0]) is True
    done = b.complete_enrollment("ella", "oath_token")
    assert (done.enrolled, done.method) == (True, "oath_token")
    assert b.get_user_info("ella") == done
    for method in ("phone_call", "text_message"):
        with pytest.raises(InvalidInput) as err:
            b.complete_enrollment("ella", method)
        assert _field(err.value) == "method", (any_backend.kind, method)
    with pytest.raises(UserNotFound):
        b.complete_enrollment("ghost", "oath_token")


# -- the SOAP adapter's own failure modes ------------------------------------------------------
def test_unreachable_server_is_backend_unavailable_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        SoapBackend("http://127.0.0.1:9/PfWsSdk.asmx", "x", "y", timeout=2).test_connection()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("server_fixture", ["live_server", "live_tls_server"])
def test_rejected_service_accounts_are_backend_unavailable(request, server_fixture) -> None:
    server = request.getfixturevalue(server_fixture)
    with pytest.raises(BackendUnavailable, match="service account"):
        server.soap_backend(password="wrong-password-123").test_connection()
    server.services.accounts.create(Actor("t"), "no-group", "no-group-password-1", kind="service", role="service")
    with pytest.raises(BackendUnavailable, match="service account"):
        server.soap_backend(username="no-group", password="no-group-password-1").test_connection()
    # On the phone's operations too: a refused service account is not a refused phone.
    proof = _sign(ec.generate_private_key(ec.SECP256R1()), "00000000-0000-0000-0000-000000000000", time.time())
    with pytest.raises(BackendUnavailable, match="service account"):
        server.soap_backend(password="wrong-password-123").get_pending_authentications(proof)


def test_an_untrusted_certificate_is_refused(live_tls_server) -> None:
    backend = SoapBackend(live_tls_server.url, "svc-portal", "service-account-password-1", ca_file=None, timeout=5)
    with pytest.raises(BackendUnavailable):
        backend.test_connection()


def test_a_third_party_token_is_claimed_once_by_serial_and_code(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    b.create_user("hugo")
    b.create_user("ida")
    services.tokens.add(Actor("staff:t"), serial="TOK-0001", secret_base32=SEED)
    code, accepted = _codes(SEED)
    with pytest.raises(Forbidden):  # Allow users to associate third-party OATH token: off
        b.associate_oath_token("hugo", "TOK-0001", code)
    services.settings.update(Actor("staff:t"), {"allow_users_to_associate_third_party_oath_token": True})
    assert b.associate_oath_token("hugo", "TOK-0001", _wrong_code(accepted)) is False
    assert b.associate_oath_token("hugo", "NO-SUCH", code) is False  # the same answer: no serial probing
    assert b.associate_oath_token("hugo", "TOK-0001", code) is True
    tokens = b.get_user_info("hugo").oath_tokens
    assert [(t.kind, t.serial_number, t.verified) for t in tokens] == [("hardware", "TOK-0001", True)]
    assert b.associate_oath_token("ida", "TOK-0001", code) is False  # gone from the inventory
    assert b.validate_oath_code("hugo", code).valid is False  # the claiming code cannot be replayed
    with pytest.raises(InvalidInput) as err:
        b.associate_oath_token("hugo", "TOK-0001", "12")
    assert _field(err.value) == "code"


# -- the phone API ---------------------------------------------------------------------------------
def test_a_phone_activates_with_its_code(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    b.create_user("pia")
    code = services.activation.generate(Actor("staff:t"), "pia").code
    key = ec.generate_private_key(ec.SECP256R1())
    reg = DeviceRegistrationInput("Pia's phone", "ios", _spki_b64(key), push_kind="apns", push_token="apns-token-1")
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    with pytest.raises(CodeInvalid):
        b.activate_device(wrong, reg)
    with pytest.raises(InvalidInput) as err:
        b.activate_device(code, DeviceRegistrationInput("Pia's phone", "ios", "bm90IGEga2V5"))
    assert _field(err.value) == "public_key"
    rsa_like = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    with pytest.raises(InvalidInput) as err:
        b.activate_device(code, DeviceRegistrationInput("Pia's phone", "ios", rsa_like))
    assert _field(err.value) == "public_key"
    with pytest.raises(InvalidInput) as err:
        b.activate_device(code, DeviceRegistrationInput("Pia's phone", "fax", _spki_b64(key)))
    assert _field(err.value) == "platform"

    done = b.activate_device(code, reg, client_ip="203.0.113.9")
    assert (done.username, done.account_name) == ("pia", "MFA Portal")
    assert done.oath_secret_base32 and len(otp.b32decode(done.oath_secret_base32)) >= 10  # the app's offline codes
    assert abs((done.server_time - services.clock.now()).total_seconds()) < 5 and done.server_time.tzinfo is None
    assert [(d.id, d.name, d.platform, d.status) for d in b.get_user_info("pia").devices] == [
        (done.device_id, "Pia's phone", "ios", "active")]
    assert b.get_activation_status("pia") == "completed"
    with pytest.raises(CodeUsed):
        b.activate_device(code, reg)

    # An expired code: the live servers run on the system clock, so the code is aged in the database.
    b.create_user("pete")
    old = services.activation.generate(Actor("staff:t"), "pete").code
    from portal.core.models import ActivationCode, User

    with services.db.write() as s:
        user_id = s.query(User).filter_by(username_key="pete").one().id
        row = s.query(ActivationCode).filter_by(user_id=user_id).one()
        row.expires_at = services.clock.now() - dt.timedelta(minutes=1)
    with pytest.raises(CodeExpired):
        b.activate_device(old, DeviceRegistrationInput("Pete's phone", "android", _spki_b64(key)))
    assert b.get_activation_status("pete") == "expired"


def test_the_phone_sees_and_answers_a_number_matching_request(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    b.create_user("quinn")
    phone = Phone(any_backend, "quinn")
    assert b.get_pending_authentications(phone.proof()) == ()

    created: list[str] = []

    def sign_in() -> None:
        time.sleep(0.3)
        created.append(b.authenticate_user("quinn", asynchronous=True, number_matching=True,
                                           application_name="VPN", client_ip="203.0.113.7").transaction_id)

    signing_in = threading.Thread(target=sign_in)
    signing_in.start()
    started = time.monotonic()
    pending = b.get_pending_authentications(phone.proof(), wait_seconds=10)
    assert time.monotonic() - started < 5  # woken by the new request, not by the timeout
    signing_in.join(10)
    request = services.auth_requests.get(created[0])
    assert [(p.transaction_id, p.username, p.application_name, p.client_ip, p.pin_required) for p in pending] == [
        (request.id, "quinn", "VPN", "203.0.113.7", False)]
    (item,) = pending
    assert (item.created_at, item.expires_at) == (request.created_at, request.expires_at)
    assert len(item.number_choices) == 3 and request.number_to_match in item.number_choices
    assert all(isinstance(n, int) for n in item.number_choices) and list(item.number_choices) == sorted(
        set(item.number_choices))

    # The signature is checked: replay, another key, a clock 10 minutes off.
    used = phone.proof()
    b.get_pending_authentications(used)
    other = ec.generate_private_key(ec.SECP256R1())
    for bad in (used, _sign(other, phone.device_id, services.clock.time()), phone.proof(offset_ms=-600_000),
                phone.proof(offset_ms=600_000), _sign(phone.key, "00000000-0000-0000-0000-000000000000",
                                                      services.clock.time())):
        with pytest.raises(SignatureRejected):
            b.get_pending_authentications(bad)
    with pytest.raises(InvalidInput) as err:  # a number-matching approval needs the number
        b.submit_authentication_result(phone.proof(method="POST"), request.id, "approve")
    assert _field(err.value) == "number"

    waited: list[str] = []

    def sign_in_page() -> None:
        waited.append(b.get_authentication_status(request.id, wait_seconds=10).status)

    waiter = threading.Thread(target=sign_in_page)
    waiter.start()
    time.sleep(0.2)
    approved = b.submit_authentication_result(phone.proof(method="POST"), request.id, "approve",
                                              number=request.number_to_match)
    assert (approved.transaction_id, approved.status, approved.authenticated) == (request.id, "approved", True)
    waiter.join(10)
    assert waited == ["approved"]
    assert b.get_pending_authentications(phone.proof()) == ()
    with pytest.raises(RequestNotPending):
        b.submit_authentication_result(phone.proof(method="POST"), request.id, "deny")
    with pytest.raises(NotFound):
        b.submit_authentication_result(phone.proof(method="POST"), "0" * 32, "deny")
    with pytest.raises(InvalidInput) as err:
        b.submit_authentication_result(phone.proof(method="POST"), request.id, "maybe")
    assert _field(err.value) == "result"

    second = b.authenticate_user("quinn", asynchronous=True, number_matching=True)
    choices = b.get_pending_authentications(phone.proof())[0].number_choices
    wrong = next(n for n in choices if n != second.number_to_match)
    denied = b.submit_authentication_result(phone.proof(method="POST"), second.transaction_id, "approve",
                                            number=wrong)
    assert (denied.status, denied.authenticated, denied.reason) == ("denied", False, "wrong_number")
    assert b.get_authentication_status(second.transaction_id).status == "denied"

    third = b.authenticate_user("quinn", asynchronous=True)
    assert b.get_pending_authentications(phone.proof())[0].number_choices == ()  # no number matching
    assert b.submit_authentication_result(phone.proof(method="POST"), third.transaction_id, "deny").status == "denied"


def test_pin_mode_needs_the_pin_on_the_phone_and_fraud_blocks(any_backend) -> None:
    b = any_backend.backend
    b.create_user("rosa", UserSettingsInput(mode="pin", pin="4827"))
    phone = Phone(any_backend, "rosa")
    first = b.authenticate_user("rosa", asynchronous=True)
    (pending,) = b.get_pending_authentications(phone.proof())
    assert (pending.transaction_id, pending.pin_required, pending.number_choices) == (first.transaction_id, True, ())
    with pytest.raises(InvalidInput) as err:
        b.submit_authentication_result(phone.proof(method="POST"), first.transaction_id, "approve")
    assert _field(err.value) == "pin"
    wrong = b.submit_authentication_result(phone.proof(method="POST"), first.transaction_id, "approve", pin="1593")
    assert (wrong.status, wrong.authenticated) == ("wrong_pin", False)
    assert b.get_authentication_status(first.transaction_id).status == "wrong_pin"

    second = b.authenticate_user("rosa", asynchronous=True)
    right = b.submit_authentication_result(phone.proof(method="POST"), second.transaction_id, "approve", pin="4827")
    assert (right.status, right.authenticated) == ("approved", True)

    third = b.authenticate_user("rosa", asynchronous=True)
    fraud = b.submit_authentication_result(phone.proof(method="POST"), third.transaction_id, "fraud")
    assert (fraud.status, fraud.authenticated) == ("fraud", False)
    assert b.get_user_info("rosa").blocked  # Block user when fraud is reported (on by default)


def test_push_channel_update_and_sign_out(any_backend) -> None:
    b, services = any_backend.backend, any_backend.services
    b.create_user("sami")
    phone = Phone(any_backend, "sami")
    assert b.update_push_channel(phone.proof(method="PUT", body=b'{"kind":"fcm"}'), "fcm", "fcm-token-1") is None
    from portal.core.models import Device

    with services.db.read() as s:
        device = s.get(Device, phone.device_id)
        assert device is not None and device.push_kind == "fcm" and device.push_token_encrypted
    with pytest.raises(InvalidInput) as err:
        b.update_push_channel(phone.proof(method="PUT"), "carrier-pigeon", "x")
    assert _field(err.value) == "push_kind"
    with pytest.raises(InvalidInput) as err:
        b.update_push_channel(phone.proof(method="PUT"), "fcm")
    assert _field(err.value) == "push_token"
    b.update_push_channel(phone.proof(method="PUT"), "none")

    assert b.sign_out_device(phone.proof(method="POST")) is None
    assert [(d.id, d.status) for d in b.get_user_info("sami").devices] == [(phone.device_id, "deactivated")]
    for call in (lambda: b.get_pending_authentications(phone.proof()),
                 lambda: b.sign_out_device(phone.proof(method="POST")),
                 lambda: b.update_push_channel(phone.proof(method="PUT"), "none")):
        with pytest.raises(SignatureRejected):
            call()
