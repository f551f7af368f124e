"""The audit view (filters, CSV export) and the reports, for staff with ``view_audit``."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from flask import Response, render_template, request, stream_with_context
from flask_wtf import FlaskForm

from ..core.errors import InvalidInput
from ..core.reports import AuditFilter, parse_day
from . import bp
from .auth import actor, principal, require, services, staff_required

CSV_COLUMNS = ("seq", "at", "actor", "action", "target", "outcome", "client_ip", "detail")
METHOD_COLOURS = {"approved": "#1e6b34", "denied": "#a4161a", "fraud": "#6a1b9a", "expired": "#8a6d00",
                  "cancelled": "#4a5360", "pending": "#0b5cad"}


def _filter() -> tuple[AuditFilter, dict[str, str], dict[str, str]]:
    args = {k: request.args.get(k, "").strip()[:160] for k in ("user", "actor", "action", "since", "until")}
    errors: dict[str, str] = {}
    since = until = None
    try:
        since = parse_day("since", args["since"])
    except InvalidInput as exc:
        errors["since"] = exc.reason
    try:
        until = parse_day("until", args["until"], end=True)
    except InvalidInput as exc:
        errors["until"] = exc.reason
    return AuditFilter(args["user"], args["actor"], args["action"], since, until), args, errors


@bp.get("/audit")
@staff_required
def audit() -> Any:
    require("view_audit")
    f, args, errors = _filter()
    page = request.args.get("page", "1")
    rows, more = ([], False) if errors else services().reports.audit_page(  # type: ignore[union-attr]
        f, int(page) if page.isdigit() else 1)
    return render_template("helpdesk/audit.html", rows=rows, more=more, args=args, errors=errors,
                           page=int(page) if page.isdigit() else 1, me=principal(), form=FlaskForm()), \
        400 if errors else 200


def _cell(value: object) -> str:
    """No spreadsheet formula injection: a cell that starts like a formula is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/audit.csv")
@staff_required
def audit_csv() -> Any:
    require("view_audit")
    f, args, errors = _filter()
    if errors:
        return Response("; ".join(f"{k}: {v}" for k, v in errors.items()) + "\n", status=400, mimetype="text/plain")
    with services().db.write() as s:
        services().audit.append(s, actor(), "helpdesk.audit_export", None,
                                **{k: v for k, v in args.items() if v})
    rows = services().reports.audit_export(f)  # type: ignore[union-attr]

    def generate() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow([_cell(x) for x in (r.seq, f"{r.at:%Y-%m-%dT%H:%M:%S.%fZ}", r.actor, r.action,
                                                r.target, r.outcome, r.client_ip, r.detail)])
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@bp.get("/reports")
@staff_required
def reports() -> Any:
    require("view_audit")
    r = services().reports
    assert r is not None
    counts = r.authentications_per_day(14)
    days = sorted({c.day for c in counts})
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        by_day[c.day][c.status] += c.count
    statuses = [s for s in METHOD_COLOURS if any(by_day[d].get(s) for d in days)]
    by_method: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        by_method[c.method][c.status] += c.count
    peak = max((sum(by_day[d].values()) for d in days), default=0)
    return render_template("helpdesk/reports.html", days=days, by_day=by_day, statuses=statuses, peak=peak,
                           colours=METHOD_COLOURS, by_method=by_method, frauds=r.recent("auth.fraud"),
                           bypasses=r.recent("user.bypass"), blocked=r.blocked_users(), me=principal(),
                           form=FlaskForm())
