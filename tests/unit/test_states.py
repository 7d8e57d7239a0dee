"""The transition table is the only way a state changes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from caturactl.core.errors import StateError
from caturactl.orders.models import Order
from caturactl.model import Base  # the registry: every table
from caturactl.core.events import Event
from caturactl.core.db import make_engine, make_sessionmaker
from caturactl.core.lifecycle import TERMINAL, TRANSITIONS, OrderState, transition

@pytest.fixture
def session():
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    s = make_sessionmaker(engine)()
    yield s
    s.close()


def _order() -> Order:
    t = datetime(2026, 11, 24, tzinfo=timezone.utc)
    return Order(channel="amazon", external_id="302-1", created_at=t, remote_updated_at=t)


def test_every_move_appends_an_event_with_from_to_and_why(session):
    o = _order()
    session.add(o)
    transition(session, o, OrderState.IMPORTED, "imported")
    transition(session, o, OrderState.ON_HOLD, "gift message")
    transition(session, o, OrderState.RELEASED, "checked")
    session.commit()
    rows = session.execute(select(Event.from_state, Event.to_state, Event.why, Event.actor).order_by(Event.id)).all()
    assert rows == [("", "imported", "imported", "api"), ("imported", "on_hold", "gift message", "api"),
                    ("on_hold", "released", "checked", "api")]


def test_a_disallowed_move_raises_and_changes_nothing(session):
    o = _order()
    session.add(o)
    transition(session, o, OrderState.IMPORTED, "imported")
    transition(session, o, OrderState.CANCELLED, "cancelled at Amazon")
    with pytest.raises(StateError, match="cannot go from cancelled to released"):
        transition(session, o, OrderState.RELEASED, "oops")
    assert o.state == "cancelled"


def test_terminal_states_have_no_way_out_and_every_state_is_reachable():
    assert TERMINAL == {OrderState.SHIPPED, OrderState.CANCELLED}
    reachable = set().union(*TRANSITIONS.values())
    assert reachable == set(OrderState)


# That nothing but caturactl/core/lifecycle.py writes an order's state is proven for every
# lifecycle by reading the code: tests/unit/test_lifecycles.py.


def test_state_is_read_only_on_the_model():
    o = _order()
    with pytest.raises(AttributeError):
        o.state = "released"


def test_delivery_states_form_one_table_with_shipped_and_cancelled_as_the_only_ends():
    from caturactl.core.lifecycle import DELIVERY_TRANSITIONS, DeliveryState
    ends = {s for s, moves in DELIVERY_TRANSITIONS.items() if s is not None and not moves}
    assert ends == {DeliveryState.SHIPPED, DeliveryState.CANCELLED}
    assert set().union(*DELIVERY_TRANSITIONS.values()) == set(DeliveryState)
    # Overdue is not a dead end: a late confirmation still counts.
    assert DeliveryState.CONFIRMED in DELIVERY_TRANSITIONS[DeliveryState.OVERDUE]
