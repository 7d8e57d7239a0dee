"""Settlements as people and scripts read them: the list with totals per kind of money, one
settlement with its fee lines and where each is booked, the differences with their reasons."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.accounting.bookings import fee_booking
from caturactl.accounting.models import Settlement, SettlementDifference
from caturactl.accounting.settlement import find
from caturactl.config import AccountsConfig
from caturactl.views.reports import tidy


def _day(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d") if value else ""


def settlement_row(st: Settlement, tz: ZoneInfo) -> dict:
    """One settlement's period (business days), payout and totals per kind of money, as text."""
    return {"settlement": st.settlement_id, "start": _day(st.start, tz), "end": _day(st.end, tz),
            "deposit": _day(st.deposit_date, tz), "total": str(st.total_amount), "sales": str(st.sales),
            "refunds": str(st.refunds), "fees": str(st.fees), "reserve": str(st.reserve), "other": str(st.other),
            "differences": str(st.differences_total), "currency": st.currency}


def settlement_rows(session: Session, tz: ZoneInfo) -> list[dict]:
    """Every imported settlement (``settlement_row``), oldest period first."""
    return [settlement_row(st, tz) for st in session.scalars(select(Settlement).order_by(Settlement.start))]


def difference_row(st: Settlement, d: SettlementDifference) -> dict:
    """One amount of ``st`` that did not match our books, with its reason."""
    return {"settlement": st.settlement_id, "order": d.order_id, "kind": d.kind, "amount": str(d.amount),
            "settled": str(d.settled), "expected": "" if d.expected is None else str(d.expected), "reason": d.reason}


def difference_rows(session: Session, *, settlement_id: str | None = None) -> list[dict]:
    """Every difference (``difference_row``), by settlement period; only ``settlement_id``'s when given."""
    q = select(SettlementDifference, Settlement).join(Settlement).order_by(Settlement.start, SettlementDifference.id)
    if settlement_id:
        q = q.where(Settlement.settlement_id == settlement_id)
    return [difference_row(st, d) for d, st in session.execute(q)]


def settlement_record(session: Session, tz: ZoneInfo, accounts: AccountsConfig, ref: str) -> dict:
    """One settlement (``settlement_row``) with its lines, file, amounts per type, its fee lines and
    the account each is booked on (``accounts``), and its differences; raises NotFoundError."""
    st = find(session, ref)
    fees = []
    for f in st.fee_totals:
        booking = fee_booking(f.description, accounts)
        fees.append({"type": f.description, "amount": str(tidy(f.amount)), "account": booking.account,
                     "tax_key": booking.tax_key, "reverse_charge": booking.reverse_charge,
                     "named_by": booking.pattern or "(nothing: fee_default)"})
    return {**settlement_row(st, tz), "lines": st.lines, "file": st.file_name, "by_type": st.by_type,
            "fee_lines": fees, "differences_list": [difference_row(st, d) for d in st.differences]}
