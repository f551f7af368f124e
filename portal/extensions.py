"""Extension objects and accessors for what the factory binds to the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from .core.services import Services

SERVICES = "portal.services"
BACKEND = "portal.backend"


def services() -> Services:
    """The core services (``server`` and ``all`` roles only)."""
    return current_app.extensions[SERVICES]  # type: ignore[no-any-return]
