"""Blueprint for ``/PfWsSdk.asmx``: HTTP Basic as a member of the administrators group,
then parse, validate, dispatch by element name, answer (or fault)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, g, request
from lxml import etree
from werkzeug.exceptions import RequestEntityTooLarge

from ..core.errors import Forbidden, InvalidInput, PortalError, Throttled, Unauthorized
from ..extensions import services
from ..weblog import actor as request_actor
from . import soap
from .local import LocalBackend
from .operations import OPERATIONS

bp = Blueprint("sdk", __name__)
log = logging.getLogger("portal.sdk")
PATHS = ("/PfWsSdk.asmx", "/MultiFactorAuthWebServiceSdk/PfWsSdk.asmx")


def _address() -> str:
    return str(current_app.config["BASE_URL"]) + PATHS[0]


def _version() -> str:
    media = (request.mimetype or "").lower()
    return soap.SOAP12 if media == "application/soap+xml" else soap.SOAP11


def _fault(version: str, err: soap.SoapError, status: int | None = None) -> Response:
    if status is None:
        status = err.http_status or (400 if version == soap.SOAP12 and err.sender else 500)
    resp = Response(soap.fault(version, err, g.get("correlation_id")), status=status,
                    content_type=soap.CONTENT_TYPES[version])
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="PfWsSdk", charset="UTF-8"'
    if err.retry_after:
        resp.headers["Retry-After"] = str(err.retry_after)
    return resp


def _from_error(exc: PortalError) -> soap.SoapError:
    field = exc.field if isinstance(exc, InvalidInput) else None
    status = {Unauthorized: 401, Forbidden: 403, Throttled: 429}.get(type(exc))
    retry = exc.retry_after if isinstance(exc, Throttled) else None
    return soap.SoapError(exc.code, exc.message, field, sender=exc.http_status < 500, http_status=status,
                          retry_after=retry)


@bp.get(PATHS[0])
@bp.get(PATHS[1])
def describe() -> Response:
    """``?wsdl`` gives the WSDL, ``?xsd`` the schema; otherwise a short page naming the operations."""
    if "wsdl" in {k.lower() for k in request.args}:
        return Response(soap.wsdl(_address()), content_type="text/xml; charset=utf-8")
    if "xsd" in {k.lower() for k in request.args}:
        return Response(soap.xsd(), content_type="text/xml; charset=utf-8")
    items = "".join(f"<li>{name}</li>" for name in OPERATIONS)
    return Response(f"<!doctype html><title>PfWsSdk</title><h1>MFA Portal Web Service SDK</h1>"
                    f"<p>SOAP 1.1 and 1.2. Contract: <a href='?wsdl'>WSDL</a>.</p><ul>{items}</ul>",
                    content_type="text/html; charset=utf-8")


@bp.post(PATHS[0])
@bp.post(PATHS[1])
def call() -> Response:
    version = _version()
    creds = request.authorization
    if creds is None or creds.type != "basic" or not creds.username or not creds.password:
        return _fault(version, soap.SoapError("Unauthorized", "HTTP Basic credentials are required."), 401)
    try:
        principal = services().accounts.authenticate_sdk(request_actor("sdk"), creds.username, creds.password)
    except PortalError as exc:
        return _fault(version, _from_error(exc))
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _fault(version, soap.SoapError("RequestTooLarge", "The request body is too large."), 413)
    try:
        version, op = soap.parse_request(body, request.content_type or "", OPERATIONS)
        name = etree.QName(op).localname
        backend = LocalBackend(services(), lambda: request_actor(principal.actor_name))
        payload = OPERATIONS[name](backend, op)
    except soap.SoapError as err:
        return _fault(version, err)
    except PortalError as exc:
        return _fault(version, _from_error(exc))
    except Exception:
        log.exception("SDK operation failed rid=%s", g.get("correlation_id"))
        hidden = soap.SoapError("ServerError",
                                f"An internal error occurred (reference {g.get('correlation_id')}).", sender=False)
        return _fault(version, hidden)
    if current_app.testing:
        assert soap.SCHEMA.validate(payload), soap.SCHEMA.error_log
    return Response(soap.envelope(version, payload), content_type=soap.CONTENT_TYPES[version])
