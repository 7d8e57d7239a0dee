"""What people read of the payments: each payment with what it received, and the bank credits
that paid nothing. Queries only, no changes."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.orders.models import Order
from caturactl.payments.models import BankCredit, BankStatement, Payment
from caturactl.payments.service import find_for_order
from caturactl.views.cockpit import local
from caturactl.views.reports import tidy


def payment_rows(session: Session, tz: ZoneInfo, *, statuses: tuple[str, ...] = ()) -> list[dict]:
    """One row per payment, newest first; only those in ``statuses`` when given."""
    q = select(Payment).join(Order).order_by(Payment.id.desc())
    if statuses:
        q = q.where(Payment.status.in_(statuses))
    return [_payment(p, tz) for p in session.scalars(q)]


def unmatched_rows(session: Session) -> list[dict]:
    """The bank credits that paid nothing (each has a ticket), oldest booking first."""
    q = (select(BankCredit).join(BankStatement).where(BankCredit.outcome == "ticket")
         .order_by(BankCredit.booking_date, BankCredit.id))
    return [_credit(c) for c in session.scalars(q)]


def payments_record(session: Session, tz: ZoneInfo, order: str) -> dict:
    """The payments of order ``order`` (``find_for_order``: raises NotFoundError), each with the
    bank credits applied to it."""
    return {"order": order,
            "payments": [{**_payment(p, tz), "receipts": [{**_credit(r.credit), "applied": str(tidy(r.amount)),
                                                           "matched_by": r.matched_by} for r in p.receipts]}
                         for p in find_for_order(session, order)]}


def _payment(p: Payment, tz: ZoneInfo) -> dict:
    return {"order": p.order.external_id, "method": p.method, "status": p.status,
            "expected": str(tidy(p.amount_expected)), "paid": str(tidy(p.amount_paid)), "currency": p.currency,
            "reference": p.reference, "due": p.due_at.astimezone(tz).strftime("%Y-%m-%d") if p.due_at else "",
            "paid_at": local(p.paid_at, tz)}


def _credit(c: BankCredit) -> dict:
    return {"statement": c.statement.statement_id, "entry": c.entry_ref, "booked": c.booking_date.isoformat(),
            "amount": str(tidy(c.amount)), "currency": c.currency, "debtor": c.debtor_name, "remittance": c.remittance,
            "outcome": c.outcome, "ticket": f"T{c.ticket_id}" if c.ticket_id else "", "reason": c.reason}
