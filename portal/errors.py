"""Error handlers, registered once. Nothing sensitive leaves: unknown errors give a 500
with a correlation id that matches the one logged with the traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .core.errors import PortalError, Throttled

log = logging.getLogger("portal.errors")


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.is_json or best == "application/json"


def _wants_page() -> bool:
    """An HTML error page for the browser-facing pages; JSON (and SOAP faults) elsewhere."""
    return request.blueprint in ("selfservice", "helpdesk") and not _wants_json()


def _page(status: int, message: str) -> str:
    return render_template("error.html", status=status, message=message)


def init_app(app: Flask) -> None:
    @app.errorhandler(PortalError)
    def _portal_error(exc: PortalError) -> tuple[Response | str, int]:
        if _wants_page():
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else {}
            return _page(exc.http_status, exc.message), exc.http_status, headers  # type: ignore[return-value]
        body = {"error": {"code": exc.code, "message": exc.message}}
        field = getattr(exc, "field", None)
        if field:
            body["error"]["field"] = field
        resp = jsonify(body)
        if isinstance(exc, Throttled):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp, exc.http_status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if _wants_json():
            resp = jsonify({"error": {"code": exc.name.replace(" ", ""), "message": exc.description}})
            resp.status_code = exc.code or 500
            for key, value in exc.get_headers():  # Allow (405), Retry-After, WWW-Authenticate ...
                if key.lower() != "content-type":
                    resp.headers[key] = value
            return resp
        if _wants_page():
            resp = Response(_page(exc.code or 500, exc.description or exc.name), status=exc.code or 500,
                            mimetype="text/html")
            for key, value in exc.get_headers():
                if key.lower() != "content-type":
                    resp.headers[key] = value
            return resp
        return exc.get_response()  # type: ignore[return-value]

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response | str, int]:
        rid = g.get("correlation_id", "-")
        log.exception("unhandled error rid=%s", rid)
        if _wants_page():
            return _page(500, f"An internal error occurred (reference {rid})."), 500
        return jsonify({"error": {"code": "ServerError",
                                  "message": f"An internal error occurred (reference {rid})."}}), 500
