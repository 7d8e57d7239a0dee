"""Reading the fields of a channel's JSON answer (an Amazon order, a Shopware order): each reader
checks one field's type and refuses a wrong one with ``Malformed``, naming the field by its path
("order.orderItems[2].product.sellerSku"), so one broken order becomes a ticket that says where
and the rest of the page comes in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class Malformed(ValueError):
    """A field of a channel's answer that is missing or not what it must be."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def object_at(obj: Any, key: str, where: str, *, missing: str | None = None) -> dict:
    """``obj[key]`` as a JSON object; {} when it is absent (or ``obj`` is not an object), unless
    ``missing`` says why an absent one is Malformed."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        if missing is not None:
            raise Malformed(f"{where}.{key}", missing)
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{where}.{key}", f"expected an object, got {type(value).__name__}")
    return value


def array_at(obj: dict, key: str, where: str) -> list:
    """``obj[key]`` as a JSON array; [] when it is absent."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def text_at(obj: dict, key: str, where: str, *, required: bool = False) -> str:
    """``obj[key]`` as text without surrounding blanks; "" when it is absent or empty, which is
    Malformed ("missing") when ``required``."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise Malformed(f"{where}.{key}", "missing")
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{where}.{key}", f"expected text, got {value!r}")
    return value.strip()


def count_at(obj: dict, key: str, where: str, *, least: int = 0, default: int | None = None) -> int:
    """``obj[key]`` (``default`` when absent) as a whole number of at least ``least``."""
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise Malformed(f"{where}.{key}", f"expected a whole number >= {least}, got {value!r}")
    return value


def decimal_of(value: str | int | float, where: str) -> Decimal:
    """A finite decimal amount from JSON text or a JSON number (a number as it was written: str()
    gives back a shop's two-decimal float unchanged)."""
    try:
        dec = Decimal(str(value))
    except InvalidOperation:
        raise Malformed(where, f"not a decimal amount: {value!r}") from None
    if not dec.is_finite():
        raise Malformed(where, f"not a finite amount: {value!r}")
    return dec


def timestamp(value: Any, where: str, *, assume_utc: bool = False) -> datetime:
    """An ISO 8601 time in UTC. A time without a zone is Malformed, or UTC with ``assume_utc``
    (for a channel that writes its times so)."""
    if not isinstance(value, str) or not value:
        raise Malformed(where, f"expected an ISO 8601 time, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(where, f"not an ISO 8601 time: {value!r}") from None
    if t.tzinfo is None:
        if not assume_utc:
            raise Malformed(where, f"time without zone: {value!r}")
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def timestamp_at(obj: dict, key: str, where: str, *, assume_utc: bool = False) -> datetime | None:
    """``obj[key]`` as a time (see ``timestamp``); None when it is absent or empty."""
    return timestamp(obj[key], f"{where}.{key}", assume_utc=assume_utc) if obj.get(key) else None
