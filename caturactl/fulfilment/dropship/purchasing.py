"""Purchase orders are made here: routing hands over the delivery notes it made at dropshipper
locations, and each becomes one purchase order with a line per delivery line, at the agreed
purchase price (``terms.purchase_prices``). It starts as created; ``outgoing.send`` hands it to
the partner. Called inside routing's transaction; nothing is committed here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from caturactl.config import Config
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import PURCHASE_ORDER, PurchaseLineState, PurchaseOrderState
from caturactl.fulfilment.dropship import terms
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine, po_number
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote


def create_for_notes(session: Session, cfg: Config, note_ids: Sequence[int], now: datetime) -> list[PurchaseOrder]:
    """One purchase order (created, its lines open) per delivery note of ``note_ids``, each with
    its creation event; a SKU without an agreed price gets a line without one (said in the event)."""
    notes = session.scalars(select(DeliveryNote).where(DeliveryNote.id.in_(list(note_ids)))
                            .options(selectinload(DeliveryNote.lines).selectinload(DeliveryLine.order_line),
                                     selectinload(DeliveryNote.order))
                            .order_by(DeliveryNote.id)).all()
    prices: dict[str, dict[str, Decimal]] = {}
    made = []
    for note in notes:
        if note.location not in prices:
            prices[note.location] = terms.purchase_prices(cfg, note.location)
        made.append(_one(session, note, prices[note.location], now))
    return made


def _one(session: Session, note: DeliveryNote, prices: dict[str, Decimal], now: datetime) -> PurchaseOrder:
    po = PurchaseOrder(partner=note.location, order=note.order, delivery=note, _state=PurchaseOrderState.CREATED.value,
                       currency=note.order.currency or "EUR", created_at=now)
    for i, dl in enumerate(note.lines, 1):
        po.lines.append(PurchaseOrderLine(line_no=i, order_line_id=dl.order_line_id, delivery_line_id=dl.id,
                                          sku=dl.sku, quantity=dl.quantity, purchase_price=prices.get(dl.sku),
                                          _state=PurchaseLineState.OPEN.value))
    session.add(po)
    session.flush()
    po.number = po_number(po.id)
    unpriced = sorted({ln.sku for ln in po.lines if ln.purchase_price is None})
    why = (f"{po.number} for {note.number} at {note.location}: {len(po.lines)} line(s), "
           f"{po.total} {po.currency} at the agreed prices")
    if unpriced:
        why += f"; no price agreed for {', '.join(unpriced)}"
    record(session, EventKind.STATE_CHANGED, why, order=note.order, delivery=note, to_state=PurchaseOrderState.CREATED.value,
           subject=PURCHASE_ORDER.name, subject_id=po.id)
    return po


__all__ = ["create_for_notes"]
