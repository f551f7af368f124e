"""Import users from CSV: every rejected row is reported with its line number and reason;
valid rows are kept (each row is its own transaction)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .audit import Actor
from .errors import InvalidInput, PortalError
from .tokens import TokenInventoryService
from .users import UserFields, UserService

COLUMNS = ("username", "display_name", "email", "phone", "phone_extension", "backup_phone",
           "backup_extension", "language", "method", "mode")
TOKEN_COLUMNS = ("serial", "secret", "type", "algorithm", "digits", "period")


@dataclass
class ImportReport:
    created: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def import_users(
    users: UserService,
    actor: Actor,
    lines: Iterable[str],
    *,
    on_row: Callable[[], None] | None = None,
) -> ImportReport:
    def create(clean: dict[str, str]) -> None:
        g = {k: (clean.get(k) or None) for k in COLUMNS}
        fields = UserFields(display_name=g["display_name"], email=g["email"], phone=g["phone"],
                            phone_extension=g["phone_extension"], backup_phone=g["backup_phone"],
                            backup_extension=g["backup_extension"], language=g["language"],
                            method=g["method"], mode=g["mode"])
        users.create(actor, clean.get("username", ""), fields, password=clean.get("password") or None)

    return _import(lines, "username", (*COLUMNS, "password"), create, on_row)


def import_tokens(
    tokens: TokenInventoryService,
    actor: Actor,
    lines: Iterable[str],
    *,
    on_row: Callable[[], None] | None = None,
) -> ImportReport:
    """Third-party OATH tokens into the inventory (header: serial, secret, and optionally
    type, algorithm, digits, period). A rejected row's reason never repeats its secret."""

    def add(clean: dict[str, str]) -> None:
        tokens.add(actor, serial=clean.get("serial", ""), secret_base32=clean.get("secret", ""),
                   otp_type=clean.get("type") or "totp", algorithm=clean.get("algorithm") or "SHA1",
                   digits=_number(clean, "digits", 6), period=_number(clean, "period", 30))

    return _import(lines, "serial", TOKEN_COLUMNS, add, on_row)


def _number(clean: dict[str, str], key: str, default: int) -> int:
    raw = clean.get(key) or str(default)
    if not raw.isdigit():
        raise InvalidInput(key, "must be a whole number")
    return int(raw)


def _import(lines: Iterable[str], key: str, columns: tuple[str, ...], handle: Callable[[dict[str, str]], None],
            on_row: Callable[[], None] | None) -> ImportReport:
    """Each row is its own transaction; a bad row is reported with its line number and skipped."""
    report = ImportReport()
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or key not in [f.strip().lower() for f in reader.fieldnames]:
        report.rejected.append((1, f"the header row must name a '{key}' column"))
        return report
    unknown = [f for f in reader.fieldnames if f.strip().lower() not in columns]
    if unknown:
        report.rejected.append((1, "unknown column(s): " + ", ".join(unknown)))
        return report
    while True:
        line = reader.line_num + 1  # the first line of the record (a quoted field may span lines)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.rejected.append((line, f"not valid CSV: {exc}"))
            break
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            report.rejected.append((line, "more fields than columns"))
        else:
            try:
                handle(clean)
                report.created += 1
            except PortalError as exc:
                report.rejected.append((line, exc.message))
        if on_row:
            on_row()
    return report


def count_rows(text: str) -> int:
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)
