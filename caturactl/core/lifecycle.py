"""Lifecycles: every stateful thing declares its states and allowed moves once, here the
mechanism, and moves through one writer, ``move``, which records an event for each move.

A declaration (``Lifecycle``) names the thing, its states, how a new one starts, the allowed
moves, and the attribute that holds the state; its terminal states are those with no way out.
Orders and delivery notes are declared below; the other things beside their models
(``outbox.models``, ``orders.tickets``, ``billing.models``, ``jobs.models``,
``fulfilment.models``). ``move`` is the only code that assigns a declared state (a test reads
the code to enforce it); a constructor or an INSERT may only set an initial state.

A move of a stored row is a claim, not a read followed by a write: one conditional
``UPDATE … SET state = to WHERE id = … AND state = from``. When another run moved the row
first, nothing is written and ``ConflictError`` says so; on PostgreSQL the UPDATE waits for a
run that holds the row and then sees what it committed. ``Lifecycle.claim_update`` builds that
UPDATE for any set of rows, its from-states taken from the table.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import ColumnElement, Update, and_, insert, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from caturactl.core.errors import ConflictError, StateError
from caturactl.core.events import Event, EventKind, actor, record

# Every declaration, by the name of the model class whose rows it moves.
LIFECYCLES: dict[str, "Lifecycle"] = {}


class Lifecycle:
    """One stateful thing's states and allowed moves, declared once.

    ``moves`` maps each state to the states it may move to; the key ``None`` lists the states a
    new one may start in. ``model`` is the mapped class's name and ``attribute`` the mapped
    attribute holding the state's value. ``links`` gives the event's links to an order, a
    customer, a ticket or a delivery note; ``describe`` names one row in an error message.
    Raises ValueError when the table names a state that is not one of ``states``.
    """

    def __init__(self, name: str, model: str, states: type[enum.Enum],
                 moves: Mapping[enum.Enum | None, Iterable[enum.Enum]], *, attribute: str = "status",
                 links: Callable[[Any], dict] | None = None, describe: Callable[[Any], str] | None = None) -> None:
        self.name, self.model, self.states, self.attribute = name, model, states, attribute
        self.moves: dict[enum.Enum | None, frozenset] = {src: frozenset(dst) for src, dst in moves.items()}
        named = set(self.moves) - {None} | set().union(*self.moves.values())
        if None not in self.moves or not self.moves[None] or named - set(states) or set(states) - set(self.moves):
            raise ValueError(f"lifecycle {name}: the table must start with None and give every state of "
                             f"{states.__name__} a row, and name no other state")
        self.initial = self.moves[None]
        self.terminal = frozenset(s for s, to in self.moves.items() if s is not None and not to)
        self._links = links or (lambda thing: {})
        self._describe = describe
        if model in LIFECYCLES:
            raise ValueError(f"lifecycle {name}: {model} already has the lifecycle {LIFECYCLES[model].name}")
        LIFECYCLES[model] = self

    def __repr__(self) -> str:
        return f"Lifecycle({self.name!r}, {self.model}.{self.attribute})"

    def allowed(self, src: enum.Enum | str | None, dst: enum.Enum | str) -> bool:
        """True when the table lets a thing in ``src`` (None: a new one) move to ``dst``."""
        src = None if src is None else self.states(src)
        return self.states(dst) in self.moves[src]

    def froms(self, dst: enum.Enum | str) -> frozenset:
        """The stored states a thing may move to ``dst`` from."""
        dst = self.states(dst)
        return frozenset(s for s, to in self.moves.items() if s is not None and dst in to)

    def state_of(self, thing) -> enum.Enum | None:
        """The state ``thing`` is in; None for a new one that has none yet."""
        value = getattr(thing, self.attribute)
        return self.states(value) if value else None

    def describe(self, thing) -> str:
        if self._describe is not None:
            return self._describe(thing)
        ident = inspect(thing).identity
        return f"{self.name.replace('_', ' ')} {ident[0] if ident else 'new'}"

    def column(self, model) -> Any:
        """The model's attribute that holds the state, for queries."""
        return getattr(model, self.attribute)

    def claim_update(self, model, *where: ColumnElement[bool], to: enum.Enum | str,
                     from_: Iterable[enum.Enum | str] | None = None, **values) -> Update:
        """``UPDATE model SET state = to, **values WHERE *where AND state IN (…)``: the rows still
        in a state the table lets move to ``to`` (narrowed to ``from_`` when given) are claimed
        at once. The caller checks the row count and records the events of the rows it claimed
        (``move`` does both for one row). Raises StateError when ``from_`` names a disallowed move."""
        to = self.states(to)
        froms = self.froms(to)
        if from_ is not None:
            wanted = frozenset(self.states(s) for s in from_)
            if wanted - froms:
                raise StateError(f"{self.name}: cannot go from {', '.join(sorted(s.value for s in wanted - froms))} "
                                 f"to {to.value}")
            froms = wanted
        column = self.column(model)
        return (update(model).where(*where, column.in_(sorted(s.value for s in froms)))
                .values({column: to.value, **{getattr(model, k): v for k, v in values.items()}})
                .execution_options(synchronize_session=False))


def lifecycle_of(thing) -> Lifecycle:
    """The declaration for ``thing``'s class; raises StateError for a class without one."""
    for cls in type(thing).__mro__:
        found = LIFECYCLES.get(cls.__name__)
        if found is not None:
            return found
    raise StateError(f"{type(thing).__name__} has no declared lifecycle")


def move(session: Session, thing, to: enum.Enum | str, why: str, *, kind: EventKind = EventKind.STATE_CHANGED,
         order=None, also: Iterable[ColumnElement[bool]] = (), **data) -> None:
    """Move ``thing`` to ``to`` along its declared lifecycle and record the event (``kind``, who,
    when, from, to, ``why``; ``data`` as the event's data; ``order`` links it to an order its
    declaration does not know). A stored row moves only if the database still holds the state
    this run read and every condition in ``also`` (e.g. the claim holder); a new one (no state
    yet, added to the session) simply starts. Raises StateError when the table does not allow
    the move, ConflictError when another run moved it first; either way nothing was written."""
    lc = lifecycle_of(thing)
    try:
        to = lc.states(to)
    except ValueError:
        raise StateError(f"{lc.describe(thing)}: {to!r} is not a state of a {lc.name.replace('_', ' ')}") from None
    src = lc.state_of(thing)
    if to not in lc.moves[src]:
        raise StateError(f"{lc.describe(thing)}: cannot go from {src.value if src else 'new'} to {to.value}")
    _claim(session, lc, thing, src, to, tuple(also))
    links = lc._links(thing)
    if order is not None:
        links["order"] = order
    ident = inspect(thing).identity
    record(session, kind, why, **links, from_state=src.value if src else "", to_state=to.value,
           subject=lc.name, subject_id=ident[0] if ident and len(ident) == 1 else None, data=data or None)


def _claim(session: Session, lc: Lifecycle, row, src: enum.Enum | None, to: enum.Enum,
           also: tuple[ColumnElement[bool], ...]) -> None:
    """Write the move of ``row`` as one conditional UPDATE (a new, unsaved row is simply set);
    raises ConflictError when the stored row is not in ``src`` or fails a condition of ``also``."""
    state = inspect(row)
    if state.transient or state.pending or src is None:
        setattr(row, lc.attribute, to.value)
        return
    model = type(row)
    mapper = inspect(model)
    by_key = and_(*(getattr(model, mapper.get_property_by_column(c).key) == v
                    for c, v in zip(mapper.primary_key, state.identity)))
    n = session.execute(lc.claim_update(model, by_key, *also, to=to, from_=(src,))).rowcount
    if n != 1:
        now = session.scalar(select(lc.column(model)).where(by_key))
        what = lc.describe(row)
        if now == src.value:
            raise ConflictError(f"{what}: no longer held by this run; it does not go to {to.value} now")
        raise ConflictError(f"{what}: another run moved it from {src.value} to {now} first; "
                            f"it does not go to {to.value} now")
    set_committed_value(row, lc.attribute, to.value)  # written above; the flush need not write it again


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
ORDER = Lifecycle("order", "Order", OrderState, {
    None: {S.IMPORTED},
    S.IMPORTED: {S.PENDING, S.ON_HOLD, S.RELEASED, S.SHIPPED, S.CANCELLED},
    S.PENDING: {S.ON_HOLD, S.RELEASED, S.SHIPPED, S.CANCELLED},
    S.ON_HOLD: {S.RELEASED, S.SHIPPED, S.CANCELLED},
    S.RELEASED: {S.ON_HOLD, S.ROUTED, S.SHIPPED, S.CANCELLED},
    S.ROUTED: {S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED},
    S.PARTIALLY_SHIPPED: {S.SHIPPED},
    S.SHIPPED: set(),
    S.CANCELLED: set(),
}, attribute="_state", links=lambda o: {"order": o, "customer": o.customer},
    describe=lambda o: f"order {o.external_id}")
TRANSITIONS = ORDER.moves
TERMINAL = ORDER.terminal


def allowed(src: OrderState | None, dst: OrderState) -> bool:
    return ORDER.allowed(src, dst)


def transition(session: Session, order, to: OrderState, why: str, **event_data) -> None:
    """Move ``order`` to ``to`` and append the event; raises StateError when the move is not allowed
    (ConflictError when another run moved it first). A new order (state None) must be added to
    the session."""
    move(session, order, to, why, **event_data)


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
DELIVERY = Lifecycle("delivery", "DeliveryNote", DeliveryState, {
    None: {D.CREATED},
    D.CREATED: {D.EXPORTED, D.CANCELLED},
    D.EXPORTED: {D.PARTIALLY_CONFIRMED, D.CONFIRMED, D.OVERDUE, D.CANCELLED},
    D.PARTIALLY_CONFIRMED: {D.CONFIRMED, D.OVERDUE},
    D.OVERDUE: {D.PARTIALLY_CONFIRMED, D.CONFIRMED, D.CANCELLED},
    D.CONFIRMED: {D.SHIPPED},
    D.SHIPPED: set(),
    D.CANCELLED: set(),
}, attribute="_state", links=lambda d: {"order": d.order, "delivery": d},
    describe=lambda d: f"delivery {d.number if d.id else 'new'}")
DELIVERY_TRANSITIONS = DELIVERY.moves


def transition_delivery(session: Session, delivery, to: DeliveryState, why: str, **event_data) -> None:
    """Move a delivery note to ``to`` and append the event; raises StateError when not allowed
    (ConflictError when another run moved it first). A new note (state None) must be added to
    the session."""
    move(session, delivery, to, why, **event_data)


class PurchaseOrderState(str, enum.Enum):
    """A purchase order to a dropshipper (caturactl/fulfilment/dropship/): a request to a partner,
    after Shopify's fulfilment requests; its lines are answered one by one (``PurchaseLineState``)."""

    CREATED = "created"  # routed: lines and prices fixed, not yet handed to the partner
    SENT = "sent"  # queued for the partner (outbox or portal); its lines wait for an answer
    ACCEPTED = "accepted"  # every line answered, at least one accepted; nothing shipped yet
    PARTIALLY_SHIPPED = "partially_shipped"  # some parcels reported, accepted lines still open
    SHIPPED = "shipped"  # every accepted line left in a parcel with a tracking number
    CLOSED = "closed"  # nothing left to do: shipped and settled, or every line rejected or expired
    CANCELLED = "cancelled"  # the partner accepted our cancellation


P = PurchaseOrderState
PURCHASE_ORDER = Lifecycle("purchase_order", "PurchaseOrder", PurchaseOrderState, {
    None: {P.CREATED},
    P.CREATED: {P.SENT, P.CLOSED, P.CANCELLED},
    P.SENT: {P.ACCEPTED, P.PARTIALLY_SHIPPED, P.SHIPPED, P.CLOSED, P.CANCELLED},
    P.ACCEPTED: {P.PARTIALLY_SHIPPED, P.SHIPPED, P.CLOSED, P.CANCELLED},
    P.PARTIALLY_SHIPPED: {P.SHIPPED, P.CLOSED},
    P.SHIPPED: {P.CLOSED},
    P.CLOSED: set(),
    P.CANCELLED: set(),
}, attribute="_state", links=lambda po: {"order": po.order},
    describe=lambda po: f"purchase order {po.number or 'new'}")


class PurchaseLineState(str, enum.Enum):
    """One line of a purchase order, answered by the partner."""

    OPEN = "open"  # sent, no answer yet (respond_by runs)
    ACCEPTED = "accepted"  # the partner will ship it
    REJECTED = "rejected"  # the partner will not (with a reason); the line went back to routing
    EXPIRED = "expired"  # no answer by respond_by; the line went back to routing
    SHIPPED = "shipped"  # every piece left in a parcel
    CANCELLED = "cancelled"  # our cancellation, accepted by the partner


PL = PurchaseLineState
PURCHASE_LINE = Lifecycle("purchase_line", "PurchaseOrderLine", PurchaseLineState, {
    None: {PL.OPEN},
    PL.OPEN: {PL.ACCEPTED, PL.REJECTED, PL.EXPIRED, PL.CANCELLED},
    PL.ACCEPTED: {PL.SHIPPED, PL.REJECTED, PL.CANCELLED},  # rejected: found missing or broken after all
    PL.REJECTED: set(),
    PL.EXPIRED: set(),
    PL.SHIPPED: set(),
    PL.CANCELLED: set(),
}, attribute="_state", links=lambda ln: {"order": ln.purchase_order.order},
    describe=lambda ln: f"purchase order {ln.purchase_order.number} line {ln.line_no}")


class CancellationState(str, enum.Enum):
    """Our request to a partner to cancel a purchase order it has."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"  # the purchase order is cancelled
    REFUSED = "refused"  # too late (packed, shipped): a person deals with the parcel


C = CancellationState
PO_CANCELLATION = Lifecycle("po_cancellation", "PurchaseOrderCancellation", CancellationState, {
    None: {C.REQUESTED},
    C.REQUESTED: {C.ACCEPTED, C.REFUSED},
    C.ACCEPTED: set(),
    C.REFUSED: set(),
}, attribute="_state", links=lambda c: {"order": c.purchase_order.order},
    describe=lambda c: f"cancellation of {c.purchase_order.number}")


class ReturnState(str, enum.Enum):
    """A buyer's return of goods a dropshipper shipped (caturactl/fulfilment/dropship/returns.py):
    it goes back to the partner, who confirms receipt and condition; then we credit the buyer."""

    ANNOUNCED = "announced"  # by the channel or a person; the partner is told (file or portal)
    RECEIVED = "received"  # the partner confirmed receipt, with the goods' condition
    CREDITED = "credited"  # our credit note issued, the buyer told, the partner's credit recorded
    REFUSED = "refused"  # a person decided not to credit it (the condition says why)


RT = ReturnState
DROPSHIP_RETURN = Lifecycle("dropship_return", "DropshipReturn", ReturnState, {
    None: {RT.ANNOUNCED},
    RT.ANNOUNCED: {RT.RECEIVED},
    RT.RECEIVED: {RT.CREDITED, RT.REFUSED},
    RT.CREDITED: set(),
    RT.REFUSED: set(),
}, attribute="_state", links=lambda r: {"order": r.order},
    describe=lambda r: f"return {r.number or 'new'}")


class PurchaseInvoiceState(str, enum.Enum):
    """A dropshipper's invoice to us (Eingangsrechnung), matched against what it shipped."""

    MATCHED = "matched"  # every line is a shipped purchase at the agreed price: booked
    DISPUTED = "disputed"  # a line differs (price, quantity, unknown purchase order): a ticket
    APPROVED = "approved"  # a person accepted the differences: booked as invoiced
    REJECTED = "rejected"  # a person refused it: not booked, its lines count as not invoiced


PI = PurchaseInvoiceState
PURCHASE_INVOICE = Lifecycle("purchase_invoice", "PurchaseInvoice", PurchaseInvoiceState, {
    None: {PI.MATCHED, PI.DISPUTED},
    PI.MATCHED: set(),
    PI.DISPUTED: {PI.APPROVED, PI.REJECTED},
    PI.APPROVED: set(),
    PI.REJECTED: set(),
}, attribute="_state", describe=lambda i: f"invoice {i.number} of {i.partner}")


def create_deliveries(session: Session, notes: list[tuple[dict, list[dict], str]], at) -> list[int]:
    """Insert new delivery notes in their initial state (created), with their lines and one event
    each, in bulk (routing makes thousands); ``notes`` holds (note values, line values, why).
    Returns the ids."""
    # fulfilment.models declares its own lifecycle with this module: imported here, not above.
    from caturactl.fulfilment.models import DeliveryLine, DeliveryNote

    if not notes:
        return []
    [start] = DELIVERY.initial
    session.flush()  # the orders' own changes first, so the rows below see a consistent order
    ids = session.scalars(insert(DeliveryNote).returning(DeliveryNote.id, sort_by_parameter_order=True),
                          [{**values, "_state": start.value} for values, _, _ in notes]).all()
    session.execute(insert(DeliveryLine), [{**line, "delivery_id": note_id}
                                           for note_id, (_, lines, _) in zip(ids, notes) for line in lines])
    who = actor.get()
    session.execute(insert(Event.__table__), [
        {"kind": EventKind.STATE_CHANGED.value, "actor": who, "at": at, "order_id": values["order_id"],
         "customer_id": None, "ticket_id": None, "delivery_id": note_id, "from_state": "",
         "to_state": start.value, "subject": DELIVERY.name, "subject_id": note_id, "why": why, "data": None}
        for note_id, (values, _, why) in zip(ids, notes)])
    return ids
