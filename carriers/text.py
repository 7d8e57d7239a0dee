"""A plain-text delivery order (Lieferauftrag) for a small partner who ships from an e-mail.

Such a partner has no import: a person reads the file and packs. So the text is German, says
only what packing and labelling need, and keeps the address block as it goes on the label.
The layout lives in ``templates/delivery_order.txt.j2`` so it can change without code; the
Jinja2 environment and the template are compiled once at import, because a per-call compile
costs more than the render.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from caturactl.ports import RenderedFile, ShipmentDocument
from carriers.text_encoding import (
    address_block,
    clean_address,
    clean_text,
    file_name_part,
    kg_de,
    money_de,
)

TEMPLATE_DIR = Path(str(resources.files("templates.carriers")))
TEMPLATE_NAME = "delivery_order.txt.j2"

# autoescape off: plain text, not HTML. StrictUndefined: a misspelt variable fails the render
# instead of leaving a silent gap in an order a person packs from.
_ENV = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=False,
                   undefined=StrictUndefined, keep_trailing_newline=True,
                   trim_blocks=True, lstrip_blocks=True)
_TEMPLATE = _ENV.get_template(TEMPLATE_NAME)


class TextOrder:
    """DocumentFormat "text": the delivery order as UTF-8 plain text for e-mail."""

    name = "text"
    media_type = "text/plain"  # UTF-8

    def render(self, doc: ShipmentDocument) -> RenderedFile:
        """``LA_<delivery_id>.txt``, UTF-8 with "\\n" line ends; raises InputError(where=
        "<delivery_id>.<field>") for a control character or a delivery id unfit for a file name."""
        did = doc.delivery_id
        delivery_id = file_name_part(did, f"{did}.delivery_id")

        def text(value: str, field: str) -> str:
            return clean_text(value, f"{did}.{field}")

        to = clean_address(doc.ship_to, f"{did}.ship_to")
        context = {
            "delivery_id": delivery_id,
            "order_id": text(doc.order_id, "order_id"),
            "sales_channel": text(doc.sales_channel, "sales_channel"),
            "customer_number": text(doc.customer_number, "customer_number"),
            "ship_date": doc.ship_date.strftime("%d.%m.%Y"),
            "carrier": text(doc.carrier, "carrier"),
            "service": text(doc.service, "service"),
            "express": doc.express,
            "cash_on_delivery": money_de(doc.cash_on_delivery) if doc.cash_on_delivery else "",
            "address": address_block(to, postnummer=text(doc.postnummer, "postnummer"),
                                     home_country=doc.sender.country or "DE"),
            "email": text(doc.email, "email"),
            "phone": to.phone,
            "lines": [{"no": ln.line_no, "quantity": ln.quantity,
                       "sku": text(ln.sku, f"lines[{i}].sku"),
                       "title": text(ln.title, f"lines[{i}].title"),
                       "ean": text(ln.ean, f"lines[{i}].ean")}
                      for i, ln in enumerate(doc.lines)],
            "parcels": [{"no": i, "weight": kg_de(p.weight_g),
                         "size": f"{p.length_cm} × {p.width_cm} × {p.height_cm}"}
                        for i, p in enumerate(doc.parcels, start=1)],
            "total_weight": kg_de(doc.weight_g),
            "note": clean_text(doc.note, f"{did}.note", multiline=True),
        }
        content = _TEMPLATE.render(context).encode("utf-8")
        return RenderedFile(name=f"LA_{delivery_id}.txt", content=content,
                            media_type=self.media_type)
