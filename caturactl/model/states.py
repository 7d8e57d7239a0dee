"""Order states and the allowed moves between them: the one table, and the one writer.

``transition`` is the only code that assigns ``Order._state``; every call appends a
``state_changed`` event with who, when, from, to and why (a test enforces the "only").
"""

from __future__ import annotations

import enum

from sqlalchemy.orm import Session

from caturactl.errors import StateError
from caturactl.model.events import EventKind, record
from caturactl.model.orders import Order


class OrderState(str, enum.Enum):
    IMPORTED = "imported"  # stored, not yet triaged (only inside the importing transaction)
    PENDING = "pending"  # the channel has not released it (payment pending, pre-order)
    ON_HOLD = "on_hold"  # waits for a person; an open ticket says why
    RELEASED = "released"  # in the automatic flow, ready to be routed
    SHIPPED = "shipped"  # shipped outside caturactl (FBA, or confirmed shipped at the channel)
    CANCELLED = "cancelled"


S = OrderState
TRANSITIONS: dict[OrderState | None, frozenset[OrderState]] = {
    None: frozenset({S.IMPORTED}),
    S.IMPORTED: frozenset({S.PENDING, S.ON_HOLD, S.RELEASED, S.SHIPPED, S.CANCELLED}),
    S.PENDING: frozenset({S.ON_HOLD, S.RELEASED, S.SHIPPED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.RELEASED, S.SHIPPED, S.CANCELLED}),
    S.RELEASED: frozenset({S.ON_HOLD, S.SHIPPED, S.CANCELLED}),
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
    order._state = to.value
    record(session, EventKind.STATE_CHANGED, why, order=order, customer=order.customer,
           from_state=src.value if src else "", to_state=to.value, data=event_data or None)
