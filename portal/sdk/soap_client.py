"""``SoapBackend``: the ``MfaBackend`` port over the Web Service SDK, with zeep.

Used by the ``frontend`` role. The contract is read from the WSDL file in this
repository (the same version as the server), the calls go to the configured
``PORTAL_SDK_URL``. Timeouts are always set (zeep's default waits forever), proxies and
CA variables from the environment are ignored (``trust_env = False``), TLS is verified
against ``PORTAL_SDK_CA_FILE`` or the system store, and bodies are never logged.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

import requests
from zeep import Client, Settings
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault, TransportError
from zeep.transports import Transport

from ..core import errors as E
from .backend import (
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
from .soap import CONTRACT, NS

_BINDING = f"{{{NS}}}PfWsSdkSoap"
# The message ``AccountService.authenticate_sdk`` refuses a service account outside the group with.
_REFUSED_ACCOUNT = "The account is not a member of "
_WAIT_SLACK = 15  # seconds a waiting call may take beyond its own timeout


def _error_classes() -> dict[str, type[E.PortalError]]:
    found: dict[str, type[E.PortalError]] = {}
    stack: list[type[E.PortalError]] = [E.PortalError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


_ERRORS = _error_classes()


def _rebuild(code: str, message: str, field: str | None) -> E.PortalError:
    """The server's fault as the same exception the in-process backend raises.

    ``Unauthorized`` is always this frontend's service account (a phone's refused signature has its
    own code, ``SignatureRejected``); ``Forbidden`` is either the account (not in the administrators
    group) or a rule of an operation (e.g. one-time bypass switched off).
    """
    if code == "Unauthorized" or (code == "Forbidden" and message.startswith(_REFUSED_ACCOUNT)):
        return E.BackendUnavailable(f"The SDK refused this frontend's service account ({message}).")
    if code == "InvalidArgument":
        reason = message.split(": ", 1)[1] if field and message.startswith(f"{field}: ") else message
        return E.InvalidInput(field or "request", reason)
    cls = _ERRORS.get(code, E.PortalError)
    exc = cls.__new__(cls)
    E.PortalError.__init__(exc, message)
    if isinstance(exc, E.Throttled):
        exc.retry_after = 60
    if isinstance(exc, E.RequestNotPending):
        exc.status = message.rsplit("it is ", 1)[-1].rstrip(").") if "it is " in message else "unknown"
    if isinstance(exc, E.ConfigError):
        exc.variable = "server"
    return exc


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _user(u: Any) -> UserSettings:
    tokens = u.OathTokens.OathToken if u.OathTokens is not None else []
    devices = u.Devices.Device if u.Devices is not None else []
    return UserSettings(
        username=u.Username, display_name=u.DisplayName, email=u.Email, phone=u.Phone,
        phone_extension=u.PhoneExtension, backup_phone=u.BackupPhone, backup_extension=u.BackupExtension,
        language=u.Language, method=u.Method, mode=u.Mode, enabled=u.Enabled, blocked=u.Blocked,
        blocked_reason=u.BlockedReason, blocked_until=_naive(u.BlockedUntil), locked_until=_naive(u.LockedUntil),
        has_pin=u.HasPin, pin_change_required=u.PinChangeRequired, enrolled=u.Enrolled,
        oath_token_serial_number=u.OathTokenSerialNumber,
        oath_tokens=tuple(OathTokenInfo(t.Id, t.Kind, t.Type, t.SerialNumber, t.Verified) for t in tokens or []),
        devices=tuple(DeviceInfo(d.Id, d.Name, d.Platform, d.Status, _naive(d.ActivatedAt),  # type: ignore[arg-type]
                                 _naive(d.LastSeenAt)) for d in devices or []),
        created_at=_naive(u.CreatedAt),  # type: ignore[arg-type]
    )


def _auth(r: Any) -> AuthenticationResult:
    return AuthenticationResult(r.TransactionId, r.Status, r.Authenticated, r.Reason, r.Method, r.NumberToMatch,
                                _naive(r.ExpiresAt))


def _pending(p: Any) -> PendingAuthentication:
    return PendingAuthentication(p.TransactionId, p.Username, p.ApplicationName, p.ClientIp,
                                 _naive(p.CreatedAt), _naive(p.ExpiresAt),  # type: ignore[arg-type]
                                 tuple(int(n) for n in _items(p.NumberChoices, "Number")), bool(p.PinRequired))


def _proof(p: DeviceProof) -> dict[str, Any]:
    return {"DeviceId": p.device_id, "Method": p.method, "Path": p.path, "Timestamp": p.timestamp,
            "BodySha256": p.body_sha256, "Signature": p.signature}


def _items(value: Any, name: str) -> list[Any]:
    """The repeated ``name`` children of an array element; zeep unwraps a result that has only them."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return list(getattr(value, name) or [])


def _questions(questions: Any) -> tuple[SecurityQuestion, ...]:
    return tuple(SecurityQuestion(item.Id, item.Text) for item in _items(questions, "Question"))


def _answers(answers: Mapping[int, str]) -> dict[str, Any]:
    return {"Answer": [{"QuestionId": qid, "Text": text} for qid, text in answers.items()]}


def _setting(type_: str, raw: str | None) -> SettingValue:
    text = raw or ""
    if type_ == "bool":
        return text.strip() in ("true", "1")
    if type_ == "int":
        return int(text.strip())
    return text


def _settings(s: UserSettingsInput | None) -> dict[str, Any] | None:
    if s is None:
        return None
    names = {"display_name": "DisplayName", "email": "Email", "phone": "Phone", "phone_extension": "PhoneExtension",
             "backup_phone": "BackupPhone", "backup_extension": "BackupExtension", "language": "Language",
             "method": "Method", "mode": "Mode", "enabled": "Enabled", "pin": "Pin",
             "pin_change_required": "PinChangeRequired", "blocked": "Blocked", "blocked_reason": "BlockedReason"}
    return {xml: getattr(s, attr) for attr, xml in names.items() if getattr(s, attr) is not None}


class SoapBackend:
    def __init__(self, url: str, username: str, password: str, *, ca_file: str | None = None,
                 timeout: int = 10, client_cert: tuple[str, str] | None = None) -> None:
        self._url, self._timeout = url, timeout
        self._auth = (username, password)
        self._verify: str | bool = ca_file or True
        self._cert = client_cert
        self._lock = threading.Lock()
        self._services: dict[int, Any] = {}

    def _service(self, operation_timeout: int | None = None) -> Any:
        """A zeep service proxy bound to the configured URL; one per timeout, built once."""
        op_timeout = operation_timeout or self._timeout
        with self._lock:
            if op_timeout not in self._services:
                session = requests.Session()
                session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify; no proxies
                session.auth = self._auth
                session.verify = self._verify
                if self._cert:
                    session.cert = self._cert
                transport = Transport(session=session, timeout=self._timeout, operation_timeout=op_timeout)
                settings = Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                                    xml_huge_tree=False)
                client = Client(str(CONTRACT / "PfWsSdk.wsdl"), transport=transport, settings=settings)
                self._services[op_timeout] = client.create_service(_BINDING, self._url)
            return self._services[op_timeout]

    def _call(self, operation: str, *, wait: int = 0, **kwargs: Any) -> Any:
        service = self._service(wait + _WAIT_SLACK if wait else None)
        try:
            return getattr(service, operation)(**kwargs)
        except Fault as fault:
            raise self._fault(fault) from None
        except (requests.RequestException, TransportError) as exc:
            raise E.BackendUnavailable(f"The MFA server could not be reached ({type(exc).__name__}).") from exc
        except ZeepError as exc:
            raise E.BackendUnavailable(f"The MFA server's answer was not understood ({exc}).") from exc

    @staticmethod
    def _fault(fault: Fault) -> E.PortalError:
        detail = fault.detail
        error = detail.find(f"{{{NS}}}Error") if detail is not None else None
        if error is None:
            return E.BackendUnavailable(f"The MFA server failed: {fault.message}")
        code = error.findtext(f"{{{NS}}}Code") or "ServerError"
        message = error.findtext(f"{{{NS}}}Message") or fault.message or ""
        return _rebuild(code, message, error.findtext(f"{{{NS}}}Field"))

    # -- the port -----------------------------------------------------------------------------
    def test_connection(self) -> ConnectionInfo:
        r = self._call("TestPfWsSdkConnection")
        return ConnectionInfo(r.TestPfWsSdkConnectionResult, r.ServerVersion, _naive(r.ServerTime))  # type: ignore[arg-type]

    def create_user(self, username: str, settings: UserSettingsInput | None = None,
                    password: str | None = None) -> UserSettings:
        return _user(self._call("CreateUser", username=username, userSettings=_settings(settings), password=password))

    def get_user_info(self, username: str) -> UserSettings:
        return _user(self._call("GetUserInfo", username=username))

    def update_user_settings(self, username: str, settings: UserSettingsInput) -> UserSettings:
        return _user(self._call("UpdateUserSettings", username=username, userSettings=_settings(settings) or {}))

    def delete_user(self, username: str) -> None:
        self._call("DeleteUser", username=username)

    def find_users(self, pattern: str, page: int = 1, page_size: int = 50) -> UserPage:
        r = self._call("FindUsers", pattern=pattern, page=page, pageSize=page_size)
        users = r.Users.UserSettings if r.Users is not None else []
        return UserPage(r.Total, r.Page, r.PageSize, tuple(_user(u) for u in users or []))

    def validate_primary_credentials(self, username: str, password: str, client_ip: str | None = None) -> bool:
        return bool(self._call("ValidatePrimaryCredentials", username=username, password=password,
                               clientIp=client_ip))

    def authenticate_user(self, username: str, *, otp: str | None = None, pin: str | None = None,
                          application_name: str | None = None, client_ip: str | None = None,
                          asynchronous: bool = False, timeout_seconds: int = 60,
                          number_matching: bool = False, method: str | None = None) -> AuthenticationResult:
        wait = 0 if asynchronous or otp else max(0, timeout_seconds)
        return _auth(self._call("AuthenticateUser", wait=wait, username=username, otp=otp, pin=pin,
                                applicationName=application_name, clientIp=client_ip, asynchronous=asynchronous,
                                timeoutSeconds=timeout_seconds, numberMatching=number_matching, method=method))

    def get_authentication_status(self, transaction_id: str, wait_seconds: int = 0) -> AuthenticationResult:
        return _auth(self._call("GetAuthenticationStatus", wait=max(0, wait_seconds), transactionId=transaction_id,
                                waitSeconds=wait_seconds))

    def cancel_authentication(self, transaction_id: str) -> AuthenticationResult:
        return _auth(self._call("CancelAuthentication", transactionId=transaction_id))

    def validate_oath_code(self, username: str, code: str) -> OathCheck:
        r = self._call("ValidateOathCode", username=username, code=code)
        return OathCheck(bool(r.ValidateOathCodeResult), r.Reason)

    def generate_activation_code(self, username: str) -> ActivationCode:
        r = self._call("GenerateActivationCode", username=username)
        return ActivationCode(r.ActivationCode, r.ActivationUrl, r.AccountName, r.Username,
                              _naive(r.ExpiresAt))  # type: ignore[arg-type]

    def get_portal_settings(self) -> dict[str, SettingValue]:
        r = self._call("GetPortalSettings")
        return {item.Key: _setting(item.Type, item.Value) for item in _items(r, "Setting")}

    def get_activation_status(self, username: str) -> str:
        return str(self._call("GetActivationStatus", username=username))

    def deactivate_device(self, username: str, device_id: str) -> None:
        self._call("DeactivateDevice", username=username, deviceId=device_id)

    def add_oath_token(self, username: str) -> OathEnrollment:
        r = self._call("AddOathToken", username=username)
        return OathEnrollment(r.TokenId, r.SecretBase32, r.KeyUri)

    def confirm_oath_token(self, username: str, token_id: int, code: str) -> bool:
        return bool(self._call("ConfirmOathToken", username=username, tokenId=token_id, code=code))

    def associate_oath_token(self, username: str, serial_number: str, code: str) -> bool:
        return bool(self._call("AssociateOathToken", username=username, serialNumber=serial_number, code=code))

    def remove_oath_token(self, username: str, token_id: int, keep_sign_in_token: bool = False) -> None:
        self._call("RemoveOathToken", username=username, tokenId=token_id,
                   keepSignInToken=True if keep_sign_in_token else None)

    def get_security_questions(self, language: str = "en") -> QuestionCatalogue:
        r = self._call("GetSecurityQuestions", language=language)
        return QuestionCatalogue(r.Required, _questions(r.Questions))

    def set_security_answers(self, username: str, answers: Mapping[int, str]) -> None:
        self._call("SetSecurityAnswers", username=username, answers=_answers(answers))

    def get_security_challenge(self, username: str) -> tuple[SecurityQuestion, ...]:
        r = self._call("GetSecurityChallenge", username=username)
        return _questions(r if r is None or isinstance(r, list) else getattr(r, "Questions", r))

    def verify_security_answers(self, username: str, answers: Mapping[int, str]) -> bool:
        return bool(self._call("VerifySecurityAnswers", username=username, answers=_answers(answers)))

    def set_one_time_bypass(self, username: str, seconds: int | None = None) -> dt.datetime:
        return _naive(self._call("SetOneTimeBypass", username=username, seconds=seconds))  # type: ignore[return-value]

    def complete_enrollment(self, username: str, method: str) -> UserSettings:
        return _user(self._call("CompleteEnrollment", username=username, method=method))

    # -- what the phone API needs ----------------------------------------------------------------
    def activate_device(self, code: str, registration: DeviceRegistrationInput,
                        client_ip: str | None = None) -> ActivatedDeviceInfo:
        reg = {"Name": registration.name, "Platform": registration.platform, "PublicKey": registration.public_key,
               "PushKind": registration.push_kind, "PushToken": registration.push_token}
        r = self._call("ActivateDevice", code=code, registration=reg, clientIp=client_ip)
        kinds = tuple(r.PushKinds.Kind or ()) if r.PushKinds is not None else ()
        return ActivatedDeviceInfo(r.DeviceId, r.Username, r.AccountName, _naive(r.ServerTime),  # type: ignore[arg-type]
                                   r.OathSecretBase32, kinds, r.WebPushPublicKey)

    def get_pending_authentications(self, proof: DeviceProof,
                                    wait_seconds: int = 0) -> tuple[PendingAuthentication, ...]:
        r = self._call("GetPendingAuthentications", wait=max(0, wait_seconds), proof=_proof(proof),
                       waitSeconds=wait_seconds)
        return tuple(_pending(p) for p in _items(r, "PendingAuthentication"))

    def submit_authentication_result(self, proof: DeviceProof, transaction_id: str, result: str, *,
                                     pin: str | None = None, number: int | None = None) -> AuthenticationResult:
        return _auth(self._call("SubmitAuthenticationResult", proof=_proof(proof),
                                transactionId=transaction_id, result=result, pin=pin, number=number))

    def update_push_channel(self, proof: DeviceProof, kind: str, token: str | None = None) -> None:
        self._call("UpdatePushChannel", proof=_proof(proof), kind=kind, token=token)

    def sign_out_device(self, proof: DeviceProof) -> None:
        self._call("SignOutDevice", proof=_proof(proof))
