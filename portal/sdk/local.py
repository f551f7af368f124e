"""``LocalBackend``: the port served in-process by the core services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from ..core import validation
from ..core.activation import DeviceRegistration
from ..core.audit import Actor
from ..core.authenticate import AuthOutcome, outcome_of
from ..core.devices import DeviceProof as CoreProof
from ..core.errors import InvalidInput, UserBlocked, UserDisabled, UserLockedOut
from ..core.questions import ANSWERS_REQUIRED
from ..core.services import Services
from ..core.users import UserFields, UserInfo
from .backend import (
    SERVER_VERSION,
    ActivatedDeviceInfo,
    ActivationCode,
    AuthenticationResult,
    ConnectionInfo,
    DeviceInfo,
    DeviceProof,
    DeviceRegistrationInput,
    OathCheck,
    OathEnrollment,
    OathTokenInfo,
    PendingAuthentication,
    QuestionCatalogue,
    SecurityQuestion,
    SettingValue,
    UserPage,
    UserSettings,
    UserSettingsInput,
)


def settings_of(u: UserInfo) -> UserSettings:
    return UserSettings(
        username=u.username, display_name=u.display_name, email=u.email, phone=u.phone,
        phone_extension=u.phone_extension, backup_phone=u.backup_phone, backup_extension=u.backup_extension,
        language=u.language, method=u.method, mode=u.mode, enabled=u.enabled, blocked=u.blocked,
        blocked_reason=u.blocked_reason, blocked_until=u.blocked_until, locked_until=u.locked_until,
        has_pin=u.has_pin, pin_change_required=u.pin_change_required, enrolled=u.enrolled,
        oath_token_serial_number=u.oath_token_serial_number,
        oath_tokens=tuple(OathTokenInfo(t.id, t.kind, t.otp_type, t.serial, t.verified) for t in u.tokens),
        devices=tuple(DeviceInfo(d.id, d.name, d.platform, d.status, d.activated_at, d.last_seen_at)
                      for d in u.devices),
        created_at=u.created_at,
    )


def result_of(o: AuthOutcome) -> AuthenticationResult:
    return AuthenticationResult(o.transaction_id, o.status, o.authenticated, o.reason, o.method,
                                o.number_to_match, o.expires_at)


class LocalBackend:
    def __init__(self, services: Services, actor: Callable[[], Actor]) -> None:
        self._s = services
        self._actor = actor

    def test_connection(self) -> ConnectionInfo:
        self._s.db.ping()
        return ConnectionInfo("OK", SERVER_VERSION, self._s.clock.now())

    def create_user(self, username: str, settings: UserSettingsInput | None = None,
                    password: str | None = None) -> UserSettings:
        settings = settings or UserSettingsInput()
        self._refuse_state_fields(settings)
        created = self._s.users.create(self._actor(), username, _fields(settings), password=password)
        if settings.pin:
            self._s.users.set_pin(self._actor(), created.username, settings.pin,
                                  change_required=bool(settings.pin_change_required))
        return self.get_user_info(created.username)

    def get_user_info(self, username: str) -> UserSettings:
        return settings_of(self._s.users.get(username))

    def update_user_settings(self, username: str, settings: UserSettingsInput) -> UserSettings:
        actor = self._actor()
        fields = _fields(settings)
        has_field_change = any(getattr(fields, name) is not None for name in (
            "display_name", "email", "phone", "phone_extension", "backup_phone", "backup_extension",
            "language", "method", "mode", "enabled"))
        if not (has_field_change or settings.pin or settings.blocked is not None
                or settings.pin_change_required is not None):
            raise InvalidInput("userSettings", "no change given")
        current = self._s.users.get(username)
        if has_field_change:
            self._s.users.update(actor, username, fields)
        if settings.pin:
            self._s.users.set_pin(actor, username, settings.pin, change_required=bool(settings.pin_change_required))
        elif settings.pin_change_required is not None:
            if not current.has_pin:
                raise InvalidInput("PinChangeRequired", "the user has no PIN")
            self._s.users.set_pin_change_required(actor, username, settings.pin_change_required)
        if settings.blocked is True:
            self._s.users.block(actor, username, settings.blocked_reason or "Blocked through the SDK")
        elif settings.blocked is False:
            self._s.users.unblock(actor, username, settings.blocked_reason or "")
        return self.get_user_info(username)

    def delete_user(self, username: str) -> None:
        self._s.users.delete(self._actor(), username)

    def find_users(self, pattern: str, page: int = 1, page_size: int = 50) -> UserPage:
        # The contract's Total is every match (callers page by it), not the helpdesk's capped count.
        result = self._s.users.find(pattern, page=page, page_size=page_size, exact_total=True)
        return UserPage(result.total, result.page, result.page_size, tuple(settings_of(u) for u in result.items))

    def validate_primary_credentials(self, username: str, password: str, client_ip: str | None = None) -> bool:
        actor = self._actor()
        if client_ip:
            actor = Actor(actor.name, validation.ip_address(client_ip), actor.correlation_id)
        return self._s.primary.validate(actor, username, password)

    def authenticate_user(self, username: str, *, otp: str | None = None, pin: str | None = None,
                          application_name: str | None = None, client_ip: str | None = None,
                          asynchronous: bool = False, timeout_seconds: int = 60,
                          number_matching: bool = False, method: str | None = None) -> AuthenticationResult:
        return result_of(self._s.authentication.authenticate(
            self._actor(), username, otp=otp, pin=pin, application=application_name, client_ip=client_ip,
            asynchronous=asynchronous, timeout=timeout_seconds, number_matching=number_matching, method=method))

    def get_authentication_status(self, transaction_id: str, wait_seconds: int = 0) -> AuthenticationResult:
        return result_of(self._s.authentication.status(transaction_id, wait_seconds))

    def cancel_authentication(self, transaction_id: str) -> AuthenticationResult:
        return result_of(outcome_of(self._s.auth_requests.cancel(self._actor(), transaction_id)))

    def validate_oath_code(self, username: str, code: str) -> OathCheck:
        try:
            result = self._s.oath.validate(self._actor(), username, code)
        except (UserBlocked, UserDisabled, UserLockedOut) as exc:
            return OathCheck(False, exc.code)
        return OathCheck(result.ok, None if result.ok else "invalid_code")

    def generate_activation_code(self, username: str) -> ActivationCode:
        info = self._s.activation.generate(self._actor(), username)
        return ActivationCode(info.code, info.url, info.account_name, info.username, info.expires_at)

    def get_portal_settings(self) -> dict[str, SettingValue]:
        values: dict[str, SettingValue] = dict(self._s.settings.get())
        values["offered_methods"] = ",".join(self._s.enrollment.offered_methods())
        return values

    def get_activation_status(self, username: str) -> str:
        return self._s.activation.status(username)

    def deactivate_device(self, username: str, device_id: str) -> None:
        self._s.activation.deactivate(self._actor(), username, device_id)

    def add_oath_token(self, username: str) -> OathEnrollment:
        token = self._s.oath.add_software_token(self._actor(), username)
        return OathEnrollment(token.token_id, token.secret_base32, token.key_uri)

    def confirm_oath_token(self, username: str, token_id: int, code: str) -> bool:
        return self._s.oath.confirm_token(self._actor(), username, token_id, code)

    def remove_oath_token(self, username: str, token_id: int, keep_sign_in_token: bool = False) -> None:
        self._s.oath.remove_token(self._actor(), username, token_id, keep_sign_in_token=keep_sign_in_token)

    def associate_oath_token(self, username: str, serial_number: str, code: str) -> bool:
        return self._s.tokens.associate(self._actor(), username, serial_number, code)

    def get_security_questions(self, language: str = "en") -> QuestionCatalogue:
        return QuestionCatalogue(ANSWERS_REQUIRED, tuple(
            SecurityQuestion(q.id, q.text) for q in self._s.questions.catalogue(language)))

    def set_security_answers(self, username: str, answers: Mapping[int, str]) -> None:
        self._s.questions.set_answers(self._actor(), username, answers)

    def get_security_challenge(self, username: str) -> tuple[SecurityQuestion, ...]:
        return tuple(SecurityQuestion(q.id, q.text) for q in self._s.questions.challenge(username))

    def verify_security_answers(self, username: str, answers: Mapping[int, str]) -> bool:
        return self._s.questions.verify(self._actor(), username, answers)

    def set_one_time_bypass(self, username: str, seconds: int | None = None) -> dt.datetime:
        return self._s.enrollment.set_bypass(self._actor(), username, seconds)

    def complete_enrollment(self, username: str, method: str) -> UserSettings:
        self._s.enrollment.complete(self._actor(), username, method)
        return self.get_user_info(username)

    def activate_device(self, code: str, registration: DeviceRegistrationInput,
                        client_ip: str | None = None) -> ActivatedDeviceInfo:
        actor = self._actor()
        if client_ip:
            actor = Actor(actor.name, validation.ip_address(client_ip), actor.correlation_id)
        done = self._s.devices.activate(actor, code, DeviceRegistration(
            registration.name, registration.platform, registration.public_key, registration.push_kind,
            registration.push_token))
        push = self._s.push
        return ActivatedDeviceInfo(done.device_id, done.username, done.account_name, self._s.clock.now(),
                                   done.oath_secret_base32, push.kinds if push else (),
                                   push.webpush_public_key if push else None)

    def get_pending_authentications(self, proof: DeviceProof,
                                    wait_seconds: int = 0) -> tuple[PendingAuthentication, ...]:
        return tuple(PendingAuthentication(p.id, p.username, p.application, p.client_ip, p.created_at,
                                           p.expires_at, p.number_choices, p.pin_required)
                     for p in self._s.devices.pending(_proof(proof), wait_seconds))

    def submit_authentication_result(self, proof: DeviceProof, transaction_id: str, result: str, *,
                                     pin: str | None = None, number: int | None = None) -> AuthenticationResult:
        info = self._s.devices.answer(self._actor(), _proof(proof), transaction_id, result, pin=pin, number=number)
        return result_of(outcome_of(info))

    def update_push_channel(self, proof: DeviceProof, kind: str, token: str | None = None) -> None:
        self._s.devices.update_push(self._actor(), _proof(proof), kind, token)

    def sign_out_device(self, proof: DeviceProof) -> None:
        self._s.devices.sign_out(self._actor(), _proof(proof))

    @staticmethod
    def _refuse_state_fields(settings: UserSettingsInput) -> None:
        if settings.blocked:
            raise InvalidInput("Blocked", "a new user cannot be created blocked")


def _fields(s: UserSettingsInput) -> UserFields:
    return UserFields(display_name=s.display_name, email=s.email, phone=s.phone, phone_extension=s.phone_extension,
                      backup_phone=s.backup_phone, backup_extension=s.backup_extension, language=s.language,
                      method=s.method, mode=s.mode, enabled=s.enabled)


def _proof(p: DeviceProof) -> CoreProof:
    return CoreProof(p.device_id, p.method, p.path, p.timestamp, p.body_sha256, p.signature)
