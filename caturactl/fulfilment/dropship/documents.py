"""The papers that go with a purchase order, in the merchant's design (issue 18, item 5): the
delivery note with the merchant as sender (``carriers/delivery_note_pdf.py``, the one delivery
note renderer, given the merchant's ``carriers/design.py``), the shipping label in the carrier's
layout with the merchant's return address (``carriers/label_pdf.py``: NOT booked with the
carrier, and it says so on its face), and the merchant's invoice, the PDF/A-3 billing issued and
stored, byte for byte, when ``[documents] parcel`` lists "invoice".

``[documents]`` in caturactl.toml names the logo, colour and font (by default the invoice's, from
templates/) and which papers go with each purchase order (``parcel``); the same papers are offered
in the portal (``service.document``) and sent with the openTRANS ORDER over the partner's
transport (``files``, referenced from the ORDER's MIME_INFO).

The invoice is there only once billing has issued it: invoices are made for shipped goods
(``billing.invoicing.INVOICEABLE``), so a parcel a partner has yet to ship usually has none. This
module does not issue invoices early; it offers the one there is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from carriers.delivery_note_pdf import DeliveryNotePdf
from carriers.design import Design, load
from carriers.label_pdf import LabelPdf
from caturactl.billing.models import INVOICE, Invoice
from caturactl.catalogue.models import Product
from caturactl.config import Config
from caturactl.core.address import Address
from caturactl.core.errors import ConfigError, NotFound
from caturactl.fulfilment import shipping
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.fulfilment.dropship.returns import DropshipReturn
from caturactl.ports import Parcel, RenderedFile, ShipmentDocument

PDF = "application/pdf"
# What each paper is, for the MIME_DESCR of the ORDER and for people.
PURPOSES = {"delivery_note": "Lieferschein / delivery note: into the parcel",
            "label": "Versandetikett / shipping label: NOT booked with the carrier",
            "invoice": "Rechnung / invoice: into the parcel"}


def file_name(po: PurchaseOrder, kind: str) -> str:
    """The name a paper of ``po`` has everywhere (portal, transport, CLI): PO000123-label.pdf."""
    return f"{po.number}-{kind}.pdf"


def _config(session: Session) -> Config:
    cfg = session.info.get("config")
    if cfg is None:
        raise ConfigError("the purchase order documents need the configuration: open the session through App.session()")
    return cfg


def design_of(cfg: Config) -> Design:
    """The merchant's design as ``[documents]`` names it; ConfigError naming the key."""
    d = cfg.documents
    return load(logo=d.logo, color_text=d.color, font=d.font, font_bold=d.font_bold, base_dir=cfg.base_dir)


def sender_of(cfg: Config) -> Address:
    """The merchant as sender: its name, at the address of ``[documents] return_location`` (where
    returns go), else the company's."""
    c, code = cfg.company, cfg.documents.return_location
    if code:
        loc = cfg.locations[code]
        return Address(name=c.name, line1=loc.street, postal_code=loc.postal_code, city=loc.city, country=loc.country)
    return Address(name=c.name, line1=c.street, postal_code=c.postal_code, city=c.city, country=c.country)


def shipment(session: Session, cfg: Config, po: PurchaseOrder) -> ShipmentDocument:
    """The delivery as the papers show it: the purchase order's delivery note with the merchant as
    sender, without lines that went elsewhere (a rejected line leaves 0 pieces here) and without
    the buyer's e-mail."""
    note = po.delivery
    skus = sorted({dl.sku for dl in note.lines})
    products = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(skus)))}
    doc = shipping.document_for(note, cfg, products)
    return replace(doc, sender=sender_of(cfg), email="", lines=tuple(ln for ln in doc.lines if ln.quantity > 0))


def _product_name(cfg: Config, po: PurchaseOrder) -> str:
    carrier = cfg.carriers.get(po.delivery.carrier_key)
    return carrier.name if carrier else ""


def delivery_note(session: Session, cfg: Config, po: PurchaseOrder, design: Design | None = None) -> RenderedFile:
    """The delivery note of ``po`` in the merchant's design; InputError naming the field that
    cannot be printed, ConfigError for a design file that is missing."""
    f = DeliveryNotePdf(design or design_of(cfg)).render(shipment(session, cfg, po))
    return RenderedFile(file_name(po, "delivery_note"), f.content, PDF)


def label(session: Session, cfg: Config, po: PurchaseOrder, design: Design | None = None) -> RenderedFile:
    """The A6 label of ``po`` (one page per planned parcel), sender the merchant, receiver the
    buyer, stating that it is not booked with the carrier."""
    f = LabelPdf(design or design_of(cfg)).render(shipment(session, cfg, po), product=_product_name(cfg, po),
                                                  reference=po.number)
    return RenderedFile(file_name(po, "label"), f.content, PDF)


def return_label(session: Session, cfg: Config, rt: DropshipReturn, design: Design | None = None) -> RenderedFile:
    """The A6 return label of ``rt`` in the carrier's layout the purchase order shipped with:
    sender the buyer (where the parcel went), receiver the dropshipper that takes the return in,
    the return's number as barcode and the purchase order beside it; like every label of ours it
    says on its face that it is NOT booked with the carrier (no postage, no carrier tracking)."""
    po, order = rt.purchase_order, rt.order
    partner = cfg.locations.get(rt.partner)
    if partner is None or not (partner.street and partner.city):
        raise ConfigError(f"{rt.partner} has no address to send returns to",
                          where=f"caturactl.toml: locations.{rt.partner}.street/city")
    sent = shipment(session, cfg, po)
    returned: dict[str, int] = {}
    for ln in rt.lines:
        returned[ln.sku] = returned.get(ln.sku, 0) + ln.quantity
    weights = dict(session.execute(select(Product.sku, Product.weight_g)
                                   .where(Product.sku.in_(sorted(returned)))).all())
    grams = sum((weights.get(sku) or 0) * qty for sku, qty in returned.items())  # the goods, without the box
    box = sent.parcels[0] if sent.parcels else Parcel(0, 0, 0, 0)
    doc = replace(sent, delivery_id=rt.number, email="", postnummer="", note="",
                  parcels=(replace(box, weight_g=grams),),
                  ship_date=rt.announced_at.astimezone(ZoneInfo(partner.timezone)).date(),
                  sender=order.address,
                  ship_to=Address(name=partner.name, company=f"Retouren {cfg.company.name}", line1=partner.street,
                                  postal_code=partner.postal_code, city=partner.city, country=partner.country),
                  lines=tuple(replace(ln, quantity=returned[ln.sku]) for ln in sent.lines if ln.sku in returned))
    f = LabelPdf(design or design_of(cfg)).render(doc, product="Retoure / return", reference=po.number)
    return RenderedFile(f"{rt.number}-return-label.pdf", f.content, PDF)


def _invoice_of(session: Session, po: PurchaseOrder) -> Invoice | None:
    invoice_id = po.delivery.invoice_id
    inv = session.get(Invoice, invoice_id) if invoice_id else None
    return inv if inv is not None and inv.kind == INVOICE else None


def invoice(session: Session, cfg: Config, po: PurchaseOrder, design: Design | None = None) -> RenderedFile:
    """The merchant's invoice for ``po``'s delivery as billing issued and stored it (nothing is
    rendered); NotFound when it is not issued yet."""
    inv = _invoice_of(session, po)
    if inv is None:
        raise NotFound(f"no invoice for {po.number}: not issued yet (invoices follow the shipment)")
    return RenderedFile(file_name(po, "invoice"), inv.pdf, PDF)


_RENDER: dict[str, Callable[..., RenderedFile]] = {"delivery_note": delivery_note, "label": label,
                                                   "invoice": invoice}


def offered(session: Session, cfg: Config, po: PurchaseOrder, kind: str) -> bool:
    """Whether ``po`` has the paper ``kind``: listed in ``[documents] parcel``, and for the
    invoice, issued."""
    if kind not in cfg.documents.parcel:
        return False
    return kind != "invoice" or _invoice_of(session, po) is not None


def _pair(kind: str) -> Callable[[Session, PurchaseOrder], tuple[str, bytes]]:
    def pair(session: Session, po: PurchaseOrder) -> tuple[str, bytes]:
        cfg = _config(session)
        if kind not in cfg.documents.parcel:
            raise NotFound(f"no {kind.replace('_', ' ')} for {po.number}: not in [documents] parcel")
        f = _RENDER[kind](session, cfg, po)
        return f.name, f.content
    return pair


# service.DOCUMENTS takes these: (session, purchase order) -> (file name, content); NotFound for a
# paper the purchase order does not have.
RENDERERS: dict[str, Callable[[Session, PurchaseOrder], tuple[str, bytes]]] = {kind: _pair(kind) for kind in _RENDER}


def files(session: Session, cfg: Config, po: PurchaseOrder,
          design: Design | None = None) -> list[tuple[str, RenderedFile]]:
    """(kind, file) of every paper ``po`` has now, in ``[documents] parcel`` order (to send with
    its ORDER)."""
    design = design or design_of(cfg)
    return [(kind, _RENDER[kind](session, cfg, po, design)) for kind in cfg.documents.parcel
            if offered(session, cfg, po, kind)]
