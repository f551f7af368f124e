"""The audit log: append-only, tamper-evident, and never holding a secret.

Each entry is chained to the one before it with an HMAC whose key comes from
configuration: ``mac = HMAC(key, prev_mac || canonical(entry))``. Editing, deleting or
reordering a row breaks the chain from that row on; :meth:`AuditLog.verify` names the
first broken entry. Appends lock the single ``audit_head`` row, so the chain stays
linear under concurrency on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .clock import Clock
from .db import Database
from .models import AuditEntry, AuditHead
from .sql import Raw, Sql

GENESIS = "0" * 64
# FOR UPDATE serialises appends on PostgreSQL; SQLite's write transaction already does.
_HEAD = Sql("SELECT seq, mac FROM audit_head WHERE id = 1 FOR UPDATE",
            sqlite="SELECT seq, mac FROM audit_head WHERE id = 1")
_INSERT = Sql("""INSERT INTO audit_log (seq, at, actor, action, target, outcome, detail, client_ip,
                 correlation_id, prev_mac, mac)
                 VALUES (%(seq)s, %(at)s, %(actor)s, %(action)s, %(target)s, %(outcome)s, %(detail)s,
                 %(client_ip)s, %(correlation_id)s, %(prev_mac)s, %(mac)s)""")
_MOVE = Sql("UPDATE audit_head SET seq = %(seq)s, mac = %(mac)s WHERE id = 1")
# Words that must never be keys of an audit detail: a caller passing one is a bug.
_FORBIDDEN = ("password", "pin", "secret", "seed", "otp", "answer", "token", "code")
_ALLOWED = {"pin_change_required", "push_kind", "token_id", "otp_type", "code_expires_at", "error_code"}


@dataclass(frozen=True)
class Actor:
    """Who asks: ``user:alice``, ``staff:admin``, ``service:portal``, ``system``, ``cli``."""

    name: str
    client_ip: str | None = None
    correlation_id: str | None = None


SYSTEM = Actor("system")


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    client_ip: str | None
    correlation_id: str | None


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


def _canonical(e: AuditEntry) -> bytes:
    return _canonical_values(e.seq, e.at, e.actor, e.action, e.target, e.outcome, e.detail, e.client_ip,
                             e.correlation_id)


def _canonical_values(seq: int, at: dt.datetime, actor: str, action: str, target: str | None, outcome: str,
                      detail: str, client_ip: str | None, correlation_id: str | None) -> bytes:
    return json.dumps([seq, at.isoformat(), actor, action, target, outcome, detail, client_ip, correlation_id],
                      separators=(",", ":"), ensure_ascii=True).encode()


class AuditLog:
    def __init__(self, key: bytes, clock: Clock) -> None:
        self._key = key
        self._clock = clock

    def _mac(self, prev: str, entry: AuditEntry) -> str:
        return hmac.new(self._key, prev.encode() + _canonical(entry), hashlib.sha256).hexdigest()

    def append(
        self,
        session: Session,
        actor: Actor,
        action: str,
        target: str | None = None,
        outcome: str = "success",
        **detail: Any,
    ) -> None:
        """Add one entry inside the caller's transaction (so it commits or rolls back with the action)."""
        for key in detail:
            lowered = key.lower()
            if key not in _ALLOWED and any(word in lowered for word in _FORBIDDEN):
                raise ValueError(f"audit detail key {key!r} looks like a secret")
        self.append_raw(Raw.of(session), actor, action, target, outcome, detail)

    def append_raw(self, raw: Raw, actor: Actor, action: str, target: str | None, outcome: str,
                   detail: dict[str, Any]) -> None:
        """The same append on the driver connection (the sign-in hot path)."""
        head = raw.one(_HEAD)
        assert head is not None, "audit_head row missing: run the migrations"
        head_seq, head_mac = head
        values = {
            "seq": head_seq + 1,
            "at": self._clock.now().replace(microsecond=0),
            "actor": actor.name[:160],
            "action": action,
            "target": target[:160] if target else None,
            "outcome": outcome,
            "detail": json.dumps(detail, sort_keys=True, default=str, separators=(",", ":")),
            "client_ip": actor.client_ip,
            "correlation_id": actor.correlation_id,
        }
        mac = hmac.new(self._key, head_mac.encode() + _canonical_values(**values), hashlib.sha256).hexdigest()
        raw.execute(_INSERT, {**values, "prev_mac": head_mac, "mac": mac}).close()
        raw.execute(_MOVE, {"seq": values["seq"], "mac": mac}).close()

    def verify(self, db: Database, batch: int = 5000) -> ChainCheck:
        prev, expected_seq, checked = GENESIS, 1, 0
        with db.read() as s:
            head = s.get(AuditHead, 1)
            for e in _iterate(s, batch):
                if e.seq != expected_seq:
                    return ChainCheck(False, checked, expected_seq, f"entry {expected_seq} is missing")
                if e.prev_mac != prev or not hmac.compare_digest(e.mac, self._mac(prev, e)):
                    return ChainCheck(False, checked, e.seq, f"entry {e.seq} does not match its MAC")
                prev, expected_seq, checked = e.mac, expected_seq + 1, checked + 1
            if head is not None and (head.seq != checked or head.mac != prev):
                return ChainCheck(False, checked, checked + 1, "the newest entries were removed")
        return ChainCheck(True, checked)

    def search(
        self,
        db: Database,
        *,
        target: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
        if target:
            q = q.where(AuditEntry.target == target)
        if actor:
            q = q.where(AuditEntry.actor == actor)
        if action:
            q = q.where(AuditEntry.action == action)
        with db.read() as s:
            return [
                AuditRecord(
                    e.seq, e.at, e.actor, e.action, e.target, e.outcome,
                    json.loads(e.detail), e.client_ip, e.correlation_id,
                )
                for e in s.scalars(q)
            ]


def _iterate(s: Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
