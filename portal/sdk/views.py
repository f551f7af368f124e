"""Blueprint for ``GET /PfWsSdk.asmx``: the WSDL (``?wsdl``), the schema (``?xsd``) and a
short page naming the operations. SOAP calls (POST) are answered by ``endpoint``."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from . import soap
from .endpoint import PATHS
from .operations import OPERATIONS

bp = Blueprint("sdk", __name__)


def _address() -> str:
    return str(current_app.config["BASE_URL"]) + PATHS[0]


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
