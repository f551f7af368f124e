"""The SDK's POST endpoint runs in front of Flask (portal/sdk/endpoint.py): it must keep every
rule the Flask hooks give other routes - the proxy's client address and scheme, HSTS over HTTPS,
the request log line - and read bodies however they arrive (Content-Length or chunked)."""

from __future__ import annotations

import logging

import pytest
import requests

from portal.core.models import AuditEntry
from portal.sdk.soap import NS

from .test_sdk_wire import _env, _svc

TEST = _env(f'<TestPfWsSdkConnection xmlns="{NS}"/>')


@pytest.mark.app_config(BASE_URL="https://mfa.example.com", TRUSTED_PROXIES=1)
def test_behind_a_trusted_proxy_the_client_address_and_scheme_are_the_forwarded_ones(app, client) -> None:
    headers = _svc(app)
    plain = client.post("/PfWsSdk.asmx", data=TEST, headers=headers, base_url="http://localhost")
    assert plain.status_code == 403 and "Strict-Transport-Security" not in plain.headers
    forwarded = {**headers, "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.23"}
    resp = client.post("/PfWsSdk.asmx", data=TEST, headers=forwarded, base_url="http://localhost")
    assert resp.status_code == 200 and b"TestPfWsSdkConnectionResult" in resp.data
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    services = app.extensions["portal.services"]
    with services.db.read() as s:
        login = s.query(AuditEntry).filter(AuditEntry.action == "account.login").order_by(AuditEntry.seq.desc()).first()
    assert login.client_ip == "198.51.100.23"  # audited with the address the proxy saw


def test_each_call_is_logged_once_without_its_body(app, client, caplog) -> None:
    headers = _svc(app)
    caplog.set_level(logging.INFO, logger="portal.request")
    resp = client.post("/PfWsSdk.asmx", data=TEST, headers={**headers, "X-Request-ID": "caller-rid-0001"})
    assert resp.headers["X-Request-ID"] == "caller-rid-0001"
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.request"]
    assert len(lines) == 1 and lines[0].startswith("POST /PfWsSdk.asmx 200 ")
    assert lines[0].endswith("rid=caller-rid-0001") and "TestPfWsSdkConnection" not in lines[0]


def test_other_methods_and_paths_still_go_to_flask(app, client) -> None:
    assert client.get("/PfWsSdk.asmx?wsdl").status_code == 200
    assert client.put("/PfWsSdk.asmx", data=TEST).status_code == 405
    assert client.post("/PfWsSdk.asmx/", data=TEST, headers=_svc(app)).status_code == 404


def test_a_chunked_body_is_read_and_limited(live_server) -> None:
    auth = ("svc-portal", "service-account-password-1")
    session = requests.Session()
    session.trust_env = False

    def chunks(text: str, size: int = 40):  # type: ignore[no-untyped-def]
        data = text.encode()
        for i in range(0, len(data), size):
            yield data[i:i + size]

    resp = session.post(live_server.url, data=chunks(TEST), auth=auth, headers={"Content-Type": "text/xml"},
                        timeout=10)
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert resp.status_code == 200 and b"TestPfWsSdkConnectionResult" in resp.content
    big = _env(f'<GetUserInfo xmlns="{NS}"><username>{"a" * 2_000_000}</username></GetUserInfo>')
    resp = session.post(live_server.url, data=chunks(big, 65536), auth=auth, headers={"Content-Type": "text/xml"},
                        timeout=10)
    assert resp.status_code == 413 and b"<tns:Code>RequestTooLarge</tns:Code>" in resp.content


def test_a_failure_before_the_operation_is_a_server_fault_not_a_bare_500(app, client, monkeypatch) -> None:
    headers = _svc(app)
    services = app.extensions["portal.services"]

    def database_down(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError("database unavailable: secret-path")

    monkeypatch.setattr(services.accounts, "authenticate_sdk", database_down)
    resp = client.post("/PfWsSdk.asmx", data=TEST, headers=headers)
    assert resp.status_code == 500 and b"<tns:Code>ServerError</tns:Code>" in resp.data
    assert b"secret-path" not in resp.data and resp.headers["X-Request-ID"].encode() in resp.data
    assert resp.headers["Content-Type"].startswith("text/xml") and resp.headers["Cache-Control"] == "no-store"
