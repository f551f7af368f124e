"""The console's fixtures: the real app, staff accounts, and a browser-like client that
passes the second factor with a code computed from the key the page shows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.core import otp
from portal.core.audit import Actor

from ..conftest import app_settings
from ..selfservice.conftest import Browser

ADMIN = Actor("staff:setup")
STAFF_PASSWORD = "staff-password-123456"


class Staff(Browser):
    secret: str = ""

    def sign_in(self, username: str, password: str = STAFF_PASSWORD) -> Any:
        self.submit("/helpdesk/login", {"username": username, "password": password})
        self.get("/helpdesk/login/code")
        m = re.search(r'id="staff-secret">([^<]+)<', self.page)
        if m:
            self.secret = m.group(1).replace(" ", "")
        return self.post("/helpdesk/login/code", {"code": self.code()})

    def code(self, offset: int = 0) -> str:
        return otp.totp(otp.b32decode(self.secret), time.time() + 30 * offset)


class Console:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.services = app.extensions["portal.services"]

    def staff(self, username: str, role: str = "helpdesk", rights: tuple[str, ...] = ()) -> Staff:
        self.services.accounts.create(ADMIN, username, STAFF_PASSWORD, role=role, rights=rights)
        s = Staff(self.app.test_client())
        resp = s.sign_in(username)
        assert resp.status_code == 302 and resp.headers["Location"] == "/helpdesk/", s.page
        return s

    def audit(self, action: str) -> list[Any]:
        from portal.core.models import AuditEntry

        with self.services.db.read() as s:
            return list(s.query(AuditEntry).filter(AuditEntry.action == action).order_by(AuditEntry.seq))


@pytest.fixture
def console(tmp_path: Path, sqlite_url: str) -> Iterator[Console]:
    from portal import create_app

    app = create_app(app_settings(tmp_path, sqlite_url))
    yield Console(app)
    app.extensions["portal.services"].close()
