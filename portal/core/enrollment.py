"""Enrollment: when a user's set-up counts, and the user-initiated one-time bypass.

The portal's wizard is only a guide; the rules live here, so a request that skips a
step (or a frontend that has a bug) cannot mark a user enrolled. A user is enrolled
with a method only when that method has been proven to work:

* ``mobile_app``: an active device *and* a sign-in approved on the app since the newest
  device was activated ("Authenticate me now");
* ``oath_token``: a token whose code the user has proven (confirmation is the test);
* ``phone_call`` / ``text_message``: refused until a telephony provider exists;
* PIN mode: a PIN is set; security-question fallback on: the answers are set.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .db import Database
from .errors import Forbidden, InvalidInput
from .models import AuthRequest, Device, OathToken, SecurityAnswer
from .settings import SettingsService
from .users import ensure_can_authenticate, load_user

PHONE_METHODS = ("phone_call", "text_message")
BYPASS_MAX_SECONDS = 86400  # the setting's own maximum


class EnrollmentService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, settings: SettingsService,
                 telephony_configured: bool = False) -> None:
        self._db, self._audit, self._clock, self._settings = db, audit, clock, settings
        self._telephony = telephony_configured

    def offered_methods(self) -> list[str]:
        """The methods users may choose now: allowed by the settings and deliverable."""
        allowed = self._settings.get().allowed_methods()
        return [m for m in allowed if self._telephony or m not in PHONE_METHODS]

    def complete(self, actor: Actor, username: str, method: str) -> None:
        """Set the user's method and mark them enrolled, if that method is proven to work.

        Used by the wizard's last step and by "Change method" later on. The error names
        what is missing, so the portal can send the user back to that step.
        """
        settings = self._settings.get()
        method = v.choice("method", method, tuple(settings.allowed_methods()) or ("-",))
        if method not in self.offered_methods():
            raise InvalidInput("method", "cannot be used until a phone provider is configured")
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            if not settings["allow_users_to_select_method"] and method != u.method:
                raise Forbidden("Users may not select their method here; ask the help desk.")
            if u.mode == "pin" and u.pin_hash is None:
                raise InvalidInput("pin", "choose a PIN first")
            if method == "mobile_app":
                newest = s.scalar(select(func.max(Device.activated_at))
                                  .where(Device.user_id == u.id, Device.status == "active"))
                if newest is None:
                    raise InvalidInput("mobile_app", "activate the mobile app first")
                proven = s.scalar(select(AuthRequest.id).where(
                    AuthRequest.user_id == u.id, AuthRequest.method == "mobile_app",
                    AuthRequest.status == "approved", AuthRequest.reason.is_(None),
                    AuthRequest.created_at >= newest).limit(1))
                if proven is None:
                    raise InvalidInput("test", "approve a test sign-in on the mobile app first")
            elif method == "oath_token":
                if s.scalar(select(OathToken.id).where(OathToken.user_id == u.id,
                                                        OathToken.verified.is_(True)).limit(1)) is None:
                    raise InvalidInput("oath_token", "add an OATH token and prove a code from it first")
            elif not u.phone:
                raise InvalidInput("phone", "a phone number is required for this method")
            if settings["use_security_questions_for_fallback"] and s.scalar(
                    select(SecurityAnswer.id).where(SecurityAnswer.user_id == u.id).limit(1)) is None:
                raise InvalidInput("questions", "answer the security questions first")
            now = self._clock.now()
            changed = u.method != method
            u.method, u.updated_at = method, now
            first = u.enrolled_at is None
            if first:
                u.enrolled_at = now
            if first or changed:
                self._audit.append(s, actor, "user.enrolled" if first else "user.change_method", u.username,
                                   method=method)

    def set_bypass_by_staff(self, actor: Actor, username: str, seconds: int, reason: str) -> dt.datetime:
        """The helpdesk's one-time bypass: any user, with the seconds and the reason given."""
        seconds = v.integer("seconds", seconds, minimum=1, maximum=BYPASS_MAX_SECONDS)
        reason = v.text("reason", reason, max_len=256)
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            u.bypass_until = now + dt.timedelta(seconds=seconds)
            self._audit.append(s, actor, "user.bypass", u.username, seconds=seconds, reason=reason,
                               initiated_by="helpdesk")
            return u.bypass_until

    def set_bypass(self, actor: Actor, username: str, seconds: int | None = None) -> dt.datetime:
        """A one-time bypass the user starts for their next sign-in (setting-gated)."""
        settings = self._settings.get()
        if not settings["allow_users_to_initiate_one_time_bypass"]:
            raise Forbidden("One-time bypass is not allowed.")
        if seconds is None or not settings["prompt_for_bypass_seconds"]:
            seconds = settings["one_time_bypass_seconds"]
        seconds = v.integer("seconds", seconds, minimum=1, maximum=BYPASS_MAX_SECONDS)
        now = self._clock.now()
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            ensure_can_authenticate(u, now)
            u.bypass_until = now + dt.timedelta(seconds=seconds)
            self._audit.append(s, actor, "user.bypass", u.username, seconds=seconds, initiated_by="user")
            return u.bypass_until
