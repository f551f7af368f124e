"""``POST /PfWsSdk.asmx``: HTTP Basic as a member of the administrators group, then parse,
validate, dispatch by element name, answer (or fault).

Served as a plain WSGI application in front of Flask: the SDK is the hot path of every
sign-in (applications call it per user), and Flask's per-request machinery - request
context, session, hooks, header objects - cost more than the SOAP work itself (measured
in-process: 337 µs per ``ValidateOathCode`` through Flask, 146 µs of which is parsing, the
validation and the answer). What the Flask hooks do for every other route is done here
too, from the same definitions: the HTTPS rule, the correlation id, the request log line,
the security headers and the body size limit. Everything but a POST to the SDK's paths
goes on to Flask (``GET ?wsdl`` included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lxml import etree
from werkzeug.datastructures import Authorization
from werkzeug.http import HTTP_STATUS_CODES

from ..core.audit import Actor
from ..core.errors import Forbidden, InvalidInput, PortalError, Throttled, Unauthorized
from ..security import HSTS, STATIC_HEADERS
from ..weblog import correlation_id, log_request
from . import soap
from .local import LocalBackend
from .operations import OPERATIONS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

    from ..core.services import Services

log = logging.getLogger("portal.sdk")
PATHS = ("/PfWsSdk.asmx", "/MultiFactorAuthWebServiceSdk/PfWsSdk.asmx")
Answer = tuple[int, list[tuple[str, str]], bytes]


class SdkEndpoint:
    """WSGI middleware: answers SDK calls itself, hands everything else to ``inner`` (Flask)."""

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self._app, self._inner = app, inner
        self._ssl_required = bool(app.config["SSL_REQUIRED"])
        self._limit = int(app.config["MAX_CONTENT_LENGTH"])

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in PATHS:
            return self._inner(environ, start_response)
        started = time.perf_counter()
        rid = correlation_id(environ.get("HTTP_X_REQUEST_ID", ""))
        secure = environ.get("wsgi.url_scheme") == "https"
        if self._ssl_required and not secure:
            status, headers, body = 403, [("Content-Type", "text/plain; charset=utf-8")], b"HTTPS is required.\n"
        else:
            try:
                status, headers, body = self.answer(environ, rid)
            except Exception:  # e.g. the database is down while checking the credentials
                log.exception("SDK request failed rid=%s", rid)
                status, headers, body = _server_error(_version(environ), rid)
        headers += STATIC_HEADERS
        headers += [("Cache-Control", "no-store"), ("Content-Length", str(len(body))), ("X-Request-ID", rid)]
        if secure:
            headers.append(HSTS)
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, '')}", headers)
        log_request("POST", environ.get("PATH_INFO", ""), status, started, rid)
        return [body]

    def answer(self, environ: WSGIEnvironment, rid: str) -> Answer:
        version = _version(environ)
        creds = Authorization.from_header(environ.get("HTTP_AUTHORIZATION"))
        if creds is None or creds.type != "basic" or not creds.username or not creds.password:
            return _fault(version, soap.SoapError("Unauthorized", "HTTP Basic credentials are required."), rid, 401)
        address = environ.get("REMOTE_ADDR")
        services: Services = self._app.extensions["portal.services"]
        try:
            principal = services.accounts.authenticate_sdk(Actor("sdk", address, rid), creds.username,
                                                           creds.password)
        except PortalError as exc:
            return _fault(version, _from_error(exc), rid)
        try:
            body = _read_body(environ, self._limit)
        except _TooLarge:
            return _fault(version, soap.SoapError("RequestTooLarge", "The request body is too large."), rid, 413)
        actor = Actor(principal.actor_name, address, rid)
        try:
            version, op = soap.parse_request(body, environ.get("CONTENT_TYPE", ""), OPERATIONS)
            payload = OPERATIONS[etree.QName(op).localname](LocalBackend(services, _fixed(actor)), op)
        except soap.SoapError as err:
            return _fault(version, err, rid)
        except PortalError as exc:
            return _fault(version, _from_error(exc), rid)
        except Exception:
            log.exception("SDK operation failed rid=%s", rid)
            return _server_error(version, rid)
        if self._app.testing:
            assert soap.SCHEMA.validate(payload), soap.SCHEMA.error_log
        return 200, [("Content-Type", soap.CONTENT_TYPES[version])], soap.envelope(version, payload)


class _TooLarge(Exception):
    pass


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The body by its Content-Length, or (chunked) to its end; never more than ``limit``."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        if not length.isdigit():
            return b""  # the XML parser then answers "empty body"
        if int(length) > limit:
            raise _TooLarge
        return stream.read(int(length))  # type: ignore[no-any-return]
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: reading could block (WSGI's safe fallback)
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        part = stream.read(limit + 1 - size)
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
    raise _TooLarge


def _fixed(actor: Actor) -> Callable[[], Actor]:
    return lambda: actor


def _version(environ: WSGIEnvironment) -> str:
    media = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
    return soap.SOAP12 if media == "application/soap+xml" else soap.SOAP11


def _server_error(version: str, rid: str) -> Answer:
    """Never a trace: the reference matches the log line that has it."""
    hidden = soap.SoapError("ServerError", f"An internal error occurred (reference {rid}).", sender=False)
    return _fault(version, hidden, rid)


def _fault(version: str, err: soap.SoapError, rid: str, status: int | None = None) -> Answer:
    if status is None:
        status = err.http_status or (400 if version == soap.SOAP12 and err.sender else 500)
    headers = [("Content-Type", soap.CONTENT_TYPES[version])]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Basic realm="PfWsSdk", charset="UTF-8"'))
    if err.retry_after:
        headers.append(("Retry-After", str(err.retry_after)))
    return status, headers, soap.fault(version, err, rid)


def _from_error(exc: PortalError) -> soap.SoapError:
    field = exc.field if isinstance(exc, InvalidInput) else None
    status = {Unauthorized: 401, Forbidden: 403, Throttled: 429}.get(type(exc))
    retry = exc.retry_after if isinstance(exc, Throttled) else None
    return soap.SoapError(exc.code, exc.message, field, sender=exc.http_status < 500, http_status=status,
                          retry_after=retry)


def install(app: Flask) -> None:
    """Put the endpoint in front of Flask (inside any ProxyFix, which wraps later)."""
    app.wsgi_app = SdkEndpoint(app, app.wsgi_app)  # type: ignore[method-assign]

