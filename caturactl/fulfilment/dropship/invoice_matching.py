"""Matching a dropshipper's invoice against what it shipped: pure rules over plain values, no
session. Every purchase order line a partner shipped is a purchase at the agreed price; an
invoice line must name one of the partner's purchase orders (and its line, or a SKU on it), bill
no more pieces than were shipped and not billed before, at the agreed net price each. What
differs is said per line, in words a person acts on.

Prices are compared each, net: a partner may round the agreed price (up to 4 places) to the
cent, so a difference of at most half a cent (``TOLERANCE``) is none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Sequence

from caturactl.fulfilment.dropship.partner_files import InvoiceLineDoc

TOLERANCE = Decimal("0.005")
UNKNOWN, QUANTITY, PRICE = "unknown_po", "quantity", "price"


@dataclass(frozen=True)
class Expected:
    """One purchase order line of the partner, as our books have it."""

    purchase_order: str
    line_no: int
    sku: str
    price: Decimal | None  # agreed, net, each; None: none agreed
    currency: str
    shipped: int
    invoiced: int  # pieces billed by earlier invoices that count (not rejected ones)


@dataclass(frozen=True)
class LineMatch:
    position: int
    key: tuple[str, int] | None  # (purchase order, line) the invoice line is for; None: unknown
    expected_price: Decimal | None
    differences: tuple[tuple[str, str], ...]  # (UNKNOWN | QUANTITY | PRICE, what differs)


def match(lines: Sequence[InvoiceLineDoc], currency: str,
          expected: Mapping[str, Sequence[Expected]]) -> list[LineMatch]:
    """Each invoice line against ``expected`` (purchase order number -> its lines; only the
    partner's own purchase orders are in it), in order, pieces counted across the invoice."""
    billed: dict[tuple[str, int], int] = {}
    out = []
    for line in lines:
        po = expected.get(line.purchase_order)
        if po is None:
            what = f"purchase order {line.purchase_order!r}" if line.purchase_order else "no purchase order"
            out.append(LineMatch(line.position, None, None, (
                (UNKNOWN, f"position {line.position} ({line.sku}): {what} is not one of ours to this partner"),)))
            continue
        exp = _line(po, line, billed)
        if exp is None:
            named = f"line {line.line_no}" if line.line_no is not None else f"SKU {line.sku!r}"
            out.append(LineMatch(line.position, None, None, (
                (UNKNOWN, f"position {line.position}: {line.purchase_order} has no {named}"),)))
            continue
        key = (exp.purchase_order, exp.line_no)
        billed[key] = billed.get(key, exp.invoiced) + line.quantity
        out.append(LineMatch(line.position, key, exp.price, tuple(_differences(line, exp, currency, billed[key]))))
    return out


def _line(po: Sequence[Expected], line: InvoiceLineDoc, billed: Mapping[tuple[str, int], int]) -> Expected | None:
    """The purchase order line an invoice line is for: by its line number, else the first line
    with its SKU that has pieces left to bill (else the first with its SKU)."""
    if line.line_no is not None:
        return next((e for e in po if e.line_no == line.line_no), None)
    same = [e for e in po if e.sku == line.sku]
    room = [e for e in same if billed.get((e.purchase_order, e.line_no), e.invoiced) + line.quantity <= e.shipped]
    return (room or same or [None])[0]


def _differences(line: InvoiceLineDoc, exp: Expected, currency: str, billed: int) -> list[tuple[str, str]]:
    where = f"position {line.position} ({exp.purchase_order} line {exp.line_no}, {exp.sku})"
    found = []
    if line.line_no is not None and line.sku and line.sku != exp.sku:
        found.append((UNKNOWN, f"{where}: billed as SKU {line.sku!r}"))
    if billed > exp.shipped:
        found.append((QUANTITY, f"{where}: {billed} piece(s) billed in all, {exp.shipped} shipped"))
    if currency != exp.currency:
        found.append((PRICE, f"{where}: billed in {currency}, ordered in {exp.currency}"))
    elif exp.price is None:
        found.append((PRICE, f"{where}: {line.unit_price} each billed, but no price was agreed"))
    elif abs(line.unit_price - exp.price) > TOLERANCE:
        found.append((PRICE, f"{where}: {line.unit_price} each billed, {exp.price} agreed"))
    return found


__all__ = ["Expected", "LineMatch", "match", "PRICE", "QUANTITY", "UNKNOWN"]
