"""A walk through the main services on both databases (detailed tests live beside it)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from portal.core import otp
from portal.core.activation import DeviceRegistration
from portal.core.audit import Actor
from portal.core.users import UserFields

ADMIN = Actor("staff:admin", "127.0.0.1", "test")


def _pubkey() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_user_token_activation_and_request_round_trip(services, clock) -> None:
    services.users.create(ADMIN, "Alice", UserFields(display_name="Alice A", phone="+442079460000"))
    assert services.users.get("alice").username == "Alice"

    new = services.oath.add_software_token(ADMIN, "alice")
    seed = otp.b32decode(new.secret_base32)
    code = otp.totp(seed, clock.time())
    assert services.oath.confirm_token(ADMIN, "alice", new.token_id, code)
    clock.advance(30)
    assert services.oath.validate(ADMIN, "alice", otp.totp(seed, clock.time())).ok

    info = services.activation.generate(ADMIN, "alice")
    dev = services.activation.activate(ADMIN, info.code, DeviceRegistration("Pixel", "android", _pubkey()))
    assert dev.username == "Alice" and dev.oath_secret_base32
    assert services.activation.status("alice") == "completed"

    req = services.auth_requests.create(ADMIN, "alice", method="mobile_app", application="VPN",
                                        client_ip="203.0.113.9", number_match=True)
    done = services.auth_requests.complete(ADMIN, req.id, "approved", device_id=dev.device_id)
    assert done.status == "approved"
    assert services.audit.verify(services.db).ok
