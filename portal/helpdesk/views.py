"""Find a user, see everything about them, act on them; change the portal settings.

Every action: its right (refused and audited without it), a reason where it matters, a
confirmation for destructive steps (a checkbox the form requires), and the core's audit
entry naming the staff member, the reason and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from ..core.errors import InvalidInput, NotFound, PortalError
from ..core.models import AuditEntry, AuthRequest, User
from ..core.settings import BY_KEY, DEFINITIONS, coerce
from ..core.users import UserFields
from ..selfservice.qr import svg_data_uri
from ..selfservice.state import seal, unseal
from . import bp
from .auth import actor, principal, require, services, staff_required

PAGE_SIZE = 25


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=256)])
    confirm = BooleanField("I have checked this with the user")


class BypassForm(ReasonForm):
    seconds = IntegerField("Seconds", default=300, validators=[NumberRange(min=30, max=86400)])


# action name -> (right, needs a reason, destructive: needs the confirmation box)
ACTIONS: dict[str, tuple[str, bool, bool]] = {
    "unblock": ("unblock", True, False),
    "clear_lockout": ("clear_lockout", False, False),
    "disable": ("enable_disable", True, True),
    "enable": ("enable_disable", True, False),
    "reset_pin": ("reset_pin", True, False),
    "bypass": ("bypass", True, False),
    "reset_questions": ("reset_security_questions", True, True),
    "generate_code": ("generate_activation_code", False, False),
}


@bp.get("/")
@staff_required
def find() -> Any:
    q = request.args.get("q", "").strip()
    page_no = request.args.get("page", "1")
    result, error = None, None
    if q:
        try:
            result = services().users.find(q, page=int(page_no) if page_no.isdigit() else 1, page_size=PAGE_SIZE)
        except InvalidInput as exc:
            error = exc.reason
        else:
            detail: dict[str, Any] = {"query": q[:128], "results": result.total}
            if result.total_is_capped:
                detail["more"] = True  # more users match than were listed
            with services().db.write() as s:
                services().audit.append(s, actor(), "helpdesk.find", None, "success", **detail)
            if result.total == 1 and result.page == 1:
                return redirect(url_for("helpdesk.user", username=result.items[0].username))
    return render_template("helpdesk/find.html", q=q, result=result, error=error, me=principal(),
                           form=FlaskForm())


@bp.get("/users/<username>")
@staff_required
def user(username: str) -> Any:
    s = services()
    try:
        info = s.users.get(username)
    except NotFound:
        abort(404)
    with s.db.read() as db:
        uid = db.scalar(select(User.id).where(User.username_key == info.username.lower()))
        recent = db.execute(select(AuthRequest.created_at, AuthRequest.method, AuthRequest.status,
                                   AuthRequest.reason, AuthRequest.application, AuthRequest.client_ip)
                            .where(AuthRequest.user_id == uid).order_by(AuthRequest.created_at.desc())
                            .limit(20)).all()
        trail: Sequence[Any] = []
        if principal().can("view_audit"):
            trail = db.execute(select(AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.outcome)
                               .where(AuditEntry.target == info.username).order_by(AuditEntry.seq.desc())
                               .limit(50)).all()
    with s.db.write() as db:
        s.audit.append(db, actor(), "helpdesk.view", info.username)
    shown = unseal("helpdesk_shown")
    session.pop("helpdesk_shown", None)
    if shown and shown.get("qr_payload"):
        shown["qr"] = svg_data_uri(shown["qr_payload"])
    return render_template("helpdesk/user.html", u=info, recent=recent, trail=trail, me=principal(),
                           actions=ACTIONS, reason_form=ReasonForm(), bypass_form=BypassForm(), shown=shown,
                           form=FlaskForm())


@bp.post("/users/<username>/<action>")
@staff_required
def act(username: str, action: str) -> Any:
    if action not in ACTIONS:
        abort(404)
    right, needs_reason, destructive = ACTIONS[action]
    require(right, username)
    form = BypassForm() if action == "bypass" else ReasonForm() if needs_reason else FlaskForm()
    if not form.validate_on_submit():
        return _back(username, "; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()), 400)
    if destructive and not form.confirm.data:
        return _back(username, "Tick the confirmation box first.", 400)
    reason = form.reason.data.strip() if needs_reason else ""
    try:
        shown = _do(action, username, reason, form)
    except PortalError as exc:
        return _back(username, exc.message, 400 if isinstance(exc, InvalidInput) else 409)
    if shown:
        seal("helpdesk_shown", shown)  # a PIN or a code: encrypted in the cookie, shown once
    return redirect(url_for("helpdesk.user", username=username))


def _do(action: str, username: str, reason: str, form: Any) -> dict[str, str] | None:
    """Carry out one action through the core (which audits it). Returns what to show once."""
    s, who = services(), actor()
    if action == "unblock":
        s.users.unblock(who, username, reason)
    elif action == "clear_lockout":
        s.users.clear_lockout(who, username)
    elif action in ("enable", "disable"):
        s.users.update(who, username, UserFields(enabled=action == "enable"))
        with s.db.write() as db:
            s.audit.append(db, who, f"helpdesk.{action}", username, reason=reason)
    elif action == "reset_pin":
        pin = s.users.set_pin(who, username, None, change_required=True)
        with s.db.write() as db:
            s.audit.append(db, who, "helpdesk.reset_pin", username, reason=reason)
        return {"title": "New PIN (tell the user; they must change it at the next sign-in)", "value": pin}
    elif action == "bypass":
        until = s.enrollment.set_bypass_by_staff(who, username, int(form.seconds.data), reason)
        return {"title": "One-time bypass active until", "value": f"{until:%Y-%m-%d %H:%M:%S} UTC"}
    elif action == "reset_questions":
        s.questions.reset(who, username)
        with s.db.write() as db:
            s.audit.append(db, who, "helpdesk.reset_questions", username, reason=reason)
    elif action == "generate_code":
        code = s.activation.generate(who, username)
        return {"title": "Activation code", "value": code.code_grouped, "url": code.url,
                "account": code.account_name, "qr_payload": code.qr_payload,
                "expires": f"{code.expires_at:%H:%M} UTC"}
    return None


@bp.post("/users/<username>/phone")
@staff_required
def change_phone(username: str) -> Any:
    """Change Phone, as MFA Server's helpdesk had it: phone, extension, backup phone and extension."""
    require("change_phone", username)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _back(username, "Give a reason.", 400)
    def value(name: str) -> str:
        return request.form.get(name, "").strip()

    try:
        services().users.update(actor(), username, UserFields(
            phone=value("phone"), phone_extension=value("phone_extension"), backup_phone=value("backup_phone"),
            backup_extension=value("backup_extension")))
    except InvalidInput as exc:
        return _back(username, f"{exc.field}: {exc.reason}", 400)
    with services().db.write() as db:
        services().audit.append(db, actor(), "helpdesk.change_phone", username, reason=form.reason.data.strip())
    return redirect(url_for("helpdesk.user", username=username))


@bp.post("/users/<username>/method")
@staff_required
def change_method(username: str) -> Any:
    """Change Method / Change Mode: the user's method and mode (standard or PIN)."""
    require("change_method", username)
    form = ReasonForm()
    if not form.validate_on_submit():
        return _back(username, "Give a reason.", 400)
    try:
        services().users.update(actor(), username, UserFields(method=request.form.get("method", ""),
                                                              mode=request.form.get("mode", "")))
    except InvalidInput as exc:
        return _back(username, f"{exc.field}: {exc.reason}", 400)
    with services().db.write() as db:
        services().audit.append(db, actor(), "helpdesk.change_method", username, reason=form.reason.data.strip())
    return redirect(url_for("helpdesk.user", username=username))


@bp.post("/users/<username>/devices/<device_id>/deactivate")
@staff_required
def deactivate(username: str, device_id: str) -> Any:
    require("deactivate_device", username)
    form = ReasonForm()
    if not form.validate_on_submit() or not form.confirm.data:
        return _back(username, "Give a reason and tick the confirmation box.", 400)
    try:
        services().activation.deactivate(actor(), username, device_id)
    except NotFound:
        abort(404)
    return redirect(url_for("helpdesk.user", username=username))


@bp.post("/users/<username>/tokens/<int:token_id>/remove")
@staff_required
def remove_token(username: str, token_id: int) -> Any:
    require("remove_oath_token", username)
    form = ReasonForm()
    if not form.validate_on_submit() or not form.confirm.data:
        return _back(username, "Give a reason and tick the confirmation box.", 400)
    try:
        services().oath.remove_token(actor(), username, token_id)
    except NotFound:
        abort(404)
    return redirect(url_for("helpdesk.user", username=username))


@bp.route("/settings", methods=["GET", "POST"])
@staff_required
def settings() -> Any:
    if principal().role != "administrator":
        require("administrator")  # only administrators change settings; refused and audited
    s = services()
    errors: dict[str, str] = {}
    saved = False
    form = FlaskForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        changes: dict[str, Any] = {}
        for d in DEFINITIONS:
            if d.kind == "bool":
                changes[d.key] = d.key in request.form
            elif d.key in request.form:
                changes[d.key] = request.form[d.key]
        for key, value in changes.items():  # validate each, so every error is shown beside its field
            try:
                changes[key] = coerce(BY_KEY[key], value)
            except InvalidInput as exc:
                errors[key] = exc.reason
        if not errors:
            s.settings.update(actor(), changes)
            saved = True
    offered = s.enrollment.offered_methods()
    values = dict(s.settings.get()) if not errors else {**dict(s.settings.get()), **request.form}
    return render_template("helpdesk/settings.html", definitions=DEFINITIONS, values=values, errors=errors,
                           saved=saved, offered=offered, me=principal(), form=form), 400 if errors else 200


def _back(username: str, message: str, status: int) -> tuple[str, int]:
    return render_template("helpdesk/message.html", message=message, username=username, me=principal(),
                           form=FlaskForm()), status


@bp.app_template_filter("right_label")
def _right_label(value: str) -> str:
    return value.replace("_", " ")

