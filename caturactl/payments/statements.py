"""Importing a bank statement file: read whole, each statement stored once, each credit matched to
the open payments (``caturactl.payments.matching``) and applied, or given to a person with a
ticket; a returned direct debit takes its money back from the payment it paid.

All or nothing per file, in the caller's transaction: a file that does not read changes nothing,
and a statement seen before (the same identity in any file) is not stored again. Given the
configuration, each payment a credit moves is announced (``caturactl.payments.announcements``):
the channel's payment state follows, and the buyer is told.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.billing.models import Invoice
from caturactl.config import Config
from caturactl.core.errors import ConflictError
from caturactl.core.money import CENT
from caturactl.orders.models import Order
from caturactl.orders.triage import Hold, open_ticket
from caturactl.payments import service
from caturactl.payments.matching import Decision, Matcher, OpenPayment
from caturactl.payments.models import (
    OPEN,
    BankCredit,
    BankStatement,
    Payment,
    PaymentReceipt,
    PaymentStatus,
)
from caturactl.ports import BankEntry, BankStatementData, StatementReader

TICKET_KIND = "payment"


@dataclass
class ImportResult:
    file: str
    statements: list[str] = field(default_factory=list)  # stored now
    seen_before: list[str] = field(default_factory=list)
    credits: int = 0
    matched: int = 0  # paid in full: exactly, over-paid, or together with other orders
    partly: int = 0
    returned: int = 0
    tickets: list[str] = field(default_factory=list)
    debits: int = 0  # other money out: not about payments, stored only in the balance
    queued: int = 0  # outbox messages announcing the payments moved (channel, buyer)
    by_outcome: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"file": self.file, "statements": self.statements, "seen_before": self.seen_before,
                "credits": self.credits, "matched": self.matched, "partly": self.partly, "returned": self.returned,
                "tickets": len(self.tickets), "ticket_numbers": self.tickets, "debits_ignored": self.debits,
                "by_outcome": self.by_outcome, "queued": self.queued}


def import_file(session: Session, name: str, data: bytes, read: StatementReader, *,
                cfg: Config | None = None) -> ImportResult:
    """Read the statement file ``name`` with ``read`` and apply each new statement's credits in the
    caller's transaction (the caller commits or rolls back), announcing each payment moved when
    ``cfg`` is given. Raises InputError from the reader (nothing changed), ConflictError when
    another run changed a payment this one matched."""
    statements = read(name, data)
    r = ImportResult(file=name)
    known = set(session.scalars(select(BankStatement.identity)
                                .where(BankStatement.identity.in_([s.identity for s in statements]))))
    new = [s for s in statements if s.identity not in known]
    r.seen_before = [s.statement_id for s in statements if s.identity in known]
    if not new:
        return r
    digest = hashlib.sha256(data).hexdigest()
    entries = [(s, e) for s in new for e in s.entries]
    credits = [(s, e) for s, e in entries if e.amount > 0]
    returns = [(s, e) for s, e in entries if e.amount < 0 and e.returned]
    r.debits = len(entries) - len(credits) - len(returns)
    r.credits = len(credits)

    snapshot: dict[int, tuple[Decimal, str]] = {}  # payment id -> (amount paid, status) as matched
    matcher = Matcher(_open_payments(session, snapshot))
    decided: list[tuple[BankStatementData, BankEntry, Decision]] = [(s, e, matcher.match(e)) for s, e in credits]
    if returns:
        received = Matcher(_received_payments(session, snapshot))
        decided += [(s, e, _return(session, received, e)) for s, e in returns]

    payments = _lock(session, {pid for _, _, d in decided for pid, _ in d.applied}, snapshot)
    stored = {}
    for s in new:
        row = BankStatement(identity=s.identity, format=s.format, account=s.account, statement_id=s.statement_id,
                            currency=s.currency, opening=s.opening, closing=s.closing, entries=len(s.entries),
                            file_name=name[-300:], sha256=digest)
        session.add(row)
        stored[s.identity] = row
        r.statements.append(s.statement_id)
    session.flush()
    for s, e, d in decided:
        credit = BankCredit(statement_pk=stored[s.identity].id, entry_ref=e.entry_ref[:80], booking_date=e.booking_date,
                            amount=e.amount, currency=e.currency, debtor_name=e.debtor_name[:140],
                            debtor_iban=e.debtor_iban[:34], remittance=e.remittance, end_to_end_id=e.end_to_end_id[:40],
                            return_reason=e.return_reason[:10], outcome=d.outcome, reason=d.text[:300])
        session.add(credit)
        session.flush()  # its id, for the receipts and the events
        order = payments[d.applied[0][0]].order if d.applied else None
        for pid, amount in d.applied:
            p = payments[pid]
            session.add(PaymentReceipt(payment_id=pid, credit_id=credit.id, amount=amount, matched_by=d.matched_by))
            why = f"{s.statement_id} {e.entry_ref}: {d.text}"
            if cfg is None:  # no channel or buyer to tell (a bench, a test of the matching)
                service.apply(session, p, amount, why, credit=credit.id, matched_by=d.matched_by)
            else:  # as a person marking it paid: the same move, heard by the shop and the buyer
                r.queued += len(service.receive(session, cfg, p, amount, why, credit=credit.id,
                                                matched_by=d.matched_by))
        if d.needs_ticket:
            ticket = open_ticket(session, TICKET_KIND, [Hold(d.reason, d.text)], order=order,
                                 external_ref=f"{s.statement_id}:{e.entry_ref}"[:100])
            session.flush()
            credit.ticket_id = ticket.id
            r.tickets.append(ticket.number)
        r.by_outcome[d.outcome] = r.by_outcome.get(d.outcome, 0) + 1
        if d.outcome in ("paid", "overpaid", "split"):
            r.matched += 1
        elif d.outcome == "partly_paid":
            r.partly += 1
        elif d.outcome == "returned":
            r.returned += 1
    session.flush()
    return r


def _open_payments(session: Session, snapshot: dict) -> list[OpenPayment]:
    q = (select(Payment.id, Payment.amount_expected, Payment.amount_paid, Payment.currency, Payment.reference,
                Payment.status, Order.external_id, Order.buyer_name, Invoice.number)
         .join(Order, Payment.order_id == Order.id).outerjoin(Invoice, Payment.invoice_id == Invoice.id)
         .where(Payment.status.in_(OPEN)))
    out = []
    for pid, expected, paid, ccy, reference, status, order_ref, buyer, invoice_ref in session.execute(q):
        snapshot[pid] = (paid, status)
        if expected - paid > 0:
            out.append(OpenPayment(pid, _references(order_ref, invoice_ref, reference), (expected - paid).quantize(CENT),
                                   ccy, buyer))
    return out


def _received_payments(session: Session, snapshot: dict) -> list[OpenPayment]:
    """Payments that received money, with what they received: what a return can take back."""
    q = (select(Payment.id, Payment.amount_paid, Payment.currency, Payment.reference, Payment.status,
                Order.external_id, Order.buyer_name, Invoice.number)
         .join(Order, Payment.order_id == Order.id).outerjoin(Invoice, Payment.invoice_id == Invoice.id)
         .where(Payment.status.in_([*OPEN, PaymentStatus.PAID.value])))
    out = []
    for pid, paid, ccy, reference, status, order_ref, buyer, invoice_ref in session.execute(q):
        snapshot.setdefault(pid, (paid, status))
        if paid > 0:
            out.append(OpenPayment(pid, _references(order_ref, invoice_ref, reference), paid.quantize(CENT), ccy, buyer))
    return out


def _references(order_ref: str, invoice_ref: str | None, reference: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x for x in (order_ref, invoice_ref or "", *reference.split()) if x))


def _return(session: Session, received: Matcher, e: BankEntry) -> Decision:
    """A returned direct debit: the payment whose credit carried the same end-to-end reference
    first, else the payment its text names."""
    if e.end_to_end_id:
        # Amounts are compared here, not in SQL: SQLite keeps them as text.
        pids = {pid for pid, amount in session.execute(
            select(PaymentReceipt.payment_id, PaymentReceipt.amount)
            .join(BankCredit, PaymentReceipt.credit_id == BankCredit.id)
            .where(BankCredit.end_to_end_id == e.end_to_end_id[:40])) if amount > 0}
        if len(pids) == 1 and (pid := pids.pop()) in received.payments:
            why = f"direct debit of {-e.amount} {e.currency} returned" + (
                f" ({e.return_reason})" if e.return_reason else "")
            return received.take_back(pid, -e.amount, e.currency, why)
    return received.match_return(e)


def _lock(session: Session, ids: set[int], snapshot: dict) -> dict[int, Payment]:
    """The payments to change, locked (PostgreSQL: FOR UPDATE) and checked unchanged since they
    were matched; raises ConflictError when another run got to one first (nothing written)."""
    if not ids:
        return {}
    rows = session.scalars(select(Payment).where(Payment.id.in_(sorted(ids))).order_by(Payment.id)
                           .with_for_update().execution_options(populate_existing=True)).all()
    for p in rows:
        if snapshot.get(p.id) != (p.amount_paid, p.status):
            raise ConflictError(f"payment {p.id} of order {p.order.external_id} changed while this statement was "
                                "matched; import the file again")
    return {p.id: p for p in rows}
