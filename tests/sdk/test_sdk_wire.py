"""The SDK on the wire: zeep (strict) calls every operation through the served WSDL, the captured
messages validate against the XSD with xmllint, and hostile or malformed requests are refused cleanly."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from zeep import Client, Settings
from zeep.exceptions import Fault
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport

from portal.core import otp
from portal.core.activation import DeviceRegistration
from portal.core.audit import Actor
from portal.sdk.soap import CONTRACT, NS
from tests.conftest import require_outside
from tests.sdk.conftest import ADMIN, ADMIN_PASSWORD, LiveServer

XSD = CONTRACT / "PfWsSdk.xsd"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


def _client(server: LiveServer, history: HistoryPlugin | None = None) -> tuple[Client, requests.Session]:
    session = requests.Session()
    session.trust_env = False
    session.auth = (ADMIN, ADMIN_PASSWORD)
    if server.ca_file:
        session.verify = server.ca_file
    client = Client(server.url + "?wsdl", transport=Transport(session=session, timeout=5, operation_timeout=20),
                    settings=Settings(strict=True), plugins=[history] if history else [])
    return client, session


def _proof(key: ec.EllipticCurvePrivateKey, device_id: str, method: str = "GET", path: str = "/api/v1/x") -> dict:
    """A phone's signed request (see portal/core/devices.py) as the SDK's ``DeviceProof``."""
    timestamp, digest = int(time.time() * 1000), hashlib.sha256(b"").hexdigest()
    signature = key.sign(f"{method}\n{path}\n{timestamp}\n{digest}".encode(), ec.ECDSA(hashes.SHA256()))
    return {"DeviceId": device_id, "Method": method, "Path": path, "Timestamp": timestamp, "BodySha256": digest,
            "Signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode()}


def test_zeep_strict_calls_every_operation_and_xmllint_accepts_every_message(live_server, tmp_path) -> None:
    history = HistoryPlugin(maxlen=100)
    client, session = _client(live_server, history)
    sdk = client.service
    captured: list[etree._Element] = []

    def keep() -> None:
        for envelope in (history.last_sent["envelope"], history.last_received["envelope"]):
            body = envelope.find(f"{{{SOAP11}}}Body")
            captured.append(body[0])

    with session:
        assert client.wsdl.services["PfWsSdk"].ports["PfWsSdkSoap"].binding_options["address"] == live_server.url
        assert sdk.TestPfWsSdkConnection().TestPfWsSdkConnectionResult == "OK"
        keep()
        created = sdk.CreateUser(username="alice", userSettings={"DisplayName": "Alice", "Phone": "+442079460000"},
                                 password="alice-password-1")
        keep()
        assert created.Phone == "+442079460000"
        live_server.services.oath.add_hardware_token(Actor("t"), "alice", serial="HW-1", secret_base32=SEED)
        info = sdk.GetUserInfo(username="alice")
        keep()
        assert info.OathTokenSerialNumber == "HW-1" and info.OathTokens.OathToken[0].SerialNumber == "HW-1"
        updated = sdk.UpdateUserSettings(username="alice", userSettings={"Email": "alice@example.com", "Mode": "pin",
                                                                         "Pin": "4827"})
        keep()
        assert updated.Email == "alice@example.com" and updated.HasPin
        found = sdk.FindUsers(pattern="al*", page=1, pageSize=10)
        keep()
        assert found.Total == 1 and found.Users.UserSettings[0].Username == "alice"
        assert sdk.ValidatePrimaryCredentials(username="alice", password="alice-password-1") is True
        keep()
        code = otp.totp(otp.b32decode(SEED), time.time())
        assert sdk.ValidateOathCode(username="alice", code=code).ValidateOathCodeResult is True
        keep()
        replay = sdk.AuthenticateUser(username="alice", otp=code, applicationName="VPN", clientIp="203.0.113.7")
        keep()
        assert replay.Status == "denied" and replay.Authenticated is False
        sdk.UpdateUserSettings(username="alice", userSettings={"Method": "mobile_app", "Mode": "standard"})
        pending = sdk.AuthenticateUser(username="alice", asynchronous=True, numberMatching=True)
        keep()
        assert pending.Status == "pending" and 10 <= pending.NumberToMatch <= 99
        status = sdk.GetAuthenticationStatus(transactionId=pending.TransactionId)
        keep()
        assert status.Status == "pending"
        assert sdk.CancelAuthentication(transactionId=pending.TransactionId).Status == "cancelled"
        keep()
        activation = sdk.GenerateActivationCode(username="alice")
        keep()
        assert len(activation.ActivationCode) == 12 and activation.ActivationUrl == live_server.base_url + "/PA"

        # -- the user portal's operations
        settings = sdk.GetPortalSettings()  # zeep unwraps a result with one child: the list of Setting
        keep()
        by_key = {s.Key: (s.Type, s.Value) for s in settings}
        assert by_key["offered_methods"] == ("str", "mobile_app,oath_token")
        assert by_key["device_limit"] == ("int", "1") and by_key["allow_users_to_log_in"] == ("bool", "true")
        assert sdk.GetActivationStatus(username="alice") == "pending"
        keep()
        key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.DER,
                                                                                PublicFormat.SubjectPublicKeyInfo)
        device = live_server.services.activation.activate(Actor("device:t"), activation.ActivationCode,
                                                          DeviceRegistration("Pixel", "android", key))
        assert sdk.DeactivateDevice(username="alice", deviceId=device.device_id) is True
        keep()

        # -- the phone API's operations
        phone_key = ec.generate_private_key(ec.SECP256R1())
        spki = phone_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        new_code = live_server.services.activation.generate(Actor("t"), "alice").code
        activated = sdk.ActivateDevice(code=new_code, clientIp="203.0.113.9", registration={
            "Name": "Pixel", "Platform": "android", "PublicKey": base64.b64encode(spki).decode(),
            "PushKind": "fcm", "PushToken": "fcm-token-1"})
        keep()
        assert activated.Username == "alice" and activated.OathSecretBase32
        phone_id = activated.DeviceId
        asked_for = live_server.services.authentication.authenticate(Actor("t"), "alice", asynchronous=True,
                                                                     number_matching=True, application="VPN")
        waiting = sdk.GetPendingAuthentications(proof=_proof(phone_key, phone_id), waitSeconds=1)
        keep()
        assert [p.TransactionId for p in waiting] == [asked_for.transaction_id]
        assert asked_for.number_to_match in waiting[0].NumberChoices.Number and waiting[0].PinRequired is False
        answered = sdk.SubmitAuthenticationResult(proof=_proof(phone_key, phone_id, "POST"),
                                                  transactionId=asked_for.transaction_id, result="approve",
                                                  number=asked_for.number_to_match)
        keep()
        assert answered.Status == "approved" and answered.Authenticated is True
        assert sdk.UpdatePushChannel(proof=_proof(phone_key, phone_id, "PUT"), kind="none") is True
        keep()
        assert sdk.SignOutDevice(proof=_proof(phone_key, phone_id, "POST")) is True
        keep()
        token = sdk.AddOathToken(username="alice")
        keep()
        assert token.KeyUri.startswith("otpauth://totp/")
        app_code = otp.totp(otp.b32decode(token.SecretBase32), time.time())
        assert sdk.ConfirmOathToken(username="alice", tokenId=token.TokenId, code=app_code) is True
        keep()
        enrolled = sdk.CompleteEnrollment(username="alice", method="oath_token")
        keep()
        assert enrolled.Enrolled is True and enrolled.Method == "oath_token"
        assert sdk.RemoveOathToken(username="alice", tokenId=token.TokenId) is True
        keep()
        live_server.services.settings.update(Actor("t"), {"allow_users_to_associate_third_party_oath_token": True})
        assert sdk.AssociateOathToken(username="alice", serialNumber="NO-SUCH-1", code="123456") is False
        keep()
        catalogue = sdk.GetSecurityQuestions(language="en")
        keep()
        assert catalogue.Required == 4 and len(catalogue.Questions.Question) == 8
        chosen = catalogue.Questions.Question[:4]
        answers = {"Answer": [{"QuestionId": q.Id, "Text": f"answer {q.Id}"} for q in chosen]}
        assert sdk.SetSecurityAnswers(username="alice", answers=answers) is True
        keep()
        asked = sdk.GetSecurityChallenge(username="alice").Question  # unwrapped to the Questions array
        keep()
        assert len(asked) == 2
        given = {"Answer": [{"QuestionId": q.Id, "Text": f"answer {q.Id}"} for q in asked]}
        assert sdk.VerifySecurityAnswers(username="alice", answers=given) is True
        keep()
        live_server.services.settings.update(Actor("t"), {"allow_users_to_initiate_one_time_bypass": True})
        bypass_until = sdk.SetOneTimeBypass(username="alice", seconds=120)
        keep()
        assert bypass_until.tzinfo is not None

        with pytest.raises(Fault) as fault:
            sdk.GetUserInfo(username="nobody")
        captured.append(history.last_received["envelope"].find(f".//{{{NS}}}Error"))
        assert fault.value.detail.find(f"{{{NS}}}Error").findtext(f"{{{NS}}}Code") == "UserNotFound"
        assert sdk.DeleteUser(username="alice") is True
        keep()

    require_outside("xmllint", shutil.which("xmllint") is not None)
    files = []
    for i, element in enumerate(captured):
        path = tmp_path / f"message{i:02d}.xml"
        path.write_bytes(etree.tostring(element))
        files.append(str(path))
    ran = subprocess.run(["xmllint", "--noout", "--schema", str(XSD), *files], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert len(files) == 63  # 31 calls, request and response, and one fault

    # ... and the check can fail: a UserSettings without its Username is refused.
    broken = etree.fromstring(Path(files[5]).read_bytes())  # GetUserInfoResponse
    username = broken.find(f".//{{{NS}}}Username")
    username.getparent().remove(username)
    bad = tmp_path / "broken.xml"
    bad.write_bytes(etree.tostring(broken))
    assert subprocess.run(["xmllint", "--noout", "--schema", str(XSD), str(bad)], capture_output=True).returncode != 0


def test_python_m_zeep_reads_the_served_wsdl(live_server) -> None:
    out = subprocess.run([sys.executable, "-m", "zeep", live_server.url + "?wsdl"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    for operation in ("TestPfWsSdkConnection", "CreateUser", "GetUserInfo", "UpdateUserSettings", "DeleteUser",
                      "FindUsers", "ValidatePrimaryCredentials", "AuthenticateUser", "GetAuthenticationStatus",
                      "CancelAuthentication", "ValidateOathCode", "GenerateActivationCode", "GetPortalSettings",
                      "GetActivationStatus", "DeactivateDevice", "AddOathToken", "ConfirmOathToken",
                      "AssociateOathToken", "RemoveOathToken", "GetSecurityQuestions", "SetSecurityAnswers",
                      "GetSecurityChallenge", "VerifySecurityAnswers", "SetOneTimeBypass", "CompleteEnrollment",
                      "ActivateDevice", "GetPendingAuthentications", "SubmitAuthenticationResult",
                      "UpdatePushChannel", "SignOutDevice"):
        assert operation in out


def test_soap_12_binding_works_and_faults_use_code_and_reason(live_server) -> None:
    client, session = _client(live_server)
    with session:
        sdk12 = client.bind("PfWsSdk", "PfWsSdkSoap12")
        assert sdk12.TestPfWsSdkConnection().TestPfWsSdkConnectionResult == "OK"
        body = (f'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
                f'<GetUserInfo xmlns="{NS}"><username>ghost</username></GetUserInfo></e:Body></e:Envelope>')
        r = session.post(live_server.url, data=body, headers={"Content-Type": "application/soap+xml"}, timeout=10)
    assert r.status_code == 400
    doc = etree.fromstring(r.content)
    env = "{http://www.w3.org/2003/05/soap-envelope}"
    assert doc.findtext(f".//{env}Code/{env}Value") == "soap:Sender"
    assert "ghost" in doc.findtext(f".//{env}Reason/{env}Text")


# -- request-level checks through the test client --------------------------------------------------
def _svc(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    app.extensions["portal.services"].accounts.create(Actor("t"), "svc", "a-long-password-1", kind="service",
                                                      role="service", groups=("MFA Admins",))
    return {"Authorization": "Basic " + base64.b64encode(b"svc:a-long-password-1").decode(),
            "Content-Type": "text/xml; charset=utf-8"}


def _env(inner: str) -> str:
    return f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body>{inner}</soap:Body></soap:Envelope>'


def _error(resp) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    err = etree.fromstring(resp.data).find(f".//{{{NS}}}Error")
    return err.findtext(f"{{{NS}}}Code"), err.findtext(f"{{{NS}}}Field")


BAD_BODIES = [
    ("not xml", "this is not xml", "InvalidRequest", None),
    ("not an envelope", f'<GetUserInfo xmlns="{NS}"><username>a</username></GetUserInfo>', "InvalidRequest", None),
    ("no body", f'<soap:Envelope xmlns:soap="{SOAP11}"/>', "InvalidRequest", None),
    ("two operations", _env(f'<TestPfWsSdkConnection xmlns="{NS}"/><TestPfWsSdkConnection xmlns="{NS}"/>'),
     "InvalidRequest", None),
    ("foreign namespace", _env('<GetUserInfo xmlns="urn:other"><username>a</username></GetUserInfo>'),
     "UnknownOperation", None),
    ("a response element", _env(f'<Error xmlns="{NS}"><Code>x</Code><Message>y</Message></Error>'),
     "UnknownOperation", None),
    ("missing username", _env(f'<GetUserInfo xmlns="{NS}"/>'), "InvalidArgument", "username"),
    ("xs:int", _env(f'<FindUsers xmlns="{NS}"><pattern>a</pattern><page>abc</page></FindUsers>'),
     "InvalidArgument", "page"),
    ("unknown element", _env(f'<GetUserInfo xmlns="{NS}"><username>a</username><x/></GetUserInfo>'),
     "InvalidArgument", "x"),
    ("bad enum", _env(f'<CreateUser xmlns="{NS}"><username>a</username><userSettings><Method>fax</Method>'
                      f'</userSettings></CreateUser>'), "InvalidArgument", "Method"),
    ("bad phone", _env(f'<CreateUser xmlns="{NS}"><username>a</username><userSettings><Phone>12345</Phone>'
                       f'</userSettings></CreateUser>'), "InvalidArgument", "phone"),
    ("bad username", _env(f'<GetUserInfo xmlns="{NS}"><username>a b</username></GetUserInfo>'),
     "InvalidArgument", "username"),
    ("bad transaction id", _env(f'<GetAuthenticationStatus xmlns="{NS}"><transactionId>x</transactionId>'
                                f'</GetAuthenticationStatus>'), "InvalidArgument", "transaction_id"),
    ("unknown user", _env(f'<GetUserInfo xmlns="{NS}"><username>ghost</username></GetUserInfo>'),
     "UserNotFound", None),
    ("a question answered twice", _env(
        f'<VerifySecurityAnswers xmlns="{NS}"><username>a</username><answers>'
        + '<Answer><QuestionId>1</QuestionId><Text>x</Text></Answer>' * 2 + '</answers></VerifySecurityAnswers>'),
     "InvalidArgument", "answers"),
    ("oversize answer", _env(
        f'<SetSecurityAnswers xmlns="{NS}"><username>a</username><answers><Answer><QuestionId>1</QuestionId>'
        f'<Text>{"x" * 129}</Text></Answer></answers></SetSecurityAnswers>'), "InvalidArgument", "Text"),
    ("bad method", _env(f'<CompleteEnrollment xmlns="{NS}"><username>a</username><method>fax</method>'
                        f'</CompleteEnrollment>'), "InvalidArgument", "method"),
    ("xs:int token id", _env(f'<RemoveOathToken xmlns="{NS}"><username>a</username><tokenId>one</tokenId>'
                             f'</RemoveOathToken>'), "InvalidArgument", "tokenId"),
    ("xs:long timestamp", _env(
        f'<SignOutDevice xmlns="{NS}"><proof><DeviceId>d</DeviceId><Method>GET</Method><Path>/</Path>'
        f'<Timestamp>soon</Timestamp><BodySha256>{"0" * 64}</BodySha256><Signature>x</Signature></proof>'
        f'</SignOutDevice>'), "InvalidArgument", "Timestamp"),
    ("bad device answer", _env(
        f'<SubmitAuthenticationResult xmlns="{NS}"><proof><DeviceId>d</DeviceId><Method>GET</Method><Path>/</Path>'
        f'<Timestamp>1</Timestamp><BodySha256>{"0" * 64}</BodySha256><Signature>x</Signature></proof>'
        f'<transactionId>{"0" * 32}</transactionId><result>maybe</result></SubmitAuthenticationResult>'),
     "InvalidArgument", "result"),
]


@pytest.mark.parametrize("body,code,field", [(b, c, f) for _, b, c, f in BAD_BODIES],
                         ids=[n for n, *_ in BAD_BODIES])
def test_bad_requests_get_a_fault_naming_the_problem(app, client, body, code, field) -> None:
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    assert resp.status_code == 500 and resp.content_type.startswith("text/xml")
    assert _error(resp) == (code, field)
    assert b"Traceback" not in resp.data and b'File "' not in resp.data


def test_a_refused_phone_signature_has_its_own_code_and_no_basic_challenge(app, client) -> None:
    body = _env(f'<SignOutDevice xmlns="{NS}"><proof><DeviceId>d</DeviceId><Method>GET</Method><Path>/</Path>'
                f'<Timestamp>{int(time.time() * 1000)}</Timestamp><BodySha256>{"0" * 64}</BodySha256>'
                f'<Signature>eA</Signature></proof></SignOutDevice>')
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    # Not 401 + WWW-Authenticate: the service account was fine; the phone's proof was not.
    assert resp.status_code == 500 and "WWW-Authenticate" not in resp.headers
    assert _error(resp) == ("SignatureRejected", None)
    message = etree.fromstring(resp.data).findtext(f".//{{{NS}}}Message")
    assert message == "Unknown or deactivated device."


def test_wrong_content_type_is_415(app, client) -> None:
    headers = {**_svc(app), "Content-Type": "application/json"}
    resp = client.post("/PfWsSdk.asmx", data="{}", headers=headers)
    assert resp.status_code == 415 and _error(resp)[0] == "InvalidRequest"


def test_xxe_is_refused_and_reads_no_file(app, client) -> None:
    body = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + _env(f'<GetUserInfo xmlns="{NS}"><username>&e;</username></GetUserInfo>'))
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    assert _error(resp)[0] == "InvalidRequest" and b"root:" not in resp.data


def test_an_entity_bomb_is_refused_quickly(app, client) -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">'
                                              for i in range(1, 10))
    body = f'<?xml version="1.0"?><!DOCTYPE x [{entities}]>' + _env(
        f'<GetUserInfo xmlns="{NS}"><username>&a9;</username></GetUserInfo>')
    started = time.monotonic()
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    assert time.monotonic() - started < 1.0
    assert _error(resp)[0] == "InvalidRequest"


def test_an_external_dtd_is_refused_without_fetching_it(app, client) -> None:
    body = '<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd">' + _env(
        f'<TestPfWsSdkConnection xmlns="{NS}"/>')
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    assert _error(resp)[0] == "InvalidRequest"


def test_deep_nesting_is_refused_cleanly(app, client) -> None:
    body = _env(f'<GetUserInfo xmlns="{NS}">' + "<a>" * 100_000 + "</a>" * 100_000 + "</GetUserInfo>")
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    assert resp.status_code in (413, 500) and _error(resp)[0] in ("InvalidRequest", "RequestTooLarge")


@pytest.mark.app_config(MAX_REQUEST_BYTES=4096)
def test_an_oversized_body_is_413(app, client) -> None:
    body = _env(f'<GetUserInfo xmlns="{NS}"><username>{"a" * 10_000}</username></GetUserInfo>')
    resp = client.post("/PfWsSdk.asmx", data=body, headers=_svc(app))
    assert resp.status_code == 413 and _error(resp)[0] == "RequestTooLarge"


def test_credentials_are_checked_throttled_and_audited(app, client) -> None:
    headers = _svc(app)
    services = app.extensions["portal.services"]
    services.accounts.create(Actor("t"), "outsider", "a-long-password-2", kind="service", role="service")
    body = _env(f'<TestPfWsSdkConnection xmlns="{NS}"/>')
    plain = {"Content-Type": "text/xml"}

    resp = client.post("/PfWsSdk.asmx", data=body, headers=plain)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    wrong = {**plain, "Authorization": "Basic " + base64.b64encode(b"svc:wrong-password").decode()}
    unknown = {**plain, "Authorization": "Basic " + base64.b64encode(b"nobody:wrong-password").decode()}
    r_wrong, r_unknown = client.post("/PfWsSdk.asmx", data=body, headers=wrong), \
        client.post("/PfWsSdk.asmx", data=body, headers=unknown)
    assert r_wrong.status_code == r_unknown.status_code == 401
    assert _error(r_wrong) == _error(r_unknown) == ("Unauthorized", None)
    outsider = {**plain, "Authorization": "Basic " + base64.b64encode(b"outsider:a-long-password-2").decode()}
    r_out = client.post("/PfWsSdk.asmx", data=body, headers=outsider)
    assert r_out.status_code == 403 and _error(r_out)[0] == "Forbidden"

    for _ in range(9):  # 10 failures in all for "svc"
        client.post("/PfWsSdk.asmx", data=body, headers=wrong)
    throttled = client.post("/PfWsSdk.asmx", data=body, headers=headers)  # even the right password
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert _error(throttled)[0] == "Throttled"

    failures = services.audit.search(services.db, action="account.login", limit=50)
    assert sum(1 for e in failures if e.outcome == "failure") == 10
    assert any(e.outcome == "throttled" for e in failures)
    assert services.audit.search(services.db, action="sdk.forbidden")


def test_an_unexpected_error_is_a_server_fault_with_a_reference_and_no_detail(app, client, monkeypatch) -> None:
    from portal.sdk import operations

    def boom(_backend, _el):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom secret")

    monkeypatch.setitem(operations.OPERATIONS, "TestPfWsSdkConnection", boom)
    resp = client.post("/PfWsSdk.asmx", data=_env(f'<TestPfWsSdkConnection xmlns="{NS}"/>'), headers=_svc(app))
    assert resp.status_code == 500 and b"boom secret" not in resp.data
    err = etree.fromstring(resp.data).find(f".//{{{NS}}}Error")
    assert err.findtext(f"{{{NS}}}Code") == "ServerError"
    assert err.findtext(f"{{{NS}}}CorrelationId") == resp.headers["X-Request-ID"]
    assert etree.fromstring(resp.data).findtext(".//faultcode") == "soap:Server"


def test_the_wsdl_is_served_with_this_deployments_address(app, client) -> None:
    for query in ("?wsdl", "?WSDL"):
        doc = etree.fromstring(client.get("/PfWsSdk.asmx" + query).data)
        address = doc.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
        assert address == app.config["BASE_URL"] + "/PfWsSdk.asmx"
    assert b"xs:schema" in client.get("/PfWsSdk.asmx?xsd").data
    assert b"GenerateActivationCode" in client.get("/PfWsSdk.asmx").data
    legacy = client.post("/MultiFactorAuthWebServiceSdk/PfWsSdk.asmx",
                         data=_env(f'<TestPfWsSdkConnection xmlns="{NS}"/>'), headers=_svc(app))
    assert legacy.status_code == 200


@pytest.mark.app_config(BASE_URL="https://mfa.example.com")
def test_plain_http_is_refused_when_tls_is_required(app, client) -> None:
    headers = _svc(app)
    body = _env(f'<TestPfWsSdkConnection xmlns="{NS}"/>')
    assert client.post("/PfWsSdk.asmx", data=body, headers=headers, base_url="http://localhost").status_code == 403
    assert client.post("/PfWsSdk.asmx", data=body, headers=headers, base_url="https://localhost").status_code == 200


def test_tls_with_the_test_ca_works_and_the_system_store_refuses_it(live_tls_server) -> None:
    client, session = _client(live_tls_server)
    with session:
        assert client.service.TestPfWsSdkConnection().TestPfWsSdkConnectionResult == "OK"
    with requests.Session() as plain:
        plain.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            plain.get(live_tls_server.url + "?wsdl", timeout=5)
