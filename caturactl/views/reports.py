"""The management reports: open orders, sales, stock, finance and what is overdue. Queries only,
no changes; every figure is aggregated in the database (GROUP BY), never one query per row.

Money stays exact on both databases: PostgreSQL sums its NUMERIC amounts; SQLite, which keeps
amounts as text (``caturactl.core.db.Amount``), sums them as whole millionths (see
``money_sum``). Per-rate and per-item figures come from the invoices as issued (the stored
document), so the reports add up to the invoices to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Integer, Numeric, and_, case, column, func, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from caturactl import channels
from caturactl.outbox.models import OutboxMessage
from caturactl.accounting.models import Settlement, SettlementDifference
from caturactl.billing.models import Invoice
from caturactl.fulfilment.models import DeliveryNote, Stock
from caturactl.catalogue.models import Product
from caturactl.orders.models import Order, OrderLine
from caturactl.orders.tickets import Ticket
from caturactl.core.events import Event
from caturactl.fulfilment.models import delivery_number
from caturactl.billing.models import CREDIT_NOTE, INVOICE
from caturactl.core.money import CENT
from caturactl.core.lifecycle import DeliveryState, OrderState
from caturactl.payments.models import Payment, PaymentStatus
from caturactl.views.cockpit import _local_midnight, _shipping_by_order, local, parse_month, payments_by_order

ZERO = Decimal(0)
UNIT = Decimal(1)
_MICRO = 6  # SQLite: amounts summed as integers of 10**-6 (Amount keeps up to 6 places)


# --- exact sums --------------------------------------------------------------------------------


def tidy(value: Decimal | None, places: Decimal = CENT) -> Decimal | None:
    """``value`` with ``places`` decimals when that loses nothing (12.340000 -> 12.34), else as few
    as it needs; never rounds."""
    if value is None:
        return None
    q = value.quantize(places)
    return q if q == value else value.normalize()


class _Summed(TypeDecorator):
    """What ``money_sum`` returns: a Decimal on both databases (None for no rows)."""

    impl = Numeric
    cache_ok = True
    places = CENT

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(Integer() if dialect.name == "sqlite" else Numeric(asdecimal=True))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        exact = Decimal(value).scaleb(-_MICRO) if dialect.name == "sqlite" else Decimal(value)
        return tidy(exact, self.places)


class _SummedUnits(_Summed):
    cache_ok = True
    places = UNIT


class money_sum(FunctionElement):
    """SUM of an amount (a column, or text from a JSON document), exact on both databases.

    SQLite reads each value through a double and rounds it to whole millionths before summing
    integers: exact for every value below 10**9 with at most six decimals (a double's error there
    stays under 0.25 millionths)."""

    type = _Summed()
    inherit_cache = True


class units_sum(money_sum):
    """``money_sum`` for quantities: shown without decimals when they are whole."""

    type = _SummedUnits()
    inherit_cache = True


@compiles(money_sum)
@compiles(units_sum)
def _sum_numeric(element, compiler, **kw) -> str:
    return f"SUM(CAST({compiler.process(element.clauses, **kw)} AS NUMERIC))"


@compiles(money_sum, "sqlite")
@compiles(units_sum, "sqlite")
def _sum_sqlite(element, compiler, **kw) -> str:
    return (f"SUM(CAST(ROUND(CAST({compiler.process(element.clauses, **kw)} AS REAL) * {10 ** _MICRO})"
            " AS INTEGER))")


def _elements(session: Session, key: str):
    """The elements of the invoice document's JSON array ``key`` ("taxes", "items") as a table with
    one JSON column ``value``, to be joined to ``Invoice`` (each database's own JSON function)."""
    if session.get_bind().dialect.name == "postgresql":
        fn = func.json_array_elements(Invoice.document.op("->")(key))
    else:
        fn = func.json_each(Invoice.document, f"$.{key}")
    return fn.table_valued(column("value", JSON)).alias(key)


def _field(elements, name: str):
    return elements.c.value[name].as_string()


def _period(month: str | None, tz: ZoneInfo, now: datetime) -> tuple[str, date, date]:
    """("2026-11", first day, first day of the next month); the current month in ``tz`` by default."""
    text = month or now.astimezone(tz).strftime("%Y-%m")
    first, nxt = parse_month(text)
    return text, first, nxt


# --- cockpit -----------------------------------------------------------------------------------

# Orders that need nothing more from caturactl or a person: cancelled ones, and shipped ones
# whose delivery notes are all invoiced and whose invoices are all paid. A shipped order with no
# delivery note of ours (Amazon's own fulfilment, shipped elsewhere) has nothing left to do here.
_NOT_YET_SHIPPED = [s.value for s in OrderState if s not in (OrderState.SHIPPED, OrderState.CANCELLED)]


def cockpit_rows(session: Session, tz: ZoneInfo, *, limit: int | None = None,
                 counted: list[int] | None = None) -> list[dict]:
    """Every open order, oldest first: state, hold reason, locations, carriers, tracking numbers,
    invoices and payment (the payment queue's, ``payments_by_order``; for a channel that collects the
    money: "open" while an invoice waits for it, else the day it was paid).
    With ``counted`` (a list), the number of open orders before the limit is appended to it."""
    pay = (select(Invoice.order_id, func.count().label("n"), func.count(Invoice.paid_at).label("paid"),
                  func.max(Invoice.paid_at).label("last_paid"))
           .where(Invoice.kind == INVOICE).group_by(Invoice.order_id).subquery())
    uninvoiced = (select(DeliveryNote.id).where(DeliveryNote.order_id == Order.id, DeliveryNote.invoice_id.is_(None),
                                                DeliveryNote._state != DeliveryState.CANCELLED.value).exists())
    # The buyer paid the merchant (the payment queue, the shop's orders): its invoices are paid.
    paid_here = select(Payment.id).where(Payment.order_id == Order.id,
                                         Payment.status == PaymentStatus.PAID.value).exists()
    q = (select(Order.id, Order.external_id, Order.created_at, Order._state, Order.hold_reason, Order.buyer_name,
                pay.c.n, pay.c.paid, pay.c.last_paid)
         .outerjoin(pay, pay.c.order_id == Order.id)
         .where(or_(Order._state.in_(_NOT_YET_SHIPPED),
                    and_(Order._state == OrderState.SHIPPED.value,
                         or_(uninvoiced, and_(func.coalesce(pay.c.paid, 0) < func.coalesce(pay.c.n, 0),
                                              ~paid_here)))))
         .order_by(Order.created_at, Order.external_id))
    if counted is not None:
        counted.append(session.scalar(select(func.count()).select_from(q.order_by(None).subquery())))
    if limit:
        q = q.limit(limit)
    result = session.execute(q).all()
    ids = [r[0] for r in result]
    shipping = _shipping_by_order(session, ids)
    owed = payments_by_order(session, ids, tz)
    places: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        for oid, location in session.execute(
                select(DeliveryNote.order_id, DeliveryNote.location).distinct()
                .where(DeliveryNote.order_id.in_(ids[start:start + 500]),
                       DeliveryNote._state != DeliveryState.CANCELLED.value)
                .order_by(DeliveryNote.order_id, DeliveryNote.location)):
            places[oid].append(location)
    rows = []
    for oid, ext, created, state, hold, buyer, n, paid, last_paid in result:
        carriers, tracking, invoices = shipping.get(oid, ((), (), ()))
        payment = owed.get(oid) or ("" if not n else ("open" if paid < n else local(last_paid, tz)[:10]))
        rows.append({"order": ext, "date": local(created, tz), "buyer": buyer, "state": state, "hold_reason": hold,
                     "location": ", ".join(places.get(oid, ())), "carrier": ", ".join(carriers),
                     "tracking": ", ".join(tracking), "invoice": ", ".join(invoices), "payment": payment})
    return rows


# --- sales -------------------------------------------------------------------------------------


@dataclass
class SalesReport:
    month: str
    by_month: list[dict]
    by_sku: list[dict]
    by_marketplace: list[dict]
    top: list[dict]
    slow: list[dict]


def sales(session: Session, tz: ZoneInfo, now: datetime, *, month: str | None = None, top: int = 10,
          slow_max_units: int = 0) -> SalesReport:
    """What was invoiced in the month (by issue date), net of credit notes: per month, SKU and
    marketplace, with units, net, gross and orders; the best sellers by units; and the slow
    sellers: SKUs with stock on hand that sold at most ``slow_max_units`` in the month, most stock
    first. Shipping is its own line (SKU ""). Raises InputError for a bad month."""
    text, first, nxt = _period(month, tz, now)
    items = _elements(session, "items")
    in_month = and_(Invoice.issue_date >= first, Invoice.issue_date < nxt)
    marketplace = func.coalesce(func.nullif(Order.marketplace_name, ""), Order.channel)
    sku = _field(items, "sku")

    # Money per month and marketplace from the invoice totals, per SKU from the items as issued;
    # units always from the items. Both add up to the same totals (an invoice's gross is the sum
    # of its items' gross).
    def totals_by(*keys) -> dict[tuple, dict]:
        n = len(keys)
        invoiced = (select(*keys).select_from(Invoice).join(Order, Order.id == Invoice.order_id).where(in_month)
                    .group_by(*keys))
        money = {tuple(r[:n]): _figures(*r[n:])
                 for r in session.execute(invoiced.add_columns(*_money(Invoice.net_total, Invoice.gross_total)))}
        for r in session.execute(invoiced.join(items, true()).add_columns(*_units(items))):
            money[tuple(r[:n])]["units"] = _less(*r[n:], UNIT)
        return money

    by_month = [{"month": text, "currency": cur, **f} for (cur,), f in sorted(totals_by(Invoice.currency).items())]
    by_marketplace = [{"marketplace": mp, "currency": cur, **f}
                      for (mp, cur), f in sorted(totals_by(marketplace, Invoice.currency).items())]
    by_sku = []
    sold_units: dict[str, Decimal] = defaultdict(Decimal)
    for code, title, cur, *measures in session.execute(
            select(sku, Product.title, Invoice.currency, *_money(_field(items, "net"), _field(items, "gross")),
                   *_units(items))
            .select_from(Invoice).join(items, true()).outerjoin(Product, Product.sku == sku).where(in_month)
            .group_by(sku, Product.title, Invoice.currency).order_by(sku, Invoice.currency)):
        row = {"sku": code or "", "title": title or ("(shipping)" if not code else ""), "currency": cur,
               **_figures(*measures)}
        by_sku.append(row)
        if code:
            sold_units[code] += row["units"]

    stock = {code: (title, on_hand) for code, title, on_hand in session.execute(
        select(Stock.sku, Product.title, func.sum(Stock.on_hand)).outerjoin(Product, Product.sku == Stock.sku)
        .group_by(Stock.sku, Product.title))}
    ranked = sorted((r for r in by_sku if r["sku"]), key=lambda r: (-r["units"], -r["gross"], r["sku"]))
    top_rows = [{"rank": i, "sku": r["sku"], "title": r["title"], "units": r["units"], "gross": r["gross"],
                 "currency": r["currency"], "on_hand": stock.get(r["sku"], ("", None))[1]}
                for i, r in enumerate(ranked[:top], start=1)]
    slow = sorted(((code, title, on_hand, sold_units.get(code, ZERO)) for code, (title, on_hand) in stock.items()
                   if on_hand and on_hand > 0 and sold_units.get(code, ZERO) <= slow_max_units),
                  key=lambda x: (x[3], -x[2], x[0]))
    slow_rows = [{"sku": code, "title": title or "", "units": tidy(sold, UNIT), "on_hand": on_hand}
                 for code, title, on_hand, sold in slow[:top]]
    return SalesReport(text, by_month, by_sku, by_marketplace, top_rows, slow_rows)


_IS_INVOICE, _IS_CREDIT = Invoice.kind == INVOICE, Invoice.kind == CREDIT_NOTE


def _apart(*amounts) -> list:
    """Each amount summed over the invoices and, apart, over the credit notes."""
    return [money_sum(case((kind, a))) for a in amounts for kind in (_IS_INVOICE, _IS_CREDIT)]


def _money(net, gross) -> list:
    """Orders invoiced, then net and gross of the invoices and of the credit notes, apart."""
    return [func.count(func.distinct(case((_IS_INVOICE, Invoice.order_id)))), *_apart(net, gross)]


def _units(items) -> list:
    """Pieces invoiced and pieces credited (credit notes carry positive quantities)."""
    qty = _field(items, "quantity")
    return [units_sum(case((_IS_INVOICE, qty))), units_sum(case((_IS_CREDIT, qty)))]


def _less(invoiced: Decimal | None, credited: Decimal | None, places: Decimal = CENT) -> Decimal:
    """What the invoices say less what the credit notes take back (either may be missing)."""
    return tidy((invoiced or ZERO) - (credited or ZERO), places)


def _figures(orders, inv_net, cn_net, inv_gross, cn_gross, units=ZERO, units_back=ZERO) -> dict:
    return {"orders": orders, "units": _less(units, units_back, UNIT), "net": _less(inv_net, cn_net),
            "gross": _less(inv_gross, cn_gross)}


# --- stock -------------------------------------------------------------------------------------

# Orders whose lines are not yet on a delivery note: they will need stock once routed.
WAITING_STATES = (OrderState.PENDING.value, OrderState.ON_HOLD.value, OrderState.RELEASED.value)


def stock_report(session: Session) -> tuple[list[dict], list[dict]]:
    """(per location and SKU: on hand, reserved, available; per SKU over every location: the same,
    plus ``waiting`` (pieces on orders not yet routed) and ``expected`` (available minus waiting:
    negative means short)). caturactl records no incoming goods, so nothing is added for them."""
    per_location = [{"location": loc, "sku": sku, "title": title or "", "on_hand": on_hand, "reserved": reserved,
                     "available": on_hand - reserved}
                    for loc, sku, title, on_hand, reserved in session.execute(
                        select(Stock.location, Stock.sku, Product.title, Stock.on_hand, Stock.reserved)
                        .outerjoin(Product, Product.sku == Stock.sku).order_by(Stock.sku, Stock.location))]
    held = {sku: (title, on_hand, reserved) for sku, title, on_hand, reserved in session.execute(
        select(Stock.sku, Product.title, func.sum(Stock.on_hand), func.sum(Stock.reserved))
        .outerjoin(Product, Product.sku == Stock.sku).group_by(Stock.sku, Product.title))}
    waiting = {sku: (title, n) for sku, title, n in session.execute(
        select(OrderLine.sku, Product.title, func.sum(OrderLine.quantity - OrderLine.quantity_shipped))
        .join(Order, Order.id == OrderLine.order_id).outerjoin(Product, Product.sku == OrderLine.sku)
        .where(Order._state.in_(WAITING_STATES)).group_by(OrderLine.sku, Product.title))}
    per_sku = []
    for sku in sorted(set(held) | set(waiting)):
        title, on_hand, reserved = held.get(sku, (None, 0, 0))
        wanted = waiting.get(sku, (None, 0))
        available = on_hand - reserved
        per_sku.append({"sku": sku, "title": title or wanted[0] or "", "on_hand": on_hand, "reserved": reserved,
                        "available": available, "waiting": wanted[1], "expected": available - wanted[1]})
    return per_location, per_sku


# --- finance -----------------------------------------------------------------------------------

REFUND_KINDS = frozenset({"refund_without_credit_note", "refund_differs"})


def difference_open(kind: str, settled: Decimal, invoiced: Decimal | None, credited: Decimal | None) -> bool:
    """Whether a settlement difference still needs a person, from what the books say now (pure).

    A refund is matched once the order's credit notes equal what Amazon refunded; anything else
    (no invoice yet, amounts differ, an order unknown then) once the order's invoices, alone or
    less its credit notes, equal what Amazon settled for it."""
    if kind in REFUND_KINDS:
        return credited is None or credited != -settled
    if invoiced is None:
        return True
    return settled not in (invoiced, invoiced - (credited or ZERO))


@dataclass(frozen=True)
class OpenDifference:
    settlement: str
    deposit_date: datetime
    currency: str
    order: str
    kind: str
    amount: Decimal
    reason: str


def open_differences(session: Session) -> list[OpenDifference]:
    """Settlement differences that still need a person (``difference_open``), oldest first; one
    query for the differences and the books of their orders."""
    settling = channels.names("provides_settlements")
    ids = select(Order.id).join(SettlementDifference, and_(SettlementDifference.order_id == Order.external_id,
                                                            Order.channel.in_(settling)))
    books = (select(Invoice.order_id, money_sum(case((Invoice.kind == INVOICE, Invoice.gross_total))).label("inv"),
                    money_sum(case((Invoice.kind == CREDIT_NOTE, Invoice.gross_total))).label("cn"))
             .where(Invoice.order_id.in_(ids)).group_by(Invoice.order_id).subquery())
    q = (select(Settlement.settlement_id, Settlement.deposit_date, Settlement.currency, SettlementDifference.order_id,
                SettlementDifference.kind, SettlementDifference.amount, SettlementDifference.settled,
                SettlementDifference.reason, books.c.inv, books.c.cn)
         .join(Settlement, Settlement.id == SettlementDifference.settlement_pk)
         .outerjoin(Order, and_(Order.external_id == SettlementDifference.order_id, Order.channel.in_(settling)))
         .outerjoin(books, books.c.order_id == Order.id)
         .order_by(Settlement.deposit_date, SettlementDifference.id))
    return [OpenDifference(sid, deposit, cur, order, kind, amount, reason)
            for sid, deposit, cur, order, kind, amount, settled, reason, inv, cn in session.execute(q)
            if difference_open(kind, settled, inv, cn)]


AGE_BUCKETS = ((30, "0-30 days"), (60, "31-60 days"), (90, "61-90 days"))
OLDER = "over 90 days"


@dataclass
class FinanceReport:
    month: str
    revenue: list[dict]
    fees: list[dict]
    receivables: list[dict]
    differences: list[dict]


def finance(session: Session, tz: ZoneInfo, now: datetime, *, month: str | None = None) -> FinanceReport:
    """The month's revenue per buyer country, VAT category and rate (invoices less credit notes,
    by issue date), Amazon's fees per settlement deposited in the month, the receivables open now
    by age, and the settlement differences open now per settlement and kind."""
    text, first, nxt = _period(month, tz, now)
    taxes = _elements(session, "taxes")
    country = Invoice.document["buyer"]["country"].as_string()
    category, rate = _field(taxes, "category"), _field(taxes, "rate")
    revenue = []
    for cur, ctry, cat, r, n_inv, n_cn, inv_net, cn_net, inv_tax, cn_tax in session.execute(
            select(Invoice.currency, country, category, rate,
                   *(func.count(func.distinct(case((kind, Invoice.id)))) for kind in (_IS_INVOICE, _IS_CREDIT)),
                   *_apart(_field(taxes, "net"), _field(taxes, "tax")))
            .select_from(Invoice).join(taxes, true()).where(Invoice.issue_date >= first, Invoice.issue_date < nxt)
            .group_by(Invoice.currency, country, category, rate).order_by(Invoice.currency, country, category, rate)):
        net, tax = _less(inv_net, cn_net), _less(inv_tax, cn_tax)
        revenue.append({"country": ctry or "", "category": cat, "rate": r, "invoices": n_inv, "credit_notes": n_cn,
                        "net": tidy(net), "tax": tidy(tax), "gross": tidy(net + tax), "currency": cur})

    lo, hi = _local_midnight(first, tz), _local_midnight(nxt, tz)
    fees = [{"settlement": sid, "deposit": local(deposit, tz)[:10], **{k: tidy(v) for k, v in zip(
                ("sales", "refunds", "fees", "other", "reserve", "payout"), amounts)}, "currency": cur}
            for sid, deposit, *amounts, cur in session.execute(
                select(Settlement.settlement_id, Settlement.deposit_date, Settlement.sales, Settlement.refunds,
                       Settlement.fees, Settlement.other, Settlement.reserve, Settlement.total_amount,
                       Settlement.currency)
                .where(Settlement.deposit_date >= lo, Settlement.deposit_date < hi).order_by(Settlement.deposit_date))]

    today = now.astimezone(tz).date()
    bucket = case(*((Invoice.issue_date >= today - timedelta(days=days), label) for days, label in AGE_BUCKETS),
                  else_=OLDER)
    order = {label: i for i, (_, label) in enumerate(AGE_BUCKETS + ((0, OLDER),))}
    receivables = sorted(({"age": age, "invoices": n, "gross": gross, "currency": cur,
                           "oldest": oldest.isoformat() if oldest else ""}
                          for age, cur, n, gross, oldest in session.execute(
                              select(bucket, Invoice.currency, func.count(), money_sum(Invoice.gross_total),
                                     func.min(Invoice.issue_date))
                              .where(Invoice.kind == INVOICE, Invoice.paid_at.is_(None))
                              .group_by(bucket, Invoice.currency))),
                         key=lambda r: (order[r["age"]], r["currency"]))

    grouped: dict[tuple, list[OpenDifference]] = defaultdict(list)
    for d in open_differences(session):
        grouped[(d.deposit_date, d.settlement, d.kind, d.currency)].append(d)
    differences = [{"settlement": sid, "deposit": local(deposit, tz)[:10], "kind": kind, "differences": len(ds),
                    "amount": tidy(sum((d.amount for d in ds), ZERO)), "currency": cur}
                   for (deposit, sid, kind, cur), ds in sorted(grouped.items(), key=lambda kv: kv[0][:3])]
    return FinanceReport(text, revenue, fees, receivables, differences)


# --- overdue -----------------------------------------------------------------------------------

LATE_DELIVERY_STATES = (DeliveryState.EXPORTED.value, DeliveryState.PARTIALLY_CONFIRMED.value,
                        DeliveryState.OVERDUE.value)


@dataclass
class OverdueReport:
    holds: list[dict]
    deliveries: list[dict]
    unpaid: list[dict]
    outbox: list[dict]


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours // 24}d {hours % 24}h" if hours >= 24 else f"{hours}h"


def late_deliveries(session: Session, now: datetime) -> list[tuple]:
    """(number, order, location, state, deadline) of every note past its deadline without a
    complete confirmation, oldest deadline first."""
    return [(delivery_number(i), ext, loc, state, deadline) for i, ext, loc, state, deadline in session.execute(
        select(DeliveryNote.id, Order.external_id, DeliveryNote.location, DeliveryNote._state, DeliveryNote.deadline_at)
        .join(Order, Order.id == DeliveryNote.order_id)
        .where(DeliveryNote._state.in_(LATE_DELIVERY_STATES), DeliveryNote.deadline_at < now)
        .order_by(DeliveryNote.deadline_at, DeliveryNote.id))]


def overdue(session: Session, tz: ZoneInfo, now: datetime, *, unpaid_days: int = 30) -> OverdueReport:
    """Orders on hold (since when, why, their ticket), delivery notes past their deadline, invoices
    unpaid for more than ``unpaid_days`` days, and outbox messages that failed or keep failing."""
    since = (select(Event.order_id, func.max(Event.at).label("at"))
             .where(Event.to_state == OrderState.ON_HOLD.value, Event.delivery_id.is_(None))
             .group_by(Event.order_id).subquery())
    ticket = (select(Ticket.order_id, func.min(Ticket.id).label("id")).where(Ticket.status == "open")
              .group_by(Ticket.order_id).subquery())
    holds = [{"order": ext, "since": local(at, tz), "age": _age(at, now), "hold_reason": reason,
              "ticket": f"T{tid}" if tid else ""}
             for ext, at, reason, tid in session.execute(
                 select(Order.external_id, since.c.at, Order.hold_reason, ticket.c.id)
                 .outerjoin(since, since.c.order_id == Order.id).outerjoin(ticket, ticket.c.order_id == Order.id)
                 .where(Order._state == OrderState.ON_HOLD.value).order_by(since.c.at, Order.external_id))]
    deliveries = [{"delivery": number, "order": ext, "location": loc, "state": state,
                   "deadline": local(deadline, tz), "late_by": _age(deadline, now)}
                  for number, ext, loc, state, deadline in late_deliveries(session, now)]
    cutoff = now.astimezone(tz).date() - timedelta(days=unpaid_days)
    unpaid = [{"invoice": number, "order": ext, "date": issued.isoformat(),
               "age_days": (now.astimezone(tz).date() - issued).days, "gross": gross, "currency": cur,
               "delivery": delivery}
              for number, ext, issued, gross, cur, delivery in session.execute(
                  select(Invoice.number, Order.external_id, Invoice.issue_date, Invoice.gross_total, Invoice.currency,
                         Invoice.delivery)
                  .join(Order, Order.id == Invoice.order_id)
                  .where(Invoice.kind == INVOICE, Invoice.paid_at.is_(None), Invoice.issue_date < cutoff)
                  .order_by(Invoice.issue_date, Invoice.id))]
    outbox = [{"id": mid, "kind": kind, "target": target, "status": status, "attempts": attempts,
               "created": local(created, tz), "last_error": error}
              for mid, kind, target, status, attempts, created, error in session.execute(
                  select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.target, OutboxMessage.status,
                         OutboxMessage.attempts, OutboxMessage.created_at, OutboxMessage.last_error)
                  .where(or_(OutboxMessage.status == "failed",
                             and_(OutboxMessage.status == "pending", OutboxMessage.last_error != "")))
                  .order_by(OutboxMessage.id))]
    return OverdueReport(holds, deliveries, unpaid, outbox)


