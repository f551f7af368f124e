"""Self-service pages for an enrolled user: overview, method, phone, PIN, questions,
devices, authenticator apps, one-time bypass and language."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from wtforms import SelectChoice

from ..sdk.backend import Conflict, Forbidden, InvalidInput, NotFound, UserSettingsInput
from . import LANGUAGES, bp
from .enroll import METHOD_LABELS, phone_page
from .forms import BypassForm, ConfirmForm, EmptyForm, LanguageForm, PinForm, field_error
from .state import backend, current_user, offered_methods, require_setting, require_user, settings


def _menu() -> dict[str, bool]:
    s = settings()
    return {
        "method": bool(s["allow_users_to_select_method"]) and len(offered_methods()) > 1,
        "activate": bool(s["allow_users_to_activate_mobile_app"]),
        "authenticator": "oath_token" in offered_methods() or bool(s["use_oath_token_for_fallback"]),
        "hardware": bool(s["allow_users_to_associate_third_party_oath_token"]),
        "phone": bool(s["method_phone_call"] or s["method_text_message"]),
        "questions": bool(s["use_security_questions_for_fallback"]),
        "bypass": bool(s["allow_users_to_initiate_one_time_bypass"]),
        "language": bool(s["allow_users_to_select_language"]),
    }


@bp.route("/")
@require_user()
def home() -> Any:
    user = backend().get_user_info(current_user() or "")
    return render_template("selfservice/home.html", user=user, menu=_menu(), form=EmptyForm(),
                           method_label=str(METHOD_LABELS.get(user.method, user.method)),
                           notice=session.pop("notice", None))


@bp.route("/method", methods=["GET", "POST"])
@require_user()
def change_method() -> Any:
    if not _menu()["method"]:
        abort(404)
    session.pop("enroll_method", None)
    return redirect(url_for("selfservice.enroll_method"))


@bp.route("/phone", methods=["GET", "POST"])
@require_user()
def change_phone() -> Any:
    if not _menu()["phone"]:
        abort(404)
    return phone_page()


@bp.route("/pin", methods=["GET", "POST"])
@require_user()
def change_pin() -> Any:
    user = backend().get_user_info(current_user() or "")
    if user.mode != "pin":
        abort(404)
    form = PinForm()
    if form.validate_on_submit():
        try:
            backend().update_user_settings(user.username, UserSettingsInput(pin=form.pin.data,
                                                                            pin_change_required=False))
        except InvalidInput as exc:
            field_error(form, exc)
        else:
            session["notice"] = _("Your PIN is changed.")
            return redirect(url_for("selfservice.home"))
    return render_template("selfservice/pin.html", form=form, minimum=settings()["pin_minimum_length"], wizard=False)


@bp.route("/questions", methods=["GET", "POST"])
@require_user()
@require_setting("use_security_questions_for_fallback")
def change_questions() -> Any:
    return redirect(url_for("selfservice.enroll_questions"))


@bp.route("/devices/<device_id>/deactivate", methods=["GET", "POST"])
@require_user()
def deactivate_device(device_id: str) -> Any:
    user = backend().get_user_info(current_user() or "")
    device = next((d for d in user.devices if d.id == device_id and d.status == "active"), None)
    if device is None:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            backend().deactivate_device(user.username, device_id)
        except NotFound:
            abort(404)
        session["notice"] = _("The device %(name)s is deactivated.", name=device.name)
        return redirect(url_for("selfservice.home"))
    return render_template("selfservice/confirm_deactivate.html", form=form, device=device,
                           last=len([d for d in user.devices if d.status == "active"]) == 1
                           and user.method == "mobile_app")


@bp.route("/tokens/<int:token_id>/remove", methods=["POST"])
@require_user()
def remove_token(token_id: int) -> Any:
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:  # the core checks the token is this user's, and keeps the one they sign in with
        backend().remove_oath_token(current_user() or "", token_id, keep_sign_in_token=True)
    except NotFound:
        abort(404)
    except Conflict:
        session["notice"] = _("This is the token you sign in with. Choose another method first.")
        return redirect(url_for("selfservice.home"))
    session["notice"] = _("The token is removed.")
    return redirect(url_for("selfservice.home"))


@bp.route("/bypass", methods=["GET", "POST"])
@require_user()
@require_setting("allow_users_to_initiate_one_time_bypass")
def bypass() -> Any:
    s = settings()
    prompt = bool(s["prompt_for_bypass_seconds"])
    form = BypassForm(data=None if request.method == "POST" else {"seconds": s["one_time_bypass_seconds"]})
    if form.validate_on_submit():
        try:
            until = backend().set_one_time_bypass(current_user() or "", form.seconds.data if prompt else None)
        except InvalidInput as exc:
            field_error(form, exc)
        except Forbidden as exc:
            form.form_errors.append(exc.message)
        else:
            session["notice"] = _("Your next sign-in skips two-step verification if it starts before "
                                  "%(time)s UTC.", time=until.strftime("%H:%M:%S"))
            return redirect(url_for("selfservice.home"))
    return render_template("selfservice/bypass.html", form=form, prompt=prompt,
                           seconds=s["one_time_bypass_seconds"])


@bp.route("/language", methods=["GET", "POST"])
@require_user()
@require_setting("allow_users_to_select_language")
def language() -> Any:
    user = backend().get_user_info(current_user() or "")
    form = LanguageForm(data=None if request.method == "POST" else {"language": user.language})
    form.language.choices = [SelectChoice(code, name) for code, name in LANGUAGES.items()]
    if form.validate_on_submit():
        try:
            backend().update_user_settings(user.username, UserSettingsInput(language=form.language.data))
        except InvalidInput as exc:
            field_error(form, exc)
        else:
            session["lang"] = form.language.data
            session["notice"] = _("Your language is saved.")
            return redirect(url_for("selfservice.home"))
    return render_template("selfservice/language.html", form=form)
