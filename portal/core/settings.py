"""The console switches, with MFA Server's own names (reference/mfa-server.md 1.2, 2.4, 4.5-4.8).

Each setting has a stable key (used in storage, the SDK and the CLI), the original
product's name (shown to administrators), a type, bounds and a documented default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .db import Database
from .errors import InvalidInput
from .models import Setting

METHODS = ("phone_call", "text_message", "mobile_app", "oath_token")
MODES = ("standard", "pin")


@dataclass(frozen=True)
class SettingDef:
    key: str
    name: str  # the MFA Server console's name
    section: str
    kind: str  # bool | int | str | choice
    default: Any
    help: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    parent: str | None = None  # a sub-option shown under its parent switch


UP, MA, FRAUD, LOCK, COMPANY = "User Portal", "Mobile App", "Fraud Alert", "Account lockout", "Company Settings"

DEFINITIONS: tuple[SettingDef, ...] = (
    SettingDef("primary_authentication", "Primary authentication", UP, "choice", "local",
               "Where users' passwords are checked at sign-in.", choices=("local",)),
    SettingDef("allow_users_to_log_in", "Allow users to log in", UP, "bool", True,
               "Shows the username and password boxes on the sign-in page; clear it to switch the portal off."),
    SettingDef("allow_user_enrollment", "Allow user enrollment", UP, "bool", True,
               "Sends a user without complete settings to the setup wizard."),
    SettingDef("prompt_for_backup_phone", "Prompt for backup phone", UP, "bool", False,
               "The wizard asks for a backup phone.", parent="allow_user_enrollment"),
    SettingDef("prompt_for_third_party_oath_token", "Prompt for third-party OATH token", UP, "bool", False,
               "The wizard offers to associate a hardware OATH token.", parent="allow_user_enrollment"),
    SettingDef("allow_users_to_initiate_one_time_bypass", "Allow users to initiate One-Time Bypass", UP, "bool",
               False, "The user can set a one-time bypass for their next sign-in."),
    SettingDef("prompt_for_bypass_seconds", "Prompt for bypass seconds", UP, "bool", False,
               "The user may choose how long the bypass lasts.", parent="allow_users_to_initiate_one_time_bypass"),
    SettingDef("one_time_bypass_seconds", "One-Time Bypass seconds", UP, "int", 300,
               "How long a one-time bypass lasts by default.", minimum=30, maximum=86400,
               parent="allow_users_to_initiate_one_time_bypass"),
    SettingDef("allow_users_to_select_method", "Allow users to select method", UP, "bool", True,
               "The user may choose their primary method among the ticked ones."),
    SettingDef("method_phone_call", "Phone call", UP, "bool", True,
               "Offer the phone call method.", parent="allow_users_to_select_method"),
    SettingDef("method_text_message", "Text message", UP, "bool", True,
               "Offer the text message method.", parent="allow_users_to_select_method"),
    SettingDef("method_mobile_app", "Mobile app", UP, "bool", True,
               "Offer the mobile app method.", parent="allow_users_to_select_method"),
    SettingDef("method_oath_token", "OATH token", UP, "bool", True,
               "Offer the OATH token method.", parent="allow_users_to_select_method"),
    SettingDef("allow_users_to_select_language", "Allow users to select language", UP, "bool", False,
               "The user may change the language of their prompts."),
    SettingDef("allow_users_to_activate_mobile_app", "Allow users to activate mobile app", UP, "bool", True,
               "The user may generate an activation code for the mobile app."),
    SettingDef("device_limit", "Device limit", UP, "int", 1,
               "How many devices a user may activate.", minimum=1, maximum=10,
               parent="allow_users_to_activate_mobile_app"),
    SettingDef("use_security_questions_for_fallback", "Use security questions for fallback", UP, "bool", False,
               "If two-step verification fails, the user may answer security questions instead."),
    SettingDef("questions_to_answer", "Questions to answer", UP, "int", 2,
               "How many questions must be answered.", minimum=1, maximum=4,
               parent="use_security_questions_for_fallback"),
    SettingDef("allow_users_to_associate_third_party_oath_token",
               "Allow users to associate third-party OATH token", UP, "bool", False,
               "The user may register a hardware OATH token."),
    SettingDef("use_oath_token_for_fallback", "Use OATH token for fallback", UP, "bool", False,
               "If two-step verification fails, an OATH code may be used instead."),
    SettingDef("enable_logging", "Enable logging", UP, "bool", True, "Log portal activity."),
    SettingDef("session_timeout_minutes", "Session Timeout", UP, "int", 20,
               "Minutes of inactivity before a portal session ends.", minimum=1, maximum=1440),
    SettingDef("account_name", "Account name", MA, "str", "MFA Portal",
               "The organisation name shown in the mobile app and authenticator apps.", maximum=64),
    SettingDef("mobile_app_oath_enabled", "Enable OATH codes in the mobile app", MA, "bool", True,
               "Activation gives the app a seed for offline verification codes."),
    SettingDef("activation_code_minutes", "Activation code lifetime (minutes)", MA, "int", 10,
               "How long an activation code can be used.", minimum=1, maximum=1440),
    SettingDef("allow_users_to_submit_fraud_alerts", "Allow users to submit Fraud Alerts", FRAUD, "bool", True,
               "The app offers Deny and report fraud."),
    SettingDef("block_user_when_fraud_is_reported", "Block user when fraud is reported", FRAUD, "bool", True,
               "A fraud report blocks the user until an administrator unblocks them."),
    SettingDef("fraud_block_days", "Days a fraud block lasts", FRAUD, "int", 90,
               "Blocked users are unblocked automatically after this many days.", minimum=1, maximum=3650),
    SettingDef("lockout_threshold", "Number of MFA denials that trigger account lockout", LOCK, "int", 5,
               "Failed PIN, OTP or answer attempts before the account locks.", minimum=1, maximum=100),
    SettingDef("lockout_reset_minutes", "Minutes until account lockout counter is reset", LOCK, "int", 5,
               "Failures older than this are forgotten.", minimum=1, maximum=1440),
    SettingDef("lockout_unblock_minutes", "Minutes until account is automatically unblocked", LOCK, "int", 15,
               "How long a lockout lasts.", minimum=1, maximum=10080),
    SettingDef("pin_minimum_length", "PIN Minimum Length", COMPANY, "int", 4,
               "Shortest PIN accepted.", minimum=4, maximum=10),
    SettingDef("default_method", "Default method", COMPANY, "choice", "mobile_app",
               "Method given to new users.", choices=METHODS),
    SettingDef("default_mode", "Default mode", COMPANY, "choice", "standard",
               "Mode given to new users (PIN mode asks for the PIN in the app).", choices=MODES),
)
BY_KEY: dict[str, SettingDef] = {d.key: d for d in DEFINITIONS}


def coerce(defn: SettingDef, value: Any) -> Any:
    """Validate one value against its definition; the error names the setting key."""
    if defn.kind == "bool":
        return v.boolean(defn.key, value)
    if defn.kind == "int":
        assert defn.minimum is not None and defn.maximum is not None
        return v.integer(defn.key, value, minimum=defn.minimum, maximum=defn.maximum)
    if defn.kind == "choice":
        return v.choice(defn.key, value, defn.choices)
    return v.text(defn.key, value, max_len=defn.maximum or 256)


class PortalSettings(Mapping[str, Any]):
    """A read-only snapshot of every setting, defaults filled in."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def allowed_methods(self) -> list[str]:
        return [m for m in METHODS if self._values[f"method_{m}"]]


class SettingsService:
    """Settings are read on every sign-in, so a snapshot is kept for ``cache_seconds``.

    A change made through this process is seen at once; a change made on another
    node or worker is seen within ``cache_seconds``.
    """

    def __init__(self, db: Database, audit: AuditLog, clock: Clock, cache_seconds: float = 2.0) -> None:
        self._db, self._audit, self._clock = db, audit, clock
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, PortalSettings] | None = None

    def get(self) -> PortalSettings:
        cached = self._cached
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        values = {d.key: d.default for d in DEFINITIONS}
        with self._db.read() as s:
            for key, value in s.execute(select(Setting.key, Setting.value)):
                if key in BY_KEY:
                    values[key] = json.loads(value)
        snapshot = PortalSettings(values)
        if self._cache_seconds > 0:
            self._cached = (time.monotonic() + self._cache_seconds, snapshot)
        return snapshot

    def update(self, actor: Actor, changes: Mapping[str, Any]) -> PortalSettings:
        if not changes:
            raise InvalidInput("settings", "no setting given")
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            defn = BY_KEY.get(key)
            if defn is None:
                raise InvalidInput(key, "is not a known setting")
            clean[key] = coerce(defn, value)
        now = self._clock.now()
        with self._db.write() as s:
            for key, value in clean.items():
                row = s.get(Setting, key)
                old = json.loads(row.value) if row else BY_KEY[key].default
                if row is None:
                    s.add(Setting(key=key, value=json.dumps(value), updated_at=now, updated_by=actor.name))
                else:
                    row.value, row.updated_at, row.updated_by = json.dumps(value), now, actor.name
                if old != value:
                    self._audit.append(s, actor, "settings.update", key, old=old, new=value)
        self._cached = None
        return self.get()
