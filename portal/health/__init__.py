"""``/healthz``: is the process up and its database (or, on a frontend, its SDK) reachable."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from ..core.errors import PortalError
from ..extensions import SERVICES, backend

bp = Blueprint("health", __name__)
log = logging.getLogger("portal.health")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    services = current_app.extensions.get(SERVICES)
    if services is None:  # a frontend: its store is the server, reached through the SDK
        try:
            backend().test_connection()
        except PortalError:
            log.warning("health check: SDK unreachable")
            return jsonify(status="error", role="frontend", sdk="unreachable"), 503
        return jsonify(status="ok", role="frontend", sdk="ok")
    try:
        services.db.ping()
    except SQLAlchemyError:
        log.warning("health check: database unreachable")
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", role=current_app.config["ROLE"], database="ok")
