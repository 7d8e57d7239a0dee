"""Returns at the dropshipper: a buyer sends back goods a partner shipped, so they go back to that
partner. A return is announced (by the channel or a person) for pieces of one purchase order; the
partner is told (a return notice file through the outbox when it has a transport, the portal
otherwise, ``partner_notices``); it confirms receipt and the goods' condition (portal, CLI or a
file on its return channel); then the merchant's credit note follows (``return_credit``) or a
person refuses it. States move only through ``lifecycle.move`` (``DROPSHIP_RETURN``).

The return label: the notice carries the reference the buyer's return label shows (the channel's
return label id when one is given, else the return's number). It is not a label booked with a
carrier; booking labels through carrier APIs comes later.

Everything here runs in the caller's transaction and only flushes.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Mapping, Sequence

from sqlalchemy import ForeignKey, Index, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from caturactl.config import Config
from caturactl.core.db import Base, UTCDateTime, utcnow
from caturactl.core.errors import InputError, NotFound, StateError
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import DROPSHIP_RETURN, ReturnState, move
from caturactl.fulfilment.dropship import terms
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine, partners_row
from caturactl.fulfilment.dropship.partner_files import CONDITIONS, ReturnReceipt
from caturactl.fulfilment.dropship.rerouting import TICKET_KIND, ticket_once
from caturactl.orders import notices
from caturactl.orders.models import Order
from caturactl.orders.triage import close_tickets_about

NUMBER_PREFIX = "RT"
# Conditions that need a person before the buyer gets money back (credit or refuse by hand).
FOR_A_PERSON = frozenset({"damaged", "incomplete"})
VIEWS = ("open", "received", "done", "all")
RT = ReturnState


def return_number(return_id: int) -> str:
    """The number a return is known by, to the partner and on the credit note."""
    return f"{NUMBER_PREFIX}{return_id:06d}"


class DropshipReturn(Base):
    __tablename__ = "dropship_returns"
    __table_args__ = (Index("ix_dropship_returns_partner_state", "partner", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)  # set once the row has its id
    partner: Mapped[str] = mapped_column(String(40))
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    _state: Mapped[str] = mapped_column("state", String(20))  # DROPSHIP_RETURN
    reason: Mapped[str] = mapped_column(Text, default="")  # the buyer's, as announced
    source: Mapped[str] = mapped_column(String(100), default="")  # who announced it
    label_reference: Mapped[str] = mapped_column(String(40), default="")
    condition: Mapped[str] = mapped_column(String(20), default="")  # partner_files.CONDITIONS
    note: Mapped[str] = mapped_column(Text, default="")  # the partner's words with its confirmation
    decision: Mapped[str] = mapped_column(Text, default="")  # why a person credited or refused it
    credit_note: Mapped[str] = mapped_column(String(100), default="")  # our credit note number(s)
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    purchase_order: Mapped[PurchaseOrder] = relationship()
    order: Mapped[Order] = relationship()
    lines: Mapped[list["DropshipReturnLine"]] = relationship(back_populates="dropship_return",
                                                             order_by="DropshipReturnLine.id",
                                                             cascade="all, delete-orphan")

    @property
    def state(self) -> str:
        return self._state


class DropshipReturnLine(Base):
    __tablename__ = "dropship_return_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("dropship_returns.id"), index=True)
    purchase_order_line_id: Mapped[int] = mapped_column(ForeignKey("purchase_order_lines.id"), index=True)
    line_no: Mapped[int]  # of the purchase order
    sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]

    dropship_return: Mapped[DropshipReturn] = relationship(back_populates="lines")
    purchase_order_line: Mapped[PurchaseOrderLine] = relationship()


# --- announcing ----------------------------------------------------------------------------------


def _returnable(session: Session, order: Order) -> dict[int, list[tuple[PurchaseOrderLine, int]]]:
    """Per order line position: (purchase order line, pieces shipped by the partner and not
    returned yet), the oldest purchase order first. The order's purchase orders are locked, so
    two people announcing at once cannot both return the same pieces."""
    session.execute(select(PurchaseOrder.id).where(PurchaseOrder.order_id == order.id)
                    .with_for_update(key_share=True))
    lines = session.scalars(select(PurchaseOrderLine).join(PurchaseOrder)
                            .where(PurchaseOrder.order_id == order.id, PurchaseOrderLine.shipped > 0)
                            .options(selectinload(PurchaseOrderLine.order_line),
                                     selectinload(PurchaseOrderLine.purchase_order))
                            .order_by(PurchaseOrderLine.id)).all()
    rl = DropshipReturnLine
    taken = dict(session.execute(select(rl.purchase_order_line_id, func.sum(rl.quantity))
                                 .where(rl.purchase_order_line_id.in_([ln.id for ln in lines]))
                                 .group_by(rl.purchase_order_line_id)).all()) if lines else {}
    out: dict[int, list[tuple[PurchaseOrderLine, int]]] = {}
    for ln in lines:
        left = ln.shipped - int(taken.get(ln.id) or 0)
        if left > 0:
            out.setdefault(ln.order_line.position, []).append((ln, left))
    return out


def announce_channel_return(session: Session, cfg: Config, order: Order, *, whole: bool, channel: str,
                            now: datetime) -> tuple[list[DropshipReturn], str]:
    """The channel reports goods of ``order`` coming back (``whole``: all of it). All of it: what
    dropshippers shipped and nobody returned yet is announced to them (their confirmation and
    our credit follow as for a return a person announced). Returns the returns made and what is
    left for a person ("" when nothing: every piece was a dropshipper's and is announced): pieces
    our own locations shipped, or a partial return, whose pieces the channel does not name."""
    why = f"{channel} reports the order returned" + ("" if whole else " in part")
    pieces = sum(ln.quantity for ln in order.lines)
    made: list[DropshipReturn] = []
    if whole and _returnable(session, order):
        try:
            with session.begin_nested():
                made = announce(session, cfg, order, None, why, source=f"channel:{channel}", now=now)
        except InputError as exc:  # e.g. its dropshipper is no longer configured
            return [], f"{why}; announcing it to the dropshipper failed ({exc}): announce it by hand"
    # Pieces on their way to dropshippers: announced now, or by a person before the channel said so.
    announced = session.scalar(select(func.coalesce(func.sum(DropshipReturnLine.quantity), 0))
                               .join(DropshipReturn).where(DropshipReturn.order_id == order.id)) or 0
    if not whole:
        return made, (f"{why}, without saying which pieces: announce what a dropshipper shipped with 'dropship "
                      f"return announce {order.external_id} --lines POS:QTY', credit the rest with 'invoices credit'")
    if announced < pieces:
        return made, (f"{why}: {pieces - announced} of {pieces} piece(s) come back to us, not to a dropshipper; "
                      "check them when they arrive and credit them with 'invoices credit'")
    return made, ""


def _pick(order: Order, returnable: dict[int, list[tuple[PurchaseOrderLine, int]]],
          wanted: Mapping[int, int | None] | None) -> list[tuple[PurchaseOrderLine, int]]:
    """(purchase order line, pieces) for the wanted order line positions (None: everything a
    partner shipped and nobody returned yet); InputError naming --lines otherwise."""
    if wanted is None:
        picked = [(ln, left) for pos in sorted(returnable) for ln, left in returnable[pos]]
        if not picked:
            raise InputError(f"order {order.external_id} has nothing a dropshipper shipped that is not returned "
                             "yet", where="--lines")
        return picked
    positions = {ol.position for ol in order.lines}
    picked = []
    for pos, qty in sorted(wanted.items()):
        if pos not in positions:
            raise InputError(f"order {order.external_id} has no line {pos}", where="--lines")
        offers = returnable.get(pos, [])
        left = sum(n for _, n in offers)
        if not offers:
            raise InputError(f"line {pos} of order {order.external_id} has no piece a dropshipper shipped that is "
                             "not returned yet (a return of our own stock does not go to a partner)", where="--lines")
        qty = left if qty is None else qty
        if qty < 1 or qty > left:
            raise InputError(f"line {pos}: {qty} piece(s) to return, but {left} shipped by a dropshipper and not "
                             "returned yet", where="--lines")
        for ln, n in offers:
            take = min(n, qty)
            if take:
                picked.append((ln, take))
            qty -= take
    return picked


def announce(session: Session, cfg: Config, order: Order, wanted: Mapping[int, int | None] | None, reason: str,
             *, source: str, label: str = "", now: datetime) -> list[DropshipReturn]:
    """Announce the return of pieces of ``order`` (order line position -> pieces; None: all of
    the position; ``wanted`` None: everything dropshipped and not returned yet): one return per
    purchase order, announced; its partner sees it in the portal, or gets its notice file from
    ``partner_notices.send_pending`` (``source``: who announced it). ``label``: the
    channel's reference of the buyer's return label, else the return's number. InputError (naming
    --lines or --reason) for pieces no partner shipped, a partner no longer configured, or a
    missing reason."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise InputError("say why the buyer returns it", where="--reason")
    if len(label) > 40 or not label.isprintable():
        raise InputError("a return label reference is at most 40 printable characters", where="--label")
    by_po: dict[int, list[tuple[PurchaseOrderLine, int]]] = {}
    for ln, qty in _pick(order, _returnable(session, order), wanted):
        by_po.setdefault(ln.purchase_order_id, []).append((ln, qty))
    made = []
    for lines in by_po.values():
        po = lines[0][0].purchase_order
        if not terms.is_partner(cfg, po.partner):
            raise InputError(f"{po.partner}, which shipped {po.number}, is no longer a configured dropshipper",
                             where="--lines")
        rt = DropshipReturn(partner=po.partner, purchase_order=po, order=order, _state=RT.ANNOUNCED.value,
                            reason=reason[:1000], source=source[:100], announced_at=now,
                            lines=[DropshipReturnLine(purchase_order_line_id=ln.id, line_no=ln.line_no, sku=ln.sku,
                                                      quantity=qty) for ln, qty in lines])
        session.add(rt)
        session.flush()
        rt.number = return_number(rt.id)
        rt.label_reference = label or rt.number
        record(session, EventKind.STATE_CHANGED,
               f"return {rt.number} announced to {po.partner} for {po.number}: "
               + ", ".join(f"{qty} × {ln.sku}" for ln, qty in lines) + f" ({reason[:200]})",
               order=order, to_state=RT.ANNOUNCED.value, subject=DROPSHIP_RETURN.name, subject_id=rt.id,
               data={"return": rt.number, "purchase_order": po.number, "partner": po.partner})
        made.append(rt)
    session.flush()
    return made


# --- finding ---------------------------------------------------------------------------------------


def find(session: Session, partner: str | None, ref: str | int, *, lock: bool = False) -> DropshipReturn:
    """Return ``ref`` (its number "RT000012" or its id) of ``partner`` (None: any partner);
    NotFound otherwise, also when it is another partner's."""
    text = str(ref).strip().upper()
    if text.startswith(NUMBER_PREFIX) and text[len(NUMBER_PREFIX):].isdigit():
        where = DropshipReturn.number == text
    elif text.isdigit() and len(text) <= 12:
        where = DropshipReturn.id == int(text)
    else:
        raise NotFound(f"no return {ref!r}")
    q = select(DropshipReturn).where(where).options(selectinload(DropshipReturn.lines),
                                                    selectinload(DropshipReturn.purchase_order))
    if partner is not None:
        q = q.where(DropshipReturn.partner == partner)
    if lock:
        q = q.with_for_update(of=DropshipReturn, key_share=True).execution_options(populate_existing=True)
    rt = session.scalar(q)
    if rt is None:
        raise NotFound(f"no return {ref!r}" + (f" for {partner}" if partner else ""))
    return rt


def listing(session: Session, partner: str | None, view: str, limit: int = 200) -> list[DropshipReturn]:
    """Returns of ``partner`` (None: all) in ``view`` (open: announced; received: waiting for a
    credit or a person; done: credited or refused; all), newest first."""
    if view not in VIEWS:
        raise InputError(f"unknown view {view!r} (known: {', '.join(VIEWS)})", where="view")
    states = {"open": [RT.ANNOUNCED], "received": [RT.RECEIVED], "done": [RT.CREDITED, RT.REFUSED]}.get(view)
    q = select(DropshipReturn).options(selectinload(DropshipReturn.lines), selectinload(DropshipReturn.purchase_order))
    if partner is not None:
        q = q.where(DropshipReturn.partner == partner)
    if states:
        q = q.where(DropshipReturn._state.in_([s.value for s in states]))
    return list(session.scalars(q.order_by(DropshipReturn.announced_at.desc(), DropshipReturn.id.desc())
                                .limit(max(1, min(limit, 1000)))))


# --- the partner's confirmation ------------------------------------------------------------------


def confirm(session: Session, cfg: Config, rt: DropshipReturn, receipt: ReturnReceipt, who: str,
            now: datetime) -> bool:
    """The partner received ``rt`` in ``receipt.condition``: received, the buyer told (what the
    channel allows), a ticket when the condition needs a person. The same confirmation twice
    changes nothing (False). InputError for an unknown condition, StateError when the return was
    confirmed otherwise or decided already."""
    condition = receipt.condition.strip().lower()
    if condition not in CONDITIONS:
        raise InputError(f"unknown condition {receipt.condition!r} (known: {', '.join(CONDITIONS)})",
                         where=f"{receipt.where}:condition" if receipt.where else "condition")
    if rt.state != RT.ANNOUNCED.value:
        if rt.state == RT.RECEIVED.value and rt.condition == condition:
            return False
        raise StateError(f"return {rt.number} is {rt.state} ({rt.condition or 'no condition'}); it cannot be "
                         f"confirmed as {condition} now")
    rt.condition, rt.note = condition, " ".join(receipt.note.split())[:1000]
    rt.received_at, rt.received_by = now, who[:100]
    move(session, rt, RT.RECEIVED, f"return {rt.number} received by {rt.partner}: {condition}"
         + (f" ({rt.note})" if rt.note else ""), condition=condition)
    notices.notify(session, cfg, rt.order, "return_received", key=f"return_received:{rt.number}",
                   return_number=rt.number, items=[(ln.sku, ln.quantity) for ln in rt.lines])
    if condition in FOR_A_PERSON:
        ticket_once_about(session, rt, f"return {rt.number} of order {rt.order.external_id} came back to "
                                       f"{rt.partner} {condition}" + (f": {rt.note}" if rt.note else "")
                          + f". Decide: caturactl dropship return credit {rt.number}, or caturactl dropship "
                            f"return refuse {rt.number} --reason ...")
    session.flush()
    return True


def apply_receipts(session: Session, cfg: Config, receipts: Sequence[ReturnReceipt], partners: Sequence[str],
                   now: datetime, source: str) -> int:
    """A return confirmation file of ``partners``' return channel: each return it names received
    (``confirm``); how many changed. InputError naming the row for a return not theirs."""
    changed = 0
    for receipt in receipts:
        rt = partners_row(session, DropshipReturn, receipt.return_number, partners, what="return",
                          where=f"{receipt.where}:return")
        changed += confirm(session, cfg, rt, receipt, f"file:{source}", now)
    return changed


def ticket_once_about(session: Session, rt: DropshipReturn, text: str) -> None:
    """An open ticket (kind "dropship") about return ``rt``, its number the reference, unless one is open."""
    about = SimpleNamespace(number=rt.number, order=rt.order, delivery=rt.purchase_order.delivery)
    ticket_once(session, about, TICKET_KIND, text)


# --- a person's decision ---------------------------------------------------------------------------


def refuse(session: Session, cfg: Config, rt: DropshipReturn, reason: str, now: datetime) -> None:
    """A person refuses to credit the received return ``rt`` (``reason``, told to the buyer where
    the channel allows); StateError unless it is received, InputError without a reason."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise InputError("say why the return is refused (the buyer is told)", where="--reason")
    if rt.state != RT.RECEIVED.value:
        raise StateError(f"return {rt.number} is {rt.state}; only a received return can be refused")
    rt.decision, rt.decided_at = reason[:1000], now
    move(session, rt, RT.REFUSED, f"return {rt.number} refused: {reason[:300]}")
    notices.notify(session, cfg, rt.order, "return_refused", key=f"return_refused:{rt.number}",
                   return_number=rt.number, reason=rt.decision)
    close_tickets_about(session, TICKET_KIND, rt.number, f"refused: {reason[:200]}")
    session.flush()


__all__ = ["DropshipReturn", "DropshipReturnLine", "announce", "apply_receipts", "confirm", "find", "listing", "refuse"]
