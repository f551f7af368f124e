"""No secret reaches a log, even with every logger (SQLAlchemy's included) at DEBUG.

SQLAlchemy at DEBUG logs each statement's parameters and result rows: passwords and PINs
must appear there only as argon2 hashes, OATH seeds only encrypted, activation codes only
as HMACs, and the sign-in hot path's OTP codes not at all.
"""

from __future__ import annotations

import base64
import logging
import re
from xml.sax.saxutils import escape

import pytest

from portal.core import otp
from portal.core.audit import Actor
from portal.sdk.soap import NS, SOAP11
from tests.conftest import ENCRYPTION_KEY, ENCRYPTION_KEY_B64, SECRET_KEY

ADMIN_PASSWORD = "Adm1n-Secret-Passw0rd-XYZ"
USER_PASSWORD = "User-Secret-Pa55word-QRS"
SECRET_B32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # a hardware token's seed, as its vendor ships it
SEED = otp.b32decode(SECRET_B32)
ACTOR = Actor("staff:tester", "192.0.2.10", "no-secrets-test")


def _soap(operation: str, **fields: str) -> bytes:
    inner = "".join(f"<tns:{k}>{escape(v)}</tns:{k}>" for k, v in fields.items())
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11}" xmlns:tns="{NS}">'
            f"<soap:Body><tns:{operation}>{inner}</tns:{operation}></soap:Body></soap:Envelope>").encode()


def _basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "text/xml; charset=utf-8"}


def _forms(value: str) -> set[str]:
    return {value, value.lower(), value.upper()}


def _assert_absent(haystack: str, secrets: dict[str, set[str]], where: str) -> None:
    leaks = []
    for label, forms in secrets.items():
        for form in forms:
            # Codes are digit strings: only a match that is not part of a longer number counts.
            pattern = rf"(?<!\d){re.escape(form)}(?!\d)" if form.isdigit() else re.escape(form)
            for m in re.finditer(pattern, haystack):
                line_start = haystack.rfind("\n", 0, m.start()) + 1
                line_end = haystack.find("\n", m.end())
                leaks.append(f"{label} ({form!r}) in {where}: {haystack[line_start:line_end][:300]}")
    assert not leaks, "\n".join(leaks)


@pytest.mark.app_config(ADMIN_USERNAME="admin", ADMIN_PASSWORD=ADMIN_PASSWORD)
def test_no_secret_is_logged_at_debug(app, caplog, capsys) -> None:  # type: ignore[no-untyped-def]
    for name in (None, "portal", "sqlalchemy.engine", "sqlalchemy.pool", "werkzeug"):
        caplog.set_level(logging.DEBUG, logger=name)
    services = app.extensions["portal.services"]
    runner = app.test_cli_runner()
    client = app.test_client()

    # The first administrator from configuration, and a user with a directory password.
    setup = runner.invoke(args=["setup"])
    assert setup.exit_code == 0, setup.output
    created = runner.invoke(args=["create-user", "alice", "--ask-password"],
                            input=f"{USER_PASSWORD}\n{USER_PASSWORD}\n")
    assert created.exit_code == 0, created.output

    # A hardware HOTP token with a known seed; one code validated through the services.
    services.oath.add_hardware_token(ACTOR, "alice", serial="HW-0001", secret_base32=SECRET_B32, otp_type="hotp")
    code_local = otp.hotp(SEED, 0)
    assert services.oath.validate(ACTOR, "alice", code_local).ok
    code_soap = otp.hotp(SEED, 1)

    activation = services.activation.generate(ACTOR, "alice")

    # Requests: health, the SDK with the admin's Basic credentials, the user's password,
    # an OATH code, a new activation code, a wrong password, and secrets in a query string.
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/healthz?password={USER_PASSWORD}&code={activation.code}").status_code == 200
    auth = _basic("admin", ADMIN_PASSWORD)
    resp = client.post("/PfWsSdk.asmx", data=_soap("TestPfWsSdkConnection"), headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    resp = client.post("/PfWsSdk.asmx", data=_soap("ValidatePrimaryCredentials", username="alice",
                                                   password=USER_PASSWORD), headers=auth)
    assert resp.status_code == 200 and b"<ValidatePrimaryCredentialsResult>true<" in resp.data.replace(
        b"tns:", b"").replace(b"ns0:", b""), resp.get_data(as_text=True)
    resp = client.post("/PfWsSdk.asmx", data=_soap("ValidateOathCode", username="alice", code=code_soap),
                       headers=auth)
    assert resp.status_code == 200 and b">true<" in resp.data, resp.get_data(as_text=True)
    resp = client.post("/PfWsSdk.asmx", data=_soap("GenerateActivationCode", username="alice"), headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    soap_activation = re.search(rb"ActivationCode>(\d{12})<", resp.data)
    assert soap_activation is not None
    soap_activation_code = soap_activation.group(1).decode()
    wrong = client.post("/PfWsSdk.asmx", data=_soap("TestPfWsSdkConnection"),
                        headers=_basic("admin", ADMIN_PASSWORD + "-wrong"))
    assert wrong.status_code == 401
    malformed = client.post("/PfWsSdk.asmx", data=f"<soap:Envelope><password>{USER_PASSWORD}".encode(),
                            headers=auth)
    assert malformed.status_code in (400, 500)

    # The run really was logged at DEBUG: SQL with parameters and one line per request.
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
    assert any(r.name == "portal.request" for r in caplog.records)

    secrets = {
        "admin password": _forms(ADMIN_PASSWORD),
        "admin Basic credentials": {auth["Authorization"].split()[1]},
        "user password": _forms(USER_PASSWORD),
        "OATH secret (base32)": _forms(SECRET_B32),
        "OATH secret (hex)": _forms(SEED.hex()),
        "OATH secret (base64)": {base64.b64encode(SEED).decode()},
        "OATH secret (bytes)": {repr(SEED)[2:-1]},
        "OTP code (local)": {code_local},
        "OTP code (SDK)": {code_soap},
        "activation code": {activation.code, activation.code_grouped},
        "activation code (SDK)": {soap_activation_code},
        "encryption key": {ENCRYPTION_KEY_B64, ENCRYPTION_KEY.hex(), repr(ENCRYPTION_KEY)[2:-1]},
        "secret key": {SECRET_KEY},
    }
    captured = capsys.readouterr()
    _assert_absent(caplog.text, secrets, "the log")
    _assert_absent("\n".join(r.getMessage() for r in caplog.records), secrets, "log messages")
    _assert_absent(captured.err, secrets, "stderr")
    _assert_absent(captured.out, secrets, "stdout")
