"""What people read: the order cockpit and the detail views behind it. Queries only, no changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from caturactl.errors import InputError, NotFoundError
from caturactl.model import Customer, CustomerEmail, Event, Order, Product, Ticket
from caturactl.model.states import OrderState

def parse_month(text: str) -> tuple[date, date]:
    """'2026-11' -> (first day, first day of next month); raises InputError."""
    try:
        first = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise InputError(f"not a month (YYYY-MM): {text!r}", where="--month") from None
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, nxt


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tz).astimezone(timezone.utc)


def order_rows(session: Session, tz: ZoneInfo, *, states: list[str] | None = None, since: date | None = None,
               month: str | None = None, customer: str | None = None, search: str | None = None,
               limit: int | None = None, counted: list[int] | None = None) -> list[dict]:
    """The cockpit: one row per order, newest first, filtered; raises InputError on a bad filter.
    With ``counted`` (a list), the number of matching orders before the limit is appended to it."""
    q = (select(Order.external_id, Order.created_at, Order.marketplace_name, Order.channel, Order._state,
                Order.hold_reason, Order.total_amount, Order.currency, Order.buyer_name, Customer.id,
                Customer.name, Customer.company)
         .outerjoin(Customer, Customer.id == Order.customer_id))
    if states:
        valid = {s.value for s in OrderState}
        bad = [s for s in states if s not in valid]
        if bad:
            raise InputError(f"unknown state {bad[0]!r}; states are: {', '.join(sorted(valid))}", where="--state")
        q = q.where(Order._state.in_(states))
    if since:
        q = q.where(Order.created_at >= _local_midnight(since, tz))
    if month:
        first, nxt = parse_month(month)
        q = q.where(Order.created_at >= _local_midnight(first, tz), Order.created_at < _local_midnight(nxt, tz))
    if customer:
        c = customer.strip()
        conds = [Customer.name.ilike(f"%{c}%"), Customer.company.ilike(f"%{c}%"), Order.buyer_name.ilike(f"%{c}%")]
        if c[:1].upper() == "K" and c[1:].isdigit():
            conds.append(Customer.id == int(c[1:]))
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
    for (ext, created, mp_name, channel, state, hold, total, cur, buyer, cid, cname, ccompany) in session.execute(q):
        who = cname or ccompany or buyer or ""
        rows.append({
            "number": ext, "date": created.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "channel": mp_name or channel, "customer": f"{who} (K{cid:06d})" if cid else who,
            "state": state, "hold_reason": hold, "total": f"{total} {cur}" if total is not None else "",
        })
    return rows


def state_counts(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Order._state, func.count()).group_by(Order._state)).all())


def find_order(session: Session, ref: str) -> Order:
    """An order by its channel number (Amazon order id) or our id; raises NotFoundError."""
    ref = ref.strip()
    order = session.scalar(select(Order).where(Order.external_id == ref)
                           .options(selectinload(Order.lines), selectinload(Order.customer)))
    if order is None and ref.isdigit():
        order = session.get(Order, int(ref))
    if order is None:
        raise NotFoundError(f"no order {ref!r}")
    return order


def order_events(session: Session, order: Order) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.order_id == order.id).order_by(Event.id)))


def order_tickets(session: Session, order: Order) -> list[Ticket]:
    return list(session.scalars(select(Ticket).where(Ticket.order_id == order.id).order_by(Ticket.id)))


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
    return [{"sku": p.sku, "title": p.title, "asin": p.asin, "weight_g": p.weight_g,
             "price": p.price, "active": p.active}
            for p in session.scalars(select(Product).order_by(Product.sku))]
