"""The Mobile App Web Service: the short internet-facing path (default ``/PA``) phones talk to.

JSON only, versioned (``/PA/v1/...``), one error envelope ``{"error": {"code", "message",
"field"?}}`` with the product's stable codes. After activation every phone request is
signed with the device's key (headers ``X-MFA-Device``, ``X-MFA-Timestamp``,
``X-MFA-Signature``); this blueprint only passes the proof on, through the ``MfaBackend``
port, and the core checks it. So it runs unchanged in the ``frontend`` role.
The protocol is documented in ``openapi.json`` (served at ``/PA/openapi.json``) and
``docs/phone-api.md``.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("mobileapp", __name__)


def init_app(app: Flask, csrf: object) -> None:
    from . import views  # noqa: F401  (routes register on bp)

    exempt = getattr(csrf, "exempt", None)
    if exempt is not None:
        exempt(bp)  # no cookies, no forms: every request is signed
    app.register_blueprint(bp, url_prefix=app.config["MOBILE_APP_PATH"])
