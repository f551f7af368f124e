"""Administrator notifications: a fraud report sends an e-mail over SMTP.

Sending happens after the answer is stored, on a background thread, so a slow or
unreachable mail server never delays the phone or the waiting caller; a failure is
logged (without the message body) and the fraud report itself stands. The message names
the user, the time, the application and the client address: never a code or a key.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from .config import SmtpConfig

if TYPE_CHECKING:
    from .authn import AuthRequestInfo

log = logging.getLogger("portal.notify")


@dataclass(frozen=True)
class PushWake:
    """One phone to wake for a waiting request: its push kind and token (decrypted), the request id."""

    device_id: str
    kind: str
    token: str
    request_id: str


class PushPort(Protocol):
    """Delivers wake-ups (``portal.push``); must not block: it queues and returns."""

    def wake(self, wakes: list[PushWake]) -> None: ...

    def close(self) -> None: ...

    @property
    def kinds(self) -> tuple[str, ...]:
        """The push kinds this server can deliver (besides ``none``)."""
        ...

    @property
    def webpush_public_key(self) -> str | None:
        """The VAPID public key a Web Push subscription must be made with (base64url)."""
        ...


class Notifier(Protocol):
    def fraud_reported(self, info: AuthRequestInfo, blocked: bool) -> None: ...


class NoNotifier:
    def fraud_reported(self, info: AuthRequestInfo, blocked: bool) -> None:
        log.info("fraud reported for %s; no notification address is configured", info.username)


class SmtpNotifier:
    def __init__(self, cfg: SmtpConfig) -> None:
        self._cfg = cfg

    def fraud_reported(self, info: AuthRequestInfo, blocked: bool) -> None:
        msg = EmailMessage()
        msg["Subject"] = f"MFA fraud report: {info.username}"
        msg["From"] = self._cfg.sender
        msg["To"] = ", ".join(self._cfg.fraud_recipients)
        msg.set_content(
            f"{info.username} reported a sign-in request as fraud.\n\n"
            f"Request:     {info.id}\n"
            f"Requested:   {info.created_at:%Y-%m-%d %H:%M:%S} UTC\n"
            f"Reported:    {(info.completed_at or info.created_at):%Y-%m-%d %H:%M:%S} UTC\n"
            f"Application: {info.application or '-'}\n"
            f"Client IP:   {info.client_ip or '-'}\n"
            f"User blocked: {'yes' if blocked else 'no (the setting is off)'}\n\n"
            "Check the user's recent sign-ins in the helpdesk console; unblock them there once it is cleared.\n")
        threading.Thread(target=self._send, args=(msg,), name="fraud-mail", daemon=True).start()

    def _send(self, msg: EmailMessage) -> None:
        cfg = self._cfg
        try:
            with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=cfg.ca_file))
                if cfg.username:
                    smtp.login(cfg.username, cfg.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("fraud notification not sent: %s: %s", type(exc).__name__, exc)


def build_notifier(cfg: SmtpConfig | None) -> Notifier:
    if cfg is None or not cfg.host or not cfg.fraud_recipients:
        return NoNotifier()
    return SmtpNotifier(cfg)
