"""Live SDK servers on loopback (plain HTTP and HTTPS with a test CA) and the two adapters."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from portal import create_app
from portal.core.audit import Actor
from portal.core.services import Services
from portal.sdk.local import LocalBackend
from portal.sdk.soap_client import SoapBackend
from tests.conftest import app_settings

ADMIN, ADMIN_PASSWORD = "svc-portal", "service-account-password-1"


@dataclass
class TestCA:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MFA Portal Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = TestCA(d / "ca.pem", d / "server.pem", d / "server.key")
    paths.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return paths


@dataclass
class LiveServer:
    app: Flask
    services: Services
    url: str  # .../PfWsSdk.asmx
    base_url: str
    ca_file: str | None = None

    def soap_backend(self, username: str = ADMIN, password: str = ADMIN_PASSWORD, **kw: object) -> SoapBackend:
        return SoapBackend(self.url, username, password, ca_file=self.ca_file, timeout=10, **kw)  # type: ignore[arg-type]


def _serve(app: Flask, ssl_context: ssl.SSLContext | None) -> tuple[BaseWSGIServer, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def _live(tmp_path: Path, sqlite_url: str, tls: TestCA | None) -> Iterator[LiveServer]:
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    # Bind first to learn the port, so the WSDL address and BASE_URL are exact.
    probe = make_server("127.0.0.1", 0, Flask("probe"))
    port = probe.server_port
    probe.server_close()
    scheme = "https" if tls else "http"
    base = f"{scheme}://127.0.0.1:{port}"
    app = create_app(app_settings(tmp_path, sqlite_url, BASE_URL=base, LOG_LEVEL="WARNING"))
    services: Services = app.extensions["portal.services"]
    services.accounts.create(Actor("test"), ADMIN, ADMIN_PASSWORD, kind="service", role="service",
                             groups=("MFA Admins",))
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=ctx)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(app, services, f"{base}/PfWsSdk.asmx", base, str(tls.ca_file) if tls else None)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        services.close()


@pytest.fixture
def live_server(tmp_path: Path, sqlite_url: str) -> Iterator[LiveServer]:
    yield from _live(tmp_path, sqlite_url, None)


@pytest.fixture
def live_tls_server(tmp_path: Path, sqlite_url: str, test_ca: TestCA) -> Iterator[LiveServer]:
    yield from _live(tmp_path, sqlite_url, test_ca)


@pytest.fixture
def live_pg_server(tmp_path: Path, pg_url: str) -> Iterator[LiveServer]:
    """The same server on PostgreSQL (127.0.0.1:5432)."""
    yield from _live(tmp_path, pg_url, None)


@dataclass
class BackendUnderTest:
    backend: object  # an MfaBackend
    server: LiveServer
    kind: str

    @property
    def services(self) -> Services:
        return self.server.services


@pytest.fixture(params=["local", "soap-http", "soap-https",
                        pytest.param("soap-http-postgresql", marks=pytest.mark.postgres)])
def any_backend(request: pytest.FixtureRequest) -> BackendUnderTest:
    """The contract suite's subject: the same tests run on every adapter (and SOAP on PostgreSQL)."""
    if request.param == "soap-https":
        server: LiveServer = request.getfixturevalue("live_tls_server")
    elif request.param == "soap-http-postgresql":
        server = request.getfixturevalue("live_pg_server")
    else:
        server = request.getfixturevalue("live_server")
    if request.param == "local":
        return BackendUnderTest(LocalBackend(server.services, lambda: Actor("service:test")), server, "local")
    return BackendUnderTest(server.soap_backend(), server, request.param)
