"""A dropshipper's terms as the configuration gives them (``[locations.CODE]``, kind =
"dropshipper"): who the partners are, which channels each may serve, its purchase prices and
whether an availability figure is still fresh. Pure: no database; the price file is read here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Mapping

from caturactl.config import Config, LocationConfig
from caturactl.core import csvfile
from caturactl.core.errors import ConfigError, InputError

KIND = "dropshipper"
_PRICE = re.compile(r"[0-9]{1,9}([.,][0-9]{1,4})?")


def partners(cfg: Config) -> list[str]:
    """The codes of the configured dropshippers, by priority then code."""
    return sorted((c for c, loc in cfg.locations.items() if loc.kind == KIND),
                  key=lambda c: (cfg.locations[c].priority, c))


def is_partner(cfg: Config, code: str) -> bool:
    """True when ``code`` is a configured dropshipper."""
    loc = cfg.locations.get(code)
    return loc is not None and loc.kind == KIND


def serves(loc: LocationConfig, channel: str) -> bool:
    """Whether a dropshipper may ship orders of ``channel`` (an empty list: every channel)."""
    return not loc.channels or channel in loc.channels


def is_fresh(as_of: datetime, now: datetime, max_age_hours: int) -> bool:
    """A feed figure counts only while it is younger than the partner's allowed age: we never
    sell what may be gone."""
    return now - as_of <= timedelta(hours=max_age_hours)


def read_prices(name: str, text: str) -> dict[str, Decimal]:
    """``sku;price`` rows (a header naming ``sku`` and ``price`` or ``purchase_price``; decimal
    point or comma, at most 4 places) as net prices each; raises InputError naming file:line:field."""
    header, body = csvfile.rows(text, name)
    field = next((f for f in ("price", "purchase_price") if f in header), None)
    if "sku" not in header or field is None:
        raise InputError("the header needs 'sku' and 'price'", where=f"{name}:1")
    out: dict[str, Decimal] = {}
    for lineno, row in body:
        sku, value = row["sku"], row[field]
        if not sku or len(sku) > 100 or not sku.isprintable():
            raise InputError("a SKU is 1 to 100 printable characters", where=f"{name}:{lineno}:sku")
        if sku in out:
            raise InputError(f"sku {sku!r} twice", where=f"{name}:{lineno}:sku")
        if not _PRICE.fullmatch(value):
            raise InputError(f"not a price: {value[:40]!r} (e.g. 12.50)", where=f"{name}:{lineno}:{field}")
        out[sku] = Decimal(value.replace(",", "."))
    return out


def purchase_prices(cfg: Config, code: str) -> dict[str, Decimal]:
    """The agreed net purchase price per SKU of dropshipper ``code``: the inline table, or the CSV
    file it names (relative to caturactl.toml). Raises ConfigError when the file cannot be read,
    InputError naming file:line:field when a row is wrong."""
    given: str | Mapping[str, Decimal] = cfg.locations[code].purchase_prices
    if not isinstance(given, str):
        return dict(given)
    path = Path(given).expanduser()
    if not path.is_absolute():
        path = cfg.base_dir / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the purchase prices: {exc.strerror}",
                          where=f"locations.{code}.purchase_prices: {path}") from None
    return read_prices(path.name, csvfile.decode(data, path.name))
