"""The user portal: sign-in, the first-time enrollment wizard and the self-service pages.

It reaches the core only through the ``MfaBackend`` port, so it runs unchanged in the
``frontend`` role (over SOAP) and in ``all`` (in process).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, request, session
from flask_babel import Babel, get_locale

bp = Blueprint("selfservice", __name__)
LANGUAGES = {"en": "English", "de": "Deutsch"}


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


@bp.before_request
def _same_origin_posts() -> None:
    """Browsers send ``Origin`` with every POST: one from another site (or ``null``, as a
    sandboxed frame sends) is refused, beside the CSRF token and the SameSite cookie.
    This replaces Flask-WTF's Referer check, which breaks behind proxies that rewrite Host."""
    if request.method != "POST":
        return
    origin = request.headers.get("Origin")
    if origin is None:
        return
    base = urlsplit(current_app.config["BASE_URL"])
    allowed = {f"{base.scheme}://{base.netloc}", request.host_url.rstrip("/")}
    if origin.rstrip("/") not in allowed:
        abort(400, "This form was sent from another site.")


def init_app(app: Flask) -> None:
    from ..config import ROOT


    Babel(app, locale_selector=select_locale, default_translation_directories=str(ROOT / "translations"))
    app.jinja_env.globals["get_locale"] = get_locale
    from . import auth, enroll, manage  # noqa: F401  (views register on bp)

    app.register_blueprint(bp)
