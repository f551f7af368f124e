"""A reference phone client for the Mobile App Web Service (``python -m portal.phone``).

It does what an authenticator app does, with the documented protocol only (it imports
nothing of the server): activate from a QR image or from URL + code, keep its key in a
file (mode 0600), wait for sign-in requests, show them, and answer with PIN and number.
Tests use it; administrators use it to check a deployment end to end.
"""

from .client import PhoneClient, PhoneError, PhoneState

__all__ = ["PhoneClient", "PhoneError", "PhoneState"]
