"""Administering staff accounts: role and rights, generated passwords, one's own password,
and the rules that keep the console reachable (never the last administrator, never yourself)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from portal.core.audit import Actor
from portal.core.errors import Conflict, InvalidInput, NotFound, Throttled, Unauthorized
from portal.core.models import AuditEntry

CLI = Actor("cli")
PW = "staff-password-123456"


def _audit(services, action: str) -> list[AuditEntry]:
    with services.db.read() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


def test_update_changes_role_rights_and_groups_and_audits_old_and_new(services) -> None:
    services.accounts.create(CLI, "admin1", PW, role="administrator")
    services.accounts.create(CLI, "hal", PW, rights=("unblock",))
    after = services.accounts.update(Actor("staff:admin1"), "hal", rights=("unblock", "reset_pin"),
                                     groups=("MFA Admins",), display_name="Hal H")
    assert after.rights == ("reset_pin", "unblock") and after.groups == ("MFA Admins",)
    assert services.accounts.principal("hal").can("reset_pin")  # in force at the next request
    entry = _audit(services, "account.update")[-1]
    assert entry.actor == "staff:admin1" and entry.target == "hal"
    changes = json.loads(entry.detail)["changes"]
    assert changes["rights"] == [["unblock"], ["reset_pin", "unblock"]] and "role" not in changes
    with pytest.raises(InvalidInput) as bad:
        services.accounts.update(CLI, "hal", rights=("launch_missiles",))
    assert bad.value.field == "rights"
    with pytest.raises(InvalidInput) as bad_role:
        services.accounts.update(CLI, "hal", role="service")  # a staff member stays staff
    assert bad_role.value.field == "role"
    with pytest.raises(NotFound):
        services.accounts.update(CLI, "nobody", rights=())


def test_the_last_enabled_administrator_stays(services) -> None:
    services.accounts.create(CLI, "ada", PW, role="administrator")
    services.accounts.create(CLI, "bob", PW, role="administrator")
    with pytest.raises(Conflict, match="own account"):
        services.accounts.update(Actor("staff:ada"), "ada", role="helpdesk")
    with pytest.raises(Conflict, match="own account"):
        services.accounts.set_enabled(Actor("staff:ada"), "ada", False)
    services.accounts.set_enabled(Actor("staff:ada"), "bob", False, "left the company")
    with pytest.raises(Conflict, match="last enabled administrator"):
        services.accounts.update(CLI, "ada", role="helpdesk")
    with pytest.raises(Conflict, match="last enabled administrator"):
        services.accounts.set_enabled(CLI, "ada", False)
    assert services.accounts.principal("ada").role == "administrator"
    assert json.loads(_audit(services, "account.disable")[-1].detail)["reason"] == "left the company"


def test_two_administrators_demoting_each_other_at_once_leave_one(services) -> None:
    """Each transaction sees two administrators when it starts; the row locks make the second
    one see the first one's change, so exactly one demotion happens."""
    for name in ("ada", "bob"):
        services.accounts.create(CLI, name, PW, role="administrator")
    barrier, results = threading.Barrier(2), {}

    def demote(me: str, other: str) -> None:
        barrier.wait()
        try:
            services.accounts.update(Actor(f"staff:{me}"), other, role="helpdesk")
            results[me] = "ok"
        except Conflict:
            results[me] = "refused"

    threads = [threading.Thread(target=demote, args=pair) for pair in (("ada", "bob"), ("bob", "ada"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["ok", "refused"]
    roles = {n: services.accounts.principal(n).role for n in ("ada", "bob")}
    assert sorted(roles.values()) == ["administrator", "helpdesk"]


def test_reset_password_is_generated_shown_once_and_must_be_changed(services) -> None:
    services.accounts.create(CLI, "hal", PW)
    services.accounts.authenticate(CLI, "hal", PW)  # cached
    new = services.accounts.reset_password(CLI, "hal", "forgot it")
    assert len(new) >= 20 and new != PW
    with pytest.raises(Unauthorized):
        services.accounts.authenticate(CLI, "hal", PW)
    assert services.accounts.authenticate(CLI, "hal", new).password_change_required
    entry = _audit(services, "account.set_password")[-1]
    assert json.loads(entry.detail) == {"reason": "forgot it", "change_required": True}
    assert new not in entry.detail  # the password itself is never audited
    with pytest.raises(InvalidInput) as no_reason:
        services.accounts.reset_password(CLI, "hal", "  ")
    assert no_reason.value.field == "reason"
    # a service account's reset password goes into a frontend's configuration as it is
    services.accounts.create(CLI, "svc", PW, kind="service", role="service")
    svc = services.accounts.reset_password(CLI, "svc", "rotation")
    assert not services.accounts.authenticate(CLI, "svc", svc).password_change_required


def test_changing_ones_own_password(services) -> None:
    services.accounts.create(CLI, "hal", PW, password_change_required=True)
    me = Actor("staff:hal", "192.0.2.7")
    with pytest.raises(InvalidInput) as same:
        services.accounts.change_own_password(me, "hal", PW, PW)
    assert same.value.field == "new_password"
    with pytest.raises(InvalidInput) as short:
        services.accounts.change_own_password(me, "hal", PW, "short")
    assert short.value.field == "new_password"
    with pytest.raises(InvalidInput) as wrong:
        services.accounts.change_own_password(me, "hal", "not-the-password", "a-new-password-1")
    assert wrong.value.field == "current_password"
    services.accounts.change_own_password(me, "hal", PW, "a-new-password-1")
    p = services.accounts.authenticate(me, "hal", "a-new-password-1")
    assert not p.password_change_required
    assert [e.outcome for e in _audit(services, "account.change_password")] == ["failure", "success"]


def test_guessing_the_current_password_is_throttled(services) -> None:
    services.accounts.create(CLI, "hal", PW)
    me = Actor("staff:hal")
    for _ in range(10):
        with pytest.raises(InvalidInput):
            services.accounts.change_own_password(me, "hal", "guess-password", "a-new-password-1")
    with pytest.raises(Throttled):
        services.accounts.change_own_password(me, "hal", PW, "a-new-password-1")


def test_list_and_info_show_state_but_never_secrets(services) -> None:
    services.accounts.create(CLI, "hal", PW, display_name="Hal")
    services.accounts.create(CLI, "svc", PW, kind="service", role="service", groups=("MFA Admins",))
    listed = {a.username: a for a in services.accounts.list_accounts()}
    assert listed["hal"].totp == "none" and listed["svc"].totp == "" and listed["svc"].groups == ("MFA Admins",)
    assert not any(hasattr(a, "password_hash") for a in listed.values())
    assert services.accounts.info("HAL").display_name == "Hal"
    with pytest.raises(NotFound):
        services.accounts.info("nobody")


def test_created_accounts_fit_their_kind_and_generated_passwords_follow_it(services) -> None:
    with pytest.raises(InvalidInput) as role:
        services.accounts.create(CLI, "svc", PW, kind="service", role="administrator")
    assert role.value.field == "role"
    with pytest.raises(InvalidInput) as rights:
        services.accounts.create(CLI, "svc", PW, kind="service", role="service", rights=("unblock",))
    assert rights.value.field == "rights"
    with pytest.raises(InvalidInput):
        services.accounts.create(CLI, "hal", PW, kind="staff", role="service")
    staff, staff_pw = services.accounts.create_with_generated_password(CLI, "hal", rights=("unblock",))
    svc, svc_pw = services.accounts.create_with_generated_password(CLI, "svc", kind="service", role="service")
    assert staff.password_change_required and not svc.password_change_required and staff_pw != svc_pw
    assert services.accounts.authenticate(CLI, "svc", svc_pw).kind == "service"
