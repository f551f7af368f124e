"""The audit chain finds every kind of tampering and stays linear under concurrent appends."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from portal.core.audit import Actor

A = Actor("staff:test", "192.0.2.1", "rid-1")


def _entries(services, n: int) -> None:
    for i in range(n):
        with services.db.write() as s:
            services.audit.append(s, A, "test.action", f"user{i}", detail_number=i)


def _sql(services, statement: str) -> None:
    with services.db.engine.begin() as conn:
        conn.execute(text(statement))


def test_an_untouched_chain_verifies(services) -> None:
    _entries(services, 5)
    result = services.audit.verify(services.db)
    assert result.ok and result.checked == 5


@pytest.mark.parametrize("statement,first_broken", [
    ("UPDATE audit_log SET actor = 'staff:someone-else' WHERE seq = 3", 3),
    ("UPDATE audit_log SET detail = '{}' WHERE seq = 2", 2),
    ("UPDATE audit_log SET outcome = 'failure' WHERE seq = 5", 5),
    ("DELETE FROM audit_log WHERE seq = 3", 3),
    ("DELETE FROM audit_log WHERE seq >= 4", 4),
    ("UPDATE audit_log SET mac = prev_mac WHERE seq = 1", 1),
], ids=["actor edited", "detail edited", "outcome edited", "middle deleted", "newest deleted", "mac forged"])
def test_tampering_is_found_and_the_first_broken_entry_named(services, statement, first_broken) -> None:
    _entries(services, 5)
    _sql(services, statement)
    result = services.audit.verify(services.db)
    assert not result.ok and result.first_broken_seq == first_broken


def test_rewriting_a_row_and_its_successors_still_needs_the_key(services) -> None:
    _entries(services, 3)
    # An attacker without the key recomputes nothing useful: any edit breaks the MAC at that row.
    _sql(services, "UPDATE audit_log SET target = 'other', mac = 'f' || substr(mac, 2) WHERE seq = 2")
    assert services.audit.verify(services.db).first_broken_seq == 2


def test_secret_looking_details_are_refused(services) -> None:
    for key in ("password", "new_pin", "otp_code", "seed", "answer_text", "push_token"):
        with pytest.raises(ValueError), services.db.write() as s:
            services.audit.append(s, A, "x", None, **{key: "v"})


def test_concurrent_appends_keep_one_linear_chain(services) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        barrier.wait()
        try:
            for i in range(10):
                with services.db.write() as s:
                    services.audit.append(s, A, "test.concurrent", f"w{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    result = services.audit.verify(services.db)
    assert result.ok and result.checked == 80


def test_search_filters_and_never_returns_secrets(services) -> None:
    services.users.create(A, "alice", password="alice-password-1")
    services.users.set_pin(A, "alice", "4827")
    found = services.audit.search(services.db, target="alice")
    assert {e.action for e in found} == {"user.create", "user.set_pin"}
    assert all("4827" not in str(e.detail) and "alice-password-1" not in str(e.detail) for e in found)
    assert all(e.actor == "staff:test" and e.client_ip == "192.0.2.1" for e in found)
