"""The enrollment wizard and the self-service pages: every flow, every switch."""

from __future__ import annotations

import re

import pytest

from portal.core.models import User
from portal.core.users import UserFields

from .conftest import ADMIN, Portal, totp_now


def start(portal: Portal, username: str, **fields: object):  # type: ignore[no-untyped-def]
    portal.user(username, **fields)
    b = portal.browser()
    assert b.login(username).headers["Location"] == "/enroll"
    return b


def choose(b, method: str) -> str:  # type: ignore[no-untyped-def]
    b.get("/enroll/method")
    resp = b.post("/enroll/method", {"method": method})
    assert resp.headers["Location"] == "/enroll"
    return b.get("/enroll").headers.get("Location", "")


def add_app(b) -> str:  # type: ignore[no-untyped-def]
    """Authenticator step: show the QR, read the key, prove a code. Returns the key."""
    b.get("/authenticator")
    b.post("/authenticator", {"action": "generate"}, token=True)
    b.get("/authenticator")
    assert b.c.get("/authenticator").headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="oath-secret">([^<]+)<', b.page).group(1).replace(" ", "")
    assert 'src="data:image/svg+xml;base64,' in b.page
    resp = b.post("/authenticator", {"action": "confirm", "code": totp_now(secret)})
    assert resp.status_code == 302, b.page
    return secret


def test_wizard_with_an_authenticator_app(portal: Portal) -> None:
    b = start(portal, "alice")
    b.get("/enroll/method")
    assert "Phone call" not in b.page and "Text message" not in b.page  # no telephony provider yet
    assert choose(b, "oath_token") == "/authenticator"
    b.get("/authenticator")
    b.post("/authenticator", {"action": "generate"})
    b.get("/authenticator")
    secret = re.search(r'id="oath-secret">([^<]+)<', b.page).group(1).replace(" ", "")
    b.post("/authenticator", {"action": "confirm", "code": "123"})
    assert 'id="code-error"' in b.page  # the error sits beside its field
    wrong = "000000" if totp_now(secret) != "000000" else "111111"
    b.post("/authenticator", {"action": "confirm", "code": wrong})
    assert "That code is not correct." in b.page and not portal.info("alice").enrolled
    resp = b.post("/authenticator", {"action": "confirm", "code": totp_now(secret)})
    assert resp.headers["Location"] == "/enroll"
    resp = b.get("/enroll")
    assert resp.headers["Location"] == "/"
    assert b.get("/").status_code == 200 and "You are set up" in b.page
    info = portal.info("alice")
    assert info.enrolled and info.method == "oath_token" and [t.verified for t in info.tokens] == [True]


def test_the_phone_method_is_refused_even_if_posted(portal: Portal) -> None:
    b = start(portal, "alice")
    b.get("/enroll/method")
    b.post("/enroll/method", {"method": "phone_call"})
    assert "Not a valid choice" in b.page


def test_leaving_halfway_resumes_and_never_counts(portal: Portal) -> None:
    b = start(portal, "alice")
    choose(b, "oath_token")
    b.get("/authenticator")
    b.post("/authenticator", {"action": "generate"})
    b.get("/authenticator")
    b.post("/logout")
    assert not portal.info("alice").enrolled
    b2 = portal.browser()
    assert b2.login("alice").headers["Location"] == "/enroll"
    # the method is chosen again in a new session; the core still says what is missing
    b3 = portal.browser()
    b3.login("alice")
    assert choose(b3, "oath_token") == "/authenticator"


def test_wizard_with_the_mobile_app_runs_activation_and_a_real_test(portal: Portal) -> None:
    portal.settings(device_limit=2)
    b = start(portal, "bob")
    assert choose(b, "mobile_app") == "/activate"
    b.get("/activate")
    b.post("/activate", {"action": "complete"})
    assert "Generate an activation code first." in b.page
    b.post("/activate", {"action": "generate"})
    code = re.search(r'id="activation-code">([\d ]+)<', b.page).group(1)
    assert re.fullmatch(r"\d{3}( \d{3}){3}", code)  # digits in groups
    assert re.search(r'id="activation-url">http://[^<]+/PA<', b.page)
    b.post("/activate", {"action": "complete"})
    assert "has not finished activating" in b.page and code in b.page  # still shown
    portal.activate_phone(code.replace(" ", ""))
    resp = b.post("/activate", {"action": "complete"})
    assert resp.headers["Location"] == "/enroll"
    assert b.get("/enroll").headers["Location"] == "/enroll/test"
    b.get("/enroll/test")
    assert "Authenticate me now" in b.page
    b.post("/enroll/test", {"action": "start"})
    assert re.search(r'id="number">\d+<', b.page)
    b.post("/enroll/test", {"action": "check"})
    assert "Not answered yet" in b.page and not portal.info("bob").enrolled
    portal.answer("bob", "denied")
    b.post("/enroll/test", {"action": "check"})
    assert "was not approved" in b.page
    b.post("/enroll/test", {"action": "start"})
    portal.answer("bob")
    assert b.post("/enroll/test", {"action": "check"}).headers["Location"] == "/enroll"
    assert b.get("/enroll").headers["Location"] == "/"
    info = portal.info("bob")
    assert info.enrolled and info.method == "mobile_app" and len(info.devices) == 1


def test_skipping_the_test_by_hand_does_not_enrol(portal: Portal) -> None:
    b = start(portal, "bob")
    choose(b, "mobile_app")
    portal.activate_phone(portal.services.activation.generate(ADMIN, "bob").code)
    assert b.get("/enroll").headers["Location"] == "/enroll/test"
    assert b.get("/").headers["Location"] == "/enroll"
    assert not portal.info("bob").enrolled


def test_a_new_code_voids_the_old_one_and_the_device_limit_holds(portal: Portal) -> None:
    b = start(portal, "bob")
    choose(b, "mobile_app")
    b.get("/activate")
    b.post("/activate", {"action": "generate"})
    first = re.search(r'id="activation-code">([\d ]+)<', b.page).group(1).replace(" ", "")
    b.post("/activate", {"action": "generate"})
    second = re.search(r'id="activation-code">([\d ]+)<', b.page).group(1).replace(" ", "")
    assert first != second
    with pytest.raises(Exception):  # noqa: B017  (CodeInvalid: voided)
        portal.activate_phone(first)
    portal.activate_phone(second)
    b.post("/activate", {"action": "generate"})  # Device limit: 1
    assert "limit" in b.page.lower() and 'id="activation-code"' not in b.page


def test_pin_mode_asks_for_a_strong_pin(portal: Portal) -> None:
    b = start(portal, "pat", mode="pin")
    assert choose(b, "oath_token") == "/enroll/pin"
    b.get("/enroll/pin")
    b.post("/enroll/pin", {"pin": "1234", "confirm": "1234"})
    assert "too easy to guess" in b.page and 'id="pin-error"' in b.page
    b.post("/enroll/pin", {"pin": "4829", "confirm": "4828"})
    assert "The PINs differ." in b.page
    assert b.post("/enroll/pin", {"pin": "4829", "confirm": "4829"}).headers["Location"] == "/enroll"
    assert b.get("/enroll").headers["Location"] == "/authenticator"
    assert portal.services.users.check_pin(ADMIN, "pat", "4829")


def test_security_questions_when_the_fallback_is_on(portal: Portal) -> None:
    portal.settings(use_security_questions_for_fallback=True)
    b = start(portal, "qin")
    choose(b, "oath_token")
    add_app(b)
    assert b.get("/enroll").headers["Location"] == "/enroll/questions"
    resp = b.get("/enroll/questions")
    assert resp.status_code == 200, resp.headers
    ids = [int(v) for v in re.findall(r'<option value="(\d+)"', b.page) if v != "0"]
    ids = sorted(set(ids))
    same = {f"question_{i}": ids[0] for i in range(1, 5)} | {f"answer_{i}": "Answer" for i in range(1, 5)}
    b.post("/enroll/questions", same)
    assert "different question" in b.page
    good = {f"question_{i}": ids[i] for i in range(1, 5)} | {f"answer_{i}": f"Answer {i}" for i in range(1, 5)}
    good["answer_2"] = "x"
    b.post("/enroll/questions", good)
    assert 'id="answer_2-error"' in b.page
    good["answer_2"] = "Answer 2"
    assert b.post("/enroll/questions", good).headers["Location"] == "/enroll"
    assert b.get("/enroll").headers["Location"] == "/"
    assert portal.services.questions.has_answers("qin")


@pytest.mark.parametrize(("setting", "path"), [
    ("allow_users_to_initiate_one_time_bypass", "/bypass"),
    ("allow_users_to_select_language", "/language"),
    ("use_security_questions_for_fallback", "/questions"),
])
def test_a_switch_off_hides_and_refuses_its_page(portal: Portal, setting: str, path: str) -> None:
    b = enrolled(portal, "sam")
    b.get("/")
    assert f'href="{path}"' not in b.page
    assert b.get(path).status_code == 404
    portal.settings(**{setting: True})
    b.get("/")
    assert f'href="{path}"' in b.page
    assert b.get(path).status_code in (200, 302)


def test_activation_switch_off_hides_and_refuses(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    assert b.get("/activate").status_code == 200
    portal.settings(allow_users_to_activate_mobile_app=False)
    b.get("/")
    assert 'href="/activate"' not in b.page
    assert b.get("/activate").status_code == 404


def test_method_selection_switch(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    b.get("/")
    assert 'href="/method"' in b.page
    portal.settings(allow_users_to_select_method=False)
    b.get("/")
    assert 'href="/method"' not in b.page
    assert b.get("/method").status_code == 404 and b.get("/enroll/method").status_code == 404


def test_oath_method_switch_hides_the_authenticator_page(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    portal.settings(method_oath_token=False)
    assert b.get("/authenticator").status_code == 404


def enrolled(portal: Portal, username: str):  # type: ignore[no-untyped-def]
    b = start(portal, username)
    choose(b, "oath_token")
    add_app(b)
    assert b.get("/enroll").headers["Location"] == "/"
    return b


def test_one_time_bypass_is_used_by_the_next_sign_in(portal: Portal) -> None:
    portal.settings(allow_users_to_initiate_one_time_bypass=True, prompt_for_bypass_seconds=True)
    b = enrolled(portal, "sam")
    b.get("/bypass")
    b.post("/bypass", {"seconds": "0"})
    assert 'id="seconds-error"' in b.page
    assert b.post("/bypass", {"seconds": "120"}).headers["Location"] == "/"
    outcome = portal.services.authentication.authenticate(ADMIN, "sam", application="VPN")
    assert outcome.status == "approved" and outcome.reason == "one_time_bypass"
    again = portal.services.authentication.authenticate(ADMIN, "sam", otp="000000")
    assert again.reason != "one_time_bypass"


def test_change_language_switches_the_pages(portal: Portal) -> None:
    portal.settings(allow_users_to_select_language=True)
    b = enrolled(portal, "sam")
    b.get("/language")
    b.post("/language", {"language": "xx"})
    assert "Not a valid choice" in b.page
    assert b.post("/language", {"language": "de"}).headers["Location"] == "/"
    assert portal.info("sam").language == "de"
    b.get("/")
    assert 'lang="de"' in b.page and "Anmeldemethode" in b.page


def test_change_phone_validates_international_numbers(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    assert b.get("/phone").status_code == 200
    b.post("/phone", {"phone": "020 7946 0000"})
    assert 'id="phone-error"' in b.page and "international format" in b.page
    assert b.post("/phone", {"phone": "+44 20 7946 0000"}).headers["Location"] == "/"
    assert portal.info("sam").phone == "+442079460000"
    portal.settings(method_phone_call=False, method_text_message=False)
    assert b.get("/phone").status_code == 404


def test_deactivate_a_device_after_confirming(portal: Portal) -> None:
    portal.settings(device_limit=3)
    b = enrolled(portal, "sam")
    device = portal.activate_phone(portal.services.activation.generate(ADMIN, "sam").code, "Old phone")
    b.get("/")
    assert "Old phone" in b.page and f"/devices/{device}/deactivate" in b.page
    b.get(f"/devices/{device}/deactivate")
    b.post(f"/devices/{device}/deactivate", {})
    assert 'id="confirm-error"' in b.page
    assert b.post(f"/devices/{device}/deactivate", {"confirm": "y"}).headers["Location"] == "/"
    assert [d.status for d in portal.info("sam").devices] == ["deactivated"]
    assert b.get(f"/devices/{device}/deactivate").status_code == 404
    assert b.get("/devices/not-mine/deactivate").status_code == 404


def test_change_method_runs_the_wizard_for_the_new_method(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    assert b.get("/method").headers["Location"] == "/enroll/method"
    assert choose(b, "mobile_app") == "/activate"
    assert portal.info("sam").method == "oath_token"  # unchanged until proven
    portal.activate_phone(portal.services.activation.generate(ADMIN, "sam").code)
    assert b.get("/enroll").headers["Location"] == "/enroll/test"
    b.get("/enroll/test")
    b.post("/enroll/test", {"action": "start"})
    portal.answer("sam")
    b.post("/enroll/test", {"action": "check"})
    assert b.get("/enroll").headers["Location"] == "/"
    assert portal.info("sam").method == "mobile_app"


def test_every_message_has_its_german_translation() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "scripts" / "translations.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    assert (root / "translations" / "de" / "LC_MESSAGES" / "messages.mo").stat().st_size > 1000


def test_the_browser_language_picks_german_before_sign_in(portal: Portal) -> None:
    b = portal.browser()
    b.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert 'lang="de"' in b.page and "Benutzername" in b.page and "Kennwort" in b.page


def test_wizard_with_a_third_party_hardware_token(portal: Portal) -> None:
    seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    portal.services.tokens.add(ADMIN, serial="HW-7001", secret_base32=seed)
    b = start(portal, "hana")
    choose(b, "oath_token")
    b.get("/authenticator")
    assert "hardware-token-link" not in b.page  # association off
    assert b.get("/hardware-token").status_code == 404
    portal.settings(allow_users_to_associate_third_party_oath_token=True)
    b.get("/authenticator")
    assert "hardware-token-link" not in b.page  # in the wizard only with "Prompt for third-party OATH token"
    portal.settings(prompt_for_third_party_oath_token=True)
    b.get("/authenticator")
    assert "hardware-token-link" in b.page
    b.get("/hardware-token")
    b.post("/hardware-token", {"serial": "HW-7001", "code": "000000" if totp_now(seed) != "000000" else "111111"})
    assert "do not match a token" in b.page and not portal.info("hana").tokens
    resp = b.post("/hardware-token", {"serial": "HW-7001", "code": totp_now(seed)})
    assert resp.headers["Location"] == "/enroll"
    assert b.get("/enroll").headers["Location"] == "/"
    info = portal.info("hana")
    assert info.enrolled and [(t.kind, t.serial) for t in info.tokens] == [("hardware", "HW-7001")]


def test_backup_phone_is_asked_only_with_its_prompt(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    b.get("/phone")
    assert 'name="backup_phone"' not in b.page
    b.post("/phone", {"phone": "+44 20 7946 0000", "backup_phone": "+44 20 7946 0001"})
    assert portal.info("sam").backup_phone is None  # not asked, not taken
    portal.settings(prompt_for_backup_phone=True)
    b.get("/phone")
    assert 'name="backup_phone"' in b.page
    b.post("/phone", {"phone": "+44 20 7946 0000", "backup_phone": "12"})
    assert 'id="backup_phone-error"' in b.page
    b.post("/phone", {"phone": "+44 20 7946 0000", "backup_phone": "+44 20 7946 0001"})
    assert portal.info("sam").backup_phone == "+442079460001"


def test_bypass_seconds_are_fixed_without_their_prompt(portal: Portal) -> None:
    portal.settings(allow_users_to_initiate_one_time_bypass=True, one_time_bypass_seconds=600)
    b = enrolled(portal, "sam")
    b.get("/bypass")
    assert 'name="seconds"' not in b.page and "600 seconds" in b.page
    b.post("/bypass", {"seconds": "5"})  # ignored: the administrator's 600 s apply
    with portal.services.db.read() as s:
        row = s.query(User).filter_by(username="sam").one()
        assert (row.bypass_until - portal.services.clock.now()).total_seconds() > 590


def test_change_pin_in_pin_mode_only(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    assert b.get("/pin").status_code == 404  # standard mode
    portal.services.users.update(ADMIN, "sam", UserFields(mode="pin"))
    portal.services.users.set_pin(ADMIN, "sam", None, change_required=True)
    b.get("/")
    assert "asks you to change your PIN" in b.page
    b.get("/pin")
    b.post("/pin", {"pin": "5555", "confirm": "5555"})
    assert 'id="pin-error"' in b.page
    assert b.post("/pin", {"pin": "8264", "confirm": "8264"}).headers["Location"] == "/"
    info = portal.info("sam")
    assert not info.pin_change_required and portal.services.users.check_pin(ADMIN, "sam", "8264")


def test_remove_a_token_but_not_the_one_you_sign_in_with(portal: Portal) -> None:
    b = enrolled(portal, "sam")
    only = portal.info("sam").tokens[0].id
    b.get("/")
    b.post(f"/tokens/{only}/remove")
    b.get("/")
    assert "This is the token you sign in with" in b.page and len(portal.info("sam").tokens) == 1
    second = portal.services.oath.add_hardware_token(ADMIN, "sam", serial="HW-2", secret_base32="GEZDGNBVGY3TQOJQ"
                                                     "GEZDGNBVGY3TQOJQ")
    assert b.post(f"/tokens/{second}/remove").headers["Location"] == "/"
    assert [t.id for t in portal.info("sam").tokens] == [only]
    b.get("/")
    assert b.post("/tokens/99999/remove").status_code == 404
    assert b.post(f"/tokens/{only}/remove", token=False).status_code == 400
