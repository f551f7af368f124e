"""Staff sign-in: password, then the authenticator app (set up at the first sign-in)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from ..core.accounts import Principal
from ..core.audit import Actor
from ..core.errors import Forbidden, InvalidInput, PortalError, Throttled, Unauthorized
from ..core.services import Services
from ..extensions import services as _services
from ..selfservice.qr import svg_data_uri
from ..selfservice.state import seal, unseal
from . import bp

F = TypeVar("F", bound=Callable[..., Any])
IDLE_MINUTES = 30


class StaffLoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=128)],
                           render_kw={"autocomplete": "username"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})


class StaffCodeForm(FlaskForm):
    code = StringField("Code from your authenticator app", validators=[
        DataRequired(), Regexp(r"^\s*\d{6}\s*$", message="Enter the 6 digits your app shows.")],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6})


def services() -> Services:
    return _services()


def actor() -> Actor:
    who = session.get("staff") or "anonymous"
    return Actor(f"staff:{who}", request.remote_addr, g.get("correlation_id"))


def principal() -> Principal:
    return g.principal  # type: ignore[no-any-return]


def staff_required(view: F) -> F:
    """Signed in with both factors, active, not idle; the account re-read on every request."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name, stage, seen = session.get("staff"), session.get("staff_stage"), session.get("staff_seen", 0)
        if name and stage == "totp":
            return redirect(url_for("helpdesk.code"))  # half-way through signing in
        if not name or stage != "full" or time.time() - seen > IDLE_MINUTES * 60:
            _sign_out()
            return redirect(url_for("helpdesk.login", next=request.path))
        try:
            p = services().accounts.principal(name)
        except PortalError:
            p = None
        if p is None or p.kind != "staff":
            _sign_out()
            return redirect(url_for("helpdesk.login"))
        g.principal = p
        session["staff_seen"] = int(time.time())
        if p.password_change_required and request.endpoint != "helpdesk.change_password":
            return redirect(url_for("helpdesk.change_password"))  # a generated password: nothing else first
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require(right: str, target: str | None = None) -> None:
    """The right, or a 403 page (the refusal is audited by the core)."""
    try:
        services().staff.authorize(actor(), principal(), right, target)  # type: ignore[union-attr]
    except Forbidden as exc:
        abort(403, exc.message)


def _sign_out() -> None:
    for key in ("staff", "staff_stage", "staff_seen", "staff_totp"):
        session.pop(key, None)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = StaffLoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            p = services().accounts.authenticate(actor(), form.username.data.strip(), form.password.data)
            if p.kind != "staff":
                raise Unauthorized()
        except Unauthorized:
            form.form_errors.append("The username or password is incorrect.")
        except Throttled as exc:
            form.form_errors.append(f"Too many attempts. Try again in {exc.retry_after} seconds.")
            status = 429
        else:
            session.clear()  # a fresh session: nothing from before (nor any portal sign-in) survives
            session["staff"], session["staff_stage"], session["staff_seen"] = p.username, "totp", int(time.time())
            return redirect(url_for("helpdesk.code"))
    return render_template("helpdesk/login.html", form=form), status


@bp.route("/login/code", methods=["GET", "POST"])
def code() -> Any:
    name = session.get("staff")
    if not name or session.get("staff_stage") != "totp":
        return redirect(url_for("helpdesk.login"))
    security = services().staff
    assert security is not None
    state = security.totp_state(name)
    setup = None
    if state != "active":
        sealed = unseal("staff_totp")
        if state == "none" or sealed is None:
            new = security.begin_totp(actor(), name)
            sealed = {"uri": new.key_uri, "secret": new.secret_base32}
            seal("staff_totp", sealed)  # shown again until proven; encrypted in the cookie
        setup = {"qr": svg_data_uri(sealed["uri"]),
                 "secret": " ".join(sealed["secret"][i:i + 4] for i in range(0, len(sealed["secret"]), 4))}
    form = StaffCodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            ok = security.verify_totp(actor(), name, form.code.data.strip())
        except Throttled as exc:
            form.form_errors.append(f"Too many attempts. Try again in {exc.retry_after} seconds.")
            ok, status = False, 429
        except InvalidInput as exc:
            form.code.errors = [*form.code.errors, exc.reason]
            ok = False
        if ok:
            session.pop("staff_totp", None)
            session["staff_stage"], session["staff_seen"] = "full", int(time.time())
            return redirect(url_for("helpdesk.find"))  # staff_required sends a required password change first
        if status == 200 and not form.code.errors:
            form.code.errors = ["That code is not correct."]
    return render_template("helpdesk/code.html", form=form, setup=setup), status


@bp.post("/logout")
def logout() -> Response:
    if not FlaskForm().validate_on_submit():
        abort(400)
    _sign_out()
    return redirect(url_for("helpdesk.login"))
