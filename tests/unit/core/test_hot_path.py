"""The sign-in hot path (driver-level SQL) keeps the lockout rules and audit of the ORM path."""

from __future__ import annotations

import pytest

from portal.core import otp
from portal.core.audit import Actor
from portal.core.errors import UserLockedOut

A = Actor("test")
SEED = b"12345678901234567890"


def _user_with_hotp(services, name: str = "hot") -> None:
    services.users.create(A, name)
    services.oath.add_hardware_token(A, name, serial=f"HW-{name}", secret_base32=otp.b32encode(SEED),
                                     otp_type="hotp")


def test_failures_lock_the_user_then_time_frees_them(services, clock) -> None:
    _user_with_hotp(services)
    for _ in range(4):
        assert not services.oath.validate(A, "hot", "000000").ok
    assert services.users.get("hot").locked_until is None
    assert not services.oath.validate(A, "hot", "000000").ok  # the 5th denial locks
    assert services.users.get("hot").locked_until is not None
    with pytest.raises(UserLockedOut):
        services.oath.validate(A, "hot", otp.hotp(SEED, 0))  # even the right code
    clock.advance(15 * 60 + 1)
    assert services.oath.validate(A, "hot", otp.hotp(SEED, 0)).ok
    actions = [r.action for r in services.audit.search(services.db, target="hot", limit=20)]
    assert "user.locked_out" in actions
    assert services.audit.verify(services.db).ok


def test_failures_outside_the_reset_window_do_not_add_up(services, clock) -> None:
    _user_with_hotp(services)
    for _ in range(4):
        services.oath.validate(A, "hot", "000000")
    clock.advance(5 * 60 + 1)  # lockout_reset_minutes
    services.oath.validate(A, "hot", "000000")
    assert services.users.get("hot").locked_until is None


def test_a_success_resets_the_counter(services) -> None:
    _user_with_hotp(services)
    for _ in range(4):
        services.oath.validate(A, "hot", "000000")
    assert services.oath.validate(A, "hot", otp.hotp(SEED, 0)).ok
    for _ in range(4):
        services.oath.validate(A, "hot", "000000")
    assert services.users.get("hot").locked_until is None
