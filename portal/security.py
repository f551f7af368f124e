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
_PLAIN_HTTP_OK = {"health.healthz"}


def init_app(app: Flask) -> None:
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

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
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")  # no URL leaves the site; forms keep their Origin
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.endpoint != "static":
            h["Cache-Control"] = "no-store"
        if request.is_secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
