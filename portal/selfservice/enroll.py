"""The first-time enrollment wizard, also used to change method later.

The wizard holds no rule of its own: each visit to ``/enroll`` asks the core to complete
the enrollment with the chosen method (``complete_enrollment``); the core answers with
the first thing still missing (PIN, activated phone, approved test, proven OATH code,
security questions), and the wizard shows that step. So leaving halfway and coming back
resumes where the user was, and a half-finished enrollment never counts.
"""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from ..sdk.backend import (
    DeviceLimitReached,
    Forbidden,
    InvalidInput,
    RequestNotPending,
    UserSettings,
)
from . import bp
from .forms import CodeForm, EmptyForm, HardwareTokenForm, MethodForm, PhoneForm, PinForm, field_error, questions_form
from .qr import svg_data_uri
from .state import (
    APPLICATION,
    backend,
    client_ip,
    current_user,
    offered_methods,
    require_setting,
    require_user,
    seal,
    settings,
    sign_in,
    unseal,
)

METHOD_LABELS = {
    "mobile_app": _l("Mobile app: approve a notification on your phone"),
    "oath_token": _l("Authenticator app or OATH token: type the code it shows"),
    "phone_call": _l("Phone call"),
    "text_message": _l("Text message"),
}
STEPS = {"method": "selfservice.enroll_method", "pin": "selfservice.enroll_pin", "phone": "selfservice.enroll_phone",
         "mobile_app": "selfservice.activate", "test": "selfservice.enroll_test",
         "oath_token": "selfservice.add_authenticator", "questions": "selfservice.enroll_questions"}


def _user() -> UserSettings:
    return backend().get_user_info(current_user() or "")


def in_wizard() -> bool:
    return session.get("stage") == "enroll" or "enroll_method" in session


def after_step() -> Response:
    return redirect(url_for("selfservice.enroll" if in_wizard() else "selfservice.home"))


@bp.route("/enroll")
@require_user(enrolled=False)
def enroll() -> Any:
    if session.get("stage") == "enroll" and not settings()["allow_user_enrollment"]:
        abort(403)
    user = _user()
    offered = offered_methods()
    method = session.get("enroll_method")
    if method not in offered:
        if settings()["allow_users_to_select_method"] and len(offered) > 1:
            return redirect(url_for("selfservice.enroll_method"))
        if user.method not in offered:
            return render_template("selfservice/message.html", title=_("Set-up needs your help desk"),
                                   message=_("No sign-in method is available for you to set up here. "
                                             "Contact your help desk."))
        method = user.method
        session["enroll_method"] = method
    try:
        backend().complete_enrollment(user.username, method)
    except InvalidInput as exc:
        return redirect(url_for(STEPS.get(exc.field, "selfservice.enroll_method")))
    except Forbidden as exc:
        return render_template("selfservice/message.html", title=_("Set-up needs your help desk"),
                               message=exc.message), 403
    first = session.get("stage") == "enroll"
    for key in ("enroll_method", "test_txn", "test_number", "activation", "oath"):
        session.pop(key, None)
    sign_in(user.username, "full")
    session["notice"] = _("You are set up. From now on, sign-ins are confirmed with your %(method)s.",
                          method=str(METHOD_LABELS[method]).split(":")[0].lower()) if first \
        else _("Your sign-in method is changed.")
    return redirect(url_for("selfservice.home"))


@bp.route("/enroll/method", methods=["GET", "POST"])
@require_user(enrolled=False)
def enroll_method() -> Any:
    offered = offered_methods()
    if not settings()["allow_users_to_select_method"]:
        abort(404)
    form = MethodForm()
    form.method.choices = [SelectChoice(m, str(METHOD_LABELS[m])) for m in offered]
    if request.method == "GET":
        form.method.data = session.get("enroll_method") or _user().method
    if form.validate_on_submit():
        session["enroll_method"] = form.method.data
        session.pop("test_txn", None)
        return redirect(url_for("selfservice.enroll"))
    return render_template("selfservice/enroll_method.html", form=form, wizard=session.get("stage") == "enroll")


@bp.route("/enroll/pin", methods=["GET", "POST"])
@require_user(enrolled=False)
def enroll_pin() -> Any:
    form = PinForm()
    if form.validate_on_submit():
        try:
            from ..sdk.backend import UserSettingsInput

            backend().update_user_settings(current_user() or "", UserSettingsInput(pin=form.pin.data,
                                                                                   pin_change_required=False))
        except InvalidInput as exc:
            field_error(form, exc)
        else:
            return after_step()
    return render_template("selfservice/pin.html", form=form, minimum=settings()["pin_minimum_length"],
                           wizard=in_wizard())


@bp.route("/enroll/phone", methods=["GET", "POST"])
@require_user(enrolled=False)
def enroll_phone() -> Any:
    return phone_page()


def phone_page() -> Any:
    from ..sdk.backend import UserSettingsInput

    user = _user()
    form = PhoneForm(data=None if request.method == "POST" else {
        "phone": user.phone or "", "phone_extension": user.phone_extension or "",
        "backup_phone": user.backup_phone or "", "backup_extension": user.backup_extension or ""})
    backup = bool(settings()["prompt_for_backup_phone"])
    if form.validate_on_submit():
        def value(name: str) -> str:
            return str(form[name].data or "").strip()

        change = UserSettingsInput(phone=value("phone"), phone_extension=value("phone_extension"),
                                   backup_phone=value("backup_phone") if backup else None,
                                   backup_extension=value("backup_extension") if backup else None)
        try:
            backend().update_user_settings(user.username, change)
        except InvalidInput as exc:
            field_error(form, exc)
        else:
            session["notice"] = _("Your phone numbers are saved.")
            return after_step()
    return render_template("selfservice/phone.html", form=form, backup=backup, wizard=in_wizard())


@bp.route("/enroll/test", methods=["GET", "POST"])
@require_user(enrolled=False)
def enroll_test() -> Any:
    """ "Authenticate me now": a real sign-in request answered on the new phone."""
    form = EmptyForm()
    user = _user()
    message = None
    if form.validate_on_submit():
        txn = session.get("test_txn")
        if request.form.get("action") == "start" or not txn:
            result = backend().authenticate_user(user.username, application_name=f"{APPLICATION} (test)",
                                                 client_ip=client_ip(), asynchronous=True, number_matching=True,
                                                 method="mobile_app")
            if result.status == "pending":
                session["test_txn"], session["test_number"] = result.transaction_id, result.number_to_match
            else:
                message = _("The test did not start (%(status)s).", status=result.status)
        else:
            try:
                result = backend().get_authentication_status(txn)
            except (RequestNotPending, InvalidInput):
                result = None
            if result is not None and result.status == "approved":
                session.pop("test_txn", None)
                return redirect(url_for("selfservice.enroll"))
            if result is None or result.status != "pending":
                session.pop("test_txn", None)
                message = _("The test was not approved. Try again.")
            else:
                message = _("Not answered yet. Approve the request on your phone, then continue.")
    return render_template("selfservice/enroll_test.html", form=form, waiting=bool(session.get("test_txn")),
                           number=session.get("test_number"), message=message, wizard=in_wizard())


@bp.route("/enroll/test/status")
@require_user(enrolled=False)
def enroll_test_status() -> Any:
    txn = session.get("test_txn")
    if not txn:
        return jsonify({"status": "none"})
    try:
        return jsonify({"status": backend().get_authentication_status(txn, wait_seconds=5).status})
    except (RequestNotPending, InvalidInput):
        return jsonify({"status": "none"})


@bp.route("/activate", methods=["GET", "POST"])
@require_user(enrolled=False)
@require_setting("allow_users_to_activate_mobile_app")
def activate() -> Any:
    """Activate Mobile App: Generate Activation Code → scan or type → Complete Activation."""
    form = EmptyForm()
    user = _user()
    message = None
    active = [d for d in user.devices if d.status == "active"]
    if form.validate_on_submit():
        action = request.form.get("action")
        if action == "generate":
            try:
                code = backend().generate_activation_code(user.username)
            except DeviceLimitReached as exc:
                session.pop("activation", None)
                message = exc.message
            else:
                seal("activation", {"code": code.code, "url": code.url, "account": code.account_name,
                                    "qr": code.qr_payload, "expires": code.expires_at.isoformat(),
                                    "devices": len(active)})
        elif action == "complete":
            status = backend().get_activation_status(user.username)
            if status == "completed":
                session.pop("activation", None)
                session["notice"] = _("Your phone is activated.")
                return after_step()
            message = {"pending": _("The phone has not finished activating yet. Finish on the phone, "
                                    "then select Complete activation again."),
                       "expired": _("The activation code expired. Generate a new one.")}.get(
                status, _("Generate an activation code first."))
    pending = unseal("activation")
    grouped = qr = None
    if pending:
        digits = pending["code"]
        grouped = " ".join(digits[i:i + 3] for i in range(0, len(digits), 3))
        qr = svg_data_uri(pending["qr"])
    limit = int(settings()["device_limit"])
    return render_template("selfservice/activate.html", form=form, pending=pending, grouped=grouped, qr=qr,
                           devices=active, limit=limit, message=message, wizard=in_wizard())


@bp.route("/activate/status")
@require_user(enrolled=False)
def activate_status() -> Any:
    return jsonify({"status": backend().get_activation_status(current_user() or "")})


@bp.route("/authenticator", methods=["GET", "POST"])
@require_user(enrolled=False)
def add_authenticator() -> Any:
    """Add an authenticator app: an otpauth:// QR, then a code proves it before it counts."""
    s = settings()
    if "oath_token" not in offered_methods() and not s["use_oath_token_for_fallback"]:
        abort(404)
    form = CodeForm()
    start = EmptyForm(prefix="start")
    user = _user()
    pending = unseal("oath")
    if request.method == "POST" and request.form.get("action") == "generate" and start.validate_on_submit():
        token = backend().add_oath_token(user.username)
        pending = {"id": token.token_id, "secret": token.secret_base32, "uri": token.key_uri}
        seal("oath", pending)
        return redirect(url_for("selfservice.add_authenticator"))
    if pending and request.form.get("action") == "confirm" and form.validate_on_submit():
        try:
            ok = backend().confirm_oath_token(user.username, int(pending["id"]), form.code.data.strip())
        except InvalidInput as exc:
            field_error(form, exc, {"code": "code", "otp": "code"})
        else:
            if ok:
                session.pop("oath", None)
                session["notice"] = _("Your authenticator app is added.")
                return after_step()
            form.code.errors = [*form.code.errors, _("That code is not correct. Enter the code the app shows now.")]
    qr = svg_data_uri(pending["uri"]) if pending else None
    secret = " ".join(pending["secret"][i:i + 4] for i in range(0, len(pending["secret"]), 4)) if pending else None
    hardware = bool(s["allow_users_to_associate_third_party_oath_token"]) and (
        not in_wizard() or bool(s["prompt_for_third_party_oath_token"]))
    return render_template("selfservice/authenticator.html", form=form, start=start, pending=pending, qr=qr,
                           secret=secret, account=s["account_name"], wizard=in_wizard(), hardware=hardware)


@bp.route("/hardware-token", methods=["GET", "POST"])
@require_user(enrolled=False)
@require_setting("allow_users_to_associate_third_party_oath_token")
def hardware_token() -> Any:
    """Associate a third-party OATH token (imported by an administrator) by serial and code."""
    form = HardwareTokenForm()
    if form.validate_on_submit():
        try:
            ok = backend().associate_oath_token(current_user() or "", form.serial.data.strip(),
                                                form.code.data.strip())
        except InvalidInput as exc:
            field_error(form, exc)
        except Forbidden as exc:
            form.form_errors.append(exc.message)
        else:
            if ok:
                session["notice"] = _("Your token is added.")
                return after_step()
            form.code.errors = [*form.code.errors, _("The serial number and code do not match a token that is "
                                                     "available. Check both and try again.")]
    return render_template("selfservice/hardware_token.html", form=form, wizard=in_wizard())


@bp.route("/enroll/questions", methods=["GET", "POST"])
@require_user(enrolled=False)
@require_setting("use_security_questions_for_fallback")
def enroll_questions() -> Any:
    catalogue = backend().get_security_questions()
    form = questions_form(catalogue.required, [(q.id, q.text) for q in catalogue.questions])()
    if form.validate_on_submit():
        picked = [form[f"question_{i}"].data for i in range(1, catalogue.required + 1)]
        duplicates = {qid for qid in picked if picked.count(qid) > 1}
        for i in range(1, catalogue.required + 1):
            if form[f"question_{i}"].data in duplicates:
                form[f"question_{i}"].errors = [_("Choose a different question for each answer.")]
        if not duplicates:
            answers = {form[f"question_{i}"].data: form[f"answer_{i}"].data
                       for i in range(1, catalogue.required + 1)}
            try:
                backend().set_security_answers(current_user() or "", answers)
            except InvalidInput as exc:
                field_error(form, exc)
            else:
                session["notice"] = _("Your security questions are saved.")
                return after_step()
    return render_template("selfservice/questions.html", form=form, count=catalogue.required, wizard=in_wizard())
