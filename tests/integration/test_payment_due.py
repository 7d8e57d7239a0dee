"""When a payment falls due (caturactl/billing/terms.py ``first_due`` and ``due_at``): the date the
buyer reads. A purchase on account owes nothing before its invoice; once an invoice that asks for
a transfer is written, its due date is the payment's, the invoice number a reference to quote, and
reminders count from that day. And how the cockpit shows each order's payment
(caturactl/views/cockpit.py ``payments_by_order``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from caturactl.billing import invoicing, terms
from caturactl.core.db import make_engine, make_sessionmaker
from caturactl.core.events import Event
from caturactl.payments import dunning, queue, service
from caturactl.payments.models import PAYMENT
from caturactl.payments.statements import import_file
from caturactl.ports import BankEntry, BankStatementData
from caturactl.views.cockpit import order_rows
from caturactl.views.reports import cockpit_rows
from tests import factories as f

BERLIN = ZoneInfo("Europe/Berlin")
PLACED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
INVOICED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # shipped and invoiced four days later


@pytest.fixture
def s(migrated_database_url):
    """A session on a fresh migrated database of the kind under test (SQLite, PostgreSQL)."""
    engine = make_engine(migrated_database_url)
    session = make_sessionmaker(engine)()
    f.fixed_clock(INVOICED)
    yield session
    session.close()
    engine.dispose()


def shop_order(s, method: str, **kw):
    order = f.released(s, lines=[("KAF-ESP-1KG", 2, "24.90")], channel="shop", marketplace_name="Shop",
                       external_id=kw.pop("external_id", f"1{len(method):04d}"), payment_method=method,
                       created_at=PLACED, buyer="Anna Beispiel", **kw)
    return order, queue.owed(s, f.company_config(), order)


# --- the rule, over plain values ---------------------------------------------------------------


def test_a_purchase_on_account_is_due_only_with_its_invoice_the_others_from_the_order():
    assert terms.first_due("invoice", PLACED, 14) is None
    assert terms.first_due("prepayment", PLACED, 7) == PLACED + timedelta(days=7)
    assert terms.first_due("cod", PLACED, 21) == PLACED + timedelta(days=21)


@pytest.mark.parametrize("due, utc", [
    (date(2026, 12, 8), datetime(2026, 12, 8, 22, 59, 59, tzinfo=UTC)),  # CET, UTC+1
    (date(2026, 7, 1), datetime(2026, 7, 1, 21, 59, 59, tzinfo=UTC)),  # CEST, UTC+2
])
def test_a_payment_due_on_a_day_falls_due_at_that_days_end_in_the_merchants_time_zone(due, utc):
    at = terms.due_at(due, BERLIN)
    assert at == utc and at.astimezone(BERLIN).date() == due


# --- the payment follows the invoice -------------------------------------------------------------


def test_an_invoice_purchase_is_due_when_its_invoice_says_and_quotes_the_invoice_number(s):
    cfg = f.company_config()
    order, p = shop_order(s, "invoice")
    assert (p.method, p.due_at, p.reference) == ("invoice", None, order.external_id)
    s.commit()
    assert dunning.overdue(s, cfg, now=PLACED + timedelta(days=40)) == []  # nothing due before the invoice

    [inv] = f.invoiced(s, cfg, order)
    doc = invoicing.from_json(inv.document)
    assert doc.due_date == inv.issue_date + timedelta(days=14) == date(2026, 12, 8)
    s.refresh(p)
    assert p.invoice_id == inv.id and p.reference == f"{order.external_id} {inv.number}"
    assert p.due_at.astimezone(cfg.tz).date() == doc.due_date
    event = s.scalar(select(Event).where(Event.subject == PAYMENT.name, Event.subject_id == p.id,
                                         Event.kind == "invoiced"))
    assert event.why == f"payment due on 2026-12-08, as invoice {inv.number} says"

    # Overdue from the day after the date on the invoice, not before; reminded a week after it.
    last_evening = datetime(2026, 12, 8, 23, 30, tzinfo=BERLIN)
    assert dunning.overdue(s, cfg, now=last_evening) == []
    [row] = dunning.overdue(s, cfg, now=last_evening + timedelta(hours=1))
    assert (row.order, row.due, row.action, row.remind_on) == (order.external_id, "2026-12-08", "overdue",
                                                               "2026-12-15")


def test_an_open_prepayment_invoiced_before_its_money_came_is_due_as_its_invoice_says(s):
    cfg = f.company_config(payments={"methods": {"prepayment": {"route_unpaid": True}}})
    order, p = shop_order(s, "prepayment")
    assert p.due_at == PLACED + timedelta(days=7)  # as the order confirmation said
    [inv] = f.invoiced(s, cfg, order)
    s.refresh(p)
    assert p.due_at.astimezone(cfg.tz).date() == invoicing.from_json(inv.document).due_date == date(2026, 12, 1)
    event = s.scalar(select(Event).where(Event.subject == PAYMENT.name, Event.subject_id == p.id,
                                         Event.kind == "invoiced"))
    assert event.why.endswith("(was 2026-11-27)")


def test_an_invoice_of_a_paid_order_leaves_its_payment_due_as_it_was_and_is_issued_paid(s):
    cfg = f.company_config()
    order, p = shop_order(s, "paypal", payment_state="paid")
    assert p.status == "paid"
    due, reference = p.due_at, p.reference
    [inv] = f.invoiced(s, cfg, order)
    s.refresh(p)
    assert invoicing.from_json(inv.document).due_date is None
    assert (p.due_at, p.reference) == (due, reference)
    assert p.invoice_id == inv.id and inv.paid_at == p.paid_at  # linked, so a returned debit reopens it


def test_a_transfer_quoting_only_the_invoice_number_pays_the_invoice_purchase(s):
    cfg = f.company_config()
    order, p = shop_order(s, "invoice")
    [inv] = f.invoiced(s, cfg, order)
    s.commit()
    credit = BankEntry(where="test:1", entry_ref="1", booking_date=date(2026, 12, 2), amount=p.amount_expected,
                       currency="EUR", debtor_name="Someone Else", remittance=f"Rechnung {inv.number.replace('-', '')}")
    statement = BankStatementData("test:S1", "camt.053.001.08", "DE02120300000000202051", "S1", "EUR", None, None,
                                  (credit,))
    result = import_file(s, "s.xml", b"", lambda name, data: [statement])
    s.commit()
    s.refresh(p)
    assert result.matched == 1 and p.status == "paid" and p.amount_paid == Decimal("49.80") + Decimal("3.99")
    s.refresh(inv)
    assert inv.paid_at == p.paid_at  # the invoice is paid with its payment: no longer an open receivable


def test_an_invoice_of_an_order_paid_before_is_issued_paid_and_a_returned_debit_reopens_it(s):
    cfg = f.company_config()
    order, p = shop_order(s, "prepayment")
    service.apply(s, p, p.amount_expected, "paid in advance")
    s.commit()
    [inv] = f.invoiced(s, cfg, order)
    s.refresh(p)
    assert inv.paid_at is not None and inv.paid_at == p.paid_at and p.invoice_id == inv.id
    service.apply(s, p, -p.amount_expected, "direct debit returned")
    assert p.status == "expected" and inv.paid_at is None


# --- the cockpit ---------------------------------------------------------------------------------


def test_each_open_order_shows_how_its_buyer_pays_and_where_that_stands(s):
    cfg = f.company_config()
    shop_order(s, "prepayment", external_id="10001")
    shop_order(s, "paypal", external_id="10002", payment_state="paid")
    invoice_order, _ = shop_order(s, "invoice", external_id="10003")
    paid_order, paid_payment = shop_order(s, "invoice", external_id="10004")
    amazon = f.released(s, external_id="302-0000009-0000009")
    f.invoiced(s, cfg, invoice_order, paid_order, amazon)
    service.apply(s, paid_payment, paid_payment.amount_open, "paid by transfer (test)")
    s.commit()

    rows = {r["order"]: r["payment"] for r in cockpit_rows(s, cfg.tz)}
    assert rows == {"10001": "prepayment expected, due 2026-11-27", "10002": "paypal paid 2026-11-24",
                    "10003": "invoice expected, due 2026-12-08", "302-0000009-0000009": "open"}
    # 10004: shipped, invoiced and paid by its buyer, so no longer open; Amazon's buyers pay Amazon.
    listed = {r["number"]: r["payment"] for r in order_rows(s, cfg.tz)}
    assert listed["10004"] == "invoice paid 2026-11-24" and listed["302-0000009-0000009"] == ""
