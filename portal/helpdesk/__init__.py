"""The helpdesk and administration console at ``/helpdesk`` (roles ``all`` and ``server``).

Staff sign in with their password and an authenticator app; each page and action checks
the staff member's right through ``StaffSecurity.authorize`` (refusals are audited). The
console uses the core services directly: it runs beside the database, on the internal
network. It keeps its own session keys and never accepts an end user's portal session.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("helpdesk", __name__, url_prefix="/helpdesk")


def init_app(app: Flask) -> None:
    from . import auth, reports, staff, views  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
