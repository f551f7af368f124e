"""The portal as a person uses it: Debian's Chromium driven by Playwright against the app
served over HTTP on 127.0.0.1. The QR codes are read back from screenshots with zbarimg,
codes come from oathtool, and every step leaves a screenshot under test-output/browser/."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from werkzeug.serving import make_server

from portal.phone import PhoneClient, PhoneState

from ..conftest import OUTPUT, app_settings, require_outside
from .conftest import ADMIN, PASSWORD, Portal

CHROMIUM = "/usr/bin/chromium"
SHOTS = OUTPUT / "browser"
AXE = Path(__file__).resolve().parents[1] / "tools" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[Portal, str]]:
    from portal import create_app

    require_outside("Debian chromium", Path(CHROMIUM).exists())
    require_outside("zbarimg", shutil.which("zbarimg") is not None)
    require_outside("oathtool", shutil.which("oathtool") is not None)
    require_outside("axe-core (make test installs it)", AXE.exists())
    holder: dict[str, object] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start),  # type: ignore[operator]
                         threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"  # links come from BASE_URL: build the app for this port
    app = create_app(app_settings(tmp_path, sqlite_url, BASE_URL=base))
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    services = app.extensions["portal.services"]
    try:
        yield Portal(app, services), base
    finally:
        server.shutdown()
        services.close()


@pytest.fixture
def page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 360, "height": 780}, locale="en-GB")
        pg = context.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        yield pg
        context.close()
        browser.close()
        assert not [e for e in errors if "Content Security Policy" in e], errors  # the CSP holds


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Screenshot the step, and check it as a person with a phone or a screen reader meets it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, f"{name}: scrolls sideways at 360 px"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # through DevTools: the page's CSP rightly refuses a script tag
    result = page.evaluate("""() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa',
                              'wcag21a', 'wcag21aa']}})""")
    problems = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert problems == [], f"{name}: {problems}"
    return path


def decode_qr(page, selector: str, name: str) -> str:  # type: ignore[no-untyped-def]
    path = SHOTS / f"{name}.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(selector).screenshot(path=str(path))
    out = subprocess.run(["zbarimg", "--raw", "--quiet", "--nodbus", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    shot(page, f"signin-{username}")


def test_a_new_user_enrols_with_an_authenticator_app(served, page) -> None:  # type: ignore[no-untyped-def]
    portal, base = served
    portal.user("erin", display_name="Erin Example")
    sign_in(page, base, "erin")
    page.wait_for_url(f"{base}/enroll/method")
    shot(page, "oath-1-method")
    page.get_by_label(re.compile("Authenticator app")).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}/authenticator")
    page.get_by_role("button", name="Show the QR code").click()
    page.wait_for_selector("#oath-qr")
    shot(page, "oath-2-qr")
    uri = decode_qr(page, "#oath-qr", "oath-qr-only")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/MFA Portal:erin"
    query = parse_qs(parts.query)
    assert query["issuer"] == ["MFA Portal"]
    secret = query["secret"][0]
    code = subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Verify and add").click()
    page.wait_for_url(f"{base}/")
    assert "You are set up" in page.content()
    shot(page, "oath-3-done")
    info = portal.info("erin")
    assert info.enrolled and info.method == "oath_token"


def test_a_phone_is_activated_from_the_pages_code_and_url(served, page) -> None:  # type: ignore[no-untyped-def]
    portal, base = served
    portal.user("finn")
    sign_in(page, base, "finn")
    page.wait_for_url(f"{base}/enroll/method")
    page.get_by_label(re.compile("Mobile app")).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}/activate")
    shot(page, "app-1-activate")
    page.get_by_role("button", name="Generate activation code").click()
    page.wait_for_selector("#activation-qr")
    shot(page, "app-2-code")
    code = page.locator("#activation-code").inner_text().replace(" ", "")
    url = page.locator("#activation-url").inner_text()
    assert url == f"{base}/PA" and re.fullmatch(r"\d{12}", code)
    payload = decode_qr(page, "#activation-qr", "app-qr-only")
    assert payload.startswith(f"{url}?") and parse_qs(urlsplit(payload).query)["code"] == [code]
    # The reference phone reads the same QR image and activates against /PA.
    state = SHOTS.parent / "finn-phone.json"
    done = subprocess.run([sys.executable, "-m", "portal.phone", "--state", str(state), "activate", "--qr",
                           str(SHOTS / "app-qr-only.png"), "--name", "Finn's phone"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Activated MFA Portal (finn)" in done.stdout and state.stat().st_mode & 0o777 == 0o600
    phone = PhoneClient(PhoneState.load(state))
    page.wait_for_url(f"{base}/enroll/test", timeout=15_000)  # portal.js saw the activation
    shot(page, "app-3-test")
    page.get_by_role("button", name="Authenticate me now").click()
    page.wait_for_selector("#number")
    number = int(page.locator("#number").inner_text())
    pending = portal.services.auth_requests.pending_for_user("finn")
    assert pending and pending[-1].number_to_match == number
    shot(page, "app-4-waiting")
    [request] = phone.pending(wait=5)
    assert number in request["number_choices"]
    assert phone.answer(request["transaction_id"], "approve", number=number)["status"] == "approved"
    page.wait_for_url(f"{base}/", timeout=15_000)  # continued on its own once approved
    shot(page, "app-5-done")
    assert "Finn&#39;s phone" in page.content() or "Finn's phone" in page.content()
    assert portal.info("finn").enrolled
    # ... and the next sign-in is approved on the phone
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "finn")
    page.wait_for_selector("#number")
    number = int(page.locator("#number").inner_text())
    [request] = phone.pending(wait=5)
    phone.answer(request["transaction_id"], "approve", number=number)
    page.wait_for_url(f"{base}/", timeout=15_000)
    shot(page, "app-6-signed-in")
    assert portal.services.auth_requests.pending_for_user("finn") == []
    assert ADMIN
