"""Two tiers as MFA Server deployed them: a ``server`` (database, SDK) and a ``frontend``
(no database) that reaches it only through the SDK, each under gunicorn with 2 workers."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import ENCRYPTION_KEY_B64, SECRET_KEY
from tests.e2e.procs import Gunicorn, base_env, flask, free_port
from tests.selfservice.conftest import token_of, totp_now

pytestmark = pytest.mark.slow
SVC_USER, SVC_PASSWORD = "svc-frontend", "frontend-service-password"


def test_frontend_reaches_the_server_store_only_through_the_sdk(tmp_path: Path) -> None:
    db = tmp_path / "server.db"
    sport, fport = free_port(), free_port()
    server_env = base_env(PORTAL_ROLE="server", PORTAL_BASE_URL=f"http://127.0.0.1:{sport}",
                          PORTAL_DATABASE_URL=f"sqlite:///{db}", PORTAL_SECRET_KEY=SECRET_KEY,
                          PORTAL_ENCRYPTION_KEY=ENCRYPTION_KEY_B64, PORTAL_INSTANCE_PATH=str(tmp_path / "s"),
                          PORTAL_ADMIN_USERNAME=SVC_USER, PORTAL_ADMIN_PASSWORD=SVC_PASSWORD)
    front_env = base_env(PORTAL_ROLE="frontend", PORTAL_BASE_URL=f"http://127.0.0.1:{fport}",
                         PORTAL_SECRET_KEY=SECRET_KEY, PORTAL_INSTANCE_PATH=str(tmp_path / "f"),
                         PORTAL_SDK_URL=f"http://127.0.0.1:{sport}/PfWsSdk.asmx",
                         PORTAL_SDK_USERNAME=SVC_USER, PORTAL_SDK_PASSWORD=SVC_PASSWORD)
    setup = flask(["setup"], server_env)
    assert "First staff account created: svc-frontend" in setup.stdout
    assert "one-time password" not in setup.stdout  # the password came from configuration

    with Gunicorn(server_env, sport, log=tmp_path / "server.log") as server, \
            Gunicorn(front_env, fport, log=tmp_path / "frontend.log") as frontend, requests.Session() as http:
        http.trust_env = False
        server.wait_ready()
        frontend.wait_ready()

        health = http.get(frontend.url + "/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "role": "frontend", "sdk": "ok"}
        # The frontend serves no SDK and holds no database.
        assert http.post(frontend.url + "/PfWsSdk.asmx", timeout=5).status_code == 404
        assert not list((tmp_path / "f").glob("*.db"))

        # A write through the frontend lands in the server's store ...
        created = flask(["create-user", "carol", "--phone", "+44 20 7946 0002", "--display-name", "Carol"],
                        front_env)
        assert created.stdout.strip() == "Created user carol."
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT username, phone, display_name FROM users").fetchone()
        assert row == ("carol", "+442079460002", "Carol")
        # ... and the server's audit names the frontend's service account as the actor.
        with sqlite3.connect(db) as conn:
            actors = {r[0] for r in conn.execute("SELECT actor FROM audit_log WHERE action = 'user.create'")}
        assert actors == {f"staff:{SVC_USER}"}
        # Errors cross the tier with their meaning intact.
        dup = flask(["create-user", "CAROL"], front_env, check=False)
        assert dup.returncode != 0 and "already exists" in dup.stderr
        info = flask(["user-info", "carol"], front_env)
        assert "phone: +442079460002" in info.stdout

        # The user portal runs on the frontend, every read and write over the SDK.
        created = flask(["create-user", "dora", "--ask-password"], {**front_env}, check=False,
                        input_text="dora-password-123\ndora-password-123\n")
        assert created.returncode == 0, created.stderr
        enrol_through_the_portal(http, frontend.url, "dora", "dora-password-123")
        with sqlite3.connect(db) as conn:
            enrolled, method = conn.execute("SELECT enrolled_at, method FROM users WHERE username = 'dora'").fetchone()
        assert enrolled is not None and method == "oath_token"

        server.stop()
        down = http.get(frontend.url + "/healthz", timeout=20)
        assert down.status_code == 503 and down.json()["sdk"] == "unreachable"


def enrol_through_the_portal(http: requests.Session, url: str, username: str, password: str) -> None:
    """Sign in and run the wizard with an authenticator app, as a browser would."""
    def post(path: str, data: dict[str, str]) -> requests.Response:
        page = http.get(url + path, timeout=10)
        assert page.status_code == 200, (path, page.status_code)
        return http.post(url + path, data={"csrf_token": token_of(page.text), **data}, timeout=10,
                         allow_redirects=False)

    assert post("/login", {"username": username, "password": password}).headers["Location"] == "/enroll"
    assert post("/enroll/method", {"method": "oath_token"}).status_code == 302
    assert http.get(url + "/enroll", timeout=10, allow_redirects=False).headers["Location"] == "/authenticator"
    assert post("/authenticator", {"action": "generate"}).status_code == 302
    page = http.get(url + "/authenticator", timeout=10)  # another worker may answer: the state is in the cookie
    secret = re.search(r'id="oath-secret">([^<]+)<', page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    confirmed = http.post(url + "/authenticator", timeout=10, allow_redirects=False,
                          data={"csrf_token": token_of(page.text), "action": "confirm", "code": totp_now(secret)})
    assert confirmed.headers["Location"] == "/enroll"
    assert http.get(url + "/enroll", timeout=10, allow_redirects=False).headers["Location"] == "/"
    assert "You are set up" in http.get(url + "/", timeout=10).text


def test_phone_round_trip_through_the_frontend(tmp_path: Path) -> None:
    """Application → SDK (server) → phone polling the frontend's /PA → answer relayed → result."""
    from portal.phone import PhoneClient
    from portal.sdk.soap_client import SoapBackend

    db = tmp_path / "server.db"
    sport, fport = free_port(), free_port()
    server_env = base_env(PORTAL_ROLE="server", PORTAL_BASE_URL=f"http://127.0.0.1:{sport}",
                          PORTAL_DATABASE_URL=f"sqlite:///{db}", PORTAL_SECRET_KEY=SECRET_KEY,
                          PORTAL_ENCRYPTION_KEY=ENCRYPTION_KEY_B64, PORTAL_INSTANCE_PATH=str(tmp_path / "s"),
                          PORTAL_ADMIN_USERNAME=SVC_USER, PORTAL_ADMIN_PASSWORD=SVC_PASSWORD,
                          PORTAL_MOBILE_APP_URL=f"http://127.0.0.1:{fport}/PA/")
    front_env = base_env(PORTAL_ROLE="frontend", PORTAL_BASE_URL=f"http://127.0.0.1:{fport}",
                         PORTAL_SECRET_KEY=SECRET_KEY, PORTAL_INSTANCE_PATH=str(tmp_path / "f"),
                         PORTAL_SDK_URL=f"http://127.0.0.1:{sport}/PfWsSdk.asmx",
                         PORTAL_SDK_USERNAME=SVC_USER, PORTAL_SDK_PASSWORD=SVC_PASSWORD)
    flask(["setup"], server_env)
    flask(["create-user", "pia"], server_env)
    with Gunicorn(server_env, sport, log=tmp_path / "server.log") as server, \
            Gunicorn(front_env, fport, log=tmp_path / "frontend.log") as frontend, requests.Session() as http:
        http.trust_env = False
        server.wait_ready()
        frontend.wait_ready()
        app = SoapBackend(server.url + "/PfWsSdk.asmx", SVC_USER, SVC_PASSWORD, timeout=10)
        code = app.generate_activation_code("pia")
        assert code.url == frontend.url + "/PA"  # PORTAL_MOBILE_APP_URL on the server
        phone = PhoneClient.activate(code.url, code.code, device_name="Pia's phone")
        assert phone.state.username == "pia"
        page = http.get(frontend.url + "/PA", timeout=10)
        assert page.status_code == 200 and "SDK connection: OK" in page.text

        # asynchronous: start, phone waits on the frontend (either worker), answers, status says approved
        for _ in range(3):
            started = app.authenticate_user("pia", application_name="VPN", asynchronous=True, number_matching=True)
            [req] = phone.pending(wait=10)
            assert req["transaction_id"] == started.transaction_id
            assert phone.answer(req["transaction_id"], "approve", number=started.number_to_match)["status"] == \
                "approved"
            assert app.get_authentication_status(started.transaction_id or "").status == "approved"

        # synchronous: the caller is released by the phone's answer
        result: dict[str, object] = {}
        caller = threading.Thread(target=lambda: result.update(r=app.authenticate_user(
            "pia", application_name="Web", timeout_seconds=30)))
        caller.start()
        [req] = phone.pending(wait=10)
        phone.answer(req["transaction_id"], "deny")
        caller.join(20)
        assert result["r"].status == "denied"  # type: ignore[attr-defined]

        # the app removes the account: the device is deactivated in the server's store
        phone.sign_out()
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT status FROM devices").fetchone() == ("deactivated",)
