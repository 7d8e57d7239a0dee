"""Handing purchase orders to their partners: a partner with a transport gets the order as a
file (openTRANS 2.1 ORDER, or CSV by its ``order_format``, through ``PartnerInterface``) in the
outbox, sent over the existing transports like a delivery note, with the papers for the parcel
(``documents.files``: delivery note, label, the invoice when there is one) queued before it and
named in it; a partner on the portal sees it all there, and its ``notify_email`` gets one mail
per run listing the new ones (``partner_mail``). Either way the order is sent from then on, its
answer is due within the partner's ``answer_within_hours`` counted in the partner's business
hours, and its delivery note is exported (so ``ship export`` leaves it be).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from carriers.design import Design
from caturactl.config import Config
from caturactl.core.address import Address
from caturactl.core.errors import InputError
from caturactl.core.lifecycle import DeliveryState, PurchaseOrderState, move, transition_delivery
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship import documents, partner_mail
from caturactl.fulfilment.dropship.messages import AttachedFile, PartnerInterface, PurchaseLineDoc, PurchaseOrderDoc
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine
from caturactl.fulfilment.dropship.rerouting import ticket_once
from caturactl.fulfilment.models import DeliveryNote
from caturactl.fulfilment.routing import calendar_for
from caturactl.orders.models import Order
from caturactl.outbox.service import enqueue
from caturactl.ports import RenderedFile

MERCHANT_ID = "merchant"  # our party id in the files


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)  # purchase order numbers
    files: list[str] = field(default_factory=list)
    papers: list[str] = field(default_factory=list)  # the PDFs sent beside the files
    portal: list[str] = field(default_factory=list)  # sent to partners on the portal
    mailed: list[str] = field(default_factory=list)  # portal partners told of them by e-mail
    failed: list[str] = field(default_factory=list)  # "PO000123: why"
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"sent": len(self.sent), "files": self.files, "papers": self.papers, "portal": self.portal,
                "failed": self.failed, "mailed": self.mailed, "dry_run": self.dry_run}


def document_for(po: PurchaseOrder, cfg: Config) -> PurchaseOrderDoc:
    """The plain values the partner's format renders for ``po``: the buyer is the merchant, the
    delivery party the end customer with only what shipping needs."""
    order, note, c = po.order, po.delivery, cfg.company
    a = order.address
    ship_to = Address(name=a.name, company=a.company, line1=a.line1, line2=a.line2, line3=a.line3,
                      postal_code=a.postal_code, city=a.city, state=a.state, country=a.country)
    titles = {ln.order_line_id: ln.order_line.title for ln in po.lines}
    return PurchaseOrderDoc(
        number=po.number, created_at=po.created_at, currency=po.currency,
        buyer=Address(name=c.name, line1=c.street, postal_code=c.postal_code, city=c.city, country=c.country),
        buyer_id=MERCHANT_ID, supplier_id=po.partner, supplier_name=cfg.locations[po.partner].name,
        ship_to=ship_to, ship_date=note.ship_date, carrier=note.carrier, service=note.service,
        lines=tuple(PurchaseLineDoc(ln.line_no, ln.sku, titles.get(ln.order_line_id) or "", ln.quantity,
                                    ln.purchase_price) for ln in po.lines),
        note=order.delivery_instructions or "")


def partner_files(session: Session, cfg: Config, po: PurchaseOrder, interface: PartnerInterface,
                  design: Design) -> list[RenderedFile]:
    """The files a partner with a transport gets for ``po``: the papers for the parcel
    (``documents.files``), then the ORDER that names them; InputError naming the field that does
    not fit."""
    papers = documents.files(session, cfg, po, design)
    order = interface.render_order(replace(document_for(po, cfg), attachments=tuple(
        AttachedFile(f.name, f.media_type, documents.PURPOSES[kind]) for kind, f in papers)),
        cfg.locations[po.partner].order_format)
    return [f for _, f in papers] + [order]


def send(session: Session, cfg: Config, interface: PartnerInterface, *, now: datetime,
         dry_run: bool = False) -> SendResult:
    """Hand every created purchase order to its partner (claimed, so two runs never send one
    twice); one whose data does not fit the file gets a ticket and stays created. A partner on the
    portal with a ``notify_email`` gets one mail listing its new ones. Flushes; the caller commits
    (or rolls back a dry run)."""
    r = SendResult(dry_run=dry_run)
    design = None  # the merchant's design, read once a partner with a transport needs it
    on_portal: dict[str, list[str]] = {}  # partner -> the numbers it finds on the portal now
    pos = session.scalars(select(PurchaseOrder).where(PurchaseOrder._state == PurchaseOrderState.CREATED.value)
                          .order_by(PurchaseOrder.id)
                          .with_for_update(of=PurchaseOrder, skip_locked=True, key_share=True)
                          .options(selectinload(PurchaseOrder.lines).selectinload(PurchaseOrderLine.order_line),
                                   selectinload(PurchaseOrder.delivery),
                                   selectinload(PurchaseOrder.order).selectinload(Order.customer))).all()
    for po in pos:
        loc = cfg.locations.get(po.partner)
        if loc is None:
            r.failed.append(f"{po.number}: partner {po.partner} is no longer configured")
            continue
        name = ""
        if loc.transport:
            try:
                design = design or documents.design_of(cfg)
                files = partner_files(session, cfg, po, interface, design)
            except InputError as exc:
                r.failed.append(f"{po.number}: {exc}")
                if not dry_run:
                    ticket_once(session, po, "export_failed", f"{po.number} cannot be written for {po.partner}: {exc}")
                continue
            for f in files:  # the papers first: they are there when the ORDER that names them is read
                enqueue(session, f"{shipping.UPLOAD}:{loc.transport}:{f.name}", shipping.UPLOAD, loc.transport,
                        shipping.file_payload(f, po.delivery))
            name = files[-1].name
            r.papers.extend(f.name for f in files[:-1])
            r.files.append(name)
        else:
            r.portal.append(po.number)
            on_portal.setdefault(po.partner, []).append(po.number)
        _mark_sent(session, cfg, po, name, now)
        r.sent.append(po.number)
    r.mailed = [code for code, numbers in on_portal.items() if partner_mail.tell_partner(session, cfg, code, numbers)]
    session.flush()
    return r


def _mark_sent(session: Session, cfg: Config, po: PurchaseOrder, name: str, now: datetime) -> None:
    loc = cfg.locations[po.partner]
    po.file_name, po.sent_at = name, now
    po.respond_by = calendar_for(cfg, po.partner).add_business_hours(now, loc.answer_within_hours)
    how = f"{name} queued for {loc.transport}" if name else "on the partner portal"
    move(session, po, PurchaseOrderState.SENT,
         f"{po.number} {how}; answer due by {po.respond_by:%Y-%m-%d %H:%M} UTC ({loc.answer_within_hours} "
         f"business hours of {po.partner})", purchase_order=po.number)
    note: DeliveryNote = po.delivery
    note.file_name, note.exported_at = name or po.number, now
    transition_delivery(session, note, DeliveryState.EXPORTED, f"sent to {po.partner} as purchase order {po.number}")

