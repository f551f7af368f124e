"""Staff accounts, for administrators: list, create, change role and rights, reset a
password or an authenticator app, disable. And every staff member's own password page,
which a "password change required" account cannot get past.

The rules (last administrator, not yourself, generated passwords, audit) live in the core's
``AccountService`` and ``StaffSecurity``; these views only collect the form and show the
result. A generated password is sealed in the session cookie and shown once.
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..core.accounts import RIGHTS
from ..core.errors import InvalidInput, NotFound, PortalError, Throttled
from ..selfservice.state import seal, unseal
from . import bp
from .auth import actor, principal, require, services, staff_required

RIGHT_LABELS = {
    "change_phone": "Change phone", "change_method": "Change method and mode", "reset_pin": "Reset PIN",
    "generate_activation_code": "Generate activation code", "deactivate_device": "Deactivate device",
    "unblock": "Unblock", "clear_lockout": "Clear lockout", "bypass": "One-time bypass",
    "remove_oath_token": "Remove OATH token", "reset_security_questions": "Reset security questions",
    "enable_disable": "Enable and disable users", "view_audit": "View audit and reports",
    "create_user": "Create users", "delete_user": "Delete users",
}
# action -> (needs the confirmation box)
STAFF_ACTIONS = {"reset_password": False, "reset_totp": True, "disable": True, "enable": False}


class StaffReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(max=256)])
    confirm = BooleanField("I am sure")


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("New password (at least 12 characters)",
                                 validators=[DataRequired(), Length(min=12, max=1024)],
                                 render_kw={"autocomplete": "new-password"})
    repeat = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("new_password", message="The two new passwords differ.")],
        render_kw={"autocomplete": "new-password"})


def _administrators_only() -> None:
    require("administrator")  # helpdesk accounts are refused, and the refusal audited


def _form_fields() -> dict[str, Any]:
    """Role, rights, SDK access and display name as posted (validated by the core)."""
    return {"role": request.form.get("role", ""), "rights": tuple(r for r in request.form.getlist("rights")),
            "display_name": request.form.get("display_name", ""), "sdk": "sdk" in request.form}


@bp.get("/staff")
@staff_required
def staff_list() -> Any:
    _administrators_only()
    return render_template("helpdesk/staff_list.html", accounts=services().accounts.list_accounts(),
                           admins_group=services().accounts.admins_group, me=principal(), form=FlaskForm())


@bp.route("/staff/new", methods=["GET", "POST"])
@staff_required
def staff_new() -> Any:
    _administrators_only()
    accounts, errors = services().accounts, {}
    values: dict[str, Any] = {"username": "", "kind": "staff", "role": "helpdesk", "rights": (),
                              "display_name": "", "sdk": False}
    form = FlaskForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        values = {**_form_fields(), "username": request.form.get("username", "").strip(),
                  "kind": request.form.get("kind", "staff")}
        service = values["kind"] == "service"  # the form's role and rights boxes concern staff only
        try:
            created, password = accounts.create_with_generated_password(
                actor(), values["username"], kind=values["kind"], role="service" if service else values["role"],
                rights=() if service else values["rights"],
                groups=(accounts.admins_group,) if values["sdk"] else (), display_name=values["display_name"])
        except InvalidInput as exc:
            errors[exc.field] = exc.reason
        except PortalError as exc:
            errors["username"] = exc.message
        else:
            seal("staff_shown", {"title": f"Password for {created.username} (shown once)", "value": password,
                                 "hint": "They must change it at their first sign-in, then set up an "
                                         "authenticator app." if not service else
                                         "Put it in the frontend's PORTAL_SDK_PASSWORD."})
            return redirect(url_for("helpdesk.staff_edit", username=created.username))
    return render_template("helpdesk/staff_edit.html", account=None, values=values, errors=errors,
                           rights=RIGHTS, labels=RIGHT_LABELS, admins_group=accounts.admins_group, shown=None,
                           me=principal(), form=form), 400 if errors else 200


@bp.route("/staff/<username>", methods=["GET", "POST"])
@staff_required
def staff_edit(username: str) -> Any:
    _administrators_only()
    accounts, errors, saved = services().accounts, {}, False
    try:
        account = accounts.info(username)
    except (NotFound, InvalidInput):
        abort(404)
    form = FlaskForm()
    values: dict[str, Any] = {"role": account.role, "rights": account.rights,
                              "display_name": account.display_name or "",
                              "sdk": accounts.admins_group in account.groups}
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        values = _form_fields()
        others = tuple(g for g in account.groups if g != accounts.admins_group)  # kept as they are
        try:
            account = accounts.update(
                actor(), account.username, role=values["role"] if account.kind == "staff" else None,
                rights=values["rights"] if account.kind == "staff" else None,
                groups=others + ((accounts.admins_group,) if values["sdk"] else ()),
                display_name=values["display_name"])
            saved = True
        except InvalidInput as exc:
            errors[exc.field] = exc.reason
        except PortalError as exc:
            errors["role"] = exc.message
    shown = unseal("staff_shown")
    session.pop("staff_shown", None)
    return render_template("helpdesk/staff_edit.html", account=account, values=values, errors=errors, saved=saved,
                           rights=RIGHTS, labels=RIGHT_LABELS, admins_group=accounts.admins_group, shown=shown,
                           actions=STAFF_ACTIONS, reason_form=StaffReasonForm(), me=principal(),
                           form=form), 400 if errors else 200


@bp.post("/staff/<username>/<action>")
@staff_required
def staff_act(username: str, action: str) -> Any:
    _administrators_only()
    if action not in STAFF_ACTIONS:
        abort(404)
    form = StaffReasonForm()
    if not form.validate_on_submit():
        return _back(username, "Give a reason.", 400)
    if STAFF_ACTIONS[action] and not form.confirm.data:
        return _back(username, "Tick the confirmation box first.", 400)
    reason, s, who = form.reason.data.strip(), services(), actor()
    try:
        if action == "reset_password":
            password = s.accounts.reset_password(who, username, reason)
            seal("staff_shown", {"title": "New password (shown once)", "value": password,
                                 "hint": "Changed at the next sign-in (staff); service accounts keep it."})
        elif action == "reset_totp":
            assert s.staff is not None
            s.staff.reset_totp(who, username, reason)
        else:
            s.accounts.set_enabled(who, username, action == "enable", reason)
    except NotFound:
        abort(404)
    except PortalError as exc:
        return _back(username, exc.message, 400 if isinstance(exc, InvalidInput) else 409)
    return redirect(url_for("helpdesk.staff_edit", username=username))


@bp.route("/account/password", methods=["GET", "POST"])
@staff_required
def change_password() -> Any:
    """One's own password; the only page open while "password change required" is set."""
    p, form = principal(), PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            services().accounts.change_own_password(actor(), p.username, form.current_password.data,
                                                    form.new_password.data)
        except InvalidInput as exc:
            getattr(form, exc.field, form.new_password).errors = [exc.reason]
            status = 400
        except Throttled as exc:
            form.form_errors.append(f"Too many attempts. Try again in {exc.retry_after} seconds.")
            status = 429
        else:
            return redirect(url_for("helpdesk.find"))
    elif request.method == "POST":
        status = 400
    return render_template("helpdesk/password.html", form=form, required=p.password_change_required, me=p), status


def _back(username: str, message: str, status: int) -> tuple[str, int]:
    return render_template("helpdesk/message.html", message=message, username=None,
                           back=url_for("helpdesk.staff_edit", username=username), me=principal(),
                           form=FlaskForm()), status
