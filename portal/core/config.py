"""Configuration as the core sees it: small frozen dataclasses, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HashingConfig:
    """argon2id cost. The defaults are argon2-cffi's RFC 9106 low-memory profile."""

    time_cost: int = 3
    memory_cost: int = 65536  # KiB
    parallelism: int = 4


@dataclass(frozen=True)
class SmtpConfig:
    """Where administrator notifications (fraud reports) go."""

    host: str
    port: int = 25
    sender: str = "mfa-portal@localhost"
    fraud_recipients: tuple[str, ...] = ()
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 10


@dataclass(frozen=True)
class CoreConfig:
    """Everything the services need; no Flask, no environment reading."""

    database_url: str
    encryption_key: bytes  # 32 bytes; never stored in the database
    base_url: str = "http://127.0.0.1:5000"
    mobile_app_path: str = "/PA"
    public_mobile_app_url: str | None = None  # where phones reach /PA, when not this node (two-tier)
    admins_group: str = "MFA Admins"
    redis_url: str | None = None
    hashing: HashingConfig = field(default_factory=HashingConfig)
    # Seconds a caller may wait on a synchronous AuthenticateUser.
    auth_request_lifetime: int = 120
    sql_echo: bool = False
    smtp: SmtpConfig | None = None
    wake_dir: str | None = None  # Unix sockets that wake waiters in this machine's other processes

    @property
    def mobile_app_url(self) -> str:
        return self.public_mobile_app_url or self.base_url.rstrip("/") + self.mobile_app_path
