"""Invoices end to end: shipped deliveries -> numbered PDF/A-3 invoices with the EN 16931 XML
inside -> Amazon (Feeds stand-in) or e-mail (aiosmtpd); credit notes; numbering; bad input.

Tests about Amazon's side (uploads, feeds, review requests) ship the stand-in's orders through the
whole pipeline; the others start from shipped orders built by tests/factories.py."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from caturactl.core import clock
from caturactl.outbox.models import OutboxMessage
from caturactl.billing.models import Invoice, InvoiceCounter
from caturactl.fulfilment.models import DeliveryNote
from caturactl.orders.models import Order
from tests import factories as f
from tests import fulfilment

NOT_SENT = '[invoices]\namazon_delivery = "none"\n'  # invoices stay here: no Amazon in these tests


@pytest.fixture
def standin():
    # Fewer orders than elsewhere: every invoice is uploaded through createFeed, whose published
    # rate (one call every two minutes after a burst of 15) dominates even at the stand-in's speed.
    from standins.amazon import AmazonStandin
    s = AmazonStandin(orders=60, seed=11, day="2026-11-24", rate_scale=2000.0).start()
    yield s
    s.stop()


def _counts(app) -> dict:
    with app.session() as s:
        return {"invoices": s.scalar(select(func.count()).select_from(Invoice)),
                "counters": s.scalar(select(func.coalesce(func.sum(InvoiceCounter.last), 0))),
                "outbox": s.scalar(select(func.count()).select_from(OutboxMessage))}


@pytest.mark.slow
def test_shipped_orders_get_numbered_invoices_uploaded_to_amazon(workspace, tmp_path):
    from connectors.einvoice.hybrid import extract
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    app = ws.app()
    with app.session() as s:
        shipped = s.scalar(select(func.count(func.distinct(DeliveryNote.order_id)))
                           .where(DeliveryNote._state == "shipped"))
        # ... and the orders Amazon fulfilled (FBA) and shipped itself: invoiced too, without notes
        shipped += s.scalar(select(func.count()).select_from(Order).where(Order.fulfilled_by == "AMAZON",
                                                                           Order._state == "shipped"))
    dry = json.loads(ws.ok("invoices", "create", "--dry-run", "--json"))
    assert dry["planned"] > 0 and _counts(app)["invoices"] == 0
    out = json.loads(ws.ok("invoices", "create", "--json"))
    year = clock.now().year
    assert out["created"] == dry["planned"] <= shipped
    assert out["numbers"] == [f"RE{year}-{n:06d}" for n in range(1, out["created"] + 1)]  # gap-free
    assert out["delivery"]["sent"] == out["created"]
    uploaded = ws.standin.invoices()
    assert {u["invoice_number"] for u in uploaded} == set(out["numbers"])
    ws.standin.advance(timedelta(minutes=5))  # Amazon processes the feeds
    feeds = json.loads(ws.ok("invoices", "feeds", "--json"))
    assert feeds["checked"] == out["created"] and feeds["accepted"] == out["created"] and feeds["rejected"] == 0
    assert {u["status"] for u in ws.standin.invoices()} == {"ACCEPTED"}
    with app.session() as s:
        inv = s.scalars(select(Invoice).order_by(Invoice.id)).first()
        assert inv.pdf.startswith(b"%PDF") and inv.sent_at is not None
        assert extract(inv.pdf) == inv.xml and b"urn:cen.eu:en16931:2017" in inv.xml
        # The invoice's gross is what Amazon collected for the whole order (TotalAmount must match).
        assert inv.gross_total == inv.order.total_amount
        noted = s.scalars(select(DeliveryNote).where(DeliveryNote.order_id == inv.order_id)).all()
        assert all(n.invoice_id == inv.id for n in noted)
    # A second run invoices nothing twice; the cockpit shows the numbers.
    again = json.loads(ws.ok("invoices", "create", "--json"))
    assert again["created"] == 0
    rows = json.loads(ws.ok("orders", "list", "--state", "shipped", "--json"))
    assert {r["invoice"] for r in rows if r["invoice"]} == set(out["numbers"])
    listed = json.loads(ws.ok("invoices", "list", "--json"))
    assert len(listed) == out["created"] and set(listed[0]) == {
        "number", "kind", "date", "order", "customer", "net", "tax", "gross", "currency", "corrects", "delivery",
        "sent", "paid"}
    pdf = tmp_path / "copy.pdf"
    ws.ok("invoices", "pdf", out["numbers"][0], "-o", str(pdf))
    with app.session() as s:
        assert pdf.read_bytes() == s.scalar(select(Invoice.pdf).where(Invoice.number == out["numbers"][0]))
    # Resending delivers the same file again and makes no second invoice.
    ws.ok("invoices", "resend", out["numbers"][0])
    assert _counts(app)["invoices"] == out["created"]


def test_missing_company_tax_data_or_rate_stops_the_run_and_writes_nothing(bare_workspace):
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(company='[company]\nname = "Ohne Steuer GmbH"\nstreet = "Weg 1"\npostal_code = "50667"\n'
                            'city = "Köln"\n')
    app = ws.app()
    with app.session() as s:
        f.shipped(s)
        f.shipped(s, lines=[("BOOK-1", 2, "12.00")], country="FR")
        s.commit()
    before = _counts(app)
    r = ws.run("invoices", "create")
    assert r.code == 78 and "vat_id or tax_number" in r.err and len(r.err.strip().splitlines()) == 1
    assert _counts(app) == before
    # Company fixed, but no VAT table for the year of supply: the rate is named, nothing written.
    ws.write_config(extra='[tax]\nrates = [{ country = "DE", kind = "standard", rate = 19, valid_from = 2007-01-01, '
                          'valid_to = 2020-12-31 }]\n', company=fulfilment.COMPANY)
    r = ws.run("invoices", "create")
    assert r.code == 78 and "no standard VAT rate for DE on" in r.err
    assert _counts(app) == before


def test_the_rate_follows_the_date_of_supply_and_oss_uses_the_destination(bare_workspace):
    from caturactl.billing import invoicing
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(extra="[tax]\noss = true\n" + NOT_SENT, company=fulfilment.COMPANY)
    app = ws.app()
    cart = [("TOOL-1", 1, "24.99"), ("BOOK-1", 2, "12.00")]  # a standard and a reduced rate
    with app.session() as s:
        f.product(s, "BOOK-1", tax_class="reduced")
        # One German order's parcel left in the second half of 2020 (16 %/5 %).
        german = f.shipped(s, lines=cart, shipped_at=datetime(2020, 8, 3, 10, tzinfo=timezone.utc))
        french = f.shipped(s, lines=cart, country="FR")
        german_order, french_order = german.external_id, french.external_id
        s.commit()
    ws.ok("invoices", "create")
    with app.session() as s:
        docs = {i.order.external_id: i.document for i in s.scalars(select(Invoice))}
    rates = {t["rate"] for t in docs[german_order]["taxes"]}
    assert rates == {"16", "5"} and docs[german_order]["supply_date"] == "2020-08-03"
    assert french_order in docs  # the OSS case must really be exercised
    assert {t["rate"] for t in docs[french_order]["taxes"]} == {"20", "5.5"}
    assert any("One-Stop-Shop" in n for n in docs[french_order]["notes"])
    assert docs[french_order]["language"] == "en"
    assert invoicing.from_json(docs[german_order]).gross_total == Decimal(docs[german_order]["gross_total"])


def test_credit_notes_refer_to_the_invoice_and_never_credit_more_than_was_invoiced(bare_workspace):
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(extra=NOT_SENT, company=fulfilment.COMPANY)
    app = ws.app()
    with app.session() as s:
        # An invoice with more than one piece, so a part can be credited first.
        [inv] = f.invoiced(s, app.cfg, f.shipped(s, lines=[("TOOL-1", 2, "24.99"), ("BOOK-1", 1, "12.00")]))
        s.commit()
        assert sum(Decimal(x["quantity"]) for x in inv.document["items"]) > 1
        items = inv.document["items"]
    numbers = [inv.number]
    first = items[0]
    r = ws.run("invoices", "credit", numbers[0], "--lines", f"{first['position']}:1", "--reason", "Retoure")
    assert r.code == 0, r.err
    year = clock.now().year
    assert f"RK{year}-000001 corrects {numbers[0]}" in r.out
    # Crediting more than is left is refused, naming the position.
    r = ws.run("invoices", "credit", numbers[0], "--lines", f"{first['position']}:{first['quantity']}",
               "--reason", "zu viel")
    assert r.code == 65 and f"position {first['position']}" in r.err
    r = ws.run("invoices", "credit", numbers[0], "--lines", "1:-2", "--reason", "negativ")
    assert r.code == 65
    # The rest in one go, then nothing is left.
    ws.ok("invoices", "credit", numbers[0], "--reason", "Stornierung")
    r = ws.run("invoices", "credit", numbers[0], "--reason", "noch einmal")
    assert r.code == 70 and "already credited in full" in r.err
    with app.session() as s:
        credits = s.scalars(select(Invoice).where(Invoice.corrects_id == inv.id).order_by(Invoice.id)).all()
        assert [c.document["type_code"] for c in credits] == [381, 381]
        assert all(c.document["preceding_invoice"] == numbers[0] for c in credits)
        assert sum(c.gross_total for c in credits) == inv.gross_total
    shown = json.loads(ws.ok("invoices", "show", credits[0].number, "--json"))
    assert shown["corrects"] == numbers[0] and shown["reason"] == "Retoure"


def test_numbers_are_gap_free_after_a_rollback_and_unique_across_concurrent_runners(database_url):
    from caturactl.migrations import apply as migrations
    from caturactl.billing.invoicing import next_number
    from caturactl.core.db import make_engine, make_sessionmaker
    engine = make_engine(database_url)
    migrations.upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        assert next_number(s, "RE", 2026) == 1
        s.rollback()  # the invoice was not stored: the number comes back
        assert next_number(s, "RE", 2026) == 1
        s.commit()
    taken: list[int] = []
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            for _ in range(15):
                with sessions() as s:
                    n = next_number(s, "RE", 2026)
                    s.commit()
                    taken.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=runner) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert not errors
    assert sorted(taken) == list(range(2, 47))


def test_review_requests_go_once_and_only_inside_amazons_window(workspace, tmp_path):
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    early = json.loads(ws.ok("reviews", "request", "--json"))
    assert early["queued"] == 0 and early["not_yet"] > 0 and not ws.standin.solicitations()
    ws.standin.advance(timedelta(days=9))
    now = ws.standin.now()
    from caturactl.orders import reviews
    app = ws.app()
    with app.session() as s:
        r = reviews.queue_due(s, now=now)
    sender_out = ws.run("outbox", "send", "--json")
    assert sender_out.code == 0, sender_out.err
    asked = ws.standin.solicitations()
    assert asked and {a["order_id"] for a in asked} <= set(r.queued)
    with app.session() as s:
        again = reviews.queue_due(s, now=now)
    assert again.queued == []  # never twice
    listed = json.loads(ws.ok("reviews", "list", "--json"))
    assert {x["status"] for x in listed} <= {"sent", "not_offered"} and len(listed) == len(r.queued)


@pytest.mark.parametrize("delivery", ["email"])
def test_invoices_by_email_carry_the_pdf(bare_workspace, smtp_server, delivery):
    ws = bare_workspace
    f.fixed_clock()
    mail = (f'[invoices]\namazon_delivery = "{delivery}"\n[mail]\nhost = "127.0.0.1"\nport = {smtp_server.port}\n'
            'security = "none"\nfrom_address = "rechnung@test-handel.example"\n')
    ws.write_config(extra=mail, company=fulfilment.COMPANY)
    with ws.app().session() as s:
        for country in ("DE", "AT", "FR"):
            f.shipped(s, country=country)
        s.commit()
    out = json.loads(ws.ok("invoices", "create", "--limit", "2", "--json"))
    assert out["created"] == 2 and len(smtp_server.messages) == 2
    msg = smtp_server.messages[0]
    [att] = list(msg.iter_attachments())
    assert att.get_filename() == f"{out['numbers'][0]}.pdf" and att.get_content().startswith(b"%PDF")
    assert out["numbers"][0] in msg["Subject"]


def test_an_invoice_amazon_refuses_becomes_a_ticket_with_amazons_report(workspace, tmp_path):
    from caturactl.orders.tickets import Ticket
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra='[invoices]\namazon_delivery = "none"\n')
    number = json.loads(ws.ok("invoices", "create", "--limit", "1", "--json"))["numbers"][0]
    app = ws.app()
    with app.session() as s:
        inv = s.scalars(select(Invoice).where(Invoice.number == number)).one()
        # The upload carries a total that is not Amazon's: Amazon must refuse it.
        from caturactl.outbox.service import enqueue
        enqueue(s, f"invoice_upload:{number}", "invoice_upload", "amazon", {
            "invoice_id": inv.id, "number": number, "order_id": inv.order.external_id,
            "marketplace_id": inv.order.marketplace_id,
            "metadata": {"OrderId": inv.order.external_id, "InvoiceNumber": number, "DocumentType": "Invoice",
                         "TotalAmount": f"{inv.gross_total + 1:.2f}"}})
        s.commit()
    ws.ok("outbox", "send")
    ws.standin.advance(timedelta(minutes=5))
    feeds = json.loads(ws.ok("invoices", "feeds", "--json"))
    assert feeds["rejected"] == 1 and feeds["accepted"] == 0
    with app.session() as s:
        t = s.scalars(select(Ticket).where(Ticket.kind == "invoice_rejected")).one()
        assert number in t.text and "TotalAmount" in t.text
    assert json.loads(ws.ok("invoices", "feeds", "--json"))["checked"] == 0  # judged once


def test_a_resent_invoice_upload_is_judged_by_its_new_feed(workspace, tmp_path):
    from standins.amazon.server import Fault
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra="[shipping]\noutbox_backoff_seconds = 0\n")
    [number] = json.loads(ws.ok("invoices", "create", "--limit", "1", "--json"))["numbers"]
    [first] = [u["feed_id"] for u in ws.standin.invoices()]
    ws.standin.advance(timedelta(minutes=5))
    assert json.loads(ws.ok("invoices", "feeds", "--json"))["accepted"] == 1
    # Resent; createFeed answers 503, so the upload is in doubt and Amazon's feeds are asked
    # first. The first upload's feed is Amazon's too, but it is not this send's.
    ws.standin.add_fault(Fault(operation="createFeed", kind="status", status=503))
    assert ws.run("invoices", "resend", number).code == 69
    app = ws.app()
    with app.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"invoice_upload:{number}"))
        assert m.status == "pending" and m.sending_at is not None
        m.next_attempt_at = clock.now()
        s.commit()
    ws.ok("outbox", "send")
    first_again, second = [u["feed_id"] for u in ws.standin.invoices()]
    assert first_again == first and second != first
    ws.standin.advance(timedelta(minutes=5))
    feeds = json.loads(ws.ok("invoices", "feeds", "--json"))
    assert feeds["checked"] == 1  # the new feed is looked at, not taken as judged already
    with app.session() as s:
        payload = s.scalar(select(OutboxMessage.payload).where(OutboxMessage.key == f"invoice_upload:{number}"))
    assert payload["feed_id"] == second and payload["feed_status"] == "DONE" and payload["earlier_feeds"] == [first]
    assert "found_after_crash" not in payload


def test_an_order_that_cannot_be_invoiced_gets_a_ticket_and_the_others_are_invoiced(bare_workspace):
    from caturactl.orders.models import OrderLine
    from caturactl.orders.tickets import Ticket
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(extra=NOT_SENT, company=fulfilment.COMPANY)
    app = ws.app()
    with app.session() as s:
        f.shipped(s, lines=[("TOOL-1", 1, "24.99"), ("BOOK-1", 1, "12.00")])
        f.shipped(s, country="FR")
        f.shipped(s, lines=[("LAMP-1", 2, "49.00")], location="FUL")
        s.commit()
    planned = json.loads(ws.ok("invoices", "create", "--dry-run", "--json"))["planned"]
    with app.session() as s:
        note = s.scalars(select(DeliveryNote).where(DeliveryNote._state == "shipped").order_by(DeliveryNote.id)).first()
        bad = note.order.external_id
        for ln in s.scalars(select(OrderLine).where(OrderLine.order_id == note.order_id)):
            ln.unit_price = ln.total_amount = None  # a line without a price
        s.commit()
    r = ws.run("invoices", "create", "--json")
    out = json.loads(r.out)
    assert r.code == 65 and out["created"] == planned - 1 and len(out["failed"]) == 1 and bad in out["failed"][0]
    with app.session() as s:
        [t] = s.scalars(select(Ticket).where(Ticket.kind == "invoice_failed")).all()
        assert t.order.external_id == bad and "no price" in t.text
    # The next run leaves it to the person its ticket asks: no new failure, no second ticket.
    r = ws.run("invoices", "create", "--json")
    assert r.code == 0 and json.loads(r.out)["created"] == 0 and json.loads(r.out)["waiting"] == 1
    with app.session() as s:
        assert len(s.scalars(select(Ticket).where(Ticket.kind == "invoice_failed")).all()) == 1
    # Resolved (prices still missing), the next run tries again and asks again.
    ws.ok("tickets", "resolve", t.number, "--close", "--note", "price asked at Amazon")
    r = ws.run("invoices", "create", "--json")
    assert r.code == 65 and len(json.loads(r.out)["failed"]) == 1


def test_a_document_the_renderer_refuses_is_a_ticket_before_any_number_is_taken(bare_workspace):
    from caturactl.orders.tickets import Ticket
    ws = bare_workspace
    f.fixed_clock()
    ws.write_config(extra=NOT_SENT, company=fulfilment.COMPANY)
    app = ws.app()
    with app.session() as s:
        for country in ("DE", "FR", "DE", "IT"):
            f.shipped(s, country=country)
        s.commit()
    planned = json.loads(ws.ok("invoices", "create", "--dry-run", "--json"))["planned"]
    with app.session() as s:
        order = s.scalars(select(Order).where(Order._state == "shipped").order_by(Order.id)).all()[2]
        bad, order.ship_city = order.external_id, ""  # § 14 UStG: the buyer's full address
        s.commit()
    r = ws.run("invoices", "create", "--json")
    out = json.loads(r.out)
    assert r.code == 65 and out["created"] == planned - 1
    assert out["failed"] == [f"{bad}: invoice of order {bad}, buyer.city: is empty; § 14 Abs. 4 UStG requires it "
                             "on the invoice"]  # named by its order: no number was taken
    year = clock.now().year
    assert out["numbers"] == [f"RE{year}-{n:06d}" for n in range(1, planned)]  # no number lost to it
    with app.session() as s:
        [t] = s.scalars(select(Ticket).where(Ticket.kind == "invoice_failed")).all()
        assert t.order.external_id == bad
