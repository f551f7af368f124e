"""Primary (password) authentication behind a port.

``UserDirectory`` is what MFA Server called "Primary authentication". The local store
(argon2id hashes in the users table) is the first adapter; LDAP/Active Directory and
RADIUS slot in beside it without touching the services.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select

from .crypto import Hasher
from .db import Database
from .models import User


class UserDirectory(Protocol):
    name: str

    def authenticate(self, username: str, password: str) -> bool:
        """True when the password is right. Takes the same time whether or not the user exists."""
        ...


class LocalDirectory:
    name = "local"

    def __init__(self, db: Database, hasher: Hasher) -> None:
        self._db, self._hasher = db, hasher

    def authenticate(self, username: str, password: str) -> bool:
        with self._db.read() as s:
            stored = s.scalar(select(User.password_hash).where(User.username_key == username.lower()))
        return self._hasher.verify(stored, password)
