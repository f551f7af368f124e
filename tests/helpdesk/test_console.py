"""The helpdesk console: staff sign-in with a second factor, find, user page, every action
with its right (refusals audited), and the settings page."""

from __future__ import annotations

import json
import re

import pytest

from portal.core.users import UserFields

from .conftest import ADMIN, STAFF_PASSWORD, Console, Staff


def test_staff_need_the_second_factor_and_set_it_up_once(console: Console) -> None:
    console.services.accounts.create(ADMIN, "ada", STAFF_PASSWORD, role="administrator")
    s = Staff(console.app.test_client())
    s.submit("/helpdesk/login", {"username": "ada", "password": STAFF_PASSWORD})
    assert s.get("/helpdesk/").status_code == 302  # the password alone opens nothing
    s.get("/helpdesk/login/code")
    assert 'id="staff-qr"' in s.page and s.c.get("/helpdesk/login/code").headers["Cache-Control"] == "no-store"
    s.secret = re.search(r'id="staff-secret">([^<]+)<', s.page).group(1).replace(" ", "")  # type: ignore[union-attr]
    s.post("/helpdesk/login/code", {"code": "000000" if s.code() != "000000" else "111111"})
    assert "That code is not correct." in s.page
    assert s.post("/helpdesk/login/code", {"code": s.code()}).headers["Location"] == "/helpdesk/"
    assert s.get("/helpdesk/").status_code == 200
    # next time: no QR, just the code; a used code does not work twice
    again = Staff(console.app.test_client())
    again.secret = s.secret
    again.submit("/helpdesk/login", {"username": "ada", "password": STAFF_PASSWORD})
    again.get("/helpdesk/login/code")
    assert "staff-qr" not in again.page
    again.post("/helpdesk/login/code", {"code": s.code()})
    assert "That code is not correct." in again.page
    assert again.post("/helpdesk/login/code", {"code": s.code(1)}).headers["Location"] == "/helpdesk/"


def test_service_accounts_and_portal_users_are_refused(console: Console) -> None:
    console.services.accounts.create(ADMIN, "svc", STAFF_PASSWORD, kind="service", role="service")
    s = Staff(console.app.test_client())
    s.submit("/helpdesk/login", {"username": "svc", "password": STAFF_PASSWORD})
    assert "incorrect" in s.page
    portal_user = Staff(console.app.test_client())
    with portal_user.c.session_transaction() as sess:
        sess["user"], sess["stage"] = "someone", "full"  # a signed-in end user
    assert portal_user.get("/helpdesk/").status_code == 302


def test_find_users_with_wildcards_and_pages(console: Console) -> None:
    for i in range(30):
        console.services.users.create(ADMIN, f"user{i:02d}", UserFields(email=f"user{i:02d}@example.com"))
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/?q=user*")
    assert "30 users found." in s.page and "Page 1 of 2" in s.page
    s.get("/helpdesk/?q=user*&page=2")
    assert s.page.count("<tr>") == 1 + 5
    one = s.get("/helpdesk/?q=user07@example.com")
    assert one.status_code == 302 and one.headers["Location"] == "/helpdesk/users/user07"
    assert [e.detail for e in console.audit("helpdesk.find")][0]  # every lookup is audited
    assert json.loads(console.audit("helpdesk.find")[0].detail)["query"] == "user*"


def test_user_page_shows_devices_tokens_authentications_and_trail(console: Console) -> None:
    sv = console.services
    sv.users.create(ADMIN, "bea", UserFields(display_name="Bea B", phone="+442079460000"))
    sv.oath.add_hardware_token(ADMIN, "bea", serial="HW-1", secret_base32="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    sv.authentication.authenticate(ADMIN, "bea", otp="000000", application="VPN")
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/users/bea")
    for text in ("Bea B", "HW-1", "VPN", "denied", "invalid_code", "oath.add", 'id="trail"'):
        assert text in s.page, text
    assert s.get("/helpdesk/users/nobody").status_code == 404


def test_actions_need_their_right_and_refusals_are_audited(console: Console) -> None:
    console.services.users.create(ADMIN, "cid")
    console.services.users.block(ADMIN, "cid", "Fraud reported")
    s = console.staff("hal", rights=("unblock",))
    s.get("/helpdesk/users/cid")
    assert 'id="action-unblock"' in s.page and 'id="action-reset_pin"' not in s.page and 'id="trail"' not in s.page
    assert s.post("/helpdesk/users/cid/reset_pin", {"reason": "asked"}).status_code == 403
    [refusal] = console.audit("helpdesk.refused")
    assert refusal.actor == "staff:hal" and refusal.target == "cid"
    assert json.loads(refusal.detail)["right"] == "reset_pin"
    assert s.get("/helpdesk/settings").status_code == 403
    s.get("/helpdesk/users/cid")
    s.post("/helpdesk/users/cid/unblock", {})
    assert "reason" in s.page  # a reason is required
    s.get("/helpdesk/users/cid")
    assert s.post("/helpdesk/users/cid/unblock", {"reason": "Verified by phone call"}).status_code == 302
    assert not console.services.users.get("cid").blocked
    [entry] = console.audit("user.unblock")
    assert entry.actor == "staff:hal" and json.loads(entry.detail)["reason"] == "Verified by phone call"


def test_every_action_of_an_administrator(console: Console) -> None:
    sv = console.services
    sv.users.create(ADMIN, "dee")
    token = sv.oath.add_hardware_token(ADMIN, "dee", serial="HW-9", secret_base32="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/users/dee")
    s.post("/helpdesk/users/dee/generate_code", {})
    s.get("/helpdesk/users/dee")
    assert re.search(r'class="code">\d{3} \d{3} \d{3} \d{3}<', s.page) and 'id="shown-qr"' in s.page
    s.get("/helpdesk/users/dee")
    assert 'id="shown"' not in s.page  # shown once
    s.post("/helpdesk/users/dee/reset_pin", {"reason": "forgotten"})
    s.get("/helpdesk/users/dee")
    pin = re.search(r'class="code">(\d+)<', s.page).group(1)  # type: ignore[union-attr]
    assert sv.users.check_pin(ADMIN, "dee", pin) and sv.users.get("dee").pin_change_required
    s.post("/helpdesk/users/dee/bypass", {"reason": "phone lost", "seconds": "600"})
    assert sv.authentication.authenticate(ADMIN, "dee", application="VPN").reason == "one_time_bypass"
    s.get("/helpdesk/users/dee")
    s.post("/helpdesk/users/dee/disable", {"reason": "left the company"})
    assert "confirmation" in s.page and sv.users.get("dee").enabled  # destructive: confirm first
    s.get("/helpdesk/users/dee")
    s.post("/helpdesk/users/dee/disable", {"reason": "left the company", "confirm": "y"})
    assert not sv.users.get("dee").enabled
    s.get("/helpdesk/users/dee")
    s.post("/helpdesk/users/dee/enable", {"reason": "came back"})
    assert sv.users.get("dee").enabled
    s.get("/helpdesk/users/dee")
    s.post(f"/helpdesk/users/dee/tokens/{token}/remove", {"reason": "returned", "confirm": "y"})
    assert sv.users.get("dee").tokens == ()
    code = sv.activation.generate(ADMIN, "dee").code
    from ..selfservice.conftest import Portal

    device = Portal(console.app, sv).activate_phone(code)
    s.get("/helpdesk/users/dee")
    s.post(f"/helpdesk/users/dee/devices/{device}/deactivate", {"reason": "stolen", "confirm": "y"})
    assert [d.status for d in sv.users.get("dee").devices] == ["deactivated"]
    for _ in range(5):
        sv.authentication.authenticate(ADMIN, "dee", otp="000000")
    s.get("/helpdesk/users/dee")
    assert "locked until" in s.page
    s.post("/helpdesk/users/dee/clear_lockout", {})
    assert sv.users.get("dee").locked_until is None
    s.get("/helpdesk/users/dee")
    s.post("/helpdesk/users/dee/reset_questions", {"reason": "asked", "confirm": "y"})
    assert not sv.questions.has_answers("dee")
    s.get("/helpdesk/users/dee")
    assert s.post("/helpdesk/users/dee/no_such_action", {}).status_code == 404


def test_settings_are_validated_saved_and_audited(console: Console) -> None:
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/settings")
    assert "Allow users to log in" in s.page and "Device limit" in s.page
    assert "no phone/SMS provider is configured" in s.page
    form = {d: "on" for d in ("allow_users_to_log_in", "allow_user_enrollment")}
    form.update(device_limit="99", account_name="Contoso MFA")
    resp = s.post("/helpdesk/settings", form)
    assert resp.status_code == 400 and 'id="device_limit-error"' in s.page
    assert console.services.settings.get()["account_name"] == "MFA Portal"  # nothing saved
    s.get("/helpdesk/settings")
    form["device_limit"] = "3"
    assert s.post("/helpdesk/settings", form).status_code == 200 and "Saved." in s.page
    assert console.services.settings.get()["device_limit"] == 3
    changed = {json.loads(e.detail)["new"] for e in console.audit("settings.update") if e.target == "device_limit"}
    assert changed == {3}


@pytest.mark.parametrize("path", ["/helpdesk/", "/helpdesk/users/x", "/helpdesk/settings"])
def test_pages_need_a_signed_in_staff_member(console: Console, path: str) -> None:
    resp = console.app.test_client().get(path)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/helpdesk/login")


def test_audit_view_filters_and_exports_csv(console: Console) -> None:
    sv = console.services
    sv.users.create(ADMIN, "eli")
    sv.users.block(ADMIN, "eli", '=HYPERLINK("http://evil")')
    sv.users.unblock(ADMIN, "eli", "checked")
    sv.users.create(ADMIN, "fox")
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/audit?user=eli")
    assert "user.block" in s.page and "user.unblock" in s.page and "fox" not in s.page
    s.get("/helpdesk/audit?action=user.*&actor=staff:setup")
    assert "user.create" in s.page
    assert s.get("/helpdesk/audit?since=yesterday").status_code == 400 and 'id="f-since-error"' in s.page
    resp = s.c.get("/helpdesk/audit.csv?user=eli")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["user.create", "user.block", "user.unblock"]
    assert '=HYPERLINK' in rows[1]["detail"] and not rows[1]["detail"].startswith("=")
    from portal.helpdesk.reports import _cell

    assert [_cell(x) for x in ("=1+1", "+1", "-1", "@SUM(A1)", "plain", None)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "plain", ""]
    assert console.audit("helpdesk.audit_export")


def test_reports_show_authentications_fraud_bypasses_and_blocked_users(console: Console) -> None:
    sv = console.services
    sv.users.create(ADMIN, "gia")
    sv.authentication.authenticate(ADMIN, "gia", otp="000000")
    started = sv.authentication.authenticate(ADMIN, "gia", asynchronous=True)
    sv.auth_requests.complete(ADMIN, started.transaction_id, "fraud")
    sv.users.create(ADMIN, "hub")
    sv.enrollment.set_bypass_by_staff(ADMIN, "hub", 300, "travel")
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/reports")
    assert 'id="per-day"' in s.page and "denied" in s.page and "fraud" in s.page
    assert 'id="frauds"' in s.page and "gia" in s.page
    assert 'id="bypasses"' in s.page and "hub" in s.page
    assert 'id="blocked"' in s.page and "Fraud reported" in s.page
    helper = console.staff("ivy")
    assert helper.get("/helpdesk/reports").status_code == 403 and helper.get("/helpdesk/audit").status_code == 403


def test_change_phone_method_and_mode(console: Console) -> None:
    sv = console.services
    sv.users.create(ADMIN, "jon")
    s = console.staff("kay", rights=("change_phone",))
    s.get("/helpdesk/users/jon")
    assert 'id="action-change_phone"' in s.page and 'id="action-change_method"' not in s.page
    s.post("/helpdesk/users/jon/phone", {"phone": "020 7946", "reason": "new desk"})
    assert "phone:" in s.page and "international format" in s.page
    s.get("/helpdesk/users/jon")
    s.post("/helpdesk/users/jon/phone", {"phone": "+44 20 7946 0001", "phone_extension": "12", "reason": "new desk"})
    assert sv.users.get("jon").phone == "+442079460001" and sv.users.get("jon").phone_extension == "12"
    s.get("/helpdesk/users/jon")
    refused = s.post("/helpdesk/users/jon/method", {"method": "oath_token", "mode": "pin", "reason": "x"})
    assert refused.status_code == 403
    admin = console.staff("lea", role="administrator")
    admin.get("/helpdesk/users/jon")
    admin.post("/helpdesk/users/jon/method", {"method": "oath_token", "mode": "pin", "reason": "asked by user"})
    info = sv.users.get("jon")
    assert (info.method, info.mode) == ("oath_token", "pin")
    assert [json.loads(e.detail)["reason"] for e in console.audit("helpdesk.change_method")] == ["asked by user"]


def test_a_broad_search_says_more_match_and_asks_to_narrow(console: Console, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from portal.core import search as search_module

    monkeypatch.setattr(search_module, "COUNT_LIMIT", 5)
    for i in range(8):
        console.services.users.create(ADMIN, f"wide{i}")
    s = console.staff("ada", role="administrator")
    s.get("/helpdesk/?q=*ide*")
    assert "More than 5 users match; 5 are listed. Narrow the search" in s.page
    assert json.loads(console.audit("helpdesk.find")[-1].detail) == {"query": "*ide*", "results": 5, "more": True}
    s.get("/helpdesk/?q=wide1")
    assert s.page.count("More than") == 0
