"""Settings from ``PORTAL_*`` environment variables and an optional instance file.

Order: defaults → ``instance/portal.toml`` (or ``PORTAL_CONFIG_FILE``) → environment →
the ``config`` argument of :func:`portal.create_app` → validation. A missing or malformed
value stops start-up with a message naming the variable. The embedded default (role
``all``) needs nothing: it generates its secret key and data-encryption key into
``instance/`` (mode 0600) on first start and reuses them afterwards.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .core.config import CoreConfig, HashingConfig, SmtpConfig
from .core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("all", "server", "frontend")


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # str | int | bool
    default: Any
    help: str
    secret: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("ROLE", "str", "all", "`all` (everything, embedded default), `server` (core, database, SDK, "
           "helpdesk) or `frontend` (user portal and /PA, no database; talks to a server through the SDK)."),
    Option("BASE_URL", "str", None, "Public URL of this deployment, used for every link, the WSDL address and "
           "the activation QR code. Default for `all`: `http://127.0.0.1:$PORT`."),
    Option("MOBILE_APP_PATH", "str", "/PA", "Short path of the Mobile App Web Service."),
    Option("MOBILE_APP_URL", "str", None, "The Mobile App Web Service's public URL as phones reach it, put in "
           "activation codes and QR codes. Default: BASE_URL + MOBILE_APP_PATH. In the two-tier layout set it on "
           "the server to the frontend's, e.g. `https://mfa.example.com/PA`."),
    Option("SECRET_KEY", "str", None, "Signs sessions and CSRF tokens (32+ characters). Generated into "
           "`instance/secret_key` for role `all`; required otherwise.", secret=True),
    Option("ENCRYPTION_KEY", "str", None, "Base64 of 32 random bytes. Encrypts OATH seeds and push tokens and "
           "keys the audit chain; never stored in the database. Generated into `instance/encryption_key` for "
           "role `all`; required for `server`.", secret=True),
    Option("DATABASE_URL", "str", None, "SQLAlchemy URL. Default for `all`: SQLite file `instance/portal.db`. "
           "PostgreSQL: `postgresql+psycopg://user:pass@host/db`."),
    Option("REDIS_URL", "str", None, "Optional. Shares throttling counters (and, later, wake-ups) between "
           "workers and nodes, e.g. `redis://127.0.0.1:6379/0`."),
    Option("SSL_REQUIRED", "bool", None, "Refuse plain HTTP (MFA Server's `SSL_REQUIRED`). Default: on, except "
           "when BASE_URL is a loopback address."),
    Option("TRUSTED_PROXIES", "int", 0, "Number of reverse proxies in front of the app whose "
           "`X-Forwarded-For`/`X-Forwarded-Proto` are believed (TLS offloading)."),
    Option("ADMINS_GROUP", "str", "MFA Admins", "Group an account must belong to for the SDK (the role "
           "'PhoneFactor Admins' played)."),
    Option("ADMIN_USERNAME", "str", None, "First staff account's name at the first start (default `admin`)."),
    Option("ADMIN_PASSWORD", "str", None, "First staff account's password at the first start; when unset a "
           "one-time password is generated and printed once.", secret=True),
    Option("SDK_URL", "str", None, "Frontend only: the server's `.../PfWsSdk.asmx` URL "
           "(MFA Server's `pfup_pfwssdk_PfWsSdk`)."),
    Option("SDK_USERNAME", "str", None, "Frontend only: SDK service account "
           "(`WEB_SERVICE_SDK_AUTHENTICATION_USERNAME`)."),
    Option("SDK_PASSWORD", "str", None, "Frontend only: its password "
           "(`WEB_SERVICE_SDK_AUTHENTICATION_PASSWORD`).", secret=True),
    Option("SDK_CA_FILE", "str", None, "Frontend only: CA bundle that signs the server's certificate "
           "(default: the system store)."),
    Option("SDK_TIMEOUT", "int", 10, "Frontend only: seconds before an SDK call gives up."),
    Option("AUTH_REQUEST_LIFETIME", "int", 120, "Seconds an authentication request stays pending."),
    Option("ARGON2_TIME_COST", "int", 3, "argon2id passes for passwords, PINs and answers."),
    Option("ARGON2_MEMORY_COST", "int", 65536, "argon2id memory in KiB."),
    Option("ARGON2_PARALLELISM", "int", 4, "argon2id lanes."),
    Option("MAX_REQUEST_BYTES", "int", 1_048_576, "Largest request body accepted (SOAP and JSON)."),
    Option("LOG_LEVEL", "str", "INFO", "Python log level."),
    Option("PUSH_FCM_CREDENTIALS", "str", None, "Firebase service account key file (JSON): enables FCM HTTP v1 "
           "pushes to Android (and FCM iOS) devices."),
    Option("PUSH_FCM_ENDPOINT", "str", "https://fcm.googleapis.com", "FCM API base URL."),
    Option("PUSH_FCM_TOKEN_URI", "str", None, "OAuth2 token URL (default: the key file's `token_uri`)."),
    Option("PUSH_APNS_KEY", "str", None, "APNs auth key file (.p8, from Apple's developer account): enables "
           "pushes to iOS devices over HTTP/2."),
    Option("PUSH_APNS_KEY_ID", "str", None, "The key's id (10 characters, shown by Apple)."),
    Option("PUSH_APNS_TEAM_ID", "str", None, "Your Apple developer team id."),
    Option("PUSH_APNS_TOPIC", "str", None, "The app's bundle id."),
    Option("PUSH_APNS_ENDPOINT", "str", "https://api.push.apple.com", "APNs base URL "
           "(`https://api.sandbox.push.apple.com` for development builds)."),
    Option("PUSH_WEBPUSH_VAPID_KEY", "str", None, "VAPID private key (PEM, ECDSA P-256): enables Web Push and "
           "UnifiedPush (RFC 8030/8291/8292)."),
    Option("PUSH_WEBPUSH_SUBJECT", "str", None, "VAPID contact, `mailto:` or `https:` (required with the key)."),
    Option("PUSH_CA_FILE", "str", None, "CA bundle for the push services' certificates (default: the system "
           "store)."),
    Option("SMTP_HOST", "str", None, "Mail server for administrator notifications (fraud reports); unset: none "
           "are sent (they are still audited)."),
    Option("SMTP_PORT", "int", 25, "Its port (587 with STARTTLS, usually)."),
    Option("SMTP_STARTTLS", "bool", False, "Upgrade the SMTP connection with STARTTLS (verified against the "
           "system store or `PORTAL_SMTP_CA_FILE`)."),
    Option("SMTP_CA_FILE", "str", None, "CA bundle for the mail server's certificate."),
    Option("SMTP_USERNAME", "str", None, "SMTP login, if the server wants one."),
    Option("SMTP_PASSWORD", "str", None, "Its password.", secret=True),
    Option("SMTP_FROM", "str", "mfa-portal@localhost", "Sender address of notifications."),
    Option("FRAUD_NOTIFY", "str", None, "Comma-separated addresses told when a user reports fraud "
           "(the original's fraud alert e-mail)."),
)
BY_NAME = {o.name: o for o in OPTIONS}


def _parse(option: Option, raw: Any) -> Any:
    var = f"PORTAL_{option.name}"
    if raw is None:
        return None
    if option.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(var, "must be true or false")
    if option.kind == "int":
        if isinstance(raw, bool):
            raise ConfigError(var, "must be a whole number")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(var, "must be a whole number") from None
    if not isinstance(raw, str):
        raise ConfigError(var, "must be text")
    return raw


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Collect and validate every option; returns a dict ready for ``app.config``."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {o.name: o.default for o in OPTIONS}
    extra: dict[str, Any] = {}

    instance = Path(overrides.pop("INSTANCE_PATH", None) or environ.get("PORTAL_INSTANCE_PATH") or ROOT / "instance")
    config_file = environ.get("PORTAL_CONFIG_FILE") or (instance / "portal.toml")
    if Path(config_file).is_file():
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("PORTAL_CONFIG_FILE", f"{config_file} is not valid TOML: {exc}") from exc
        for key, raw in data.items():
            name = key.upper().removeprefix("PORTAL_")
            if name not in BY_NAME:
                raise ConfigError(f"PORTAL_{name}", f"is not a known setting (in {config_file})")
            values[name] = _parse(BY_NAME[name], raw)
    for option in OPTIONS:
        if f"PORTAL_{option.name}" in environ:
            values[option.name] = _parse(option, environ[f"PORTAL_{option.name}"])
    for key, raw in overrides.items():
        if key in BY_NAME:
            values[key] = _parse(BY_NAME[key], raw)
        else:
            extra[key] = raw  # Flask's own keys (TESTING, ...) and test hooks
    values["INSTANCE_PATH"] = str(instance)
    _validate(values, instance, testing=bool(extra.get("TESTING")), port=environ.get("PORT", "5000"))
    values.update(extra)
    return values


def _validate(c: dict[str, Any], instance: Path, *, testing: bool, port: str) -> None:
    if c["ROLE"] not in ROLES:
        raise ConfigError("PORTAL_ROLE", f"must be one of {', '.join(ROLES)}")
    embedded = c["ROLE"] == "all"
    if not c["BASE_URL"]:
        if not embedded:
            raise ConfigError("PORTAL_BASE_URL", "is required for the server and frontend roles")
        c["BASE_URL"] = f"http://127.0.0.1:{port}"
    parts = urlsplit(c["BASE_URL"])
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError("PORTAL_BASE_URL", "must be an http(s) URL such as https://mfa.example.com")
    c["BASE_URL"] = c["BASE_URL"].rstrip("/")
    path = c["MOBILE_APP_PATH"]
    if not path.startswith("/") or path == "/" or any(ch in path for ch in "?#* ") or path.endswith("/"):
        raise ConfigError("PORTAL_MOBILE_APP_PATH", "must be a path such as /PA")
    loopback = _is_loopback(parts.hostname)
    if c["SSL_REQUIRED"] is None:
        c["SSL_REQUIRED"] = not loopback
    if c["SSL_REQUIRED"] and parts.scheme != "https" and not loopback:
        raise ConfigError("PORTAL_BASE_URL", "must start with https:// while PORTAL_SSL_REQUIRED is on")
    if not 0 <= c["TRUSTED_PROXIES"] <= 5:
        raise ConfigError("PORTAL_TRUSTED_PROXIES", "must be between 0 and 5")
    for name, low, high in (("ARGON2_TIME_COST", 1, 20), ("ARGON2_MEMORY_COST", 1024, 4_194_304),
                            ("ARGON2_PARALLELISM", 1, 64), ("SDK_TIMEOUT", 1, 300),
                            ("AUTH_REQUEST_LIFETIME", 10, 600), ("MAX_REQUEST_BYTES", 4096, 64 * 1_048_576)):
        if not low <= c[name] <= high:
            raise ConfigError(f"PORTAL_{name}", f"must be between {low} and {high}")

    if c["ADMIN_PASSWORD"] is not None and len(c["ADMIN_PASSWORD"]) < 12:
        raise ConfigError("PORTAL_ADMIN_PASSWORD", "must be at least 12 characters")
    if c["ADMIN_USERNAME"] is not None:
        from .core import validation
        from .core.errors import InvalidInput

        try:
            validation.username(c["ADMIN_USERNAME"])
        except InvalidInput as exc:
            raise ConfigError("PORTAL_ADMIN_USERNAME", exc.reason) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("PORT", "must be a TCP port number (1-65535)")
    c["SECRET_KEY"] = _key("SECRET_KEY", c["SECRET_KEY"], embedded, instance,
                           lambda: secrets.token_urlsafe(48), _check_secret_key)
    if c["ROLE"] == "frontend":
        for name in ("SDK_URL", "SDK_USERNAME", "SDK_PASSWORD"):
            if not c[name]:
                raise ConfigError(f"PORTAL_{name}", "is required for the frontend role")
        sdk = urlsplit(c["SDK_URL"])
        if sdk.scheme not in ("http", "https") or not sdk.hostname:
            raise ConfigError("PORTAL_SDK_URL", "must be an http(s) URL ending in /PfWsSdk.asmx")
        if sdk.scheme != "https" and not _is_loopback(sdk.hostname) and c["SSL_REQUIRED"]:
            raise ConfigError("PORTAL_SDK_URL", "must use https:// (the SDK carries credentials)")
        if c["SDK_CA_FILE"] and not Path(c["SDK_CA_FILE"]).is_file():
            raise ConfigError("PORTAL_SDK_CA_FILE", f"{c['SDK_CA_FILE']} does not exist")
        c["ENCRYPTION_KEY_BYTES"] = None
        return
    raw_key = _key("ENCRYPTION_KEY", c["ENCRYPTION_KEY"], embedded, instance,
                   lambda: base64.b64encode(secrets.token_bytes(32)).decode(), _check_encryption_key)
    c["ENCRYPTION_KEY"] = raw_key
    c["ENCRYPTION_KEY_BYTES"] = base64.b64decode(raw_key)
    if not c["DATABASE_URL"]:
        if not embedded:
            raise ConfigError("PORTAL_DATABASE_URL", "is required for the server role")
        instance.mkdir(parents=True, exist_ok=True)
        c["DATABASE_URL"] = f"sqlite:///{instance / 'portal.db'}"
    if not c["DATABASE_URL"].startswith(("sqlite", "postgresql")):
        raise ConfigError("PORTAL_DATABASE_URL", "must be a sqlite:/// or postgresql+psycopg:// URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_secret_key(value: str) -> None:
    if len(value) < 32:
        raise ConfigError("PORTAL_SECRET_KEY", "must be at least 32 characters")


def _check_encryption_key(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("PORTAL_ENCRYPTION_KEY", "must be base64") from None
    if len(raw) != 32:
        raise ConfigError("PORTAL_ENCRYPTION_KEY", "must decode to 32 bytes (openssl rand -base64 32)")


def _key(name: str, value: str | None, generate: bool, instance: Path, make: Callable[[], str],
         check: Callable[[str], None]) -> str:
    if value:
        check(value)
        return value
    if not generate:
        raise ConfigError(f"PORTAL_{name}", "is required outside the embedded default (role all)")
    path = instance / name.lower()
    instance.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a complete file under a private name, then link it into place: a second
        # process starting at the same moment either wins the link or reads a whole key.
        tmp = instance / f".{name.lower()}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    value = path.read_text().strip()
    if not value:
        raise ConfigError(f"PORTAL_{name}", f"{path} is empty: delete it to generate a new key, or set the variable")
    check(value)
    return value


def core_config(c: Mapping[str, Any]) -> CoreConfig:
    return CoreConfig(
        database_url=c["DATABASE_URL"],
        encryption_key=c["ENCRYPTION_KEY_BYTES"],
        base_url=c["BASE_URL"],
        mobile_app_path=c["MOBILE_APP_PATH"],
        public_mobile_app_url=(c["MOBILE_APP_URL"] or "").rstrip("/") or None,
        wake_dir=str(Path(c["INSTANCE_PATH"]) / "wake"),
        admins_group=c["ADMINS_GROUP"],
        redis_url=c["REDIS_URL"],
        hashing=HashingConfig(c["ARGON2_TIME_COST"], c["ARGON2_MEMORY_COST"], c["ARGON2_PARALLELISM"]),
        auth_request_lifetime=c["AUTH_REQUEST_LIFETIME"],
        smtp=SmtpConfig(c["SMTP_HOST"], c["SMTP_PORT"], c["SMTP_FROM"],
                        tuple(a.strip() for a in (c["FRAUD_NOTIFY"] or "").split(",") if a.strip()),
                        c["SMTP_STARTTLS"], c["SMTP_USERNAME"], c["SMTP_PASSWORD"], c["SMTP_CA_FILE"])
        if c["SMTP_HOST"] else None,
    )
