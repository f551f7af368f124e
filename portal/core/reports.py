"""Read-only views for the console: the audit log filtered and exported, and the reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

from . import validation as v
from .clock import Clock
from .db import Database
from .errors import InvalidInput
from .models import AuditEntry, AuthRequest, User

MAX_EXPORT = 100_000


@dataclass(frozen=True)
class AuditFilter:
    user: str = ""  # the entry's target (a username), exact, case-insensitive
    actor: str = ""  # e.g. staff:ada, device:..., or a prefix ending in *
    action: str = ""  # e.g. user.unblock, or a prefix ending in * (auth.*)
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    client_ip: str | None
    detail: str


@dataclass(frozen=True)
class DayCount:
    day: str
    method: str
    status: str
    count: int


def parse_day(field: str, value: str, *, end: bool = False) -> dt.datetime | None:
    """``YYYY-MM-DD`` (UTC) as the start of that day, or the start of the next one for ``end``."""
    value = value.strip()
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(field, "must be a date like 2026-11-30") from exc
    start = dt.datetime(day.year, day.month, day.day)
    return start + dt.timedelta(days=1) if end else start


def _match(column, value: str):  # type: ignore[no-untyped-def]
    value = v.text("filter", value, max_len=160)
    if value.endswith("*"):
        prefix = value[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(prefix + "%", escape="\\")
    return column == value


class Reports:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    def _audit_query(self, f: AuditFilter) -> Select[Any]:
        q = select(AuditEntry)
        if f.user:
            q = q.where(func.lower(AuditEntry.target) == v.text("user", f.user, max_len=160).lower())
        if f.actor:
            q = q.where(_match(AuditEntry.actor, f.actor))
        if f.action:
            q = q.where(_match(AuditEntry.action, f.action))
        if f.since:
            q = q.where(AuditEntry.at >= f.since)
        if f.until:
            q = q.where(AuditEntry.at < f.until)
        return q

    def audit_page(self, f: AuditFilter, page: int = 1, page_size: int = 50) -> tuple[list[AuditRow], bool]:
        """Newest first; the bool says whether there is a next page."""
        page = v.integer("page", page, minimum=1, maximum=100_000)
        with self._db.read() as s:
            rows = s.scalars(self._audit_query(f).order_by(AuditEntry.seq.desc())
                             .offset((page - 1) * page_size).limit(page_size + 1)).all()
            out = [_row(e) for e in rows[:page_size]]
        return out, len(rows) > page_size

    def audit_export(self, f: AuditFilter) -> Iterator[AuditRow]:
        """Oldest first, in batches, at most ``MAX_EXPORT`` rows."""
        last, sent = 0, 0
        while sent < MAX_EXPORT:
            with self._db.read() as s:
                batch = s.scalars(self._audit_query(f).where(AuditEntry.seq > last)
                                  .order_by(AuditEntry.seq).limit(1000)).all()
                rows = [_row(e) for e in batch]
            if not rows:
                return
            yield from rows[: MAX_EXPORT - sent]
            sent += len(rows)
            last = rows[-1].seq

    def authentications_per_day(self, days: int = 14) -> list[DayCount]:
        since = self._clock.now() - dt.timedelta(days=days)
        day = func.date(AuthRequest.created_at)  # SQLite: 'YYYY-MM-DD' text; PostgreSQL: a date
        with self._db.read() as s:
            rows = s.execute(select(day, AuthRequest.method, AuthRequest.status, func.count())
                             .where(AuthRequest.created_at >= since)
                             .group_by(day, AuthRequest.method, AuthRequest.status)
                             .order_by(day)).all()
        return [DayCount(str(r[0]), r[1], r[2], int(r[3])) for r in rows]

    def recent(self, action: str, days: int = 30, limit: int = 200) -> list[AuditRow]:
        since = self._clock.now() - dt.timedelta(days=days)
        with self._db.read() as s:
            rows = s.scalars(select(AuditEntry).where(AuditEntry.action == action, AuditEntry.at >= since)
                             .order_by(AuditEntry.seq.desc()).limit(limit)).all()
            return [_row(e) for e in rows]

    def blocked_users(self, limit: int = 500) -> list[tuple[str, str | None, dt.datetime | None]]:
        now = self._clock.now()
        with self._db.read() as s:
            rows = s.execute(select(User.username, User.blocked_reason, User.blocked_until)
                             .where(User.blocked.is_(True))
                             .where((User.blocked_until.is_(None)) | (User.blocked_until > now))
                             .order_by(User.username_key).limit(limit)).all()
        return [(r[0], r[1], r[2]) for r in rows]


def _row(e: AuditEntry) -> AuditRow:
    return AuditRow(e.seq, e.at, e.actor, e.action, e.target, e.outcome, e.client_ip, e.detail)
