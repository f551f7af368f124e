"""Who is signed in to the user portal, and how far.

The session (a signed cookie: Secure, HttpOnly, SameSite=Lax; ``__Host-`` prefixed
under HTTPS) holds only usernames, the pending transaction id and timestamps:

* ``pending``: the password was right; the second factor is not done yet;
* ``user`` + ``stage``: ``full`` after the second factor, ``enroll`` for a user with no
  completed enrollment (as in MFA Server, the password alone opens the setup pages,
  and only them);
* ``seen``: last activity, for the idle timeout ("Session Timeout", minutes).

Sign-in clears the session before it writes the new state, so nothing from before the
sign-in (a fixed session) survives it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from ..extensions import backend as _backend
from ..sdk.backend import Actor, MfaBackend, SettingValue

F = TypeVar("F", bound=Callable[..., Any])
APPLICATION = "User Portal"


def actor() -> Actor:
    who = session.get("user") or session.get("pending") or "anonymous"
    return Actor(f"user:{who}", request.remote_addr, g.get("correlation_id"))


def backend() -> MfaBackend:
    return _backend(actor)


def settings() -> dict[str, SettingValue]:
    """The portal settings, read once per request."""
    if "portal_settings" not in g:
        g.portal_settings = backend().get_portal_settings()
    return g.portal_settings  # type: ignore[no-any-return]


def offered_methods() -> list[str]:
    return [m for m in str(settings()["offered_methods"]).split(",") if m]


def sign_in(username: str, stage: str) -> None:
    """Start a fresh session for ``username``; ``stage`` is ``full`` or ``enroll``."""
    keep_lang = session.get("lang")
    session.clear()
    session.permanent = False
    session["user"], session["stage"], session["seen"] = username, stage, int(time.time())
    if keep_lang:
        session["lang"] = keep_lang


def start_pending(username: str) -> None:
    keep_lang = session.get("lang")
    session.clear()
    session["pending"], session["seen"] = username, int(time.time())
    if keep_lang:
        session["lang"] = keep_lang


def sign_out() -> None:
    keep_lang = session.get("lang")
    session.clear()
    if keep_lang:
        session["lang"] = keep_lang


def idle_expired() -> bool:
    """True (and the session cleared) when the user has been idle past the timeout."""
    seen = session.get("seen")
    if seen is None:
        return False
    limit = int(settings()["session_timeout_minutes"]) * 60
    if time.time() - int(seen) > limit:
        sign_out()
        return True
    session["seen"] = int(time.time())
    return False


def current_user() -> str | None:
    return session.get("user") if session.get("stage") in ("full", "enroll") else None


def require_user(*, enrolled: bool = True) -> Callable[[F], F]:
    """Views for a signed-in user; ``enrolled=False`` also admits the enrollment stage."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if idle_expired() or current_user() is None:
                return redirect(url_for("selfservice.login", next=safe_next(request.full_path)))
            if enrolled and session.get("stage") != "full":
                return redirect(url_for("selfservice.enroll"))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def require_setting(key: str) -> Callable[[F], F]:
    """A page behind a console switch: hidden from menus and refused (404) while it is off."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not settings()[key]:
                abort(404)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None) -> str | None:
    """A same-site path to return to, or None: no scheme, no host, no ``//``, no backslash."""
    if not target:
        return None
    target = target.rstrip("?")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 for c in target):
        return None
    return target


def go_next(default_endpoint: str = "selfservice.home") -> Response:
    return redirect(safe_next(request.args.get("next")) or url_for(default_endpoint))


def client_ip() -> str | None:
    return request.remote_addr



def _box() -> AESGCM:
    key = hashlib.sha256(b"portal:session-seal:v1|" + current_app.config["SECRET_KEY"].encode()).digest()
    return AESGCM(key)


def seal(name: str, value: dict[str, Any]) -> None:
    """Keep a secret the page must show again (an activation code, a new OATH seed) in the
    session cookie, encrypted: the cookie is only signed, and the frontend has no store."""
    nonce = os.urandom(12)
    blob = _box().encrypt(nonce, json.dumps(value).encode(), name.encode())
    session[name] = base64.urlsafe_b64encode(nonce + blob).decode()


def unseal(name: str) -> dict[str, Any] | None:
    raw = session.get(name)
    if not raw:
        return None
    try:
        data = base64.urlsafe_b64decode(raw)
        return json.loads(_box().decrypt(data[:12], data[12:], name.encode()))  # type: ignore[no-any-return]
    except (ValueError, InvalidTag):
        session.pop(name, None)
        return None
