"""The foundation's promises, each on SQLite and PostgreSQL: single use under concurrency,
expiry from the injected clock, no seed in clear at rest, named errors and no half-writes."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select, text

from portal.core import otp
from portal.core.activation import DeviceRegistration
from portal.core.audit import Actor
from portal.core.errors import (
    CodeExpired,
    CodeInvalid,
    CodeUsed,
    DeviceLimitReached,
    InvalidInput,
    RequestNotPending,
    UserNotFound,
)
from portal.core.models import AuditEntry, Device, OathToken, User
from portal.core.users import UserFields

A = Actor("test")
SEED_B32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _race(n: int, fn: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``fn(i)`` in ``n`` threads released together; collect results and errors."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            r = fn(i)
            with lock:
                results.append(r)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


# -- single use under concurrency ------------------------------------------------------------
def test_a_totp_code_is_accepted_once_also_when_two_threads_race(services, clock) -> None:
    services.users.create(A, "alice")
    services.oath.add_hardware_token(A, "alice", serial="T1", secret_base32=SEED_B32)
    seed = otp.b32decode(SEED_B32)
    code = otp.totp(seed, clock.time())
    assert services.oath.validate(A, "alice", code).ok
    assert not services.oath.validate(A, "alice", code).ok  # replay, same step

    clock.advance(30)
    fresh = otp.totp(seed, clock.time())
    results, errors = _race(2, lambda _i: services.oath.validate(A, "alice", fresh).ok)
    assert errors == []
    assert sorted(results) == [False, True]


def test_an_older_step_is_refused_once_a_newer_one_was_used(services, clock) -> None:
    services.users.create(A, "alice")
    services.oath.add_hardware_token(A, "alice", serial="T1", secret_base32=SEED_B32)
    seed = otp.b32decode(SEED_B32)
    previous = otp.totp(seed, clock.time() - 30)  # still inside the ±1 step window
    assert services.oath.validate(A, "alice", otp.totp(seed, clock.time())).ok
    assert not services.oath.validate(A, "alice", previous).ok


def test_twenty_phones_racing_with_one_activation_code_get_one_device(services) -> None:
    services.settings.update(A, {"device_limit": 10})
    services.users.create(A, "bob")
    code = services.activation.generate(A, "bob").code
    keys = [_key() for _ in range(20)]
    results, errors = _race(20, lambda i: services.activation.activate(
        A, code, DeviceRegistration(f"phone {i}", "android", keys[i])))
    assert len(results) == 1
    assert len(errors) == 19 and all(isinstance(e, CodeUsed) for e in errors), errors[:3]
    with services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 1


def test_two_answers_to_one_request_give_one_result(services) -> None:
    services.users.create(A, "carol")
    req = services.auth_requests.create(A, "carol", method="mobile_app")
    results, errors = _race(2, lambda i: services.auth_requests.complete(
        A, req.id, ("approved", "denied")[i]).status)
    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], RequestNotPending)
    assert services.auth_requests.get(req.id).status == results[0]


# -- expiry from the injected clock ----------------------------------------------------------
def test_activation_codes_expire_and_are_replaced(services, clock) -> None:
    services.users.create(A, "dave")
    first = services.activation.generate(A, "dave").code
    second = services.activation.generate(A, "dave").code
    with pytest.raises(CodeUsed):  # a new code voids the old one
        services.activation.activate(A, first, DeviceRegistration("p", "ios", _key()))
    clock.advance(10 * 60)
    with pytest.raises(CodeExpired):
        services.activation.activate(A, second, DeviceRegistration("p", "ios", _key()))
    with pytest.raises(CodeInvalid):
        services.activation.activate(A, "000000000000", DeviceRegistration("p", "ios", _key()))


def test_a_code_just_inside_its_lifetime_works(services, clock) -> None:
    services.users.create(A, "dave")
    code = services.activation.generate(A, "dave").code
    clock.advance(10 * 60 - 1)
    assert services.activation.activate(A, code, DeviceRegistration("p", "ios", _key())).username == "dave"


def test_the_device_limit_holds(services) -> None:
    services.users.create(A, "erin")
    code = services.activation.generate(A, "erin").code
    services.activation.activate(A, code, DeviceRegistration("p", "ios", _key()))
    with pytest.raises(DeviceLimitReached):
        services.activation.generate(A, "erin")


def test_auth_requests_expire(services, clock) -> None:
    services.users.create(A, "fay")
    req = services.auth_requests.create(A, "fay", method="mobile_app", lifetime_seconds=60)
    clock.advance(59)
    assert services.auth_requests.get(req.id).status == "pending"
    clock.advance(1)
    assert services.auth_requests.get(req.id).status == "expired"
    with pytest.raises(RequestNotPending):
        services.auth_requests.complete(A, req.id, "approved")


# -- secrets at rest -------------------------------------------------------------------------
def _secrets_made(services, clock) -> list[bytes]:
    services.users.create(A, "gina", password="gina-password-1")
    services.oath.add_hardware_token(A, "gina", serial="HW9", secret_base32=SEED_B32)
    app_token = services.oath.add_software_token(A, "gina")
    code = services.activation.generate(A, "gina").code
    services.users.set_pin(A, "gina", "4827")
    seeds = [otp.b32decode(SEED_B32), otp.b32decode(app_token.secret_base32)]
    return [*seeds, *(otp.b32encode(s).encode() for s in seeds), code.encode(), b"gina-password-1", b"4827"]


def test_the_sqlite_file_holds_no_secret_in_clear(sqlite_services, clock, sqlite_url) -> None:
    needles = _secrets_made(sqlite_services, clock)
    with sqlite_services.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    blob = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert blob and not [n for n in needles if n in blob]
    with sqlite_services.db.read() as s:
        assert s.scalar(select(User.password_hash)).startswith("$argon2id$")
        assert s.scalar(select(User.pin_hash)).startswith("$argon2id$")


@pytest.mark.postgres
def test_a_postgresql_dump_holds_no_secret_in_clear(clock, pg_url) -> None:
    from tests.conftest import make_services

    svc = make_services(pg_url, clock)
    try:
        needles = _secrets_made(svc, clock)
    finally:
        svc.close()
    dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", pg_url.rsplit("/", 1)[1]],
                          capture_output=True, check=True, timeout=60).stdout
    assert b"HW9" in dump  # the dump really holds the data ...
    assert not [n for n in needles if n in dump]  # ... and none of the secrets


def test_a_seed_copied_to_another_row_does_not_decrypt(services, clock) -> None:
    services.users.create(A, "h1")
    services.users.create(A, "h2")
    services.oath.add_hardware_token(A, "h1", serial="S1", secret_base32=SEED_B32)
    services.oath.add_hardware_token(A, "h2", serial="S2", secret_base32="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    with services.db.write() as s:
        t1, t2 = s.scalars(select(OathToken).order_by(OathToken.id)).all()
        t2.seed_encrypted = t1.seed_encrypted  # an attacker with write access swaps seeds
    from portal.core.crypto import DecryptionError

    with pytest.raises(DecryptionError):
        services.oath.validate(A, "h2", otp.totp(otp.b32decode(SEED_B32), clock.time()))


# -- invalid input: named errors, nothing half-written ---------------------------------------
def _counts(services) -> tuple[int, int, int, int]:
    with services.db.read() as s:
        return (s.scalar(select(func.count()).select_from(User)) or 0,
                s.scalar(select(func.count()).select_from(OathToken)) or 0,
                s.scalar(select(func.count()).select_from(Device)) or 0,
                s.scalar(select(func.count()).select_from(AuditEntry)) or 0)


BAD_CALLS: list[tuple[str, Callable[[Any], Any], str]] = [
    ("empty username", lambda s: s.users.create(A, ""), "username"),
    ("long username", lambda s: s.users.create(A, "x" * 129), "username"),
    ("username of the wrong type", lambda s: s.users.create(A, 42), "username"),
    ("username with spaces", lambda s: s.users.create(A, "bad name"), "username"),
    ("bad phone", lambda s: s.users.create(A, "ok", UserFields(phone="12345")), "phone"),
    ("unparseable phone", lambda s: s.users.create(A, "ok", UserFields(phone="+1 not a number")), "phone"),
    ("invalid phone", lambda s: s.users.create(A, "ok", UserFields(phone="+1 000 000 0000")), "phone"),
    ("bad backup phone", lambda s: s.users.create(A, "ok", UserFields(backup_phone="0")), "backup_phone"),
    ("bad email", lambda s: s.users.create(A, "ok", UserFields(email="x@")), "email"),
    ("bad extension", lambda s: s.users.create(A, "ok", UserFields(phone_extension="12a")), "phone_extension"),
    ("long display name", lambda s: s.users.create(A, "ok", UserFields(display_name="d" * 129)), "display_name"),
    ("control characters", lambda s: s.users.create(A, "ok", UserFields(display_name="a\x00b")), "display_name"),
    ("bad method", lambda s: s.users.create(A, "ok", UserFields(method="pigeon")), "method"),
    ("bad mode", lambda s: s.users.create(A, "ok", UserFields(mode="loud")), "mode"),
    ("short password", lambda s: s.users.create(A, "ok", password="short"), "password"),
    ("weak pin", lambda s: s.users.set_pin(A, "base", "1234"), "pin"),
    ("letters in pin", lambda s: s.users.set_pin(A, "base", "12ab"), "pin"),
    ("empty update", lambda s: s.users.update(A, "base", UserFields()), "settings"),
    ("otp too short", lambda s: s.oath.validate(A, "base", "123"), "code"),
    ("otp letters", lambda s: s.oath.validate(A, "base", "abcdef"), "code"),
    ("serial charset", lambda s: s.oath.add_hardware_token(A, "base", serial="a b", secret_base32=SEED_B32), "serial"),
    ("seed not base32", lambda s: s.oath.add_hardware_token(A, "base", serial="X1", secret_base32="!!!!"), "secret"),
    ("seed too short", lambda s: s.oath.add_hardware_token(A, "base", serial="X1", secret_base32="MFRA"), "secret"),
    ("bad digits", lambda s: s.oath.add_software_token(A, "base", digits=7), "digits"),
    ("bad algorithm", lambda s: s.oath.add_software_token(A, "base", algorithm="MD5"), "algorithm"),
    ("code not digits", lambda s: s.activation.activate(A, "abc", DeviceRegistration("p", "ios", _key())), "code"),
    ("bad platform", lambda s: s.activation.activate(A, "1" * 12, DeviceRegistration("p", "nokia", _key())),
     "platform"),
    ("garbage key", lambda s: s.activation.activate(A, "1" * 12, DeviceRegistration("p", "ios", b"junk")),
     "public_key"),
    ("RSA key", lambda s: s.activation.activate(A, "1" * 12, DeviceRegistration(
        "p", "ios", rsa.generate_private_key(65537, 2048).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo))), "public_key"),
    ("P-384 key", lambda s: s.activation.activate(A, "1" * 12, DeviceRegistration(
        "p", "ios", ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo))), "public_key"),
    ("push token missing", lambda s: s.activation.activate(A, "1" * 12, DeviceRegistration(
        "p", "ios", _key(), push_kind="apns")), "push_token"),
    ("bad method for a request", lambda s: s.auth_requests.create(A, "base", method="fax"), "method"),
    ("bad client ip", lambda s: s.auth_requests.create(A, "base", method="mobile_app", client_ip="1.2.3"),
     "client_ip"),
    ("bad transaction id", lambda s: s.auth_requests.get("not-an-id"), "transaction_id"),
    ("bad answer", lambda s: s.auth_requests.complete(A, "a" * 32, "maybe"), "result"),
    ("unknown setting", lambda s: s.settings.update(A, {"no_such": 1}), "no_such"),
    ("setting out of range", lambda s: s.settings.update(A, {"device_limit": 11}), "device_limit"),
    ("setting of the wrong type", lambda s: s.settings.update(A, {"allow_users_to_log_in": "perhaps"}),
     "allow_users_to_log_in"),
    ("two bad settings: nothing kept", lambda s: s.settings.update(A, {"device_limit": 3, "pin_minimum_length": 99}),
     "pin_minimum_length"),
    ("find pattern empty", lambda s: s.users.find(""), "pattern"),
    ("find page size", lambda s: s.users.find("a*", page_size=501), "page_size"),
    ("wrong number of answers", lambda s: s.questions.set_answers(A, "base", {1: "a"}), "answers"),
]


@pytest.mark.parametrize("call,field", [(c, f) for _, c, f in BAD_CALLS], ids=[n for n, _, _ in BAD_CALLS])
def test_invalid_input_raises_a_named_error_and_writes_nothing(services, call, field) -> None:
    services.users.create(A, "base")
    before = _counts(services)
    settings_before = dict(services.settings.get())
    with pytest.raises(InvalidInput) as err:
        call(services)
    assert err.value.field == field
    assert field in err.value.message
    assert _counts(services) == before
    assert dict(services.settings.get()) == settings_before
    assert services.audit.verify(services.db).ok


def test_unknown_users_are_named_errors(services) -> None:
    for call in (lambda: services.users.get("ghost"), lambda: services.oath.validate(A, "ghost", "123456"),
                 lambda: services.activation.generate(A, "ghost"), lambda: services.users.delete(A, "ghost")):
        with pytest.raises(UserNotFound):
            call()


def test_a_failure_inside_a_transaction_rolls_everything_back(services) -> None:
    before = _counts(services)
    with pytest.raises(RuntimeError), services.db.write() as s:
        s.add(User(username="tmp", username_key="tmp", created_at=services.clock.now(),
                   updated_at=services.clock.now()))
        s.flush()
        services.audit.append(s, A, "test.action", "tmp")
        raise RuntimeError("boom")
    assert _counts(services) == before
    assert services.audit.verify(services.db).ok


def test_sqlite_runs_with_wal_and_foreign_keys(sqlite_services) -> None:
    with sqlite_services.db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
