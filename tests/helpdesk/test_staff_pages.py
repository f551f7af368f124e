"""Administrators manage staff accounts from the console; everyone changes their own
password, and a generated one must be changed before anything else."""

from __future__ import annotations

import json
import re

from portal.core.audit import Actor

from .conftest import ADMIN, STAFF_PASSWORD, Console, Staff

STAFF = "/helpdesk/staff"


def _act(b: Staff, path: str, data: dict[str, str], page: str = "/helpdesk/") -> object:
    """Post a form as shown on a page (the console's own pages carry the CSRF token)."""
    b.get(page)
    return b.post(path, data)


def _shown_password(page: str) -> str:
    m = re.search(r'id="shown-password">([^<]+)<', page)
    assert m, page
    return m.group(1)


def test_an_administrator_creates_a_helpdesk_account_which_changes_its_password_first(console: Console) -> None:
    admin = console.staff("ada", role="administrator")
    admin.get("/helpdesk/staff")
    assert admin.get("/helpdesk/staff").status_code == 200 and "ada" in admin.page
    created = admin.submit("/helpdesk/staff/new", {"username": "hal", "kind": "staff", "role": "helpdesk",
                                                   "rights": ["unblock", "view_audit"], "display_name": "Hal"})
    assert created.status_code == 302 and created.headers["Location"] == "/helpdesk/staff/hal"
    admin.get("/helpdesk/staff/hal")
    password = _shown_password(admin.page)
    admin.get("/helpdesk/staff/hal")
    assert "shown-password" not in admin.page  # shown once
    entry = console.audit("account.create")[-1]
    assert entry.actor == "staff:ada" and json.loads(entry.detail)["rights"] == ["unblock", "view_audit"]

    hal = Staff(console.app.test_client())
    resp = hal.sign_in("hal", password)
    assert resp.headers["Location"] == "/helpdesk/"
    assert hal.get("/helpdesk/").headers["Location"] == "/helpdesk/account/password"  # nothing else first
    assert hal.get("/helpdesk/audit").headers["Location"] == "/helpdesk/account/password"
    hal.get("/helpdesk/account/password")
    assert "Choose your own" in hal.page
    bad = hal.submit("/helpdesk/account/password", {"current_password": password, "new_password": "a-new-password-1",
                                                    "repeat": "a-different-one-1"})
    assert bad.status_code == 400 and "The two new passwords differ." in hal.page
    same = hal.submit("/helpdesk/account/password", {"current_password": password, "new_password": password,
                                                     "repeat": password})
    assert same.status_code == 400 and "must differ from the current password" in hal.page
    done = hal.submit("/helpdesk/account/password", {"current_password": password,
                                                     "new_password": "a-new-password-1", "repeat": "a-new-password-1"})
    assert done.headers["Location"] == "/helpdesk/"
    assert hal.get("/helpdesk/").status_code == 200


def test_helpdesk_accounts_cannot_manage_staff_and_the_refusal_is_audited(console: Console) -> None:
    console.services.accounts.create(ADMIN, "ada", STAFF_PASSWORD, role="administrator")
    hal = console.staff("hal", rights=("unblock", "view_audit", "enable_disable"))
    assert hal.get("/helpdesk/staff").status_code == 403
    evil = {"username": "evil", "kind": "staff", "role": "administrator"}
    assert _act(hal, "/helpdesk/staff/new", evil).status_code == 403
    assert _act(hal, "/helpdesk/staff/hal", {"role": "administrator"}).status_code == 403
    assert _act(hal, "/helpdesk/staff/ada/reset_password", {"reason": "x"}).status_code == 403
    refused = [json.loads(e.detail)["right"] for e in console.audit("helpdesk.refused")]
    assert refused == ["administrator"] * 4
    assert console.services.accounts.principal("hal").role == "helpdesk"
    assert "Staff</a>" not in hal.get("/helpdesk/").get_data(as_text=True)


def test_rights_changed_by_an_administrator_apply_at_the_next_request(console: Console) -> None:
    console.services.users.create(ADMIN, "cid")
    console.services.users.block(ADMIN, "cid", "Fraud reported")
    admin = console.staff("ada", role="administrator")
    hal = console.staff("hal", rights=("view_audit",))
    assert _act(hal, "/helpdesk/users/cid/unblock", {"reason": "called"}).status_code == 403
    saved = admin.submit("/helpdesk/staff/hal", {"role": "helpdesk", "rights": ["view_audit", "unblock"],
                                                 "display_name": "Hal"})
    assert saved.status_code == 200 and "Saved." in admin.page
    assert _act(hal, "/helpdesk/users/cid/unblock", {"reason": "called"}).status_code == 302
    bad = admin.submit("/helpdesk/staff/hal", {"role": "helpdesk", "rights": ["fly"]})
    assert bad.status_code == 400 and "rights: must be one of" in admin.page
    assert console.services.accounts.principal("hal").rights == frozenset({"view_audit", "unblock"})


def test_reset_password_reset_authenticator_disable_and_enable(console: Console) -> None:
    admin = console.staff("ada", role="administrator")
    hal = console.staff("hal", rights=("unblock",))
    assert _act(admin, "/helpdesk/staff/hal/reset_totp", {"reason": "new phone"}, STAFF).status_code == 400  # confirm
    sure = {"reason": "new phone", "confirm": "y"}
    assert _act(admin, "/helpdesk/staff/hal/reset_totp", sure, STAFF).status_code == 302
    assert console.services.accounts.info("hal").totp == "none"
    again = Staff(console.app.test_client())
    again.submit("/helpdesk/login", {"username": "hal", "password": STAFF_PASSWORD})
    again.get("/helpdesk/login/code")
    assert 'id="staff-qr"' in again.page  # set up anew at the next sign-in

    _act(admin, "/helpdesk/staff/hal/reset_password", {"reason": "forgot it"}, STAFF)
    admin.get("/helpdesk/staff/hal")
    new_password = _shown_password(admin.page)
    assert "must change password" in admin.page
    wrong = Staff(console.app.test_client())
    wrong.submit("/helpdesk/login", {"username": "hal", "password": STAFF_PASSWORD})
    assert "incorrect" in wrong.page

    assert _act(admin, "/helpdesk/staff/hal/disable", {"reason": "left"}, STAFF).status_code == 400  # confirm
    assert _act(admin, "/helpdesk/staff/hal/disable", {"reason": "left", "confirm": "y"}, STAFF).status_code == 302
    assert hal.get("/helpdesk/").headers["Location"] == "/helpdesk/login"  # a live session ends too
    locked_out = Staff(console.app.test_client())
    locked_out.submit("/helpdesk/login", {"username": "hal", "password": new_password})
    assert "incorrect" in locked_out.page
    assert _act(admin, "/helpdesk/staff/hal/enable", {"reason": "back"}, STAFF).status_code == 302
    assert console.services.accounts.info("hal").enabled
    assert [e.target for e in console.audit("account.disable") + console.audit("staff.totp_reset")] == ["hal", "hal"]
    gone = {"reason": "x", "confirm": "y"}
    assert _act(admin, "/helpdesk/staff/nobody/disable", gone, STAFF).status_code == 404
    assert _act(admin, "/helpdesk/staff/hal/explode", {"reason": "x"}, STAFF).status_code == 404


def test_the_console_will_not_remove_its_last_administrator(console: Console) -> None:
    admin = console.staff("ada", role="administrator")
    resp = admin.submit("/helpdesk/staff/ada", {"role": "helpdesk"})
    assert resp.status_code == 400 and "own account" in admin.page
    resp = _act(admin, "/helpdesk/staff/ada/disable", {"reason": "test", "confirm": "y"}, STAFF)
    assert resp.status_code == 409 and "own account" in admin.page
    console.services.accounts.create(ADMIN, "bob", STAFF_PASSWORD, role="administrator")
    console.services.accounts.set_enabled(Actor("staff:ada"), "bob", False)
    assert console.services.accounts.principal("ada").role == "administrator"


def test_a_service_account_for_a_frontend(console: Console) -> None:
    admin = console.staff("ada", role="administrator")
    admin.submit("/helpdesk/staff/new", {"username": "frontend1", "kind": "service", "sdk": "on",
                                         "role": "administrator", "rights": ["unblock"]})
    admin.get("/helpdesk/staff/frontend1")
    password = _shown_password(admin.page)
    p = console.services.accounts.authenticate_sdk(Actor("x"), "frontend1", password)
    assert p.kind == "service" and p.role == "service" and not p.rights and not p.password_change_required
    s = Staff(console.app.test_client())
    s.submit("/helpdesk/login", {"username": "frontend1", "password": password})
    assert "incorrect" in s.page  # service accounts never sign in to the console
    admin.submit("/helpdesk/staff/frontend1", {"display_name": "Frontend in the DMZ"})  # SDK box unticked
    assert console.services.accounts.info("frontend1").groups == ()


def test_new_account_form_names_the_bad_field(console: Console) -> None:
    admin = console.staff("ada", role="administrator")
    bad = admin.submit("/helpdesk/staff/new", {"username": "no spaces please", "kind": "staff", "role": "helpdesk"})
    assert bad.status_code == 400 and 'id="username-error"' in admin.page
    dup = admin.submit("/helpdesk/staff/new", {"username": "ADA", "kind": "staff", "role": "helpdesk"})
    assert dup.status_code == 400 and "already exists" in admin.page


def test_the_bootstrap_administrator_must_replace_the_printed_password(console: Console) -> None:
    console.services.accounts.create(ADMIN, "placeholder", STAFF_PASSWORD)  # bootstrap needs an empty table
    with console.services.db.write() as s:
        from portal.core.models import StaffAccount

        s.query(StaffAccount).delete()
    username, generated = console.services.accounts.bootstrap(None, None)
    admin = Staff(console.app.test_client())
    admin.sign_in(username, generated)
    assert admin.get("/helpdesk/settings").headers["Location"] == "/helpdesk/account/password"
