"""Telling a dropshipper with a transport of a return announced and of a cancellation requested:
one file each, rendered by the partner interface (``PartnerDocuments``) and queued in the outbox
like its purchase orders; a return's notice goes with its return label (``documents.return_label``). A partner on the portal sees both there instead.

``send_pending`` runs with every ``dropship send`` (and right after ``dropship return announce``):
it queues the file of every announced return and every requested cancellation whose file is not
queued yet; the outbox key (the transport and the file name) is the claim, so a file is queued
once however often this runs. In the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from caturactl.config import Config
from caturactl.core.errors import ConfigError, InputError
from caturactl.core.lifecycle import CancellationState, PurchaseLineState, ReturnState
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import documents as papers
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderCancellation
from caturactl.fulfilment.dropship.partner_files import (CancellationRequestDoc, PartnerDocuments, ReturnLineDoc,
                                                         ReturnNoticeDoc)
from caturactl.fulfilment.dropship.returns import DropshipReturn, ticket_once_about
from caturactl.fulfilment.dropship.rerouting import ticket_once
from caturactl.outbox.service import enqueue
from caturactl.ports import RenderedFile

STILL_TO_SHIP = (PurchaseLineState.OPEN.value, PurchaseLineState.ACCEPTED.value)


def return_document(rt: DropshipReturn) -> ReturnNoticeDoc:
    """What the partner is told of ``rt``: the pieces, why, the label reference, and who sends
    it (name and place only)."""
    order = rt.order
    titles = {ln.id: ln.purchase_order_line.order_line.title for ln in rt.lines}
    return ReturnNoticeDoc(
        number=rt.number, purchase_order=rt.purchase_order.number, announced_at=rt.announced_at, reason=rt.reason,
        label_reference=rt.label_reference, sender_name=order.ship_name or order.buyer_name,
        sender_postal_code=order.ship_postal_code, sender_city=order.ship_city, sender_country=order.ship_country,
        lines=tuple(ReturnLineDoc(ln.line_no, ln.sku, titles.get(ln.id) or "", ln.quantity) for ln in rt.lines))


def cancellation_document(c: PurchaseOrderCancellation) -> CancellationRequestDoc:
    """Our request for ``c``'s purchase order, with the lines that could still ship."""
    po = c.purchase_order
    return CancellationRequestDoc(purchase_order=po.number, requested_at=c.requested_at, reason=c.reason,
                                  lines=tuple((ln.line_no, ln.sku, ln.quantity - ln.shipped) for ln in po.lines
                                              if ln.state in STILL_TO_SHIP))


def _queue(session: Session, transport: str, f: RenderedFile, po: PurchaseOrder) -> bool:
    return enqueue(session, f"{shipping.UPLOAD}:{transport}:{f.name}", shipping.UPLOAD, transport,
                   shipping.file_payload(f, po.delivery))


def send_pending(session: Session, cfg: Config, documents: PartnerDocuments) -> list[str]:
    """Queue the file of every announced return and requested cancellation of a partner with a
    transport that is not queued yet; returns the names of the files queued now. One whose data
    does not fit the file gets a ticket (once) and the others go on."""
    with_transport = {code for code, loc in cfg.locations.items() if loc.kind == "dropshipper" and loc.transport}
    files = []
    returns = session.scalars(select(DropshipReturn).where(DropshipReturn._state == ReturnState.ANNOUNCED.value,
                                                           DropshipReturn.partner.in_(sorted(with_transport)))
                              .options(selectinload(DropshipReturn.lines)).order_by(DropshipReturn.id)).all()
    for rt in returns:
        try:
            f = documents.render_return(return_document(rt))
        except InputError as exc:
            ticket_once_about(session, rt, f"the return notice {rt.number} cannot be written for {rt.partner}: {exc}")
            continue
        try:
            label = papers.return_label(session, cfg, rt)
        except (InputError, ConfigError) as exc:
            ticket_once_about(session, rt, f"the return label of {rt.number} cannot be made for {rt.partner}: {exc}")
            continue
        for rendered in (label, f):  # the label first: a partner acting on the notice finds it there
            if _queue(session, cfg.locations[rt.partner].transport, rendered, rt.purchase_order):
                files.append(rendered.name)
    requests = session.scalars(select(PurchaseOrderCancellation).join(PurchaseOrder)
                               .where(PurchaseOrderCancellation._state == CancellationState.REQUESTED.value,
                                      PurchaseOrder.partner.in_(sorted(with_transport)))
                               .order_by(PurchaseOrderCancellation.id)).all()
    for c in requests:
        po = c.purchase_order
        try:
            f = documents.render_cancellation(cancellation_document(c))
        except InputError as exc:
            ticket_once(session, po, "export_failed", f"the cancellation of {po.number} cannot be written for "
                                                      f"{po.partner}: {exc}")
            continue
        if _queue(session, cfg.locations[po.partner].transport, f, po):
            files.append(f.name)
    session.flush()
    return files


__all__ = ["cancellation_document", "return_document", "send_pending"]
