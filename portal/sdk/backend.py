"""The ``MfaBackend`` port: everything the user portal and the phone API may ask of the core.

Two adapters pass one contract test suite: :class:`portal.sdk.local.LocalBackend`
(in-process, core services) and :class:`portal.sdk.soap_client.SoapBackend` (zeep, the
Web Service SDK over HTTPS). The frontend blueprints import this module, never the core;
errors are the product's one hierarchy, re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from ..core.audit import Actor
from ..core.errors import (
    BackendUnavailable,
    Conflict,
    DeviceLimitReached,
    Forbidden,
    InvalidInput,
    NotFound,
    PortalError,
    RequestNotPending,
    SignatureRejected,
    Throttled,
    Unauthorized,
    UserBlocked,
    UserDisabled,
    UserLockedOut,
    UserNotFound,
)

# Imported names the frontends take from here (they never import the core); the names
# defined below are public as well.
__all__ = [
    "Actor",
    "BackendUnavailable",
    "Conflict",
    "DeviceLimitReached",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PortalError",
    "RequestNotPending",
    "SignatureRejected",
    "Throttled",
    "Unauthorized",
    "UserBlocked",
    "UserDisabled",
    "UserLockedOut",
    "UserNotFound",
]


@dataclass(frozen=True)
class OathTokenInfo:
    id: int
    kind: str
    type: str
    serial_number: str | None
    verified: bool


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    name: str
    platform: str
    status: str
    activated_at: dt.datetime
    last_seen_at: dt.datetime | None


@dataclass(frozen=True)
class UserSettings:
    username: str
    display_name: str | None
    email: str | None
    phone: str | None
    phone_extension: str | None
    backup_phone: str | None
    backup_extension: str | None
    language: str
    method: str
    mode: str
    enabled: bool
    blocked: bool
    blocked_reason: str | None
    blocked_until: dt.datetime | None
    locked_until: dt.datetime | None
    has_pin: bool
    pin_change_required: bool
    enrolled: bool
    oath_token_serial_number: str | None
    oath_tokens: tuple[OathTokenInfo, ...]
    devices: tuple[DeviceInfo, ...]
    created_at: dt.datetime


@dataclass(frozen=True)
class UserSettingsInput:
    """Changes to a user; ``None`` leaves a field alone, ``""`` clears it."""

    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_extension: str | None = None
    backup_phone: str | None = None
    backup_extension: str | None = None
    language: str | None = None
    method: str | None = None
    mode: str | None = None
    enabled: bool | None = None
    pin: str | None = None
    pin_change_required: bool | None = None
    blocked: bool | None = None
    blocked_reason: str | None = None


@dataclass(frozen=True)
class UserPage:
    total: int
    page: int
    page_size: int
    users: tuple[UserSettings, ...]


@dataclass(frozen=True)
class AuthenticationResult:
    transaction_id: str | None
    status: str
    authenticated: bool
    reason: str | None
    method: str
    number_to_match: int | None
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class OathCheck:
    valid: bool
    reason: str | None


@dataclass(frozen=True)
class ActivationCode:
    code: str
    url: str
    account_name: str
    username: str
    expires_at: dt.datetime

    @property
    def qr_payload(self) -> str:
        return f"{self.url}?{urlencode({'code': self.code, 'account': self.account_name})}"


@dataclass(frozen=True)
class OathEnrollment:
    """A new authenticator-app token: shown once, counts after ``confirm_oath_token``."""

    token_id: int
    secret_base32: str
    key_uri: str


@dataclass(frozen=True)
class SecurityQuestion:
    id: int
    text: str


@dataclass(frozen=True)
class QuestionCatalogue:
    required: int
    questions: tuple[SecurityQuestion, ...]


SettingValue = bool | int | str


@dataclass(frozen=True)
class DeviceRegistrationInput:
    """What a phone sends to activate: its name, platform, public key and push channel."""

    name: str
    platform: str  # android | ios | web | desktop | other
    public_key: str  # ECDSA P-256, base64 DER SubjectPublicKeyInfo or PEM
    push_kind: str = "none"  # none | fcm | apns | webpush
    push_token: str | None = None


@dataclass(frozen=True)
class ActivatedDeviceInfo:
    device_id: str
    username: str
    account_name: str
    server_time: dt.datetime
    oath_secret_base32: str | None  # for the app's offline code mode, where the setting allows
    push_kinds: tuple[str, ...] = ()  # what the server can push to, besides "none" (polling)
    webpush_public_key: str | None = None  # VAPID key for a Web Push subscription


@dataclass(frozen=True)
class DeviceProof:
    """A phone's signed request, passed on unchanged: the server checks it (see core/devices.py)."""

    device_id: str
    method: str
    path: str
    timestamp: int  # Unix milliseconds
    body_sha256: str  # hex
    signature: str  # base64url of the DER ECDSA P-256 / SHA-256 signature


@dataclass(frozen=True)
class PendingAuthentication:
    transaction_id: str
    username: str
    application_name: str | None
    client_ip: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    number_choices: tuple[int, ...]  # empty without number matching
    pin_required: bool


@dataclass(frozen=True)
class ConnectionInfo:
    status: str
    server_version: str
    server_time: dt.datetime


class MfaBackend(Protocol):
    def test_connection(self) -> ConnectionInfo: ...

    def create_user(self, username: str, settings: UserSettingsInput | None = None,
                    password: str | None = None) -> UserSettings: ...

    def get_user_info(self, username: str) -> UserSettings: ...

    def update_user_settings(self, username: str, settings: UserSettingsInput) -> UserSettings: ...

    def delete_user(self, username: str) -> None: ...

    def find_users(self, pattern: str, page: int = 1, page_size: int = 50) -> UserPage: ...

    def validate_primary_credentials(self, username: str, password: str, client_ip: str | None = None) -> bool: ...

    def authenticate_user(self, username: str, *, otp: str | None = None, pin: str | None = None,
                          application_name: str | None = None, client_ip: str | None = None,
                          asynchronous: bool = False, timeout_seconds: int = 60,
                          number_matching: bool = False, method: str | None = None) -> AuthenticationResult: ...

    def get_authentication_status(self, transaction_id: str, wait_seconds: int = 0) -> AuthenticationResult: ...

    def cancel_authentication(self, transaction_id: str) -> AuthenticationResult: ...

    def validate_oath_code(self, username: str, code: str) -> OathCheck: ...

    def generate_activation_code(self, username: str) -> ActivationCode: ...

    # -- what the user portal needs beyond the original's operations ---------------------------
    def get_portal_settings(self) -> dict[str, SettingValue]:
        """Every setting by key, plus ``offered_methods`` (comma-separated): what users may pick."""
        ...

    def get_activation_status(self, username: str) -> str:
        """The newest code's state: none | pending | completed | expired | voided."""
        ...

    def deactivate_device(self, username: str, device_id: str) -> None: ...

    def add_oath_token(self, username: str) -> OathEnrollment: ...

    def confirm_oath_token(self, username: str, token_id: int, code: str) -> bool: ...

    def remove_oath_token(self, username: str, token_id: int, keep_sign_in_token: bool = False) -> None:
        """With ``keep_sign_in_token`` a user signing in with OATH codes keeps their last confirmed
        token (``Conflict``); the portal sets it, administrators do not."""
        ...

    def associate_oath_token(self, username: str, serial_number: str, code: str) -> bool:
        """Claim an imported third-party token by serial and its current code."""
        ...

    def get_security_questions(self, language: str = "en") -> QuestionCatalogue: ...

    def set_security_answers(self, username: str, answers: Mapping[int, str]) -> None: ...

    def get_security_challenge(self, username: str) -> tuple[SecurityQuestion, ...]:
        """N of the user's questions at random; empty when the user has none."""
        ...

    def verify_security_answers(self, username: str, answers: Mapping[int, str]) -> bool: ...

    def set_one_time_bypass(self, username: str, seconds: int | None = None) -> dt.datetime: ...

    def complete_enrollment(self, username: str, method: str) -> UserSettings:
        """Set the method and mark the user enrolled, if the method is proven (core rules)."""
        ...

    # -- what the phone API needs ----------------------------------------------------------------
    def activate_device(self, code: str, registration: DeviceRegistrationInput,
                        client_ip: str | None = None) -> ActivatedDeviceInfo:
        """Claim an activation code for a new device (throttled per client address and per code)."""
        ...

    def get_pending_authentications(self, proof: DeviceProof,
                                    wait_seconds: int = 0) -> tuple[PendingAuthentication, ...]:
        """The device user's pending requests; waits up to ``wait_seconds`` for one to arrive."""
        ...

    def submit_authentication_result(self, proof: DeviceProof, transaction_id: str, result: str, *,
                                     pin: str | None = None, number: int | None = None) -> AuthenticationResult:
        """The phone's answer: ``approve``, ``deny`` or ``fraud`` (PIN and number where required)."""
        ...

    def update_push_channel(self, proof: DeviceProof, kind: str, token: str | None = None) -> None: ...

    def sign_out_device(self, proof: DeviceProof) -> None:
        """The app removed the account: the device is deactivated."""
        ...


SERVER_VERSION = "mfa-portal 0.1.0"
