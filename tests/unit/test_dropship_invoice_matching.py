"""Matching a dropshipper's invoice lines against what it shipped: the pure rules."""

from __future__ import annotations

from decimal import Decimal

from caturactl.fulfilment.dropship.invoice_matching import PRICE, QUANTITY, UNKNOWN, Expected, match
from caturactl.fulfilment.dropship.partner_files import InvoiceLineDoc

D = Decimal
PO = {"PO000001": [Expected("PO000001", 1, "B-1", D("7.4950"), "EUR", shipped=2, invoiced=0),
                   Expected("PO000001", 2, "C-1", D("3.25"), "EUR", shipped=4, invoiced=3),
                   Expected("PO000001", 3, "C-1", D("3.25"), "EUR", shipped=2, invoiced=0)]}


def _line(position, sku, qty, price, line_no=None, po="PO000001") -> InvoiceLineDoc:
    return InvoiceLineDoc(position, po, line_no, sku, qty, D(price), D(price) * qty, D(19))


def _kinds(result) -> list[list[str]]:
    return [[kind for kind, _ in m.differences] for m in result]


def test_a_price_rounded_to_the_cent_is_no_difference_but_a_cent_more_is():
    assert _kinds(match([_line(1, "B-1", 2, "7.50", 1)], "EUR", PO)) == [[]]
    assert _kinds(match([_line(1, "B-1", 2, "7.51", 1)], "EUR", PO)) == [[PRICE]]


def test_a_line_found_by_sku_takes_the_purchase_order_line_with_pieces_left_to_bill():
    [m] = match([_line(1, "C-1", 2, "3.25")], "EUR", PO)
    assert m.key == ("PO000001", 3) and m.differences == ()


def test_pieces_are_counted_across_the_invoice_and_earlier_invoices():
    result = match([_line(1, "C-1", 1, "3.25", 2), _line(2, "C-1", 1, "3.25", 2)], "EUR", PO)
    assert _kinds(result) == [[], [QUANTITY]]


def test_another_currency_and_an_unknown_purchase_order_are_differences():
    assert _kinds(match([_line(1, "B-1", 1, "7.50", 1)], "USD", PO)) == [[PRICE]]
    assert _kinds(match([_line(1, "B-1", 1, "7.50", 1, po="PO999999"), _line(2, "X-9", 1, "1.00")], "EUR", PO)) == \
        [[UNKNOWN], [UNKNOWN]]
