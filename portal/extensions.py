"""Accessors for what the factory binds to the app: core services and the MfaBackend."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from .core.audit import Actor
    from .core.services import Services
    from .sdk.backend import MfaBackend

SERVICES = "portal.services"
BACKEND = "portal.backend"


def services() -> Services:
    """The core services (``server`` and ``all`` roles only)."""
    return current_app.extensions[SERVICES]  # type: ignore[no-any-return]


def backend(actor: Callable[[], Actor] | None = None) -> MfaBackend:
    """The MfaBackend: in-process for ``all``, the SDK over SOAP for ``frontend``.

    ``actor`` names who acts in the audit log; over SOAP the server records the
    frontend's service account instead.
    """
    factory = current_app.extensions[BACKEND]
    return factory(actor)  # type: ignore[no-any-return]
