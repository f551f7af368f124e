"""Field checks shared by every service. Each failure names its field."""

from __future__ import annotations

import hmac
import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from typing import TypeVar

import phonenumbers

from .errors import InvalidInput

T = TypeVar("T")

_USERNAME = re.compile(r"^[A-Za-z0-9._@+\\-]+$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,252}\.[A-Za-z]{2,63}$")
_EXTENSION = re.compile(r"^[0-9,*#]{1,16}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_SERIAL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(field: str, value: object, *, max_len: int, required: bool = True, min_len: int = 1) -> str:
    """A trimmed single-line string."""
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    value = value.strip()
    if not value:
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if len(value) < min_len:
        raise InvalidInput(field, f"must be at least {min_len} characters")
    if len(value) > max_len:
        raise InvalidInput(field, f"must be at most {max_len} characters")
    if _CONTROL.search(value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def username(value: object, field: str = "username") -> str:
    name = text(field, value, max_len=128)
    if not _USERNAME.match(name):
        raise InvalidInput(field, "may hold only letters, digits and . _ @ + - \\")
    return name


def ip_address(value: object, field: str = "client_ip") -> str | None:
    """An IPv4 or IPv6 address in its canonical text form, or None when not given."""
    raw = text(field, value, max_len=45, required=False)
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError as exc:
        raise InvalidInput(field, "is not an IP address") from exc


def email(value: object, field: str = "email") -> str | None:
    raw = text(field, value, max_len=254, required=False)
    if not raw:
        return None
    if not _EMAIL.match(raw):
        raise InvalidInput(field, "is not a valid e-mail address")
    return raw


def phone(value: object, field: str = "phone") -> str | None:
    """An international number, stored in E.164 (``+14255550100``)."""
    raw = text(field, value, max_len=32, required=False)
    if not raw:
        return None
    if not raw.startswith("+") and not raw.startswith("00"):
        raise InvalidInput(field, "must be in international format, starting with + and the country code")
    try:
        parsed = phonenumbers.parse("+" + raw[2:] if raw.startswith("00") else raw, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(field, "is not a valid phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(field, "is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def extension(value: object, field: str = "extension") -> str | None:
    raw = text(field, value, max_len=16, required=False)
    if not raw:
        return None
    if not _EXTENSION.match(raw):
        raise InvalidInput(field, "may hold only digits, commas, * and #")
    return raw


def language(value: object, field: str = "language") -> str:
    raw = text(field, value, max_len=12, required=False) or "en"
    if not _LANGUAGE.match(raw):
        raise InvalidInput(field, "must be a language tag such as en or fr-CA")
    return raw


def choice(field: str, value: object, allowed: Iterable[T]) -> T:
    options = list(allowed)
    for option in options:
        if value == option:
            return option
    names = ", ".join(str(o) for o in options)
    raise InvalidInput(field, f"must be one of: {names}")


def integer(field: str, value: object, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool):
        raise InvalidInput(field, "must be a whole number")
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?\d{1,12}", value):
            raise InvalidInput(field, "must be a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(field, "must be a whole number")
    if not minimum <= value <= maximum:
        raise InvalidInput(field, f"must be between {minimum} and {maximum}")
    return value


def boolean(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise InvalidInput(field, "must be true or false")


def otp_code(value: object, field: str = "code", digits: tuple[int, ...] = (6, 8)) -> str:
    raw = text(field, value, max_len=10)
    raw = raw.replace(" ", "")
    if not raw.isdigit() or len(raw) not in digits:
        raise InvalidInput(field, "must be a " + " or ".join(str(d) for d in digits) + "-digit code")
    return raw


def serial(value: object, field: str = "serial") -> str:
    raw = text(field, value, max_len=64)
    if not _SERIAL.match(raw):
        raise InvalidInput(field, "may hold only letters, digits and . _ -")
    return raw


def password(value: object, field: str = "password", *, min_len: int = 1) -> str:
    """Passwords are not trimmed: spaces are part of them."""
    if value is None or value == "":
        raise InvalidInput(field, "is required")
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    if len(value) < min_len:
        raise InvalidInput(field, f"must be at least {min_len} characters")
    if len(value) > 1024:
        raise InvalidInput(field, "must be at most 1024 characters")
    return value


def pin(value: object, *, min_len: int, field: str = "pin") -> str:
    """MFA Server's PIN rules: digits only, PIN Minimum Length, weak PINs refused."""
    raw = text(field, value, max_len=16)
    if not raw.isdigit():
        raise InvalidInput(field, "must hold digits only")
    if len(raw) < min_len:
        raise InvalidInput(field, f"must be at least {min_len} digits")
    if is_weak_pin(raw):
        raise InvalidInput(field, "is too easy to guess (repeated digits or a sequence)")
    return raw


def is_weak_pin(value: str) -> bool:
    if len(set(value)) == 1:
        return True
    steps = {(int(b) - int(a)) % 10 for a, b in zip(value, value[1:], strict=False)}
    if steps in ({1}, {9}):  # 1234, 4321, 7890, 0987
        return True
    # Short patterns repeated: 1212, 123123.
    for size in (2, 3):
        if len(value) % size == 0 and len(value) > size and value == value[:size] * (len(value) // size):
            return True
    return False


def normalise_answer(value: str) -> str:
    """Security answers compare ignoring case, accents, punctuation and spacing."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", letters).split())


def constant_time_code(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
