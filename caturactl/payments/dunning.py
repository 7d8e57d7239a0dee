"""Dunning (Mahnwesen) of the payment queue: a payment past its due date is overdue; for the methods
``[payments.methods.<method>] remind`` names, the buyer is reminded ``reminder_after_days`` after
the due date; for those ``cancel`` names, the order is cancelled ``cancel_after_days`` after it,
here (stock released, open tickets closed) and at the channel, and the buyer told.

A reminded buyer always gets the time between the two days to pay, however late the reminder
went out: the order is cancelled no earlier than that long after the reminder. An order with
money received (a matched partial payment) is never cancelled automatically, nor one whose
parcels have left: each gets one ticket for a person instead.

``step`` is the rule, over plain values; ``overdue`` lists and ``remind`` acts, on the app clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caturactl.config import Config, PaymentMethodConfig, PaymentsConfig
from caturactl.core import clock
from caturactl.core.errors import ConflictError, StateError
from caturactl.core.events import Event
from caturactl.core.lifecycle import OrderState, move
from caturactl.orders import notices, triage
from caturactl.orders.cancelling import cancel_order
from caturactl.orders.models import Order
from caturactl.orders.tickets import OPEN as TICKET_OPEN
from caturactl.orders.tickets import Ticket
from caturactl.payments.announcements import announce
from caturactl.payments.models import OPEN, PAYMENT, Payment, PaymentStatus

P = PaymentStatus
TICKET_KIND = "payment"
SHIPPED = (OrderState.PARTIALLY_SHIPPED.value, OrderState.SHIPPED.value)


@dataclass(frozen=True)
class OpenPayment:
    """What the rule needs of one open payment past its due date."""
    payment_id: int
    order: str
    order_state: str
    method: str
    status: str
    due_at: datetime
    reminded_at: datetime | None
    amount_open: Decimal
    amount_paid: Decimal
    currency: str


@dataclass(frozen=True)
class Step:
    """What is due for a payment now (``action``) and on which days the next steps fall."""
    action: str  # wait | overdue | remind | cancel | ticket
    remind_on: datetime | None  # None: the method is not reminded
    cancel_on: datetime | None  # None: the method is not cancelled
    why: str = ""


def step(p: OpenPayment, rules: PaymentMethodConfig, cfg: PaymentsConfig, now: datetime) -> Step:
    """The one step due for ``p`` at ``now`` under its method's ``rules``: ``overdue`` (mark it),
    ``remind``, ``cancel``, ``ticket`` (a person decides: money received, or parcels gone) or
    ``wait`` (nothing to do yet)."""
    remind_after = timedelta(days=cfg.reminder_after_days)
    cancel_after = timedelta(days=cfg.cancel_after_days)
    remind_on = p.due_at + remind_after if rules.remind else None
    cancel_on = None
    if rules.cancel:
        cancel_on = p.due_at + cancel_after
        if rules.remind:  # the reminder's full grace, however late it went out
            reminded = p.reminded_at or max(remind_on, now)
            cancel_on = max(cancel_on, reminded + cancel_after - remind_after)
    reminded = p.status == P.REMINDED.value
    if cancel_on is not None and now >= cancel_on and (reminded or not rules.remind):
        if p.amount_paid > 0:
            return Step("ticket", remind_on, cancel_on, f"{p.amount_paid:.2f} {p.currency} of it received: not cancelled "
                                                        "automatically")
        if p.order_state in SHIPPED:
            return Step("ticket", remind_on, cancel_on, f"unpaid, but order {p.order} is {p.order_state}")
        return Step("cancel", remind_on, cancel_on, "unpaid after the reminder")
    if remind_on is not None and not reminded and now >= remind_on:
        return Step("remind", remind_on, cancel_on)
    if p.status in (P.EXPECTED.value, P.PARTLY_PAID.value):
        return Step("overdue", remind_on, cancel_on)
    return Step("wait", remind_on, cancel_on)


def _open_past_due(session: Session, now: datetime, *, lock: bool = False) -> list[tuple[Payment, OpenPayment]]:
    q = (select(Payment).join(Order, Payment.order_id == Order.id)
         .where(Payment.status.in_(OPEN), Payment.due_at.is_not(None), Payment.due_at <= now)
         .order_by(Payment.due_at, Payment.id))
    if lock:
        q = q.with_for_update(of=Payment, skip_locked=True)
    payments = session.scalars(q).all()
    reminded = dict(session.execute(
        select(Event.subject_id, func.max(Event.at))
        .where(Event.subject == PAYMENT.name, Event.to_state == P.REMINDED.value,
               Event.subject_id.in_([p.id for p in payments]))
        .group_by(Event.subject_id)).all()) if payments else {}
    return [(p, OpenPayment(p.id, p.order.external_id, p.order.state, p.method, p.status, p.due_at,
                            reminded.get(p.id), p.amount_open, p.amount_paid, p.currency)) for p in payments]


@dataclass
class Row:
    """One line of ``payments overdue``."""
    order: str
    method: str
    status: str
    due: str
    open: str
    currency: str
    reference: str
    remind_on: str
    cancel_on: str
    action: str
    why: str

    def as_dict(self) -> dict:
        return asdict(self)


def overdue(session: Session, cfg: Config, *, now: datetime | None = None) -> list[Row]:
    """Every open payment past its due date, oldest due first, with the days of its reminder and
    cancellation and what ``payments remind`` would do with it now."""
    now = now or clock.now()
    out = []
    for p, plain in _open_past_due(session, now):
        s = step(plain, cfg.payments.method(p.method), cfg.payments, now)
        out.append(Row(plain.order, p.method, p.status, _day(p.due_at, cfg), f"{p.amount_open:.2f}", p.currency,
                       p.reference, _day(s.remind_on, cfg), _day(s.cancel_on, cfg), s.action, s.why))
    return out


def _day(t: datetime | None, cfg: Config) -> str:
    return t.astimezone(cfg.tz).date().isoformat() if t else ""


def _local(t: datetime | None, cfg: Config) -> date | None:
    return t.astimezone(cfg.tz).date() if t else None


@dataclass
class RemindResult:
    overdue: list[str] = field(default_factory=list)  # order numbers newly overdue
    reminded: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)  # ticket numbers opened now
    skipped: list[str] = field(default_factory=list)  # another run moved them first: the next run looks again
    queued: int = 0  # outbox messages (channel and mail)
    dry_run: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def remind(session: Session, cfg: Config, *, now: datetime | None = None, dry_run: bool = False) -> RemindResult:
    """Take every open payment past its due date one step (``step``): mark it overdue, remind the
    buyer, cancel the order, or open a ticket; each with what it tells the channel and the buyer,
    in the caller's transaction (a dry run is the caller's rollback)."""
    now = now or clock.now()
    r = RemindResult(dry_run=dry_run)
    for p, plain in _open_past_due(session, now, lock=True):
        rules = cfg.payments.method(p.method)
        s = step(plain, rules, cfg.payments, now)
        try:
            with session.begin_nested():
                _take(session, cfg, p, plain, s, rules, now, r)
        except (ConflictError, StateError):
            r.skipped.append(plain.order)
    return r


def _take(session: Session, cfg: Config, p: Payment, plain: OpenPayment, s: Step, rules: PaymentMethodConfig,
          now: datetime, r: RemindResult) -> None:
    order = p.order
    due = _local(p.due_at, cfg)
    if s.action in ("overdue", "remind", "ticket") and p.status in (P.EXPECTED.value, P.PARTLY_PAID.value):
        move(session, p, P.OVERDUE, f"due on {due}, {p.amount_open:.2f} {p.currency} open")
        r.overdue.append(plain.order)
    if s.action == "remind":
        before = p.status
        pay_by = None
        if rules.cancel:  # the day the order is cancelled, counted from this reminder
            pay_by = _local(max(p.due_at + timedelta(days=cfg.payments.cancel_after_days),
                                now + timedelta(days=cfg.payments.cancel_after_days - cfg.payments.reminder_after_days)),
                            cfg)
        move(session, p, P.REMINDED, f"reminded: due on {due}, {p.amount_open:.2f} {p.currency} open"
                                     + (f", to pay by {pay_by}" if pay_by else ""))
        r.queued += len(announce(session, cfg, p, before, pay_by=pay_by))
        r.reminded.append(plain.order)
    elif s.action == "cancel":
        _cancel(session, cfg, p, plain, r)
    elif s.action == "ticket":
        ref = f"payment-overdue:{p.id}"
        known = session.scalar(select(Ticket.id).where(Ticket.kind == TICKET_KIND, Ticket.external_ref == ref,
                                                       Ticket.status == TICKET_OPEN))
        if known is None:
            t = triage.open_ticket(session, TICKET_KIND, [triage.Hold("overdue_unsettled", (
                f"order {plain.order}: {p.amount_open:.2f} {p.currency} still open, due on {due}; {s.why}: decide "
                "whether to cancel (refunding what came) or to wait"))], order=order, external_ref=ref)
            session.flush()
            r.tickets.append(t.number)


def _cancel(session: Session, cfg: Config, p: Payment, plain: OpenPayment, r: RemindResult) -> None:
    """The order cancelled for want of payment (``orders.cancelling.cancel_order``: open tickets
    closed, routed notes cancelled with their stock released, the payment cancelled, the channel
    told), and the buyer told why."""
    order = p.order
    why = (f"unpaid: {p.amount_open:.2f} {p.currency} open since {_local(p.due_at, cfg)}, "
           f"{cfg.payments.cancel_after_days} days after it fell due")
    r.queued += cancel_order(session, cfg, order, why).queued
    r.queued += notices.notify(session, cfg, order, "order_cancelled", payment=p)
    r.cancelled.append(plain.order)
