"""Order states and the allowed moves between them: the one table, and the one writer.

``transition`` is the only code that assigns ``Order._state``; every call appends a
``state_changed`` event with who, when, from, to and why (a test enforces the "only").

A move of a stored row is a claim, not a read followed by a write: one conditional
``UPDATE … SET state = to WHERE id = … AND state = from``. When another run moved the row
first, nothing is written and ``ConflictError`` says so; on PostgreSQL the UPDATE waits for a
run that holds the row and then sees what it committed.
"""

from __future__ import annotations

import enum

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from caturactl.core.errors import ConflictError, StateError
from caturactl.core.events import EventKind, record
from caturactl.orders.models import Order


class OrderState(str, enum.Enum):
    IMPORTED = "imported"  # stored, not yet triaged (only inside the importing transaction)
    PENDING = "pending"  # the channel has not released it (payment pending, pre-order)
    ON_HOLD = "on_hold"  # waits for a person; an open ticket says why
    RELEASED = "released"  # in the automatic flow, ready to be routed (or waiting for stock)
    ROUTED = "routed"  # every line is on a delivery note
    PARTIALLY_SHIPPED = "partially_shipped"  # some parcels have left
    SHIPPED = "shipped"  # everything left (by us, by FBA, or outside caturactl)
    CANCELLED = "cancelled"


S = OrderState
TRANSITIONS: dict[OrderState | None, frozenset[OrderState]] = {
    None: frozenset({S.IMPORTED}),
    S.IMPORTED: frozenset({S.PENDING, S.ON_HOLD, S.RELEASED, S.SHIPPED, S.CANCELLED}),
    S.PENDING: frozenset({S.ON_HOLD, S.RELEASED, S.SHIPPED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.RELEASED, S.SHIPPED, S.CANCELLED}),
    S.RELEASED: frozenset({S.ON_HOLD, S.ROUTED, S.SHIPPED, S.CANCELLED}),
    S.ROUTED: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.PARTIALLY_SHIPPED: frozenset({S.SHIPPED}),
    S.SHIPPED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if s is not None and not moves)


def allowed(src: OrderState | None, dst: OrderState) -> bool:
    return dst in TRANSITIONS[src]


def transition(session: Session, order: Order, to: OrderState, why: str, **event_data) -> None:
    """Move ``order`` to ``to`` and append the event; raises StateError when the move is not allowed.

    A new order (state None) must be added to the session.
    """
    src = OrderState(order._state) if order._state else None
    if not allowed(src, to):
        raise StateError(f"order {order.external_id}: cannot go from {src.value if src else 'new'} to {to.value}")
    _claim(session, order, src, to, f"order {order.external_id}")
    record(session, EventKind.STATE_CHANGED, why, order=order, customer=order.customer,
           from_state=src.value if src else "", to_state=to.value, data=event_data or None)


def _claim(session: Session, row, src: enum.Enum | None, to: enum.Enum, what: str) -> None:
    """Move ``row`` from ``src`` to ``to`` in the database as one conditional UPDATE (a new,
    unsaved row is simply set); raises ConflictError when its stored state is not ``src``."""
    state = inspect(row)
    if state.transient or state.pending or src is None:
        row._state = to.value
        return
    model = type(row)
    n = session.execute(update(model).where(model.id == row.id, model._state == src.value)
                        .values(_state=to.value).execution_options(synchronize_session=False)).rowcount
    if n != 1:
        now = session.scalar(select(model._state).where(model.id == row.id))
        raise ConflictError(f"{what}: another run moved it from {src.value} to {now} first; "
                            f"it does not go to {to.value} now")
    set_committed_value(row, "_state", to.value)  # written above; the flush need not write it again


class DeliveryState(str, enum.Enum):
    """A delivery note's own life, separate from its order's (one order, several notes)."""

    CREATED = "created"  # routed, carrier chosen, stock reserved; not yet handed to the outbox
    EXPORTED = "exported"  # rendered and queued for its transport; the deadline runs
    PARTIALLY_CONFIRMED = "partially_confirmed"  # some parcels reported, lines still open
    CONFIRMED = "confirmed"  # everything reported shipped with tracking numbers
    SHIPPED = "shipped"  # and the channel has been told (Amazon confirmShipment done)
    OVERDUE = "overdue"  # no (complete) confirmation before the deadline; a ticket is open
    CANCELLED = "cancelled"


D = DeliveryState
DELIVERY_TRANSITIONS: dict[DeliveryState | None, frozenset[DeliveryState]] = {
    None: frozenset({D.CREATED}),
    D.CREATED: frozenset({D.EXPORTED, D.CANCELLED}),
    D.EXPORTED: frozenset({D.PARTIALLY_CONFIRMED, D.CONFIRMED, D.OVERDUE, D.CANCELLED}),
    D.PARTIALLY_CONFIRMED: frozenset({D.CONFIRMED, D.OVERDUE}),
    D.OVERDUE: frozenset({D.PARTIALLY_CONFIRMED, D.CONFIRMED, D.CANCELLED}),
    D.CONFIRMED: frozenset({D.SHIPPED}),
    D.SHIPPED: frozenset(),
    D.CANCELLED: frozenset(),
}


def transition_delivery(session: Session, delivery, to: DeliveryState, why: str, **event_data) -> None:
    """Move a delivery note to ``to`` and append the event; raises StateError when not allowed.

    A new note (state None) must be added to the session.
    """
    src = DeliveryState(delivery._state) if delivery._state else None
    if to not in DELIVERY_TRANSITIONS[src]:
        raise StateError(f"delivery {delivery.number if delivery.id else 'new'}: cannot go from "
                         f"{src.value if src else 'new'} to {to.value}")
    _claim(session, delivery, src, to, f"delivery {delivery.number if delivery.id else 'new'}")
    record(session, EventKind.STATE_CHANGED, why, order=delivery.order, delivery=delivery,
           from_state=src.value if src else "", to_state=to.value, data=event_data or None)


def create_deliveries(session: Session, notes: list[tuple[dict, list[dict], str]], at) -> list[int]:
    """Insert new delivery notes in state created, with their lines and one event each, in bulk
    (routing makes thousands); ``notes`` holds (note values, line values, why). Returns the ids."""
    from sqlalchemy import insert

    from caturactl.fulfilment.models import DeliveryLine, DeliveryNote
    from caturactl.core.events import Event, actor

    if not notes:
        return []
    session.flush()  # the orders' own changes first, so the rows below see a consistent order
    ids = session.scalars(insert(DeliveryNote).returning(DeliveryNote.id, sort_by_parameter_order=True),
                          [{**values, "_state": DeliveryState.CREATED.value} for values, _, _ in notes]).all()
    session.execute(insert(DeliveryLine), [{**line, "delivery_id": note_id}
                                           for note_id, (_, lines, _) in zip(ids, notes) for line in lines])
    who = actor.get()
    session.execute(insert(Event.__table__), [
        {"kind": EventKind.STATE_CHANGED.value, "actor": who, "at": at, "order_id": values["order_id"],
         "customer_id": None, "ticket_id": None, "delivery_id": note_id, "from_state": "",
         "to_state": DeliveryState.CREATED.value, "why": why, "data": None}
        for note_id, (values, _, why) in zip(ids, notes)])
    return ids
