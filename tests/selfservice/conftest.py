"""Fixtures for the user portal: the real app (SQLite file, in-process backend, CSRF on),
a browser-like client that carries the form's CSRF token, and a simulated phone that
uses the core exactly as the phone API will."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from portal.core import otp
from portal.core.activation import DeviceRegistration
from portal.core.audit import Actor

from ..conftest import app_settings

ADMIN = Actor("staff:test", "192.0.2.10")
PASSWORD = "correct-horse-battery-1"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def token_of(html: str) -> str:
    m = _TOKEN.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


class Browser:
    """A test client that, like a person, submits the form it was shown (with its token)."""

    def __init__(self, client: Any) -> None:
        self.c = client
        self.page = ""

    def get(self, path: str, **kw: Any) -> Any:
        resp = self.c.get(path, **kw)
        self.page = resp.get_data(as_text=True)
        return resp

    def post(self, path: str, data: dict[str, Any] | None = None, *, token: bool = True, **kw: Any) -> Any:
        data = dict(data or {})
        if token:
            data.setdefault("csrf_token", token_of(self.page) if self.page else "")
        resp = self.c.post(path, data=data, **kw)
        self.page = resp.get_data(as_text=True)
        return resp

    def submit(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """GET the page, then POST its form."""
        self.get(path)
        return self.post(path, data, **kw)

    def login(self, username: str, password: str = PASSWORD, next_: str | None = None) -> Any:
        target = "/login" + (f"?next={next_}" if next_ else "")
        return self.submit(target, {"username": username, "password": password})


@dataclass
class Portal:
    app: Any
    services: Any

    def user(self, username: str, **fields: Any) -> str:
        from portal.core.users import UserFields

        self.services.users.create(ADMIN, username, UserFields(**fields), password=PASSWORD)
        return username

    def settings(self, **changes: Any) -> None:
        self.services.settings.update(ADMIN, changes)

    def browser(self) -> Browser:
        return Browser(self.app.test_client())

    def info(self, username: str) -> Any:
        return self.services.users.get(username)

    # -- the phone, as the /PA API will drive the core ---------------------------------------
    def activate_phone(self, code: str, name: str = "Test phone") -> str:
        key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        reg = DeviceRegistration(name, "android", key)
        return self.services.activation.activate(Actor("phone"), code, reg).device_id

    def answer(self, username: str, result: str = "approved") -> None:
        pending = self.services.auth_requests.pending_for_user(username)
        assert pending, "no pending request for the phone"
        self.services.auth_requests.complete(Actor("phone"), pending[-1].id, result)


def totp_now(secret_b32: str, offset_steps: int = 0) -> str:
    return otp.totp(otp.b32decode(secret_b32.replace(" ", "")), time.time() + 30 * offset_steps)


@pytest.fixture
def portal(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str) -> Iterator[Portal]:
    from portal import create_app

    marker = request.node.get_closest_marker("app_config")
    extra = dict(marker.kwargs) if marker else {}
    app = create_app(app_settings(tmp_path, sqlite_url, **extra))
    services = app.extensions["portal.services"]
    yield Portal(app, services)
    services.close()
