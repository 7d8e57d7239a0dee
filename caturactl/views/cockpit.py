"""What people read: the order cockpit and the detail views behind it. Queries only, no changes."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from typing import Iterable, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from caturactl.core.errors import InputError, NotFoundError
from caturactl.outbox.models import OutboxMessage
from caturactl.billing.models import Invoice
from caturactl.fulfilment.models import DeliveryNote, ShippedParcel
from caturactl.catalogue.models import Product
from caturactl.customers.matching import customer_history, find_customer
from caturactl.customers.models import Customer, CustomerEmail
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.payments.models import OPEN as PAYMENT_OPEN
from caturactl.payments.models import Payment, PaymentStatus
from caturactl.core.events import Event
from caturactl.core.db import Base
from caturactl.core.lifecycle import DeliveryState, OrderState

MAX_ID = 2**31 - 1  # INTEGER, the id columns' type on PostgreSQL: no row has a larger id
_ID = re.compile(r"[0-9]{1,10}")  # ASCII digits only: str.isdigit() also takes '²³' and '٣'
# The days a person may name: every local midnight and month end in between converts to UTC and
# back without leaving the calendar Python knows (year 1 to 9999).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)
Row = TypeVar("Row", bound=Base)


def record_id(ref: str, prefix: str = "") -> int | None:
    """The row id a person typed: '42', or with ``prefix`` ('T42', 'L000042'); None when ``ref``
    is not one (other characters, digits that are not ASCII, more than any id)."""
    text = ref.strip().upper()
    if prefix:
        text = text.removeprefix(prefix)
    if not _ID.fullmatch(text):
        return None
    n = int(text)
    return n if 0 < n <= MAX_ID else None


def by_number(session: Session, model: type[Row], ref: str, prefix: str, what: str) -> Row:
    """The ``model`` row a person named by its number (``prefix`` and its id: "L000123", "T12")
    or its id; NotFoundError "no WHAT 'REF'" when there is none."""
    rid = record_id(ref, prefix)
    row = session.get(model, rid) if rid is not None else None
    if row is None:
        raise NotFoundError(f"no {what} {ref!r}")
    return row


def known_states(states: Iterable[str], lifecycle: type[Enum]) -> list[str]:
    """``states`` as a list when each is a state of ``lifecycle`` (its enum); InputError on
    --state naming the first that is not, and the states there are."""
    valid = {s.value for s in lifecycle}
    states = list(states)
    bad = [s for s in states if s not in valid]
    if bad:
        raise InputError(f"unknown state {bad[0]!r}; states are: {', '.join(sorted(valid))}", where="--state")
    return states


def _in_calendar(d: date, text: str, what: str, where: str) -> None:
    if not FIRST_DAY <= d <= LAST_DAY:
        raise InputError(f"{text!r} is not a {what} in the years {FIRST_DAY.year} to {LAST_DAY.year}",
                         where=where)


def parse_day(text: str, where: str) -> date:
    """'2026-11-24' -> that day; raises InputError (naming ``where``) for anything else."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"not a date (YYYY-MM-DD): {text!r}", where=where) from None
    _in_calendar(day, text, "day", where)
    return day


def parse_month(text: str) -> tuple[date, date]:
    """'2026-11' -> (first day, first day of next month); raises InputError."""
    try:
        first = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise InputError(f"not a month (YYYY-MM): {text!r}", where="--month") from None
    _in_calendar(first, text, "month", "--month")
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, nxt


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tz).astimezone(timezone.utc)


def order_rows(session: Session, tz: ZoneInfo, *, states: list[str] | None = None, since: date | None = None,
               month: str | None = None, customer: str | None = None, search: str | None = None,
               limit: int | None = None, counted: list[int] | None = None) -> list[dict]:
    """The cockpit: one row per order, newest first, filtered, with its payment (``payments_by_order``);
    raises InputError on a bad filter. With ``counted`` (a list), the number of matching orders
    before the limit is appended to it."""
    q = (select(Order.external_id, Order.created_at, Order.marketplace_name, Order.channel, Order._state,
                Order.hold_reason, Order.total_amount, Order.currency, Order.buyer_name, Customer.id,
                Customer.name, Customer.company)
         .outerjoin(Customer, Customer.id == Order.customer_id))
    if states:
        q = q.where(Order._state.in_(known_states(states, OrderState)))
    if since:
        q = q.where(Order.created_at >= _local_midnight(since, tz))
    if month:
        first, nxt = parse_month(month)
        q = q.where(Order.created_at >= _local_midnight(first, tz), Order.created_at < _local_midnight(nxt, tz))
    if customer:
        c = customer.strip()
        conds = [Customer.name.ilike(f"%{c}%"), Customer.company.ilike(f"%{c}%"), Order.buyer_name.ilike(f"%{c}%")]
        if c[:1].upper() == "K" and (cid := record_id(c, "K")) is not None:
            conds.append(Customer.id == cid)
        if "@" in c:
            conds.append(Order.customer_id.in_(select(CustomerEmail.customer_id).where(CustomerEmail.email == c.lower())))
        q = q.where(or_(*conds))
    if search:
        t = f"%{search.strip()}%"
        q = q.where(or_(Order.external_id.ilike(t), Order.buyer_name.ilike(t), Order.ship_name.ilike(t),
                        Order.ship_city.ilike(t), Order.ship_postal_code.ilike(t), Order.hold_reason.ilike(t)))
    q = q.order_by(Order.created_at.desc(), Order.external_id)
    if counted is not None:
        counted.append(session.scalar(select(func.count()).select_from(q.order_by(None).subquery())))
    if limit:
        q = q.limit(limit)
    rows = []
    result = session.execute(q.add_columns(Order.id)).all()
    shipping = _shipping_by_order(session, [r[-1] for r in result])
    payments = payments_by_order(session, [r[-1] for r in result], tz)
    for (ext, created, mp_name, channel, state, hold, total, cur, buyer, cid, cname, ccompany, oid) in result:
        who = cname or ccompany or buyer or ""
        carriers, tracking, invoices = shipping.get(oid, ((), (), ()))
        rows.append({
            "number": ext, "date": created.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "channel": mp_name or channel, "customer": f"{who} (K{cid:06d})" if cid else who,
            "state": state, "hold_reason": hold, "total": f"{total} {cur}" if total is not None else "",
            "carrier": ", ".join(carriers), "tracking": ", ".join(tracking), "invoice": ", ".join(invoices),
            "payment": payments.get(oid, ""),
        })
    return rows


def _shipping_by_order(session: Session, order_ids: list[int]) -> dict[int, tuple[tuple[str, ...], ...]]:
    """Carriers chosen, tracking numbers known and invoice numbers, per order (cockpit columns)."""
    out: dict[int, tuple[list[str], list[str], list[str]]] = {}
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start:start + 500]
        for oid, carrier in session.execute(select(DeliveryNote.order_id, DeliveryNote.carrier)
                                            .where(DeliveryNote.order_id.in_(chunk),
                                                   DeliveryNote._state != "cancelled").order_by(DeliveryNote.id)):
            carriers = out.setdefault(oid, ([], [], []))[0]
            if carrier and carrier not in carriers:
                carriers.append(carrier)
        for oid, number in session.execute(select(DeliveryNote.order_id, ShippedParcel.tracking_number)
                                           .join(ShippedParcel, ShippedParcel.delivery_id == DeliveryNote.id)
                                           .where(DeliveryNote.order_id.in_(chunk)).order_by(ShippedParcel.id)):
            out.setdefault(oid, ([], [], []))[1].append(number)
        for oid, number, paid in session.execute(select(Invoice.order_id, Invoice.number, Invoice.paid_at)
                                                 .where(Invoice.order_id.in_(chunk)).order_by(Invoice.id)):
            out.setdefault(oid, ([], [], []))[2].append(f"{number} (paid)" if paid else number)
    return {k: (tuple(a), tuple(b), tuple(c)) for k, (a, b, c) in out.items()}


def payments_by_order(session: Session, order_ids: list[int], tz: ZoneInfo) -> dict[int, str]:
    """Each order's payment in force (its latest), in words for a listing: how and where it
    stands ("prepayment paid 2026-11-24", "invoice expected, due 2026-12-08", "cod expected");
    none for an order whose channel collects the money itself."""
    out: dict[int, str] = {}
    for start in range(0, len(order_ids), 500):
        q = (select(Payment).where(Payment.order_id.in_(order_ids[start:start + 500])).order_by(Payment.id))
        for p in session.scalars(q):
            if p.status == PaymentStatus.PAID.value:
                out[p.order_id] = f"{p.method} paid {local(p.paid_at, tz)[:10]}".strip()
                continue
            part = f" {p.amount_paid:.2f} of {p.amount_expected:.2f}" if p.amount_paid > 0 else ""
            due = f", due {local(p.due_at, tz)[:10]}" if p.due_at and p.status in PAYMENT_OPEN else ""
            out[p.order_id] = f"{p.method} {p.status}{part}{due}"
    return out


def delivery_rows(session: Session, tz: ZoneInfo, *, states: list[str] | None = None, location: str | None = None,
                  order: str | None = None, limit: int | None = None, counted: list[int] | None = None) -> list[dict]:
    """One row per delivery note, newest first; raises InputError on an unknown state."""
    q = (select(DeliveryNote).join(Order, Order.id == DeliveryNote.order_id)
         .options(selectinload(DeliveryNote.parcels), selectinload(DeliveryNote.order)))
    if states:
        q = q.where(DeliveryNote._state.in_(known_states(states, DeliveryState)))
    if location:
        q = q.where(DeliveryNote.location == location)
    if order:
        q = q.where(Order.external_id == order.strip())
    q = q.order_by(DeliveryNote.id.desc())
    if counted is not None:
        counted.append(session.scalar(select(func.count()).select_from(q.order_by(None).subquery())))
    if limit:
        q = q.limit(limit)
    return [{"delivery": n.number, "order": n.order.external_id, "location": n.location, "state": n.state,
             "carrier": n.carrier, "service": n.service, "parcels": len(n.parcels) or len(n.planned_parcels),
             "tracking": ", ".join(p.tracking_number for p in n.parcels), "file": n.file_name,
             "exported": local(n.exported_at, tz), "deadline": local(n.deadline_at, tz)}
            for n in session.scalars(q)]


def find_delivery(session: Session, ref: str) -> DeliveryNote:
    """A delivery note by number ("L000123") or id; raises NotFoundError."""
    return by_number(session, DeliveryNote, ref, "L", "delivery note")


def delivery_events(session: Session, note: DeliveryNote) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.delivery_id == note.id).order_by(Event.id)))


def outbox_rows(session: Session, tz: ZoneInfo, *, status: str = "open", kind: str | None = None,
                limit: int | None = None) -> list[dict]:
    q = select(OutboxMessage)
    if status == "open":
        q = q.where(OutboxMessage.status.in_(["pending", "failed"]))
    elif status != "all":
        q = q.where(OutboxMessage.status == status)
    if kind:
        q = q.where(OutboxMessage.kind == kind)
    q = q.order_by(OutboxMessage.id.desc()).limit(limit)
    return [{"id": m.id, "kind": m.kind, "target": m.target, "key": m.key, "status": m.status,
             "attempts": m.attempts, "next_attempt": local(m.next_attempt_at, tz) if m.status == "pending" else "",
             "done": local(m.done_at, tz), "last_error": m.last_error} for m in session.scalars(q)]


def local(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def state_counts(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Order._state, func.count()).group_by(Order._state)).all())


def find_order(session: Session, ref: str) -> Order:
    """An order by its channel number (Amazon order id) or our id; raises NotFoundError."""
    ref = ref.strip()
    order = session.scalar(select(Order).where(Order.external_id == ref)
                           .options(selectinload(Order.lines), selectinload(Order.customer)))
    if order is None and (oid := record_id(ref)) is not None:
        order = session.get(Order, oid)
    if order is None:
        raise NotFoundError(f"no order {ref!r}")
    return order


def order_events(session: Session, order: Order) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.order_id == order.id).order_by(Event.id)))


def order_tickets(session: Session, order: Order) -> list[Ticket]:
    return list(session.scalars(select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)))


def _amount(value) -> str:
    """An amount for a listing: "" when none or zero."""
    return f"{value:.2f}" if value else ""


def order_record(session: Session, tz: ZoneInfo, ref: str) -> dict:
    """An order's whole story (``find_order``: raises NotFoundError): its data, lines, tickets,
    delivery notes and every event. ``channel_status`` and ``updated_at_channel`` are the channel's
    own status of the order and when the channel last changed it."""
    o = find_order(session, ref)
    a = o.address
    return {
        "number": o.external_id, "channel": o.marketplace_name or o.channel, "channel_name": o.channel,
        "state": o.state, "channel_status": o.remote_status, "fulfilled_by": o.fulfilled_by, "programs": o.programs,
        "placed": local(o.created_at, tz), "updated_at_channel": local(o.remote_updated_at, tz),
        "ship_by": local(o.ship_by, tz), "customer": f"{o.customer.display_name} ({o.customer.number})"
        if o.customer else "", "match_reason": o.match_reason, "buyer_email": o.buyer_email,
        "buyer_tax_id": o.buyer_tax_id,
        "ship_to": ", ".join(x for x in (a.name, a.company, *a.lines, f"{a.postal_code} {a.city}".strip(), a.country)
                             if x),
        "delivery_instructions": o.delivery_instructions, "hold_reason": o.hold_reason,
        "total": str(o.total) if o.total else "",
        "lines": [{"position": ln.position, "sku": ln.sku, "title": ln.title, "quantity": ln.quantity,
                   "shipped": ln.quantity_shipped, "total": str(ln.total_amount) if ln.total_amount is not None else "",
                   "shipping": _amount(ln.shipping_amount), "gift_wrap": _amount(ln.gift_wrap_amount),
                   "cod_fee": _amount(ln.cod_fee_amount),
                   "discount": _amount((ln.item_discount or 0) + (ln.shipping_discount or 0)),
                   "promotions": ln.promotion_ids, "gift_message": ln.gift_message} for ln in o.lines],
        "tickets": [{"ticket": t.number, "status": t.status, "resolution": t.resolution, "text": t.text,
                     "note": t.note} for t in order_tickets(session, o)],
        "deliveries": delivery_rows(session, tz, order=o.external_id),
        "events": [{"at": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if e.at else "", "actor": e.actor,
                    "kind": e.kind, "from": e.from_state, "to": e.to_state, "why": e.why}
                   for e in order_events(session, o)],
    }


def customer_record(session: Session, tz: ZoneInfo, ref: str) -> dict:
    """A customer (``find_customer``: number, id or e-mail; raises NotFoundError) with e-mails,
    addresses, orders (oldest first) and history."""
    c = find_customer(session, ref)
    orders = session.scalars(select(Order).where(Order.customer_id == c.id).order_by(Order.created_at)).all()
    return {
        "number": c.number, "name": c.name, "company": c.company,
        "merged_into": f"K{c.merged_into_id:06d}" if c.merged_into_id else "",
        "created": local(c.created_at, tz),
        "emails": [e.email for e in c.emails],
        "addresses": [", ".join(x for x in (a.name, a.line1, a.line2, f"{a.postal_code} {a.city}", a.country) if x)
                      for a in c.addresses],
        "orders": [{"number": o.external_id, "date": local(o.created_at, tz), "state": o.state,
                    "match_reason": o.match_reason} for o in orders],
        "history": [{"at": local(e.at, tz), "actor": e.actor, "why": e.why} for e in customer_history(session, c)],
    }


def customer_rows(session: Session, *, search: str | None = None, limit: int | None = None) -> list[dict]:
    orders = (select(Order.customer_id, func.count().label("n"), func.max(Order.created_at).label("last"))
              .group_by(Order.customer_id).subquery())
    q = (select(Customer, orders.c.n, orders.c.last).outerjoin(orders, orders.c.customer_id == Customer.id)
         .where(Customer.merged_into_id.is_(None)).options(selectinload(Customer.emails),
                                                          selectinload(Customer.addresses)))
    if search:
        t = f"%{search.strip()}%"
        q = q.where(or_(Customer.name.ilike(t), Customer.company.ilike(t),
                        Customer.id.in_(select(CustomerEmail.customer_id).where(CustomerEmail.email.ilike(t)))))
    q = q.order_by(Customer.id)
    if limit:
        q = q.limit(limit)
    rows = []
    for c, n, last in session.execute(q):
        a = c.addresses[-1] if c.addresses else None
        rows.append({"number": c.number, "name": c.name, "company": c.company,
                     "email": c.emails[0].email if c.emails else "", "orders": n or 0,
                     "last_order": last.date().isoformat() if last else "",
                     "city": f"{a.postal_code} {a.city} ({a.country})" if a else ""})
    return rows


def ticket_rows(session: Session, tz: ZoneInfo, *, status: str | None = "open", kind: str | None = None) -> list[dict]:
    q = select(Ticket, Order.external_id).outerjoin(Order, Order.id == Ticket.order_id)
    if status and status != "all":
        q = q.where(Ticket.status == status)
    if kind:
        q = q.where(Ticket.kind == kind)
    rows = []
    for t, ext in session.execute(q.order_by(Ticket.id)):
        rows.append({"ticket": t.number, "created": t.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                     "order": ext or t.external_ref, "kind": t.kind, "reasons": t.reasons,
                     "status": t.status if t.status == "open" else f"{t.status} ({t.resolution})",
                     "summary": t.text.splitlines()[0].removeprefix("- ") if t.text else ""})
    return rows


def product_rows(session: Session) -> list[dict]:
    return [{"sku": p.sku, "title": p.title, "listing_id": p.listing_id, "weight_g": p.weight_g,
             "price": p.price, "active": p.active}
            for p in session.scalars(select(Product).order_by(Product.sku))]
