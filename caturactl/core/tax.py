"""VAT for an invoice: which treatment a delivery gets, which rate applies on the date of supply,
and the one rounding rule. Pure functions over plain values (reference/accounting/vat.md).

Treatment (vat.md §2, §4; invoice.md §1):
- to the home country: standard taxation at the home rates ("S");
- to another EU country, a business buyer with a VAT id of that other country: tax-free
  intra-Community supply ("K", § 4 Nr. 1b, § 6a UStG) with both VAT ids and the § 14a note;
- to another EU country, a private buyer: destination rates when the merchant is over the OSS
  threshold (configured), else home rates ("S");
- outside the EU: tax-free export ("G", § 4 Nr. 1a UStG).

Rounding (one rule, here): prices are gross (what the buyer paid). Per tax rate, the net of the
group is gross / (1 + rate) rounded half-up to the cent, and the tax is gross minus net, so the
invoice's gross is exactly what was paid. The group's net is then shared out to its lines by the
largest-remainder method: each line gets its exact share rounded down to the cent, and the cents
rounding left over go one each to the lines with the largest remainders. So the lines add up to
the group, and no line's net is ever negative or above its gross (no negative tax either), which
"the last line takes the rest" could not promise (30 x 12.62 beside a 0.10 line gave -0.06).

Ancillary charges (shipping, gift wrap, a cash-on-delivery fee) are not supplies of their own: a
Nebenleistung shares the tax treatment of the goods it serves (UStAE Abschnitt 3.10 Abs. 5; EuGH
C-349/96 "CPP"). When the goods of one order carry different rates, the charge is split in
proportion to the goods' net values per rate, the method the German tax authorities accept and
the usual practice for mixed carts (e.g. Taxdoo, "Umsatzsteuer auf Versandkosten und
Nebenleistungen"). ``split_ancillary`` does that split in whole cents, largest remainder again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Sequence

from caturactl.config import EU_COUNTRIES, TaxRate
from caturactl.core.errors import ConfigError

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Treatment:
    category: str  # UNCL5305: S, K, G
    rate_country: str  # whose rates apply ("" when tax-free)
    note_de: str = ""
    note_en: str = ""
    exemption_code: str = ""  # VATEX


INTRA_EU_DE = ("Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1b, § 6a UStG). "
               "Die Steuerschuld geht auf den Leistungsempfänger über.")
INTRA_EU_EN = "Tax-free intra-Community supply (Art. 138 VAT Directive); the recipient accounts for the VAT."
EXPORT_DE = "Steuerfreie Ausfuhrlieferung (§ 4 Nr. 1a, § 6 UStG)."
EXPORT_EN = "Tax-free export supply (Art. 146 VAT Directive)."


def vat_id_country(vat_id: str) -> str:
    """The member state of a VAT id ("DE123456789" -> "DE"; Greece writes "EL"), "" when none."""
    v = vat_id.replace(" ", "").upper()
    if len(v) < 4 or not v[:2].isalpha():
        return ""
    return "GR" if v[:2] == "EL" else v[:2]


def treatment(home: str, ship_country: str, buyer_vat_id: str, *, oss: bool) -> Treatment:
    """How a delivery from ``home`` to ``ship_country`` is taxed; see the module docstring."""
    if ship_country == home:
        return Treatment("S", home)
    if ship_country not in EU_COUNTRIES:
        return Treatment("G", "", EXPORT_DE, EXPORT_EN, "VATEX-EU-G")
    buyer_country = vat_id_country(buyer_vat_id)
    if buyer_country and buyer_country != home and buyer_country in EU_COUNTRIES:
        return Treatment("K", "", INTRA_EU_DE, INTRA_EU_EN, "VATEX-EU-IC")
    return Treatment("S", ship_country if oss else home)


def rate(rates: Sequence[TaxRate], country: str, kind: str, on: date) -> Decimal:
    """The rate (percent) for ``country`` and ``kind`` on the date of supply; ConfigError naming
    what is missing when the table has none."""
    for r in rates:
        if r.country == country and r.kind == kind and r.valid_from <= on and (r.valid_to is None or on <= r.valid_to):
            return r.rate
    raise ConfigError(f"no {kind} VAT rate for {country} on {on.isoformat()} in [[tax.rates]]",
                      where="caturactl.toml: tax.rates")


def share_cents(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``total`` (whole cents, >= 0) shared in proportion to ``weights`` (>= 0) in whole cents that
    add up to ``total`` exactly: each share is rounded down, the cents left go one each to the
    largest remainders (ties: the earlier weight). All weights zero: shared equally."""
    if not weights:
        return []
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("shares of a negative amount or by a negative weight")
    w_sum = sum(weights, Decimal(0))
    if w_sum == 0:
        weights, w_sum = [Decimal(1)] * len(weights), Decimal(len(weights))
    units = int(total / CENT)
    exact = [Decimal(units) * w / w_sum for w in weights]
    floors = [int(e) for e in exact]  # Decimal -> int truncates toward zero: a floor for e >= 0
    left = units - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f) * CENT for f in floors]


def split_gross(gross_lines: Sequence[Decimal], rate_percent: Decimal) -> tuple[list[Decimal], Decimal, Decimal]:
    """(line nets, group net, group tax) for the gross amounts (>= 0) of one rate; see the module
    docstring. Every line's net lies between 0 and its gross."""
    factor = 1 + rate_percent / HUNDRED
    total = sum(gross_lines, Decimal(0))
    net = cents(total / factor)
    return share_cents(net, list(gross_lines)), net, total - net


def split_ancillary(gross: Decimal, goods_nets: dict[Decimal, Decimal]) -> dict[Decimal, Decimal]:
    """An ancillary charge's ``gross`` split over the rates of the goods it serves, in proportion
    to their net values ({rate: net of the goods at that rate}); see the module docstring. The
    parts are whole cents and add up to ``gross``; a rate whose goods are worth nothing gets none."""
    rates = sorted(goods_nets, reverse=True)
    parts = share_cents(gross, [goods_nets[r] for r in rates])
    return {r: p for r, p in zip(rates, parts) if p or len(rates) == 1}
