"""Push senders: wake a user's phones when a sign-in request is waiting for them.

A push carries only a wake-up with the request id (``{"type": "mfa-wake", "request_id": ...}``):
the phone then fetches the request over its signed long poll, so nothing secret or personal
travels through Google, Apple or a Web Push service. Providers: ``none`` (poll only),
FCM HTTP v1, APNs, Web Push / UnifiedPush (RFC 8030/8291/8292), each with a configurable
endpoint. Sending happens on a small thread pool after the request is stored: a slow or
failing provider never delays ``AuthenticateUser``; failures are logged (never the token).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ..core.notify import PushWake as Wake

log = logging.getLogger("portal.push")


class Provider(Protocol):
    def send(self, wake: Wake) -> None:
        """Deliver one wake-up; raise on failure."""
        ...


class PushError(Exception):
    pass


class Dispatcher:
    """Hands wake-ups to the provider of each device's push kind, off the request's thread."""

    def __init__(self, providers: dict[str, Provider], workers: int = 4) -> None:
        self._providers = providers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._providers)

    @property
    def webpush_public_key(self) -> str | None:
        provider = self._providers.get("webpush")
        key = getattr(provider, "public_key", None)
        return str(key) if key else None

    def wake(self, wakes: list[Wake]) -> None:
        for w in wakes:
            provider = self._providers.get(w.kind)
            if provider is None:
                log.info("push kind %s is not configured; device %s polls", w.kind, w.device_id)
                continue
            self._pool.submit(self._send, provider, w)

    @staticmethod
    def _send(provider: Provider, w: Wake) -> None:
        try:
            provider.send(w)
        except Exception as exc:  # a push failure must not escape the pool
            # A transport error's text holds the URL, and a Web Push URL is the device's secret.
            reason = str(exc) if isinstance(exc, PushError) else type(exc).__name__
            log.warning("push to device %s (%s) failed: %s", w.device_id, w.kind, reason)

    def close(self) -> None:
        """Finish the queued sends, then close the providers' connections."""
        self._pool.shutdown(wait=True)
        for provider in self._providers.values():
            close = getattr(provider, "close", None)
            if close is not None:
                close()


def payload(w: Wake) -> dict[str, str]:
    return {"type": "mfa-wake", "request_id": w.request_id}


def build(config: dict[str, object]) -> Dispatcher | None:
    """The configured providers (``PORTAL_PUSH_*``); None when none is (every phone polls)."""
    providers: dict[str, Provider] = {}
    verify: str | bool = str(config.get("PUSH_CA_FILE") or "") or True
    if config.get("PUSH_FCM_CREDENTIALS"):
        from .fcm import FcmProvider

        providers["fcm"] = FcmProvider(str(config["PUSH_FCM_CREDENTIALS"]),
                                       endpoint=str(config.get("PUSH_FCM_ENDPOINT") or "https://fcm.googleapis.com"),
                                       token_uri=str(config.get("PUSH_FCM_TOKEN_URI") or "") or None, verify=verify)
    if config.get("PUSH_APNS_KEY"):
        from .apns import ApnsProvider

        providers["apns"] = ApnsProvider(str(config["PUSH_APNS_KEY"]), key_id=str(config.get("PUSH_APNS_KEY_ID") or ""),
                                         team_id=str(config.get("PUSH_APNS_TEAM_ID") or ""),
                                         topic=str(config.get("PUSH_APNS_TOPIC") or ""),
                                         endpoint=str(config.get("PUSH_APNS_ENDPOINT") or "https://api.push.apple.com"),
                                         verify=verify)
    if config.get("PUSH_WEBPUSH_VAPID_KEY"):
        from .webpush import WebPushProvider

        providers["webpush"] = WebPushProvider(str(config["PUSH_WEBPUSH_VAPID_KEY"]),
                                               str(config.get("PUSH_WEBPUSH_SUBJECT") or ""), verify=verify)
    return Dispatcher(providers) if providers else None
