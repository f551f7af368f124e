"""schemathesis against the published OpenAPI document: whatever it sends, with or without a
valid signature, the phone API answers without a 5xx and with its error envelope."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from portal.core.audit import Actor
from portal.phone import PhoneClient
from portal.phone.client import sign

from .conftest import LiveServer

ADMIN = Actor("staff:test")


@pytest.fixture
def schema_and_phone(live_server: LiveServer):  # type: ignore[no-untyped-def]
    live_server.services.users.create(ADMIN, "zed")
    live_server.services.settings.update(ADMIN, {"device_limit": 10})
    phone = PhoneClient.activate(live_server.base_url + "/PA",
                                 live_server.services.activation.generate(ADMIN, "zed").code)
    live_server.services.authentication.authenticate(ADMIN, "zed", asynchronous=True, number_matching=True)
    schema = schemathesis.openapi.from_url(live_server.base_url + "/PA/openapi.json")
    return schema, phone, live_server.base_url + "/PA"


def test_no_input_makes_the_phone_api_fail(schema_and_phone) -> None:  # type: ignore[no-untyped-def]
    schema, phone, base = schema_and_phone
    http = requests.Session()
    http.trust_env = False
    seen: dict[str, set[int]] = {}
    operations = sorted((r.ok() for r in schema.get_all_operations()),
                        key=lambda op: op.method.upper() == "DELETE")
    for operation in operations:  # signing out (DELETE /v1/device) last: it ends the device

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            kwargs = case.as_transport_kwargs(base_url=base)
            prepared = http.prepare_request(requests.Request(**{k: v for k, v in kwargs.items()
                                                                if k in ("method", "url", "headers", "params",
                                                                         "json", "data", "cookies")}))
            if operation.definition.raw.get("security"):  # noqa: B023  (run() is called in this iteration)
                parts = urlsplit(prepared.url)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                body = prepared.body or b""
                body = body.encode() if isinstance(body, str) else body
                stamp = int(time.time() * 1000)
                prepared.headers.update({"X-MFA-Device": phone.state.device_id, "X-MFA-Timestamp": str(stamp),
                                         "X-MFA-Signature": sign(phone._key, prepared.method or "GET", path,
                                                                 stamp, body)})
            resp = http.send(prepared, timeout=40)
            key = f"{operation.method.upper()} {operation.path}"  # noqa: B023
            seen.setdefault(key, set()).add(resp.status_code)
            assert resp.status_code < 500, (case, resp.status_code, resp.text[:300])
            if resp.status_code >= 400:
                assert resp.json()["error"]["code"], resp.text[:300]

        run()
    assert len(seen) == 5
    for op in ("GET /v1/requests", "PUT /v1/push", "DELETE /v1/device"):
        assert any(code < 300 for code in seen[op]), seen  # signed: not only refusals
