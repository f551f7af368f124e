"""Routes of the phone API. Each view parses and checks its JSON, builds the proof, and
makes one ``MfaBackend`` call; the rules are the core's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from flask import Response, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..extensions import backend as _backend
from ..sdk.backend import (
    Actor,
    AuthenticationResult,
    DeviceProof,
    DeviceRegistrationInput,
    InvalidInput,
    MfaBackend,
    PortalError,
    SignatureRejected,
)
from . import bp

OPENAPI = Path(__file__).with_name("openapi.json")
MAX_WAIT = 30
JSON_METHODS = ("POST", "PUT", "PATCH")


def backend() -> MfaBackend:
    return _backend(lambda: Actor("phone-api", request.remote_addr, g.get("correlation_id")))


# -- envelope ------------------------------------------------------------------------------------
@bp.errorhandler(PortalError)
def _portal_error(exc: PortalError) -> tuple[Response, int]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, InvalidInput):
        body["field"], body["message"] = exc.field, exc.reason
    resp = jsonify({"error": body})
    retry = getattr(exc, "retry_after", None)
    if retry:
        resp.headers["Retry-After"] = str(retry)
    return resp, exc.http_status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = {404: "NotFound", 405: "MethodNotAllowed", 413: "TooLarge", 415: "UnsupportedMediaType"}.get(
        exc.code or 400, "BadRequest")
    resp = jsonify({"error": {"code": code, "message": exc.description}})
    for key, value in exc.get_headers():
        if key.lower() == "allow":
            resp.headers[key] = value
    return resp, exc.code or 400


@bp.before_request
def _json_only() -> tuple[Response, int] | None:
    if request.method in JSON_METHODS and request.mimetype != "application/json":
        return jsonify({"error": {"code": "UnsupportedMediaType",
                                  "message": "Send the body as application/json."}}), 415
    return None


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    return value


def _proof() -> DeviceProof:
    """The phone's signature headers, with what it signed: method, path, timestamp, body hash."""
    device = request.headers.get("X-MFA-Device")
    stamp = request.headers.get("X-MFA-Timestamp")
    signature = request.headers.get("X-MFA-Signature")
    if not device or not stamp or not signature:
        raise SignatureRejected("Sign the request: X-MFA-Device, X-MFA-Timestamp and X-MFA-Signature are required.")
    if not stamp.isdigit() or len(stamp) > 16:
        raise InvalidInput("X-MFA-Timestamp", "must be Unix time in milliseconds")
    path = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    body_hash = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    return DeviceProof(device[:64], request.method, path, int(stamp), body_hash, signature[:256])


def _result(r: AuthenticationResult) -> dict[str, Any]:
    return {"transaction_id": r.transaction_id, "status": r.status, "authenticated": r.authenticated}


# -- routes --------------------------------------------------------------------------------------
@bp.get("")
@bp.get("/")
def status_page() -> Any:
    """For an administrator after installing: up, and whether the SDK answers. Nothing else."""
    try:
        sdk_ok = backend().test_connection().status == "OK"
    except PortalError:
        sdk_ok = False
    return render_template("mobileapp/status.html", sdk_ok=sdk_ok), 200 if sdk_ok else 503


@bp.get("/openapi.json")
def openapi() -> Response:
    document = json.loads(OPENAPI.read_text())
    document["servers"] = [{"url": current_app.config["BASE_URL"] + current_app.config["MOBILE_APP_PATH"]}]
    return jsonify(document)


@bp.post("/v1/activate")
def activate() -> tuple[Response, int]:
    data = _body()
    push = data.get("push") or {}
    if not isinstance(push, dict):
        raise InvalidInput("push", "must be an object with kind and token")
    registration = DeviceRegistrationInput(
        name=_text(data, "device_name") or "", platform=_text(data, "platform") or "",
        public_key=_text(data, "public_key") or "", push_kind=_text(push, "kind", required=False) or "none",
        push_token=_text(push, "token", required=False))
    done = backend().activate_device(_text(data, "code") or "", registration, request.remote_addr)
    oath = None
    if done.oath_secret_base32:
        oath = {"secret": done.oath_secret_base32, "algorithm": "SHA1", "digits": 6, "period": 30}
    return jsonify({"device_id": done.device_id, "username": done.username, "account_name": done.account_name,
                    "server_time": done.server_time.isoformat() + "Z", "oath": oath,
                    "push": {"kinds": list(done.push_kinds), "webpush_public_key": done.webpush_public_key}}), 201


@bp.get("/v1/requests")
def pending() -> Response:
    raw_wait = request.args.get("wait", "0")
    if not raw_wait.isdigit():
        raise InvalidInput("wait", "must be a whole number of seconds")
    found = backend().get_pending_authentications(_proof(), min(int(raw_wait), MAX_WAIT))
    return jsonify({"requests": [{
        "transaction_id": p.transaction_id, "username": p.username, "application": p.application_name,
        "client_ip": p.client_ip, "created_at": p.created_at.isoformat() + "Z",
        "expires_at": p.expires_at.isoformat() + "Z", "number_choices": list(p.number_choices),
        "pin_required": p.pin_required} for p in found]})


@bp.post("/v1/requests/<transaction_id>/answer")
def answer(transaction_id: str) -> Response:
    proof = _proof()
    data = _body()
    result = _text(data, "result") or ""
    number = data.get("number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise InvalidInput("number", "must be a whole number")
    outcome = backend().submit_authentication_result(proof, transaction_id[:64], result,
                                                     pin=_text(data, "pin", required=False), number=number)
    return jsonify(_result(outcome))


@bp.put("/v1/push")
def update_push() -> tuple[str, int]:
    proof = _proof()
    data = _body()
    backend().update_push_channel(proof, _text(data, "kind") or "", _text(data, "token", required=False))
    return "", 204


@bp.delete("/v1/device")
def sign_out() -> tuple[str, int]:
    backend().sign_out_device(_proof())
    return "", 204
