"""One error hierarchy for the whole product.

Every class has a stable machine-readable ``code`` (used by the phone API's JSON
envelope and the SDK's SOAP faults) and a message that is safe to show: it never
holds a secret, a code or a stack trace.
"""

from __future__ import annotations


class PortalError(Exception):
    """Base of every error the product raises on purpose."""

    code = "ServerError"
    http_status = 500

    def __init__(self, message: str = "An internal error occurred.") -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PortalError):
    """A value given by a caller is missing, too long, of the wrong type or malformed."""

    code = "InvalidArgument"
    http_status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(PortalError):
    code = "NotFound"
    http_status = 404


class UserNotFound(NotFound):
    code = "UserNotFound"

    def __init__(self, username: str | None = None) -> None:
        super().__init__("No such user." if username is None else f"No user named {username!r}.")


class Conflict(PortalError):
    code = "Conflict"
    http_status = 409


class Unauthorized(PortalError):
    """Credentials are missing or wrong. One message whether or not the account exists."""

    code = "Unauthorized"
    http_status = 401

    def __init__(self, message: str = "Invalid credentials.") -> None:
        super().__init__(message)


class SignatureRejected(Unauthorized):
    """A phone's signed request was refused (signature, clock, replay, unknown device). Its own
    code, so that over the SDK it can never be mistaken for the frontend's own credentials."""

    code = "SignatureRejected"

    def __init__(self, message: str = "The request signature is not valid.") -> None:
        super().__init__(message)


class Forbidden(PortalError):
    code = "Forbidden"
    http_status = 403

    def __init__(self, message: str = "Not allowed.") -> None:
        super().__init__(message)


class Throttled(PortalError):
    code = "Throttled"
    http_status = 429

    def __init__(self, retry_after: int = 60) -> None:
        super().__init__(f"Too many attempts; try again in {retry_after} seconds.")
        self.retry_after = retry_after


class UserBlocked(Forbidden):
    code = "UserBlocked"

    def __init__(self) -> None:
        super().__init__("This account is blocked. Contact your help desk.")


class UserDisabled(Forbidden):
    code = "UserDisabled"

    def __init__(self) -> None:
        super().__init__("This account is disabled. Contact your help desk.")


class UserLockedOut(Forbidden):
    code = "UserLockedOut"

    def __init__(self) -> None:
        super().__init__("Too many failed attempts; the account is locked for a while.")


class CodeInvalid(PortalError):
    """An activation code that does not exist (or never did)."""

    code = "ActivationCodeInvalid"
    http_status = 400

    def __init__(self) -> None:
        super().__init__("The activation code is not valid.")


class CodeExpired(PortalError):
    code = "ActivationCodeExpired"
    http_status = 400

    def __init__(self) -> None:
        super().__init__("The activation code has expired. Generate a new one.")


class CodeUsed(PortalError):
    code = "ActivationCodeUsed"
    http_status = 400

    def __init__(self) -> None:
        super().__init__("The activation code has already been used or was replaced.")


class DeviceLimitReached(Conflict):
    code = "DeviceLimitReached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The limit of {limit} activated device(s) is reached; deactivate one first.")


class RequestNotPending(Conflict):
    """An authentication request that already has its result, or has expired."""

    code = "RequestNotPending"

    def __init__(self, status: str) -> None:
        super().__init__(f"The authentication request is no longer pending (it is {status}).")
        self.status = status


class ConfigError(PortalError):
    """The configuration is missing a value or holds a malformed one; names the variable."""

    code = "ConfigError"

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class BackendUnavailable(PortalError):
    """The frontend could not reach the server's SDK."""

    code = "BackendUnavailable"
    http_status = 503

    def __init__(self, message: str = "The MFA server could not be reached.") -> None:
        super().__init__(message)
