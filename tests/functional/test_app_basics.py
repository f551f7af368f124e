"""The app shell every blueprint shares: health, headers, request ids, the TLS gate, errors, cookies."""

from __future__ import annotations

import re

import pytest

from portal.security import CSP

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
GENERATED_RID = re.compile(r"^[0-9a-f]{24}$")
# Flask's test client picks its scheme from PREFERRED_URL_SCHEME, which is https when
# BASE_URL is https: plain HTTP must be asked for explicitly.
HTTP, HTTPS = "http://localhost", "https://localhost"


def _assert_security_headers(resp) -> None:  # type: ignore[no-untyped-def]
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers.get("X-Request-ID")


def test_healthz_reports_the_database(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.is_json
    assert resp.get_json() == {"status": "ok", "role": "all", "database": "ok"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/healthz"),
    ("GET", "/no/such/page"),
    ("GET", "/PfWsSdk.asmx?wsdl"),
    ("POST", "/PfWsSdk.asmx"),  # 401 fault: no credentials
    ("DELETE", "/healthz"),  # 405
])
def test_security_headers_on_every_response(client, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.open(path, method=method)
    _assert_security_headers(resp)
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP


def test_generated_request_ids_are_unique(client) -> None:  # type: ignore[no-untyped-def]
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5
    assert all(GENERATED_RID.match(rid) for rid in ids)


def test_well_formed_request_id_is_reused(client) -> None:  # type: ignore[no-untyped-def]
    rid = "lb-Req_0123.abcdef"
    resp = client.get("/healthz", headers={"X-Request-ID": rid})
    assert resp.headers["X-Request-ID"] == rid


@pytest.mark.parametrize("incoming", [
    "short",  # under 8 characters
    "x" * 65,  # over 64
    "has space in it",
    "abc<script>alert(1)</script>",
    "tab\tinside-the-id",
    "abcdefgh;rm",
])
def test_malformed_request_id_is_replaced(client, incoming: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/healthz", headers={"X-Request-ID": incoming})
    rid = resp.headers["X-Request-ID"]
    assert rid != incoming
    assert GENERATED_RID.match(rid)


def test_unknown_path_is_a_plain_404_without_a_stack_trace(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    body = resp.get_data(as_text=True)
    assert "Traceback" not in body and 'File "' not in body
    _assert_security_headers(resp)


def test_unknown_path_answers_json_when_json_is_wanted(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "NotFound"
    assert "Traceback" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
def test_json_405_keeps_the_allow_header(client, accept: str) -> None:  # type: ignore[no-untyped-def]
    html = client.delete("/healthz", headers={"Accept": "text/html"})
    assert html.status_code == 405 and "GET" in html.headers["Allow"]
    resp = client.delete("/healthz", headers={"Accept": accept})
    assert resp.status_code == 405
    assert resp.get_json()["error"]["code"] == "MethodNotAllowed"
    assert "GET" in resp.headers.get("Allow", "")


def test_request_log_line_cannot_be_forged_through_the_path(client, caplog) -> None:  # type: ignore[no-untyped-def]
    forged = "2026-01-01 00:00:00,000 INFO portal.request GET /admin 200"
    resp = client.get("/x%0D%0A" + forged.replace(" ", "%20"))
    assert resp.status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.request"]
    assert lines
    assert not any("\n" in m or "\r" in m for m in lines)


# -- SSL_REQUIRED --------------------------------------------------------------------------
@pytest.mark.app_config(BASE_URL="https://mfa.example.com")
def test_plain_http_is_refused_when_ssl_is_required(app, client) -> None:  # type: ignore[no-untyped-def]
    assert app.config["SSL_REQUIRED"] is True
    resp = client.get("/no/such/page", base_url=HTTP)
    assert resp.status_code == 403
    assert "HTTPS is required" in resp.get_data(as_text=True)
    _assert_security_headers(resp)
    assert "Strict-Transport-Security" not in resp.headers
    assert client.get("/PfWsSdk.asmx?wsdl", base_url=HTTP).status_code == 403
    assert client.post("/PfWsSdk.asmx", base_url=HTTP).status_code == 403


@pytest.mark.app_config(BASE_URL="https://mfa.example.com")
def test_health_answers_over_plain_http_when_ssl_is_required(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/healthz", base_url=HTTP)
    assert resp.status_code == 200
    assert resp.get_json()["database"] == "ok"


@pytest.mark.app_config(BASE_URL="https://mfa.example.com")
def test_https_passes_the_tls_gate(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/no/such/page", base_url=HTTPS).status_code == 404
    assert client.get("/PfWsSdk.asmx?wsdl", base_url=HTTPS).status_code == 200


@pytest.mark.app_config(BASE_URL="https://mfa.example.com", TRUSTED_PROXIES=1)
def test_trusted_proxy_forwarded_https_passes_the_tls_gate(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/no/such/page", base_url=HTTP).status_code == 403
    resp = client.get("/no/such/page", base_url=HTTP, headers={"X-Forwarded-Proto": "https"})
    assert resp.status_code == 404  # the gate let it through; the path simply does not exist
    assert "Strict-Transport-Security" in resp.headers
    forwarded_http = client.get("/no/such/page", base_url=HTTP, headers={"X-Forwarded-Proto": "http"})
    assert forwarded_http.status_code == 403


@pytest.mark.app_config(BASE_URL="https://mfa.example.com", TRUSTED_PROXIES=0)
def test_forwarded_proto_is_not_believed_without_trusted_proxies(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/no/such/page", base_url=HTTP, headers={"X-Forwarded-Proto": "https"})
    assert resp.status_code == 403
    assert "Strict-Transport-Security" not in resp.headers


@pytest.mark.app_config(BASE_URL="https://mfa.example.com", TRUSTED_PROXIES=1)
def test_only_the_configured_number_of_proxies_is_believed(client) -> None:  # type: ignore[no-untyped-def]
    # Two values: the client forged the first, our one proxy appended the second (http).
    resp = client.get("/no/such/page", base_url=HTTP, headers={"X-Forwarded-Proto": "https, http"})
    assert resp.status_code == 403


def test_loopback_default_does_not_require_tls(app, client) -> None:  # type: ignore[no-untyped-def]
    assert app.config["SSL_REQUIRED"] is False
    assert client.get("/no/such/page", base_url=HTTP).status_code == 404


# -- HSTS ------------------------------------------------------------------------------------
def test_hsts_only_over_https(client) -> None:  # type: ignore[no-untyped-def]
    plain = client.get("/healthz", base_url=HTTP)
    assert "Strict-Transport-Security" not in plain.headers
    secure = client.get("/healthz", base_url=HTTPS)
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    _assert_security_headers(secure)


# -- unexpected errors -----------------------------------------------------------------------
def test_unexpected_exception_gives_500_json_with_the_request_id(app) -> None:  # type: ignore[no-untyped-def]
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    client = app.test_client()

    resp = client.get("/boom")
    assert resp.status_code == 500
    assert resp.is_json
    error = resp.get_json()["error"]
    assert error["code"] == "ServerError"
    rid = resp.headers["X-Request-ID"]
    assert f"(reference {rid})" in error["message"]
    body = resp.get_data(as_text=True)
    assert "Traceback" not in body and "ZeroDivisionError" not in body and "division" not in body
    _assert_security_headers(resp)

    given = "incident-0001-abcdef"
    resp = client.get("/boom", headers={"X-Request-ID": given})
    assert resp.status_code == 500
    assert resp.headers["X-Request-ID"] == given
    assert f"(reference {given})" in resp.get_json()["error"]["message"]


def test_unexpected_exception_is_logged_with_the_request_id(app, caplog) -> None:  # type: ignore[no-untyped-def]
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    resp = app.test_client().get("/boom", headers={"X-Request-ID": "trace-me-12345678"})
    assert resp.status_code == 500
    errors = [r for r in caplog.records if r.name == "portal.errors"]
    assert errors and "rid=trace-me-12345678" in errors[0].getMessage()
    assert errors[0].exc_info is not None  # the traceback goes to the log, not to the client


# -- session cookies -------------------------------------------------------------------------
def test_session_cookie_flags_on_loopback_http(app) -> None:  # type: ignore[no-untyped-def]
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False  # http://127.0.0.1 cannot carry Secure cookies
    assert app.config["SESSION_COOKIE_NAME"] == "portal"


@pytest.mark.app_config(BASE_URL="https://mfa.example.com")
def test_session_cookie_flags_over_https(app) -> None:  # type: ignore[no-untyped-def]
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-portal"
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
