"""The SDK's operations: XML in, one ``MfaBackend`` call, XML out.

Element names follow ``contract/PfWsSdk.xsd``; each handler reads its (already
validated) request element and builds its response element in schema order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeAlias

from lxml import etree

from ..core.errors import InvalidInput
from .backend import (
    AuthenticationResult,
    DeviceProof,
    DeviceRegistrationInput,
    MfaBackend,
    SecurityQuestion,
    UserSettings,
    UserSettingsInput,
)
from .soap import NS, q

Element: TypeAlias = "etree._Element"
Handler = Callable[[MfaBackend, Element], Element]


# -- reading --------------------------------------------------------------------------------
def _opt(el: Element, name: str) -> str | None:
    child = el.find(q(name))
    if child is None:
        return None
    return child.text or ""


def _req(el: Element, name: str) -> str:
    return _opt(el, name) or ""


def _bool(el: Element, name: str) -> bool | None:
    raw = _opt(el, name)
    return None if raw is None else raw.strip() in ("true", "1")


def _int(el: Element, name: str, default: int) -> int:
    raw = _opt(el, name)
    return default if raw is None else int(raw.strip())


def _answers(el: Element) -> dict[int, str]:
    """``answers`` as a mapping; a question named twice is refused, not silently dropped."""
    answers: dict[int, str] = {}
    container = el.find(q("answers"))
    for answer in container if container is not None else ():
        if not isinstance(answer.tag, str):
            continue
        qid = _int(answer, "QuestionId", 0)
        if qid in answers:
            raise InvalidInput("answers", "names a question twice")
        answers[qid] = _req(answer, "Text")
    return answers


def _settings_input(el: Element | None) -> UserSettingsInput:
    if el is None:
        return UserSettingsInput()
    return UserSettingsInput(
        display_name=_opt(el, "DisplayName"), email=_opt(el, "Email"), phone=_opt(el, "Phone"),
        phone_extension=_opt(el, "PhoneExtension"), backup_phone=_opt(el, "BackupPhone"),
        backup_extension=_opt(el, "BackupExtension"), language=_opt(el, "Language"), method=_opt(el, "Method"),
        mode=_opt(el, "Mode"), enabled=_bool(el, "Enabled"), pin=_opt(el, "Pin"),
        pin_change_required=_bool(el, "PinChangeRequired"), blocked=_bool(el, "Blocked"),
        blocked_reason=_opt(el, "BlockedReason"),
    )



def _proof(el: Element) -> DeviceProof:
    """``proof``: the phone's signed request, passed on as received (the core checks it)."""
    proof = el.find(q("proof"))
    if proof is None:  # the schema requires it
        raise InvalidInput("proof", "is required")
    return DeviceProof(device_id=_req(proof, "DeviceId"), method=_req(proof, "Method"), path=_req(proof, "Path"),
                       timestamp=_int(proof, "Timestamp", 0), body_sha256=_req(proof, "BodySha256"),
                       signature=_req(proof, "Signature"))


def _registration(el: Element) -> DeviceRegistrationInput:
    reg = el.find(q("registration"))
    if reg is None:  # the schema requires it
        raise InvalidInput("registration", "is required")
    kind = _opt(reg, "PushKind")
    return DeviceRegistrationInput(name=_req(reg, "Name"), platform=_req(reg, "Platform"),
                                   public_key=_req(reg, "PublicKey"), push_kind="none" if kind is None else kind,
                                   push_token=_opt(reg, "PushToken"))

# -- writing --------------------------------------------------------------------------------
def _dt(value: dt.datetime) -> str:
    """UTC with the stored precision, so both MfaBackend adapters return equal values."""
    return value.isoformat() + "Z"


def _add(parent: Element, name: str, value: object) -> None:
    """Append ``<name>value</name>``; None is left out (minOccurs=0)."""
    if value is None:
        return
    text: str
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dt.datetime):
        text = _dt(value)
    else:
        text = str(value)
    etree.SubElement(parent, q(name)).text = text


def _user(parent: Element, tag: str, u: UserSettings) -> None:
    el = etree.SubElement(parent, q(tag))
    name: str
    value: object
    for name, value in (("Username", u.username), ("DisplayName", u.display_name), ("Email", u.email),
                        ("Phone", u.phone), ("PhoneExtension", u.phone_extension),
                        ("BackupPhone", u.backup_phone), ("BackupExtension", u.backup_extension),
                        ("Language", u.language), ("Method", u.method), ("Mode", u.mode),
                        ("Enabled", u.enabled), ("Blocked", u.blocked), ("BlockedReason", u.blocked_reason),
                        ("BlockedUntil", u.blocked_until), ("LockedUntil", u.locked_until),
                        ("HasPin", u.has_pin), ("PinChangeRequired", u.pin_change_required),
                        ("Enrolled", u.enrolled), ("OathTokenSerialNumber", u.oath_token_serial_number)):
        _add(el, name, value)
    tokens = etree.SubElement(el, q("OathTokens"))
    for t in u.oath_tokens:
        te = etree.SubElement(tokens, q("OathToken"))
        for name, value in (("Id", t.id), ("Kind", t.kind), ("Type", t.type), ("SerialNumber", t.serial_number),
                            ("Verified", t.verified)):
            _add(te, name, value)
    devices = etree.SubElement(el, q("Devices"))
    for d in u.devices:
        de = etree.SubElement(devices, q("Device"))
        for name, value in (("Id", d.id), ("Name", d.name), ("Platform", d.platform), ("Status", d.status),
                            ("ActivatedAt", d.activated_at), ("LastSeenAt", d.last_seen_at)):
            _add(de, name, value)
    _add(el, "CreatedAt", u.created_at)


def _auth(parent: Element, tag: str, r: AuthenticationResult) -> None:
    el = etree.SubElement(parent, q(tag))
    for name, value in (("TransactionId", r.transaction_id), ("Status", r.status),
                        ("Authenticated", r.authenticated), ("Reason", r.reason), ("Method", r.method),
                        ("NumberToMatch", r.number_to_match), ("ExpiresAt", r.expires_at)):
        _add(el, name, value)


def _questions(parent: Element, questions: tuple[SecurityQuestion, ...]) -> None:
    el = etree.SubElement(parent, q("Questions"))
    for question in questions:
        qe = etree.SubElement(el, q("Question"))
        _add(qe, "Id", question.id)
        _add(qe, "Text", question.text)


def _response(op: str) -> Element:
    return etree.Element(q(f"{op}Response"), nsmap={None: NS})


# -- operations -----------------------------------------------------------------------------
def test_connection(b: MfaBackend, _el: Element) -> Element:
    info = b.test_connection()
    out = _response("TestPfWsSdkConnection")
    _add(out, "TestPfWsSdkConnectionResult", info.status)
    _add(out, "ServerVersion", info.server_version)
    _add(out, "ServerTime", info.server_time)
    return out


def create_user(b: MfaBackend, el: Element) -> Element:
    user = b.create_user(_req(el, "username"), _settings_input(el.find(q("userSettings"))), _opt(el, "password"))
    out = _response("CreateUser")
    _user(out, "CreateUserResult", user)
    return out


def get_user_info(b: MfaBackend, el: Element) -> Element:
    out = _response("GetUserInfo")
    _user(out, "userSettings", b.get_user_info(_req(el, "username")))
    return out


def update_user_settings(b: MfaBackend, el: Element) -> Element:
    user = b.update_user_settings(_req(el, "username"), _settings_input(el.find(q("userSettings"))))
    out = _response("UpdateUserSettings")
    _user(out, "UpdateUserSettingsResult", user)
    return out


def delete_user(b: MfaBackend, el: Element) -> Element:
    b.delete_user(_req(el, "username"))
    out = _response("DeleteUser")
    _add(out, "DeleteUserResult", True)
    return out


def find_users(b: MfaBackend, el: Element) -> Element:
    page = b.find_users(_req(el, "pattern"), _int(el, "page", 1), _int(el, "pageSize", 50))
    out = _response("FindUsers")
    result = etree.SubElement(out, q("FindUsersResult"))
    _add(result, "Total", page.total)
    _add(result, "Page", page.page)
    _add(result, "PageSize", page.page_size)
    users = etree.SubElement(result, q("Users"))
    for u in page.users:
        _user(users, "UserSettings", u)
    return out


def validate_primary_credentials(b: MfaBackend, el: Element) -> Element:
    ok = b.validate_primary_credentials(_req(el, "username"), _req(el, "password"), _opt(el, "clientIp"))
    out = _response("ValidatePrimaryCredentials")
    _add(out, "ValidatePrimaryCredentialsResult", ok)
    return out


def authenticate_user(b: MfaBackend, el: Element) -> Element:
    result = b.authenticate_user(
        _req(el, "username"), otp=_opt(el, "otp"), pin=_opt(el, "pin"),
        application_name=_opt(el, "applicationName"), client_ip=_opt(el, "clientIp"),
        asynchronous=bool(_bool(el, "asynchronous")), timeout_seconds=_int(el, "timeoutSeconds", 60),
        number_matching=bool(_bool(el, "numberMatching")), method=_opt(el, "method"),
    )
    out = _response("AuthenticateUser")
    _auth(out, "AuthenticateUserResult", result)
    return out


def get_authentication_status(b: MfaBackend, el: Element) -> Element:
    result = b.get_authentication_status(_req(el, "transactionId"), _int(el, "waitSeconds", 0))
    out = _response("GetAuthenticationStatus")
    _auth(out, "GetAuthenticationStatusResult", result)
    return out


def cancel_authentication(b: MfaBackend, el: Element) -> Element:
    out = _response("CancelAuthentication")
    _auth(out, "CancelAuthenticationResult", b.cancel_authentication(_req(el, "transactionId")))
    return out


def validate_oath_code(b: MfaBackend, el: Element) -> Element:
    check = b.validate_oath_code(_req(el, "username"), _req(el, "code"))
    out = _response("ValidateOathCode")
    _add(out, "ValidateOathCodeResult", check.valid)
    _add(out, "Reason", check.reason)
    return out


def generate_activation_code(b: MfaBackend, el: Element) -> Element:
    code = b.generate_activation_code(_req(el, "username"))
    out = _response("GenerateActivationCode")
    result = etree.SubElement(out, q("GenerateActivationCodeResult"))
    for name, value in (("ActivationCode", code.code), ("ActivationUrl", code.url),
                        ("AccountName", code.account_name), ("Username", code.username),
                        ("ExpiresAt", code.expires_at)):
        _add(result, name, value)
    return out


def get_portal_settings(b: MfaBackend, _el: Element) -> Element:
    out = _response("GetPortalSettings")
    result = etree.SubElement(out, q("GetPortalSettingsResult"))
    for key, value in b.get_portal_settings().items():
        setting = etree.SubElement(result, q("Setting"))
        _add(setting, "Key", key)
        _add(setting, "Type", "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "str")
        _add(setting, "Value", value)
    return out


def get_activation_status(b: MfaBackend, el: Element) -> Element:
    out = _response("GetActivationStatus")
    _add(out, "GetActivationStatusResult", b.get_activation_status(_req(el, "username")))
    return out


def deactivate_device(b: MfaBackend, el: Element) -> Element:
    b.deactivate_device(_req(el, "username"), _req(el, "deviceId"))
    out = _response("DeactivateDevice")
    _add(out, "DeactivateDeviceResult", True)
    return out


def add_oath_token(b: MfaBackend, el: Element) -> Element:
    token = b.add_oath_token(_req(el, "username"))
    out = _response("AddOathToken")
    result = etree.SubElement(out, q("AddOathTokenResult"))
    for name, value in (("TokenId", token.token_id), ("SecretBase32", token.secret_base32),
                        ("KeyUri", token.key_uri)):
        _add(result, name, value)
    return out


def confirm_oath_token(b: MfaBackend, el: Element) -> Element:
    ok = b.confirm_oath_token(_req(el, "username"), _int(el, "tokenId", 0), _req(el, "code"))
    out = _response("ConfirmOathToken")
    _add(out, "ConfirmOathTokenResult", ok)
    return out


def associate_oath_token(b: MfaBackend, el: Element) -> Element:
    ok = b.associate_oath_token(_req(el, "username"), _req(el, "serialNumber"), _req(el, "code"))
    out = _response("AssociateOathToken")
    _add(out, "AssociateOathTokenResult", ok)
    return out


def remove_oath_token(b: MfaBackend, el: Element) -> Element:
    b.remove_oath_token(_req(el, "username"), _int(el, "tokenId", 0), bool(_bool(el, "keepSignInToken")))
    out = _response("RemoveOathToken")
    _add(out, "RemoveOathTokenResult", True)
    return out


def get_security_questions(b: MfaBackend, el: Element) -> Element:
    catalogue = b.get_security_questions(_opt(el, "language") or "en")
    out = _response("GetSecurityQuestions")
    result = etree.SubElement(out, q("GetSecurityQuestionsResult"))
    _add(result, "Required", catalogue.required)
    _questions(result, catalogue.questions)
    return out


def set_security_answers(b: MfaBackend, el: Element) -> Element:
    answers = _answers(el)
    b.set_security_answers(_req(el, "username"), answers)
    out = _response("SetSecurityAnswers")
    _add(out, "SetSecurityAnswersResult", True)
    return out


def get_security_challenge(b: MfaBackend, el: Element) -> Element:
    questions = b.get_security_challenge(_req(el, "username"))
    out = _response("GetSecurityChallenge")
    _questions(etree.SubElement(out, q("GetSecurityChallengeResult")), questions)
    return out


def verify_security_answers(b: MfaBackend, el: Element) -> Element:
    answers = _answers(el)
    ok = b.verify_security_answers(_req(el, "username"), answers)
    out = _response("VerifySecurityAnswers")
    _add(out, "VerifySecurityAnswersResult", ok)
    return out


def set_one_time_bypass(b: MfaBackend, el: Element) -> Element:
    raw = _opt(el, "seconds")
    until = b.set_one_time_bypass(_req(el, "username"), None if raw is None else int(raw.strip()))
    out = _response("SetOneTimeBypass")
    _add(out, "SetOneTimeBypassResult", until)
    return out


def complete_enrollment(b: MfaBackend, el: Element) -> Element:
    user = b.complete_enrollment(_req(el, "username"), _req(el, "method"))
    out = _response("CompleteEnrollment")
    _user(out, "CompleteEnrollmentResult", user)
    return out


# -- the phone API's operations ---------------------------------------------------------------
def activate_device(b: MfaBackend, el: Element) -> Element:
    done = b.activate_device(_req(el, "code"), _registration(el), _opt(el, "clientIp"))
    out = _response("ActivateDevice")
    result = etree.SubElement(out, q("ActivateDeviceResult"))
    for name, value in (("DeviceId", done.device_id), ("Username", done.username),
                        ("AccountName", done.account_name), ("ServerTime", done.server_time),
                        ("OathSecretBase32", done.oath_secret_base32)):
        _add(result, name, value)
    kinds = etree.SubElement(result, q("PushKinds"))
    for kind in done.push_kinds:
        _add(kinds, "Kind", kind)
    _add(result, "WebPushPublicKey", done.webpush_public_key)
    return out


def get_pending_authentications(b: MfaBackend, el: Element) -> Element:
    """Waits server-side up to ``waitSeconds`` for a request to arrive, like GetAuthenticationStatus."""
    pending = b.get_pending_authentications(_proof(el), _int(el, "waitSeconds", 0))
    out = _response("GetPendingAuthentications")
    result = etree.SubElement(out, q("GetPendingAuthenticationsResult"))
    for p in pending:
        pe = etree.SubElement(result, q("PendingAuthentication"))
        for name, value in (("TransactionId", p.transaction_id), ("Username", p.username),
                            ("ApplicationName", p.application_name), ("ClientIp", p.client_ip),
                            ("CreatedAt", p.created_at), ("ExpiresAt", p.expires_at)):
            _add(pe, name, value)
        choices = etree.SubElement(pe, q("NumberChoices"))
        for number in p.number_choices:
            _add(choices, "Number", number)
        _add(pe, "PinRequired", p.pin_required)
    return out


def submit_authentication_result(b: MfaBackend, el: Element) -> Element:
    raw = _opt(el, "number")
    result = b.submit_authentication_result(_proof(el), _req(el, "transactionId"), _req(el, "result"),
                                            pin=_opt(el, "pin"), number=None if raw is None else int(raw.strip()))
    out = _response("SubmitAuthenticationResult")
    _auth(out, "SubmitAuthenticationResultResult", result)
    return out


def update_push_channel(b: MfaBackend, el: Element) -> Element:
    b.update_push_channel(_proof(el), _req(el, "kind"), _opt(el, "token"))
    out = _response("UpdatePushChannel")
    _add(out, "UpdatePushChannelResult", True)
    return out


def sign_out_device(b: MfaBackend, el: Element) -> Element:
    b.sign_out_device(_proof(el))
    out = _response("SignOutDevice")
    _add(out, "SignOutDeviceResult", True)
    return out


OPERATIONS: dict[str, Handler] = {
    "TestPfWsSdkConnection": test_connection,
    "CreateUser": create_user,
    "GetUserInfo": get_user_info,
    "UpdateUserSettings": update_user_settings,
    "DeleteUser": delete_user,
    "FindUsers": find_users,
    "ValidatePrimaryCredentials": validate_primary_credentials,
    "AuthenticateUser": authenticate_user,
    "GetAuthenticationStatus": get_authentication_status,
    "CancelAuthentication": cancel_authentication,
    "ValidateOathCode": validate_oath_code,
    "GenerateActivationCode": generate_activation_code,
    "GetPortalSettings": get_portal_settings,
    "GetActivationStatus": get_activation_status,
    "DeactivateDevice": deactivate_device,
    "AddOathToken": add_oath_token,
    "ConfirmOathToken": confirm_oath_token,
    "AssociateOathToken": associate_oath_token,
    "RemoveOathToken": remove_oath_token,
    "GetSecurityQuestions": get_security_questions,
    "SetSecurityAnswers": set_security_answers,
    "GetSecurityChallenge": get_security_challenge,
    "VerifySecurityAnswers": verify_security_answers,
    "SetOneTimeBypass": set_one_time_bypass,
    "CompleteEnrollment": complete_enrollment,
    "ActivateDevice": activate_device,
    "GetPendingAuthentications": get_pending_authentications,
    "SubmitAuthenticationResult": submit_authentication_result,
    "UpdatePushChannel": update_push_channel,
    "SignOutDevice": sign_out_device,
}
