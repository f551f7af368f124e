"""Sign-in: password (Primary authentication), then the second factor by the user's method,
with the fallbacks the settings allow (security questions, OATH code)."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import abort, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ..sdk.backend import (
    AuthenticationResult,
    Forbidden,
    InvalidInput,
    RequestNotPending,
    Throttled,
    UserNotFound,
    UserSettings,
)
from . import LANGUAGES, bp
from .forms import CodeForm, EmptyForm, LoginForm, answers_form, field_error
from .state import (
    APPLICATION,
    backend,
    client_ip,
    go_next,
    idle_expired,
    safe_next,
    settings,
    sign_in,
    sign_out,
    start_pending,
)

BAD_CREDENTIALS = _l("The username or password is incorrect.")
STATUS_MESSAGES = {
    "denied": _l("The sign-in was denied."),
    "fraud": _l("You reported this sign-in as fraud. Your account may be blocked; contact your help desk."),
    "expired": _l("The request expired before it was answered. Try again."),
    "cancelled": _l("The request was cancelled. Try again."),
    "wrong_pin": _l("The PIN was not correct."),
    "blocked": _l("Your account is blocked. Contact your help desk."),
    "disabled": _l("Your account is disabled. Contact your help desk."),
    "locked_out": _l("Too many failed attempts: your account is locked for a while."),
    "method_unavailable": _l("Your sign-in method cannot be used here yet. Use another way below or contact "
                          "your help desk."),
}


def _status_message(status: str) -> str:
    return str(STATUS_MESSAGES.get(status, _l("The sign-in did not succeed.")))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    allowed = bool(settings()["allow_users_to_log_in"])
    form = LoginForm()
    status = 200
    if request.method == "POST":
        if not allowed:
            return render_template("selfservice/login.html", form=form, allowed=False), 403
        if form.validate_on_submit():
            outcome = _check_password(form)
            if isinstance(outcome, Response):
                return outcome
            status = outcome
    return render_template("selfservice/login.html", form=form, allowed=allowed), status


def _check_password(form: LoginForm) -> Response | int:
    username, password = form.username.data.strip(), form.password.data
    try:
        ok = backend().validate_primary_credentials(username, password, client_ip())
        user = backend().get_user_info(username) if ok else None
    except Throttled as exc:
        form.form_errors.append(_("Too many attempts. Try again in %(n)s seconds.", n=exc.retry_after))
        return 429
    except (UserNotFound, InvalidInput):
        user = None
    if user is None:
        form.form_errors.append(str(BAD_CREDENTIALS))
        return 200
    nxt = safe_next(request.args.get("next"))
    if not user.enrolled:
        if not settings()["allow_user_enrollment"]:
            form.form_errors.append(_("Your account is not set up for two-step verification yet. "
                                      "Contact your help desk."))
            return 200
        sign_in(user.username, "enroll")
        return redirect(url_for("selfservice.enroll"))
    start_pending(user.username)
    return redirect(url_for("selfservice.verify", next=nxt))


def _pending_user() -> UserSettings | None:
    if idle_expired() or not session.get("pending"):
        return None
    try:
        return backend().get_user_info(session["pending"])
    except UserNotFound:
        sign_out()
        return None


def _fallbacks(user: UserSettings) -> dict[str, bool]:
    s = settings()
    has_token = any(t.verified for t in user.oath_tokens)
    return {
        "questions": bool(s["use_security_questions_for_fallback"]),
        "code": bool(s["use_oath_token_for_fallback"]) and has_token and user.method != "oath_token",
    }


def _finish(result: AuthenticationResult, user: UserSettings) -> Response | None:
    if result.status == "approved":
        sign_in(user.username, "full")
        if settings()["allow_users_to_select_language"] and user.language in LANGUAGES:
            session["lang"] = user.language
        return go_next()
    return None


@bp.route("/login/verify", methods=["GET", "POST"])
def verify() -> Any:
    user = _pending_user()
    if user is None:
        return redirect(url_for("selfservice.login"))
    fallbacks = _fallbacks(user)
    if user.method == "oath_token":
        return _verify_code(user, fallbacks, primary=True)
    if user.method != "mobile_app":
        return render_template("selfservice/verify_unavailable.html", user=user, fallbacks=fallbacks,
                               message=_status_message("method_unavailable"))
    return _verify_app(user, fallbacks)


def _verify_app(user: UserSettings, fallbacks: dict[str, bool]) -> Any:
    form = EmptyForm()
    message = None
    txn = session.get("txn")
    if request.method == "POST" and form.validate_on_submit():
        if request.form.get("action") == "retry" or not txn:
            txn = None
        else:
            try:
                result = backend().get_authentication_status(txn)
            except (RequestNotPending, InvalidInput):
                txn = None
            else:
                done = _finish(result, user)
                if done:
                    return done
                if result.status != "pending":
                    message = _status_message(result.status)
                    session.pop("txn", None)
                    return render_template("selfservice/verify_app.html", user=user, form=form, number=None,
                                           message=message, fallbacks=fallbacks, waiting=False)
    if not txn:
        result = backend().authenticate_user(user.username, application_name=APPLICATION, client_ip=client_ip(),
                                             asynchronous=True, number_matching=True)
        done = _finish(result, user)
        if done:
            return done
        if result.status != "pending":
            return render_template("selfservice/verify_app.html", user=user, form=form, number=None,
                                   message=_status_message(result.status), fallbacks=fallbacks, waiting=False)
        session["txn"], session["number"] = result.transaction_id, result.number_to_match
    return render_template("selfservice/verify_app.html", user=user, form=form, number=session.get("number"),
                           message=message, fallbacks=fallbacks, waiting=True)


@bp.route("/login/status")
def verify_status() -> Any:
    """Polled by static/portal.js while a phone request is pending (the page works without it)."""
    txn = session.get("txn")
    if not session.get("pending") or not txn:
        return jsonify({"status": "none"})
    try:
        result = backend().get_authentication_status(txn, wait_seconds=5)
    except (RequestNotPending, InvalidInput):
        return jsonify({"status": "none"})
    return jsonify({"status": result.status})


@bp.route("/login/code", methods=["GET", "POST"])
def verify_code() -> Any:
    user = _pending_user()
    if user is None:
        return redirect(url_for("selfservice.login"))
    fallbacks = _fallbacks(user)
    if not fallbacks["code"]:
        abort(404)
    return _verify_code(user, fallbacks, primary=False)


def _verify_code(user: UserSettings, fallbacks: dict[str, bool], *, primary: bool) -> Any:
    form = CodeForm()
    pin_needed = primary and user.mode == "pin"
    message = None
    if form.validate_on_submit():
        code = form.code.data.strip()
        try:
            if primary:
                result = backend().authenticate_user(user.username, otp=code, pin=form.pin.data or None if pin_needed
                                                     else None, application_name=APPLICATION,
                                                     client_ip=client_ip())
                done = _finish(result, user)
                if done:
                    return done
                message = _status_message(result.status) if result.status != "denied" or result.reason \
                    == "wrong_pin" else _("That code is not correct.")
            else:
                check = backend().validate_oath_code(user.username, code)
                if check.valid:
                    sign_in(user.username, "full")
                    return go_next()
                message = _status_message(check.reason) if check.reason in STATUS_MESSAGES \
                    else _("That code is not correct.")
        except InvalidInput as exc:
            field_error(form, exc, {"otp": "code"})
        except Throttled as exc:
            message = _("Too many attempts. Try again in %(n)s seconds.", n=exc.retry_after)
    return render_template("selfservice/verify_code.html", user=user, form=form, pin_needed=pin_needed,
                           message=message, fallbacks=fallbacks, primary=primary)


@bp.route("/login/questions", methods=["GET", "POST"])
def verify_questions() -> Any:
    user = _pending_user()
    if user is None:
        return redirect(url_for("selfservice.login"))
    fallbacks = _fallbacks(user)
    if not fallbacks["questions"]:
        abort(404)
    picked = session.get("challenge")
    if not picked:
        picked = [[q.id, q.text] for q in backend().get_security_challenge(user.username)]
        session["challenge"] = picked
    if not picked:
        return render_template("selfservice/verify_unavailable.html", user=user, fallbacks={},
                               message=_("You have not set up security questions."))
    form = answers_form([(qid, text) for qid, text in picked])()
    message = None
    if form.validate_on_submit():
        answers = {qid: form[f"answer_{qid}"].data for qid, _text in picked}
        try:
            ok = backend().verify_security_answers(user.username, answers)
        except Forbidden as exc:
            message = _status_message({"UserLockedOut": "locked_out", "UserBlocked": "blocked",
                                       "UserDisabled": "disabled"}.get(exc.code, "denied"))
        except InvalidInput as exc:
            field_error(form, exc)
        else:
            if ok:
                sign_in(user.username, "full")
                return go_next()
            session.pop("challenge", None)
            message = _("At least one answer is not correct.")
    return render_template("selfservice/verify_questions.html", user=user, form=form, message=message,
                           fallbacks=fallbacks)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    txn = session.get("txn")
    if txn and session.get("pending"):
        with contextlib.suppress(RequestNotPending, InvalidInput):
            backend().cancel_authentication(txn)
    sign_out()
    return redirect(url_for("selfservice.login"))
