"""Settlement reports for the SP-API stand-in: turning what the stand-in sold and shipped into
Amazon's V2 settlement flat file (``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``).

Why a generator of our own: Amazon creates these reports on its own schedule and they cannot be
requested (reference/amazon/README.md §8), so a test can only get one if the stand-in closes a
settlement itself. The layout follows README §8 and the composed sample
``settlement_v2_flatfile_DE_composed.tsv``:

* 24 tab-separated columns, one header line, then the summary line (settlement-id, start, end,
  deposit date, total-amount, currency; nothing else), then one line per amount.
* ``total-amount`` is the sum of every other line's ``amount``.
* DE/EU locale: dates ``14.03.2023 07:49:55 UTC``, posted-date ``14.03.2023``, comma decimals;
  EN (US form): ``2023-03-14 07:49:55 UTC``, ``2023-03-14``, dot decimals. Column captions,
  marketplace names, transaction and amount types are the same in both (README §8 names no other
  difference, and the DE sample has English captions).
* ``mixed_decimals`` writes some amounts of a DE file with a dot, because one maintainer saw both
  ``5,05`` and ``5.05`` in one report (README §8, abuzuhri/Amazon-SP-API-CSharp #706).

Everything about the money beyond the sample is the stand-in's assumption, not Amazon's rule:
commission 15 % of the gross (price + tax + shipping + shipping tax; the sample's three orders
all fit 15 %), RefundCommission 20 % of the reversed commission (fits the sample), an FBA fee per
unit by weight, promotions, gift wrap and COD fees exactly as the order's proceeds say (the
GiftWrap/CODFee descriptions are the stand-in's naming), the 39,00 subscription fee on the first settlement and on each one that spans
the 1st of a month, a storage fee when FBA units moved, and a reserve of 10 % of the gross sales
posted in the period's last 7 days, released in the next settlement.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
CURRENCY = "EUR"  # every marketplace the stand-in sells on (DE, FR, IT, ES) settles in EUR
COLUMNS = ("settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount",
           "currency", "transaction-type", "order-id", "merchant-order-id", "adjustment-id", "shipment-id",
           "marketplace-name", "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date",
           "posted-date-time", "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id", "sku",
           "quantity-purchased", "promotion-id")  # README §8, in this order
LOCALES = ("DE", "EN")
COMMISSION = Decimal("0.15")
REFUND_COMMISSION = Decimal("0.20")
SUBSCRIPTION_FEE = Decimal("39.00")
RESERVE = Decimal("0.10")
RESERVE_WINDOW = dt.timedelta(days=7)
DEPOSIT_AFTER = dt.timedelta(days=2)  # the sample's deposit date is two days after its end
# FBA fee per unit by shipping weight (upper bound in g, fee): the stand-in's own table.
FBA_FEES = ((150, Decimal("2.70")), (400, Decimal("3.05")), (900, Decimal("3.50")), (1500, Decimal("4.20")),
            (None, Decimal("5.10")))


@dataclass(frozen=True)
class UnitMovement:
    """Units of one order item that shipped (``after > before``) or were taken back by a
    cancellation after shipping (``after < before``) at ``at``; money is the whole line's."""
    order_id: str
    order_item_code: str
    sku: str
    marketplace_name: str
    afn: bool
    at: dt.datetime
    before: int
    after: int
    ordered: int
    item_net: Decimal
    item_tax: Decimal
    ship_net: Decimal
    ship_tax: Decimal
    promotion_id: str | None = None
    weight_g: int = 0
    gift_wrap_net: Decimal = ZERO
    gift_wrap_tax: Decimal = ZERO
    cod_net: Decimal = ZERO
    cod_tax: Decimal = ZERO
    item_discount: Decimal = ZERO  # gross, positive: shared out with the units like the goods
    ship_discount: Decimal = ZERO  # gross, positive: with the shipping


@dataclass(frozen=True)
class Row:
    """One amount line of the flat file (the summary line is built from the Settlement)."""
    transaction_type: str
    amount_type: str
    amount_description: str
    amount: Decimal
    posted: dt.datetime
    marketplace_name: str = ""
    order_id: str = ""
    adjustment_id: str = ""
    shipment_id: str = ""
    fulfillment_id: str = ""
    order_item_code: str = ""
    sku: str = ""
    quantity: int | None = None
    promotion_id: str = ""


@dataclass
class Settlement:
    """A closed settlement: its period, its lines and the reserve it keeps back."""
    settlement_id: str
    start: dt.datetime
    end: dt.datetime
    deposit: dt.datetime
    rows: list[Row] = field(default_factory=list)
    reserve: Decimal = ZERO  # kept back now (positive), released by the next settlement

    @property
    def total(self) -> Decimal:
        """The summary's total-amount: the sum of every line's amount (README §8)."""
        return sum((r.amount for r in self.rows), ZERO)


def _share(amount: Decimal, units: int, ordered: int) -> Decimal:
    # The amount for the first ``units`` of a line; differences of these shares never drift by a
    # cent however the line is split into shipments and refunds.
    return (amount * units / ordered).quantize(CENT, ROUND_HALF_UP) if ordered else ZERO


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def fba_fee(weight_g: int) -> Decimal:
    """The stand-in's FBA fee for one unit of ``weight_g`` grams."""
    for limit, fee in FBA_FEES:
        if limit is None or weight_g <= limit:
            return fee
    return FBA_FEES[-1][1]  # pragma: no cover - the last entry has no limit


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _movement_rows(m: UnitMovement, event_id: str) -> list[Row]:
    shipped = m.after > m.before
    units = abs(m.after - m.before)
    sign = Decimal(1) if shipped else Decimal(-1)
    principal = sign * abs(_share(m.item_net, m.after, m.ordered) - _share(m.item_net, m.before, m.ordered))
    tax = sign * abs(_share(m.item_tax, m.after, m.ordered) - _share(m.item_tax, m.before, m.ordered))
    # Shipping, gift wrap and a COD fee are charged with the line's first shipped units and
    # refunded when none stay shipped.
    with_shipping = (m.before == 0) if shipped else (m.after == 0)
    once = sign if with_shipping else ZERO
    shipping, shipping_tax = once * m.ship_net, once * m.ship_tax
    common = dict(marketplace_name=m.marketplace_name, order_id=m.order_id, posted=m.at,
                  fulfillment_id="AFN" if m.afn else "MFN", order_item_code=m.order_item_code, sku=m.sku)
    if shipped:
        common["shipment_id"] = event_id
        kind = "Order"
    else:
        common["adjustment_id"] = event_id
        kind = "Refund"
    rows = [Row(kind, "ItemPrice", "Principal", principal, quantity=units if shipped else None, **common),
            Row(kind, "ItemPrice", "Tax", tax, **common)]
    if shipping:
        rows += [Row(kind, "ItemPrice", "Shipping", shipping, **common),
                 Row(kind, "ItemPrice", "ShippingTax", shipping_tax, **common)]
    for description, amount in (("GiftWrap", once * m.gift_wrap_net), ("GiftWrapTax", once * m.gift_wrap_tax),
                                ("CODFee", once * m.cod_net), ("CODFeeTax", once * m.cod_tax)):
        if amount:
            rows.append(Row(kind, "ItemPrice", description, amount, **common))
    gross = principal + tax + shipping + shipping_tax + once * (m.gift_wrap_net + m.gift_wrap_tax + m.cod_net + m.cod_tax)
    # What the buyer did not pay, as the order's proceeds say (a sale's promotion is negative).
    item_off = abs(_share(m.item_discount, m.after, m.ordered) - _share(m.item_discount, m.before, m.ordered))
    for description, off in (("Principal", item_off), ("Shipping", once * m.ship_discount * sign)):
        if off:
            rows.append(Row(kind, "Promotion", description, -sign * off, promotion_id=m.promotion_id, **common))
    commission = -_cents(gross * COMMISSION)
    rows.append(Row(kind, "ItemFees", "Commission", commission, **common))
    if shipped and m.afn:
        rows.append(Row(kind, "ItemFees", "FBAPerUnitFulfillmentFee", -fba_fee(m.weight_g) * units, **common))
    if not shipped:
        # Amazon keeps part of the commission it pays back (README §8: RefundCommission).
        rows.append(Row(kind, "ItemFees", "RefundCommission", -_cents(commission * REFUND_COMMISSION), **common))
    return rows


def _month_starts(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    out = []
    month = dt.datetime(start.year, start.month, 1, tzinfo=start.tzinfo)
    while True:
        month = (month + dt.timedelta(days=32)).replace(day=1)
        if month > end:
            return out
        out.append(month)


def close(settlement_id: str, start: dt.datetime, end: dt.datetime, movements: list[UnitMovement],
          previous_reserve: Decimal, first: bool, rng: random.Random) -> Settlement:
    """The settlement of ``movements`` (all within ``start``..``end``), releasing
    ``previous_reserve`` and keeping back a new reserve; deterministic for a given ``rng``."""
    s = Settlement(settlement_id, start, end, end + DEPOSIT_AFTER)
    rows: list[Row] = []
    event_ids: dict[tuple[str, dt.datetime, bool], str] = {}
    for m in sorted(movements, key=lambda m: (m.at, m.order_id, m.order_item_code)):
        # One shipment (or refund) of an order at one moment shares its id across the items;
        # the formats are illustrative, as in the sample.
        key = (m.order_id, m.at, m.after > m.before)
        if key not in event_ids:
            event_ids[key] = _token(rng, 10) if key[2] else f"amzn1.adj.{_token(rng, 6).upper()}"
        rows += _movement_rows(m, event_ids[key])
    other = "other-transaction"
    fees = [start + dt.timedelta(hours=1)] if first else []
    for month in fees + _month_starts(start, end):
        rows.append(Row(other, other, "Subscription Fee", -SUBSCRIPTION_FEE, month + dt.timedelta(hours=3, minutes=11),
                        marketplace_name="Amazon.de"))
    afn_units = sum(m.after - m.before for m in movements if m.afn and m.after > m.before)
    if afn_units:
        fee = _cents(Decimal("0.35") * afn_units + Decimal(rng.randrange(0, 100)) / 100)
        rows.append(Row(other, other, "Storage Fee", -fee, end - dt.timedelta(hours=rng.randrange(1, 48)),
                        marketplace_name="Amazon.de"))
    recent = sum((r.amount for r in rows if r.transaction_type == "Order" and r.amount_type == "ItemPrice"
                  and r.posted > end - RESERVE_WINDOW), ZERO)
    s.reserve = max(ZERO, _cents(recent * RESERVE))
    # The reserve lines have no marketplace, as in the sample; both are always written so that
    # a reader can follow the carry-over from one settlement to the next.
    rows.append(Row(other, other, "Previous Reserve Amount Balance", previous_reserve, start))
    rows.append(Row(other, other, "Current Reserve Amount", -s.reserve, end))
    s.rows = rows
    return s


# --------------------------------------------------------------------------- the flat file
def _when(t: dt.datetime, locale: str) -> str:
    return t.strftime("%d.%m.%Y %H:%M:%S UTC" if locale == "DE" else "%Y-%m-%d %H:%M:%S UTC")


def _day(t: dt.datetime, locale: str) -> str:
    return t.strftime("%d.%m.%Y" if locale == "DE" else "%Y-%m-%d")


def _number(value: Decimal, comma: bool) -> str:
    text = f"{value:.2f}"  # no thousands separator: the sample and README §8 show "1141,18"
    return text.replace(".", ",") if comma else text


def flat_file(s: Settlement, locale: str = "DE", mixed_decimals: bool = False) -> str:
    """The settlement as Amazon's V2 flat file in ``locale`` ("DE" or "EN"); with
    ``mixed_decimals`` a DE file writes its other-transaction amounts with a dot. Raises
    ValueError for another locale."""
    if locale not in LOCALES:
        raise ValueError(f"unknown settlement locale {locale!r}; expected one of {LOCALES}")
    comma = locale == "DE"
    lines = ["\t".join(COLUMNS)]
    summary = [s.settlement_id, _when(s.start, locale), _when(s.end, locale), _when(s.deposit, locale),
               _number(s.total, comma), CURRENCY]
    lines.append("\t".join(summary + [""] * (len(COLUMNS) - len(summary))))
    for r in s.rows:
        dot_here = mixed_decimals and r.transaction_type == "other-transaction"
        values = [s.settlement_id, "", "", "", "", "", r.transaction_type, r.order_id, "", r.adjustment_id,
                  r.shipment_id, r.marketplace_name, r.amount_type, r.amount_description,
                  _number(r.amount, comma and not dot_here), r.fulfillment_id, _day(r.posted, locale),
                  _when(r.posted, locale), r.order_item_code, "", "", r.sku,
                  "" if r.quantity is None else str(r.quantity), r.promotion_id]
        lines.append("\t".join(values))
    return "\n".join(lines) + "\n"
