"""The papers a dropshipper gets for the parcel, in the merchant's design (issue 18, item 5): the
delivery note with the merchant as sender, the A6 label that says it is not booked with the
carrier, the merchant's invoice when it is wanted and issued; through the service the portal
calls, the openTRANS ORDER that names them, and ``caturactl dropship documents``. The PDFs are
read back with poppler's pdftotext and pdfinfo."""

from __future__ import annotations

import json
import subprocess
import tomllib
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.app import App
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import ConfigError, NotFound
from caturactl.fulfilment import routing, shipping
from caturactl.fulfilment.dropship import outgoing, service
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.pipeline import send
from connectors.opentrans import OpenTrans
from tests import factories as f
from tests.dropship import sections
from tests.fulfilment import COMPANY
from tests.unit.test_invoice_pdf import pdf_text, poppler

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # a Tuesday
RETURNS = """
[locations.RET]
name = "Retourenlager"
kind = "own"
street = "Rücksendeweg 3"
postal_code = "41460"
city = "Neuss"
carriers = ["dhl_paket"]
transport = "wh"
"""


def _config(url: str, tmp_path, documents: str = "", extra: str = "") -> Config:
    text = (COMPANY + f'\n[database]\nurl = "{url}"\n[invoices]\namazon_delivery = "none"\n'
            + (f"\n[documents]\n{documents}\n" if documents else "") + sections(tmp_path) + extra)
    return Config.model_validate(tomllib.loads(text))


@pytest.fixture
def make_app(migrated_database_url, tmp_path):
    f.fixed_clock(T)
    made = []

    def make(documents: str = "", extra: str = "") -> App:
        made.append(App(_config(migrated_database_url, tmp_path, documents, extra)))
        return made[-1]
    yield make
    for a in made:
        a.dispose()


def _purchase_order(app: App, partner: str = "DS1", sent: bool = True) -> str:
    """One order of B-1 routed to ``partner`` (fresh availability there only); sent unless not ``sent``."""
    with app.session() as s:
        f.product(s, "B-1", title="Teekanne Glas 1 l")
        service.set_availability(s, partner, {"B-1": 5}, actor="test")
        f.released(s, [f.Line(sku="B-1", quantity=2)], buyer="Jürgen Müller")
        s.commit()
        routing.Router(s, app.cfg).run()
        if sent:
            outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())
        s.commit()
        return s.scalars(select(PurchaseOrder.number)).one()


def _text(content: bytes, tmp_path) -> str:
    return pdf_text(content, tmp_path)


def _paper(app: App, kind: str, tmp_path) -> tuple[str, str, bytes, str, str]:
    """(purchase order number, file name, content, its text, the buyer's name) of a sent purchase
    order's paper ``kind``, as the portal gets it."""
    number = _purchase_order(app)
    with app.session() as s:
        name, content = service.document(s, "DS1", number, kind)
        buyer = service.purchase_order(s, "DS1", number).ship_to.name
    return number, name, content, _text(content, tmp_path), buyer


def test_the_delivery_note_names_the_merchant_as_sender_and_no_partner_or_price(make_app, tmp_path):
    number, name, content, text, buyer = _paper(make_app(), "delivery_note", tmp_path)
    assert name == f"{number}-delivery_note.pdf" and content.startswith(b"%PDF-")
    assert text.startswith("Lieferschein Test Handel GmbH")  # the merchant's name under the title
    assert "Test Handel GmbH · Lagerweg 7 · 50667 Köln" in text  # its return line above the address
    assert buyer in text and "Teekanne Glas 1 l" in text
    assert "Strecke Eins" not in text and "7,50" not in text and "7.50" not in text  # no partner, no price
    assert b"/FontFile2" in content  # the merchant's font (DejaVu Sans by default) is embedded
    assert b"/Subtype /Image" in content  # and its logo drawn


def test_the_label_is_a6_says_it_is_not_booked_and_has_the_merchant_as_sender(make_app, tmp_path):
    number, name, content, text, buyer = _paper(make_app(), "label", tmp_path)
    info = subprocess.run([poppler("pdfinfo"), "-"], input=content, check=True, capture_output=True).stdout.decode()
    assert name == f"{number}-label.pdf" and "Page size:       297.64 x 419.53 pts" in info  # A6: 105 x 148 mm
    assert "NICHT BEI DHL GEBUCHT – KEIN FRANKIERTES VERSANDETIKETT" in text
    assert "Not booked with DHL: no postage paid, no tracking number." in text
    assert "NICHT GEBUCHT · NOT BOOKED" in text  # the watermark across the receiver
    sender = text[text.index("Absender / From"):text.index("Empfänger / To")]
    assert "Test Handel GmbH" in sender and "Lagerweg 7" in sender and "Strecke Eins" not in text
    assert buyer in text[text.index("Empfänger / To"):]
    assert f"· {number}" in text and "DHL Paket" in text  # our reference beside the delivery number


def test_the_return_location_is_the_sender_on_both_papers(make_app, tmp_path):
    app = make_app(documents='return_location = "RET"', extra=RETURNS)
    number = _purchase_order(app)
    with app.session() as s:
        texts = [_text(service.document(s, "DS1", number, kind)[1], tmp_path) for kind in ("delivery_note", "label")]
    assert all("Rücksendeweg 3" in t and "41460 Neuss" in t and "Test Handel GmbH" in t for t in texts)


def test_the_order_file_names_the_papers_uploaded_with_it(make_app, tmp_path):
    app = make_app()
    number = _purchase_order(app)
    with app.session() as s:
        assert service.purchase_order(s, "DS1", number).documents == (
            ("delivery_note", f"{number}-delivery_note.pdf"), ("label", f"{number}-label.pdf"))
        assert send(app, s, {shipping.UPLOAD}).sent == 3
        s.commit()
    folder = tmp_path / "ds1" / "in"
    order = (folder / f"{number}.xml").read_text(encoding="utf-8")
    assert f"<bmecat:MIME_SOURCE>{number}-delivery_note.pdf</bmecat:MIME_SOURCE>" in order
    assert f"<bmecat:MIME_SOURCE>{number}-label.pdf</bmecat:MIME_SOURCE>" in order
    assert "NOT booked with the carrier" in order
    assert "Test Handel GmbH" in _text((folder / f"{number}-label.pdf").read_bytes(), tmp_path)


def test_the_invoice_is_offered_once_wanted_and_issued_and_is_billings_pdf(make_app, tmp_path):
    app = make_app(documents='parcel = ["delivery_note", "label", "invoice"]')
    number = _purchase_order(app)
    with app.session() as s:
        assert [k for k, _ in service.purchase_order(s, "DS1", number).documents] == ["delivery_note", "label"]
        with pytest.raises(NotFound, match="not issued yet"):
            service.document(s, "DS1", number, "invoice")
        service.add_parcel(s, "DS1", number, carrier="DHL", tracking=make_number("DHL", 11), lines=None,
                           actor="portal:anna@ds1.example")
        po = s.scalars(select(PurchaseOrder)).one()
        s.commit()
        [inv] = f.invoiced(s, app.cfg, po.order)
        s.commit()
        assert [k for k, _ in service.purchase_order(s, "DS1", number).documents] == [
            "delivery_note", "label", "invoice"]
        name, content = service.document(s, "DS1", number, "invoice")
        assert (name, content) == (f"{number}-invoice.pdf", inv.pdf)  # billing's PDF/A-3, not drawn again


def test_a_paper_the_merchant_does_not_send_is_not_found(make_app):
    app = make_app(documents='parcel = ["delivery_note"]')
    number = _purchase_order(app)
    with app.session() as s:
        assert service.purchase_order(s, "DS1", number).documents == (("delivery_note",
                                                                        f"{number}-delivery_note.pdf"),)
        with pytest.raises(NotFound):
            service.document(s, "DS1", number, "label")
        with pytest.raises(NotFound):  # another partner's purchase order does not exist for it
            service.document(s, "DS2", number, "delivery_note")


def test_a_missing_logo_is_a_config_error_naming_the_key(make_app, tmp_path):
    app = make_app(documents=f'logo = "{tmp_path / "nowhere.png"}"')
    _purchase_order(app, sent=False)
    with app.session() as s, pytest.raises(ConfigError) as caught:
        outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())
    assert "documents.logo" in str(caught.value)
    with app.session() as s:  # nothing was sent
        assert s.scalars(select(PurchaseOrder)).one().state == "created"


def test_dropship_documents_writes_the_pdfs(bare_workspace, tmp_path):
    ws = bare_workspace
    f.fixed_clock(T)
    ws.write_config(extra=sections(tmp_path), company=COMPANY)
    app = ws.app()
    number = _purchase_order(app)
    app.dispose()
    out = json.loads(ws.ok("dropship", "documents", number.lower(), "--out", str(tmp_path / "papers"), "--json"))
    assert [(r["kind"], r["file"]) for r in out] == [
        ("delivery_note", str(tmp_path / "papers" / f"{number}-delivery_note.pdf")),
        ("label", str(tmp_path / "papers" / f"{number}-label.pdf"))]
    assert (tmp_path / "papers" / f"{number}-label.pdf").read_bytes().startswith(b"%PDF-")
    r = ws.run("dropship", "documents", number, "--kind", "invoice", "--out", str(tmp_path / "papers"))
    assert r.code == 66 and "invoice" in r.err
    (tmp_path / "a-file").write_text("", encoding="utf-8")  # a folder that cannot be made below it
    r = ws.run("dropship", "documents", number, "--out", str(tmp_path / "a-file" / "papers"))
    assert r.code == 65 and "cannot write" in r.err and "a-file" in r.err


# --- wiring: ship export leaves the partners' notes to dropship send -------------------------------


def test_ship_exports_progress_counts_only_the_notes_it_will_render(make_app):
    app = make_app()
    _purchase_order(app, sent=False)  # a created note at DS1: dropship send's, not ship export's
    with app.session() as s:
        f.stock(s, "WH", "A-1", 3)
        f.product(s, "A-1")
        f.released(s, [f.Line(sku="A-1", quantity=1)])
        s.commit()
        routing.Router(s, app.cfg).run()
        s.commit()
        assert shipping.count_to_export(s, app.cfg) == 1
        assert shipping.export(s, app.cfg, app.formats(), dry_run=True).exported == 1
