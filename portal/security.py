"""Transport rules and response headers shared by every blueprint.

* ``SSL_REQUIRED`` (MFA Server's name; default on): plain HTTP is refused unless
  ``TRUSTED_PROXIES`` proxies say the client used HTTPS (TLS offloading). Only the
  health check answers over plain HTTP, for load balancers.
* Strict headers on every response, and ``Cache-Control: no-store`` on everything that
  is not a static file: pages here show codes, secrets and QR images.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
# On every response (the SDK endpoint, which bypasses Flask, sends the same).
STATIC_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),  # no URL leaves the site; forms keep their Origin
    ("Content-Security-Policy", CSP),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
_PLAIN_HTTP_OK = {"health.healthz"}


def trust_proxies(app: Flask) -> None:
    """Read the client's address and scheme from ``TRUSTED_PROXIES`` proxies. Installed last,
    outermost, so everything inside (the SDK endpoint too) sees the corrected environ."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]


def init_app(app: Flask) -> None:
    @app.before_request
    def _require_tls() -> Response | tuple[Response, int] | None:
        if app.config["SSL_REQUIRED"] and not request.is_secure and request.endpoint not in _PLAIN_HTTP_OK:
            if request.blueprint == "mobileapp":  # phones read the API's error envelope
                return jsonify({"error": {"code": "HttpsRequired", "message": "HTTPS is required."}}), 403
            return Response("HTTPS is required.\n", status=403, mimetype="text/plain")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        h = response.headers
        for key, value in STATIC_HEADERS:
            h.setdefault(key, value)
        if request.endpoint != "static":
            h["Cache-Control"] = "no-store"
        if request.is_secure:
            h.setdefault(*HSTS)
        return response
