"""The console as staff use it, in Debian's Chromium: sign in (setting up the authenticator app),
find a user among many, generate an activation code, unblock a fraud-blocked user, read the audit
trail. Screenshots under test-output/browser/helpdesk-*.png; axe-core checks every step."""

from __future__ import annotations

import re
import subprocess

from portal.core.audit import Actor
from portal.core.users import UserFields

from ..selfservice.test_browser import page, served, shot  # noqa: F401  (fixtures)
from .conftest import STAFF_PASSWORD

ADMIN = Actor("staff:setup")


def test_staff_find_a_user_generate_a_code_unblock_and_read_the_trail(served, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    portal, base = served
    sv = portal.services
    for i in range(120):
        sv.users.create(ADMIN, f"emp{i:03d}", UserFields(display_name=f"Employee {i:03d}"))
    sv.users.create(ADMIN, "mara", UserFields(display_name="Mara Lind", email="mara@example.com"))
    started = sv.authentication.authenticate(ADMIN, "mara", asynchronous=True)
    sv.auth_requests.complete(Actor("device:x"), started.transaction_id, "fraud")
    sv.accounts.create(ADMIN, "hd1", STAFF_PASSWORD, role="helpdesk",
                       rights=("generate_activation_code", "unblock", "view_audit"))

    page.goto(f"{base}/helpdesk/login")
    page.get_by_label("Username").fill("hd1")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("#staff-qr")
    shot(page, "helpdesk-1-totp-setup")
    secret = page.locator("#staff-secret").inner_text().replace(" ", "")
    code = subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/helpdesk/")

    page.get_by_label(re.compile("Username, name, e-mail or phone")).fill("emp*")
    page.get_by_role("button", name="Find").click()
    page.wait_for_selector("#result-count")
    assert "120 users found." in page.content()
    shot(page, "helpdesk-2-find-many")
    page.get_by_label(re.compile("Username, name, e-mail or phone")).fill("mara*")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(f"{base}/helpdesk/users/mara")
    assert "blocked" in page.locator("#state").inner_text()
    shot(page, "helpdesk-3-user-blocked")

    page.locator("#action-unblock input[name=reason]").fill("Checked with Mara by phone: it was not her")
    page.locator("#action-unblock button").click()
    page.wait_for_url(f"{base}/helpdesk/users/mara")
    assert page.locator("#state").inner_text() == "active"
    assert not sv.users.get("mara").blocked
    shot(page, "helpdesk-4-unblocked")

    # a blocked user gets no code (the core refuses); now unblocked, the code is shown once, with its QR
    page.locator("#action-generate_code button").click()
    page.wait_for_selector("#shown-qr")
    assert re.search(r"\d{3} \d{3} \d{3} \d{3}", page.locator("#shown").inner_text())
    shot(page, "helpdesk-5-activation-code")
    trail = page.locator("#trail").inner_text()
    assert "user.unblock" in trail and "staff:hd1" in trail and "auth.fraud" in trail
    assert "activation.generate" in trail


def test_first_administrator_replaces_the_printed_password_and_adds_a_helpdesk_account(served, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    portal, base = served
    sv = portal.services
    if sv.accounts.count():  # the served app may hold accounts already; bootstrap wants none
        from portal.core.models import StaffAccount

        with sv.db.write() as s:
            s.query(StaffAccount).delete()
    username, printed = sv.accounts.bootstrap(None, None)

    page.goto(f"{base}/helpdesk/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(printed)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_selector("#staff-qr")
    secret = page.locator("#staff-secret").inner_text().replace(" ", "")
    code = subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/helpdesk/account/password")  # the printed password goes first
    shot(page, "helpdesk-staff-1-change-password")
    page.get_by_label("Current password").fill(printed)
    page.get_by_label("New password (at least 12 characters)").fill("my own admin password 1")
    page.get_by_label("New password again").fill("my own admin password 1")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{base}/helpdesk/")

    page.get_by_role("link", name="Staff").click()
    page.wait_for_selector("#accounts")
    shot(page, "helpdesk-staff-2-list")
    page.locator("#new-account").click()
    page.get_by_label("Username").fill("hd2")
    page.get_by_label("Display name").fill("Helpdesk Two")
    page.get_by_label("Unblock").check()
    page.get_by_label("View audit and reports").check()
    shot(page, "helpdesk-staff-3-new")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/helpdesk/staff/hd2")
    password = page.locator("#shown-password").inner_text()
    shot(page, "helpdesk-staff-4-created")
    hd2 = sv.accounts.authenticate(Actor("t"), "hd2", password)
    assert hd2.password_change_required and hd2.rights == frozenset({"unblock", "view_audit"})
    assert sv.accounts.authenticate(Actor("t"), username, "my own admin password 1").username == username
