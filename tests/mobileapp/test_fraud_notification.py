"""A fraud report e-mails the configured administrators (SMTP), after the answer is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.core.audit import Actor

from ..conftest import app_settings
from .smtp_sink import SmtpSink

ADMIN = Actor("staff:test")


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink()
    yield s
    s.close()


def test_fraud_sends_one_mail_naming_the_user_and_nothing_secret(tmp_path: Path, sqlite_url: str,
                                                                 sink: SmtpSink) -> None:
    from portal import create_app

    app = create_app(app_settings(tmp_path, sqlite_url, SMTP_HOST="127.0.0.1", SMTP_PORT=sink.port,
                                  SMTP_FROM="mfa@example.com", FRAUD_NOTIFY="soc@example.com, it@example.com"))
    services = app.extensions["portal.services"]
    try:
        services.users.create(ADMIN, "vic")
        started = services.authentication.authenticate(ADMIN, "vic", application="VPN", client_ip="203.0.113.9",
                                                       asynchronous=True, number_matching=True)
        services.auth_requests.complete(Actor("device:x"), started.transaction_id, "fraud")
        assert sink.received.wait(10)
    finally:
        services.close()
    [(sender, recipients, msg)] = sink.messages
    assert sender == "mfa@example.com" and recipients == ["soc@example.com", "it@example.com"]
    assert msg["Subject"] == "MFA fraud report: vic"
    body = msg.get_payload()
    assert "VPN" in body and "203.0.113.9" in body and "User blocked: yes" in body


def test_without_smtp_nothing_is_sent_and_fraud_still_blocks(tmp_path: Path, sqlite_url: str,
                                                             sink: SmtpSink) -> None:
    from portal import create_app

    app = create_app(app_settings(tmp_path, sqlite_url))
    services = app.extensions["portal.services"]
    try:
        services.users.create(ADMIN, "wes")
        started = services.authentication.authenticate(ADMIN, "wes", asynchronous=True)
        services.auth_requests.complete(Actor("device:x"), started.transaction_id, "fraud")
        assert services.users.get("wes").blocked
    finally:
        services.close()
    assert not sink.received.wait(0.5)
