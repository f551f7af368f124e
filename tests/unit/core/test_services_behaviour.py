"""Accounts, security questions, settings and users: the rules each service promises."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.core.audit import Actor
from portal.core.errors import Conflict, Forbidden, InvalidInput, Throttled, Unauthorized, UserLockedOut
from portal.core.models import Device, OathToken, SecurityAnswer, User
from portal.core.users import UserFields

A = Actor("staff:test", "192.0.2.10")


# -- accounts --------------------------------------------------------------------------------
def test_one_failure_message_whether_or_not_the_account_exists(services) -> None:
    services.accounts.create(A, "helper", "helper-password-1")
    with pytest.raises(Unauthorized) as wrong:
        services.accounts.authenticate(A, "helper", "not-the-password")
    with pytest.raises(Unauthorized) as unknown:
        services.accounts.authenticate(A, "nobody", "not-the-password")
    assert wrong.value.message == unknown.value.message


def test_sdk_needs_the_admins_group_and_disabled_accounts_are_refused(services) -> None:
    services.accounts.create(A, "svc", "service-password-1", kind="service", role="service",
                             groups=("MFA Admins",))
    services.accounts.create(A, "plain", "service-password-2", kind="service", role="service")
    assert services.accounts.authenticate_sdk(A, "svc", "service-password-1").username == "svc"
    with pytest.raises(Forbidden):
        services.accounts.authenticate_sdk(A, "plain", "service-password-2")
    services.accounts.set_enabled(A, "svc", False)
    with pytest.raises(Unauthorized):
        services.accounts.authenticate_sdk(A, "svc", "service-password-1")


def test_password_changes_take_effect_at_once_despite_the_cache(services) -> None:
    services.accounts.create(A, "svc", "service-password-1", kind="service", role="service")
    services.accounts.authenticate(A, "svc", "service-password-1")  # cached now
    services.accounts.set_password(A, "svc", "service-password-9")
    with pytest.raises(Unauthorized):
        services.accounts.authenticate(A, "svc", "service-password-1")
    assert services.accounts.authenticate(A, "svc", "service-password-9").username == "svc"


def test_account_logins_are_throttled_per_account(services) -> None:
    services.accounts.create(A, "target", "target-password-1")
    for _ in range(10):
        with pytest.raises(Unauthorized):
            services.accounts.authenticate(Actor("x", "198.51.100.1"), "target", "guess-password")
    with pytest.raises(Throttled):
        services.accounts.authenticate(Actor("x", "198.51.100.2"), "target", "target-password-1")


def test_bootstrap_creates_one_administrator_once(services) -> None:
    username, generated = services.accounts.bootstrap(None, None)
    assert username == "admin" and generated and len(generated) >= 16
    principal = services.accounts.authenticate_sdk(A, "admin", generated)
    assert principal.role == "administrator" and principal.password_change_required
    assert services.accounts.bootstrap("other", "other-password-1") is None
    assert services.accounts.count() == 1


def test_account_rules(services) -> None:
    with pytest.raises(InvalidInput) as err:
        services.accounts.create(A, "short", "too-short")
    assert err.value.field == "password"
    with pytest.raises(InvalidInput) as err:
        services.accounts.create(A, "r", "long-enough-password", rights=("launch_missiles",))
    assert err.value.field == "rights"
    services.accounts.create(A, "Dup", "long-enough-password")
    with pytest.raises(Conflict):
        services.accounts.create(A, "dup", "long-enough-password")


# -- security questions ----------------------------------------------------------------------
def test_answers_are_normalised_hashed_and_checked(services) -> None:
    services.users.create(A, "quinn")
    questions = services.questions.catalogue()
    assert len(questions) == 8
    answers = {q.id: a for q, a in zip(questions[:4], ["Rex", "Zürich", "Elm Street", "Ford"], strict=True)}
    services.questions.set_answers(A, "quinn", answers)
    with services.db.read() as s:
        stored = list(s.scalars(select(SecurityAnswer.answer_hash)))
    assert len(stored) == 4 and all(h.startswith("$argon2id$") for h in stored)
    asked = services.questions.challenge("quinn")
    assert len(asked) == 2
    given = {q.id: {"Rex": "  rex ", "Zürich": "ZURICH", "Elm Street": "elm  street!", "Ford": "FORD"}[answers[q.id]]
             for q in asked}
    assert services.questions.verify(A, "quinn", given)
    assert not services.questions.verify(A, "quinn", dict.fromkeys(given, "wrong"))


def test_wrong_answers_count_toward_lockout_and_reset_clears(services) -> None:
    services.users.create(A, "ray")
    qs = services.questions.catalogue()[:4]
    services.questions.set_answers(A, "ray", {q.id: f"answer {i}" for i, q in enumerate(qs)})
    for _ in range(5):
        services.questions.verify(A, "ray", {qs[0].id: "no", qs[1].id: "no"})
    with pytest.raises(UserLockedOut):
        services.questions.verify(A, "ray", {qs[0].id: "answer 0", qs[1].id: "answer 1"})
    services.questions.reset(A, "ray")
    assert not services.questions.has_answers("ray")


# -- settings --------------------------------------------------------------------------------
def test_settings_defaults_coercion_and_audit_only_on_change(services) -> None:
    settings = services.settings.get()
    assert settings["device_limit"] == 1 and settings["allow_users_to_log_in"] is True
    assert settings.allowed_methods() == ["phone_call", "text_message", "mobile_app", "oath_token"]
    updated = services.settings.update(A, {"device_limit": "3", "method_phone_call": "false"})
    assert updated["device_limit"] == 3 and "phone_call" not in updated.allowed_methods()
    services.settings.update(A, {"device_limit": 3})  # no change: no audit entry
    entries = services.audit.search(services.db, action="settings.update")
    assert sorted(e.target for e in entries) == ["device_limit", "method_phone_call"]
    assert {e.target: e.detail for e in entries}["device_limit"] == {"old": 1, "new": 3}


# -- users -----------------------------------------------------------------------------------
def test_find_matches_each_field_and_pages(services) -> None:
    for i in range(12):
        services.users.create(A, f"user{i:02d}", UserFields(display_name=f"Person {i:02d}",
                                                            email=f"p{i:02d}@example.com",
                                                            phone=f"+4420794600{i:02d}"))
    assert services.users.find("user0*").total == 10
    assert services.users.find("Person 11").items[0].username == "user11"
    assert services.users.find("p05@").items[0].username == "user05"
    assert services.users.find("+442079460007").items[0].username == "user07"
    page2 = services.users.find("user*", page=2, page_size=5)
    assert page2.total == 12 and [u.username for u in page2.items] == [f"user{i:02d}" for i in range(5, 10)]
    assert services.users.find("%").total == 0  # SQL wildcards are literal
    assert services.users.find("user_1").total == 0


def test_update_changes_only_the_given_fields_and_delete_cascades(services, clock) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from portal.core.activation import DeviceRegistration

    services.users.create(A, "sam", UserFields(display_name="Sam", email="sam@example.com",
                                               phone="+442079460000"))
    after = services.users.update(A, "sam", UserFields(phone=""))
    assert after.phone is None and after.email == "sam@example.com" and after.display_name == "Sam"
    services.oath.add_software_token(A, "sam")
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.DER,
                                                                            PublicFormat.SubjectPublicKeyInfo)
    services.activation.activate(A, services.activation.generate(A, "sam").code,
                                 DeviceRegistration("p", "ios", key))
    services.users.delete(A, "sam")
    with services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OathToken)) == 0
        assert s.scalar(select(func.count()).select_from(Device)) == 0


def test_pins_generated_and_checked(services) -> None:
    services.users.create(A, "tia")
    pin = services.users.set_pin(A, "tia", None, change_required=True)
    assert pin.isdigit() and len(pin) >= 4
    info = services.users.get("tia")
    assert info.has_pin and info.pin_change_required
    assert services.users.check_pin(A, "tia", pin)
    assert not services.users.check_pin(A, "tia", "9999")
    services.settings.update(A, {"pin_minimum_length": 6})
    assert len(services.users.set_pin(A, "tia", None)) == 6


def test_a_refused_sign_in_is_audited_as_a_failure(services) -> None:
    from portal.core.models import AuditEntry

    services.users.create(A, "uma")
    services.oath.add_software_token(A, "uma")
    outcome = services.authentication.authenticate(A, "uma", otp="000000")
    assert outcome.status == "denied"
    with services.db.read() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "auth.denied")).one()
    assert entry.outcome == "failure"


def test_two_removals_at_once_leave_the_user_a_sign_in_token(services) -> None:
    """Each request alone would pass the rule (another confirmed token exists); the user's row
    lock makes the second see the first's removal, so exactly one succeeds."""
    import threading

    from portal.core import otp as otp_module

    services.users.create(A, "tess")
    ids = []
    for serial in ("T-1", "T-2"):
        services.oath.add_hardware_token(A, "tess", serial=serial, secret_base32=otp_module.b32encode(bytes(20)))
    with services.db.write() as s:
        user = s.scalar(select(User).where(User.username_key == "tess"))
        user.method = "oath_token"
        ids = [t.id for t in s.scalars(select(OathToken).where(OathToken.user_id == user.id))]
        for t in s.scalars(select(OathToken).where(OathToken.user_id == user.id)):
            t.verified = True
    barrier, outcomes = threading.Barrier(2), []

    def remove(token_id: int) -> None:
        barrier.wait()
        try:
            services.oath.remove_token(A, "tess", token_id, keep_sign_in_token=True)
            outcomes.append("removed")
        except Conflict:
            outcomes.append("kept")

    threads = [threading.Thread(target=remove, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["kept", "removed"]
    with services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OathToken).where(OathToken.verified.is_(True))) == 1
