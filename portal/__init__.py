"""The MFA portal: one WSGI app whose parts are chosen by role.

``create_app(config=None)``: configuration → logging → core services (or the SOAP
backend on a frontend) → blueprints by role → error handlers. Importing this module
builds nothing and reads no environment.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from . import config as config_module
from .config import ROOT


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = config_module.load(config)
    app = Flask(
        "portal",
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=settings["INSTANCE_PATH"],
    )
    app.config.update(settings)
    secure_cookies = bool(settings["SSL_REQUIRED"]) or settings["BASE_URL"].startswith("https")
    app.config.update(
        MAX_CONTENT_LENGTH=settings["MAX_REQUEST_BYTES"],
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="__Host-portal" if secure_cookies else "portal",
        PREFERRED_URL_SCHEME="https" if settings["BASE_URL"].startswith("https") else "http",
    )

    from . import cli, errors, security, weblog

    weblog.configure_logging(settings["LOG_LEVEL"])
    weblog.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    _init_core(app)
    _register_blueprints(app)
    security.trust_proxies(app)  # outermost: what runs inside sees the client's address and scheme
    cli.init_app(app)
    return app


def _init_core(app: Flask) -> None:
    """The core in this process (``all``, ``server``), or the SDK client (``frontend``)."""
    from .core.audit import Actor
    from .extensions import BACKEND, SERVICES

    if app.config["ROLE"] == "frontend":
        from .sdk.soap_client import SoapBackend

        soap_backend = SoapBackend(app.config["SDK_URL"], app.config["SDK_USERNAME"], app.config["SDK_PASSWORD"],
                                   ca_file=app.config["SDK_CA_FILE"], timeout=app.config["SDK_TIMEOUT"])
        app.extensions[BACKEND] = lambda _actor=None: soap_backend
        return
    from .core.services import build_services
    from .push import build as build_push
    from .sdk.local import LocalBackend

    services = build_services(config_module.core_config(app.config), push=build_push(app.config))
    app.extensions[SERVICES] = services
    app.extensions[BACKEND] = lambda actor=None: LocalBackend(services, actor or (lambda: Actor("system")))


def _register_blueprints(app: Flask) -> None:
    from flask_wtf.csrf import CSRFProtect

    from .health import bp as health_bp

    # Flask-WTF's Referer check is replaced by an Origin check (selfservice), which
    # compares with the configured BASE_URL as well as the Host.
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    csrf = CSRFProtect(app)

    app.register_blueprint(health_bp)
    role = app.config["ROLE"]
    if role in ("all", "server"):
        from .sdk import endpoint
        from .sdk.views import bp as sdk_bp

        app.register_blueprint(sdk_bp)  # the WSDL and the description page
        endpoint.install(app)  # SOAP calls: in front of Flask, Basic auth per request, no session
        from . import helpdesk

        helpdesk.init_app(app)
    if role in ("all", "frontend"):
        from . import mobileapp, selfservice

        selfservice.init_app(app)
        mobileapp.init_app(app, csrf)
