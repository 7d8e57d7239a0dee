"""After a partner took a return in: the merchant's credit note, and the partner's purchase credit.

A received return whose condition needs no person (as new, opened) is credited here; a damaged or
incomplete one waits for a person, who credits it (``force``) or refuses it (``returns.refuse``).
Crediting a return issues the credit note through the one invoicing path (``invoices credit``:
``billing.invoicing.Invoicer.credit``, which delivers it as the order's channel wants: handed to
the channel, or e-mailed to the buyer), for the positions of the invoice that billed the pieces
of its purchase order; records what the partner owes us back at the agreed purchase prices
(``purchases.PurchaseCredit``, per VAT rate of the goods at home on that day); and moves the
return to credited. The buyer was told of the receipt when the partner confirmed it.

Each return is credited in its own transaction, committed here (the invoicing service rolls
back the whole session when a credit note fails): one that cannot be credited (not invoiced
yet, the pieces credited before) gets a ticket and the others go on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.billing import invoicing
from caturactl.billing.models import INVOICE, Invoice
from caturactl.catalogue.models import Product
from caturactl.config import Config
from caturactl.core import clock, tax
from caturactl.core.errors import InputError, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import ReturnState, move
from caturactl.fulfilment.dropship.purchases import PurchaseCredit
from caturactl.fulfilment.dropship.rerouting import TICKET_KIND
from caturactl.fulfilment.dropship.returns import FOR_A_PERSON, DropshipReturn, find, ticket_once_about
from caturactl.orders.triage import close_tickets_about

RT = ReturnState


@dataclass
class CreditResult:
    credited: list[str] = field(default_factory=list)  # "RT000012: GS-2026-000004"
    waiting: list[str] = field(default_factory=list)  # received in a condition that needs a person
    failed: list[str] = field(default_factory=list)  # "RT000012: why" (each has a ticket)
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"credited": self.credited, "waiting": self.waiting, "failed": self.failed, "dry_run": self.dry_run}


def positions(session: Session, rt: DropshipReturn) -> dict[str, dict[int, Decimal]]:
    """Invoice number -> {position: pieces} that billed the pieces of ``rt``: the invoices of its
    order that name its purchase order's delivery note, by SKU. InputError when none does yet."""
    note = rt.purchase_order.delivery.number
    invoices = session.scalars(select(Invoice).where(Invoice.order_id == rt.order_id, Invoice.kind == INVOICE)
                               .order_by(Invoice.id)).all()
    docs = [(inv.number, invoicing.from_json(inv.document)) for inv in invoices]
    docs = [(number, doc) for number, doc in docs if note in doc.delivery_ids]
    out: dict[str, dict[int, Decimal]] = defaultdict(dict)
    for ln in rt.lines:
        found = next(((number, item.position) for number, doc in docs for item in doc.items
                      if item.sku == ln.sku and item.quantity >= ln.quantity), None)
        if found is None:
            raise InputError(f"no invoice of order {rt.order.external_id} bills {ln.quantity} × {ln.sku} of "
                             f"{note} yet: invoice the order first, the return is credited on the next run",
                             where=rt.number)
        number, pos = found
        out[number][pos] = out[number].get(pos, Decimal(0)) + ln.quantity
    return dict(out)


def purchase_credit(session: Session, cfg: Config, rt: DropshipReturn, on) -> list[PurchaseCredit]:
    """What the partner owes us back for ``rt`` at the agreed purchase prices, per VAT rate of the
    goods at home on ``on`` (a line without an agreed price counts 0, said in the event)."""
    kinds = dict(session.execute(select(Product.sku, Product.tax_class)
                                 .where(Product.sku.in_([ln.sku for ln in rt.lines]))).all())
    nets: dict[Decimal, Decimal] = defaultdict(Decimal)
    for ln in rt.lines:
        price = ln.purchase_order_line.purchase_price or Decimal(0)
        rate = tax.rate(cfg.tax.rates, cfg.tax.home_country, kinds.get(ln.sku, "standard"), on)
        nets[rate] += price * ln.quantity
    made = []
    for rate, net in sorted(nets.items()):
        net = tax.cents(net)
        vat = tax.cents(net * rate / tax.HUNDRED)
        made.append(PurchaseCredit(partner=rt.partner, dropship_return=rt, issue_date=on,
                                   currency=rt.purchase_order.currency, net=net, tax_rate=rate, tax=vat,
                                   gross=net + vat))
    session.add_all(made)
    return made


def credit_one(session: Session, cfg: Config, renderer, rt: DropshipReturn, *, decision: str = "") -> list[str]:
    """Credit the received return ``rt``: credit note(s), purchase credit, credited. Returns the
    credit note numbers. StateError unless received; InputError (from ``positions`` or the
    invoicing service) when it cannot be credited; the invoicing service rolls back then."""
    if rt.state != RT.RECEIVED.value:
        raise StateError(f"return {rt.number} is {rt.state}; only a received return is credited")
    wanted = positions(session, rt)
    reason = f"Retoure {rt.number}: {rt.reason}"[:300]
    invoicer = invoicing.Invoicer(session, cfg, renderer)
    numbers = [invoicer.credit(number, lines, reason).number for number, lines in wanted.items()]
    on = clock.today(cfg.tz)
    credits = purchase_credit(session, cfg, rt, on)
    unpriced = sorted({ln.sku for ln in rt.lines if ln.purchase_order_line.purchase_price is None})
    rt.credit_note, rt.decided_at = ", ".join(numbers)[:100], clock.now()
    rt.decision = decision[:1000] or rt.decision
    total = sum((c.gross for c in credits), Decimal(0))
    move(session, rt, RT.CREDITED, f"return {rt.number}: credit note {', '.join(numbers)}; {rt.partner} owes "
         f"{total} {rt.purchase_order.currency} back (purchase credit)"
         + (f"; no price agreed for {', '.join(unpriced)}: settle it by hand" if unpriced else ""),
         credit_notes=numbers)
    record(session, EventKind.NOTE, f"purchase credit for return {rt.number}: {total} gross",
           order=rt.order, data={"partner": rt.partner, "return": rt.number, "gross": str(total)})
    close_tickets_about(session, TICKET_KIND, rt.number, f"credited: {', '.join(numbers)}")
    session.flush()
    return numbers


def credit_received(session: Session, cfg: Config, renderer, *, dry_run: bool = False, only: str | None = None,
                    decision: str = "") -> CreditResult:
    """Credit every received return whose condition needs no person, each committed on its own
    (rolled back for a dry run). ``only``: just that return, whatever its condition (a person
    decided to credit it: ``decision`` says why); its failure raises instead of a ticket."""
    r = CreditResult(dry_run=dry_run)
    if only is not None:
        ids = [find(session, None, only).id]
    else:
        ids = session.scalars(select(DropshipReturn.id).where(DropshipReturn._state == RT.RECEIVED.value)
                              .order_by(DropshipReturn.id)).all()
    for rid in ids:
        rt = find(session, None, rid, lock=True)
        if only is None and rt.condition in FOR_A_PERSON:
            r.waiting.append(f"{rt.number}: {rt.condition}")
            session.rollback()
            continue
        if only is not None and not decision.strip():
            raise InputError("say why this return is credited", where="--note")
        number = rt.number
        try:
            made = credit_one(session, cfg, renderer, rt, decision=decision)
        except (InputError, StateError) as exc:
            session.rollback()
            if only is not None:
                raise
            r.failed.append(f"{number}: {exc.message}")
            if not dry_run:
                ticket_once_about(session, find(session, None, rid),
                                  f"return {number} cannot be credited: {exc.message}")
                session.commit()
            continue
        r.credited.append(f"{number}: {', '.join(made)}")
        session.rollback() if dry_run else session.commit()
    return r


__all__ = ["CreditResult", "credit_one", "credit_received", "positions", "purchase_credit"]
