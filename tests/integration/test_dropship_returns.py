"""Returns at the dropshipper and cancellations of its purchase orders, on a real database: a return
is announced, the partner told (a file through the outbox, or the portal), its receipt confirmed
(portal, CLI or a file read by ``dropship read``), then credited through the invoicing service
with the partner's purchase credit, or refused; a cancelled order's open purchase order is
cancelled, or the partner asked and its answer applied."""

from __future__ import annotations

import json
import subprocess
import tomllib
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.app import App
from caturactl.billing.models import CREDIT_NOTE, Invoice
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.errors import InputError, NotFound, StateError
from caturactl.core.events import Event
from caturactl.fulfilment import routing
from caturactl.fulfilment.dropship import back_office, cancellations, outgoing, partner_stock, returns, service
from caturactl.fulfilment.dropship.inbox import Reader
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderCancellation
from caturactl.fulfilment.dropship.purchases import PurchaseCredit
from caturactl.fulfilment.models import DeliveryNote
from caturactl.orders.cancelling import cancel_order
from caturactl.orders.tickets import OPEN, Ticket
from caturactl.outbox.models import OutboxMessage
from connectors.opentrans import OpenTrans
from tests import factories as f
from tests.dropship import sections
from tests.fulfilment import COMPANY

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # a Tuesday
CARRIER = {"DS1": "DHL", "DS2": "DPD"}


def _mail(smtp_server) -> str:
    return (f'\n[mail]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nsecurity = "none"\n'
            'from_address = "service@test-handel.example"\n')


@pytest.fixture
def app(migrated_database_url, tmp_path, smtp_server):
    f.fixed_clock(T)
    text = COMPANY + f'\n[database]\nurl = "{migrated_database_url}"\n' + _mail(smtp_server) + sections(tmp_path)
    a = App(Config.model_validate(tomllib.loads(text)))
    yield a
    a.dispose()


def _sent(app, s, partner: str, lines=("B-1",), **order_kw):
    """A phone order (its channel mails its buyers) of ``lines`` routed to ``partner`` and sent."""
    service.set_availability(s, partner, {sku: 5 for sku in lines}, actor="test")
    for sku in lines:
        f.product(s, sku)
    order = f.released(s, [f.Line(sku=sku, quantity=2) for sku in lines], channel="phone", **order_kw)
    s.commit()
    routing.Router(s, app.cfg).run()
    outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())
    s.commit()
    po = s.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == order.id, PurchaseOrder.partner == partner))
    return order, po


def _shipped_and_invoiced(app, s, partner: str = "DS2", lines=("B-1",)):
    order, po = _sent(app, s, partner, lines)
    service.add_parcel(s, partner, po.number, carrier=CARRIER[partner], tracking=make_number(CARRIER[partner], po.id),
                       lines=None, actor=f"portal:anna@{partner.lower()}.example")
    s.commit()
    [invoice] = f.invoiced(s, app.cfg, order)
    s.commit()
    return order, po, invoice


def _one_return(s) -> returns.DropshipReturn:
    [rt] = s.scalars(select(returns.DropshipReturn)).all()
    return rt


def test_a_partner_on_the_portal_sees_the_return_and_only_it_may_confirm_it(app):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2")
        out = back_office.announce_return(app, order.external_id, {1: 1}, "zu klein", dry_run=False)
        assert out.data["files"] == []  # DS2 has no transport: it sees the return in the portal
        [seen] = service.returns(s, "DS2")
        assert (seen.purchase_order, seen.state, seen.lines, seen.reason) == (po.number, "announced", (("B-1", 1),),
                                                                              "zu klein")
        assert seen.label_reference == seen.number  # no carrier label: the return's number is the reference
        assert service.returns(s, "DS1") == []
        with pytest.raises(NotFound):
            service.confirm_return(s, "DS1", seen.id, condition="as_new", note="", actor="portal:mallory@ds1.example")
        with pytest.raises(InputError):
            service.confirm_return(s, "DS2", seen.id, condition="kaputt", note="", actor="portal:anna@ds2.example")
        service.confirm_return(s, "DS2", seen.id, condition="as_new", note="originalverpackt",
                               actor="portal:anna@ds2.example")
        s.commit()
        rt = _one_return(s)
        assert (rt.state, rt.condition, rt.note, rt.received_by) == ("received", "as_new", "originalverpackt",
                                                                     "portal:anna@ds2.example")
        assert service.returns(s, "DS2") == [] and service.returns(s, "DS2", view="received")[0].id == rt.id
        actors = set(s.scalars(select(Event.actor).where(Event.subject == "dropship_return")))
        assert "portal:anna@ds2.example" in actors
        notice = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"email:return_received:{order.external_id}"
                                                                          f":{rt.number}"))
        assert notice is not None and rt.number in notice.payload["body"]
        assert notice.payload["to"] == [order.buyer_email]
        with pytest.raises(StateError):
            service.confirm_return(s, "DS2", rt.id, condition="damaged", note="", actor="portal:anna@ds2.example")


def test_a_received_return_is_credited_with_a_credit_note_and_the_partners_purchase_credit(app):
    with app.session() as s:
        order, po, invoice = _shipped_and_invoiced(app, s, "DS2")
        back_office.announce_return(app, order.external_id, {1: 1}, "gefällt nicht", dry_run=False)
        rt = _one_return(s)
        service.confirm_return(s, "DS2", rt.number, condition="opened", note="", actor="portal:anna@ds2.example")
        s.commit()
    out = back_office.credit_returns(app, dry_run=False)
    assert out.exit_code == 0 and len(out.data["credited"]) == 1
    with app.session() as s:
        rt = _one_return(s)
        credit = s.scalar(select(Invoice).where(Invoice.kind == CREDIT_NOTE))
        assert rt.state == "credited" and rt.credit_note == credit.number
        assert credit.corrects_id == invoice.id and credit.reason.startswith(f"Retoure {rt.number}")
        [item] = credit.document["items"]
        assert (item["sku"], Decimal(item["quantity"])) == ("B-1", 1)
        # the channel mails invoices: the credit note went to the buyer through the outbox
        assert s.scalar(select(OutboxMessage.status).where(OutboxMessage.key == f"email:invoice:{credit.number}"))
        [pc] = s.scalars(select(PurchaseCredit)).all()
        # DS2's agreed price for B-1 is 8.10 net; 19 % German VAT on top
        assert (pc.partner, pc.net, pc.tax_rate, pc.gross) == ("DS2", f.money("8.10"), Decimal(19), f.money("9.64"))
    assert back_office.credit_returns(app, dry_run=False).data["credited"] == []  # credited once


def test_a_damaged_return_waits_for_a_person_who_may_refuse_it(app):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2")
        back_office.announce_return(app, order.external_id, None, "defekt", dry_run=False)
        rt = _one_return(s)
        assert [(ln.sku, ln.quantity) for ln in rt.lines] == [("B-1", 2)]
        service.confirm_return(s, "DS2", rt.id, condition="damaged", note="Glas zerbrochen",
                               actor="portal:anna@ds2.example")
        s.commit()
        ticket = s.scalar(select(Ticket).where(Ticket.external_ref == rt.number))
        assert ticket.kind == "dropship" and "damaged" in ticket.text and ticket.status == OPEN
    out = back_office.credit_returns(app, dry_run=False)
    assert out.data["credited"] == [] and out.data["waiting"] == [f"{rt.number}: damaged"]
    with pytest.raises(InputError):
        back_office.refuse_return(app, rt.number, "  ", dry_run=False)
    back_office.refuse_return(app, rt.number, "vom Käufer beschädigt", dry_run=False)
    with app.session() as s:
        rt = _one_return(s)
        assert rt.state == "refused" and rt.decision == "vom Käufer beschädigt"
        assert s.scalar(select(Ticket.status).where(Ticket.external_ref == rt.number)) == "resolved"
        assert s.scalar(select(Invoice).where(Invoice.kind == CREDIT_NOTE)) is None
        body = s.scalar(select(OutboxMessage.payload).where(OutboxMessage.key.like("email:return_refused:%")))["body"]
        assert "vom Käufer beschädigt" in body


def test_a_person_credits_a_damaged_return_by_name(app):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2")
        back_office.announce_return(app, order.external_id, {1: 1}, "Transportschaden", dry_run=False)
        rt = _one_return(s)
        service.confirm_return(s, "DS2", rt.id, condition="damaged", note="", actor="portal:anna@ds2.example")
        s.commit()
    with pytest.raises(InputError):
        back_office.credit_returns(app, only=rt.number, dry_run=False)  # a person says why
    out = back_office.credit_returns(app, only=rt.number, note="Transportschaden, Kulanz", dry_run=False)
    assert len(out.data["credited"]) == 1
    with app.session() as s:
        rt = _one_return(s)
        assert rt.state == "credited" and rt.decision == "Transportschaden, Kulanz"
        assert s.scalar(select(Ticket.status).where(Ticket.external_ref == rt.number)) == "resolved"


def test_a_return_of_an_order_not_invoiced_yet_waits_with_a_ticket(app):
    with app.session() as s:
        order, po = _sent(app, s, "DS2")
        service.add_parcel(s, "DS2", po.number, carrier="DPD", tracking=make_number("DPD", 5), lines=None,
                           actor="portal:anna@ds2.example")
        s.commit()
        back_office.announce_return(app, order.external_id, {1: 1}, "zu groß", dry_run=False)
        rt = _one_return(s)
        service.confirm_return(s, "DS2", rt.id, condition="as_new", note="", actor="portal:anna@ds2.example")
        s.commit()
    out = back_office.credit_returns(app, dry_run=False)
    assert out.exit_code == 65 and out.data["failed"][0].startswith(rt.number)
    with app.session() as s:
        assert _one_return(s).state == "received"
        assert "invoice the order first" in s.scalar(select(Ticket.text).where(Ticket.external_ref == rt.number))


def test_more_pieces_than_the_partner_shipped_cannot_be_returned(app):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2")
        with pytest.raises(InputError) as e:
            returns.announce(s, app.cfg, order, {1: 3}, "zu viel", source="test", now=clock.now())
        assert e.value.where == "--lines" and "2 shipped" in e.value.message
        with pytest.raises(InputError):
            returns.announce(s, app.cfg, order, {2: None}, "gibt es nicht", source="test", now=clock.now())
        returns.announce(s, app.cfg, order, {1: 2}, "alles zurück", source="test", now=clock.now())
        with pytest.raises(InputError):  # both pieces are on their way back already
            returns.announce(s, app.cfg, order, {1: 1}, "noch einmal", source="test", now=clock.now())


def _drop(tmp_path: Path, name: str, content: bytes) -> None:
    out = tmp_path / "ds1" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(content)


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _read(app, s):
    return Reader(s, app.cfg, app.transport, OpenTrans(), now=clock.now()).run()


def test_a_partner_with_a_transport_gets_a_notice_file_and_confirms_by_file(app, tmp_path):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS1", lines=("B-1", "C-1"))
        out = back_office.announce_return(app, order.external_id, {1: 1, 2: 2}, "falsche Farbe", label="RL-4711",
                                          dry_run=False)
        rt = _one_return(s)
        assert out.data["files"] == [f"{rt.number}-return-label.pdf", f"RETURN_{rt.number}.csv"]
        assert out.data["sent"]["failed"] == 0
        # the return label: from the buyer to DS1's address, in the carrier's layout, and not booked
        label = _pdf_text(tmp_path / "ds1" / "in" / f"{rt.number}-return-label.pdf")
        assert rt.number in label and po.number in label and "Not booked with DHL" in label
        assert "1,50 kg" in label  # the three pieces coming back, 500 g each
        assert label.index(order.ship_city) < label.index("Bremen")  # sender (the buyer) above the receiver
        notice = (tmp_path / "ds1" / "in" / f"RETURN_{rt.number}.csv").read_text(encoding="utf-8").splitlines()
        assert notice[0].startswith("return;purchase_order;line;sku;")
        assert notice[1].startswith(f"{rt.number};{po.number};1;B-1;") and ";RL-4711;" in notice[1]
        assert "@" not in "".join(notice)  # no e-mail address of the buyer goes to the partner
        assert back_office.send_notices(app, dry_run=False).data["files"] == []  # queued once
        # a file naming an unknown condition changes nothing
        _drop(tmp_path, "bad.csv", f"return;condition;note\n{rt.number};kaputt;\n".encode())
        r = _read(app, s)
        assert len(r.rejected) == 1 and "bad.csv:2:condition" in r.rejected[0]
        s.expire_all()
        assert _one_return(s).state == "announced"
        _drop(tmp_path, "receipt.csv", f"return;condition;note\n{rt.number};opened;Karton offen\n".encode())
        r = _read(app, s)
        assert (r.returns, r.rejected) == (1, [])
        s.expire_all()
        rt = _one_return(s)
        assert (rt.state, rt.condition, rt.note, rt.received_by) == ("received", "opened", "Karton offen",
                                                                     "file:receipt.csv")


def test_a_confirmation_file_naming_another_partners_return_is_refused(app, tmp_path):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2")
        back_office.announce_return(app, order.external_id, {1: 1}, "zu klein", dry_run=False)
        rt = _one_return(s)
        _drop(tmp_path, "sneaky.csv", f"return;condition\n{rt.number};as_new\n".encode())
        r = _read(app, s)
        assert len(r.rejected) == 1 and "unknown return" in r.rejected[0]
        s.expire_all()
        assert _one_return(s).state == "announced"


# --- cancellation requests -----------------------------------------------------------------------------


def test_an_order_cancelled_at_the_channel_asks_the_partner_and_its_acceptance_cancels_the_purchase_order(
        app, tmp_path):
    with app.session() as s:
        order, po = _sent(app, s, "DS1")
        service.accept_lines(s, "DS1", po.number, None, actor="test")
        s.commit()
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"]["B-1"] == 3
        cancel_order(s, app.cfg, order, "cancelled at the channel", at_channel=True)
        s.commit()
        c = s.scalar(select(PurchaseOrderCancellation))
        assert (c.state, c.reason) == ("requested", "cancelled at the channel")
        assert s.get(DeliveryNote, po.delivery_id).state == "cancelled"
        # the request replaces the "stop the parcel" ticket a location without one would get
        assert s.scalar(select(Ticket).where(Ticket.kind == "stop_delivery")) is None
    out = back_office.send_notices(app, dry_run=False)
    assert out.data["files"] == [f"CANCEL_{po.number}.csv"]
    request = (tmp_path / "ds1" / "in" / f"CANCEL_{po.number}.csv").read_text(encoding="utf-8").splitlines()
    assert request[1].startswith(f"{po.number};1;B-1;2;cancelled at the channel;")
    with app.session() as s:
        _drop(tmp_path, "answer.csv", f"purchase_order;cancellation;note\n{po.number};accepted;\n".encode())
        r = _read(app, s)
        assert (r.cancellations, r.rejected) == (1, [])
        s.expire_all()
        po = s.get(PurchaseOrder, po.id)
        assert po.state == "cancelled" and [ln.state for ln in po.lines] == ["cancelled"]
        assert s.scalar(select(PurchaseOrderCancellation)).state == "accepted"
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"]["B-1"] == 5  # its pieces are free again


def test_a_refused_cancellation_opens_a_ticket(app):
    with app.session() as s:
        order, po = _sent(app, s, "DS2")
        cancel_order(s, app.cfg, order, "buyer cancelled", at_channel=True)
        s.commit()
    with pytest.raises(NotFound):
        back_office.answer_cancellation(app, "PO999999", accept=False, note="", dry_run=False)
    out = back_office.answer_cancellation(app, po.number, accept=False, note="schon gepackt", dry_run=False)
    assert out.data["changed"] is True
    with app.session() as s:
        assert s.scalar(select(PurchaseOrderCancellation)).state == "refused"
        ticket = s.scalar(select(Ticket).where(Ticket.kind == "dropship", Ticket.external_ref == po.number))
        assert ticket.status == OPEN and "refused to cancel" in ticket.text and "schon gepackt" in ticket.text
        assert s.get(PurchaseOrder, po.id).state == "sent"
    # the same answer again changes nothing; the other one is refused
    again = back_office.answer_cancellation(app, po.number, accept=False, note="", dry_run=False)
    assert again.data["changed"] is False
    with pytest.raises(StateError):
        back_office.answer_cancellation(app, po.number, accept=True, note="", dry_run=False)


def test_a_partner_on_the_portal_sees_and_accepts_the_cancellation_of_its_own_purchase_order_only(app):
    with app.session() as s:
        order, po = _sent(app, s, "DS2")
        cancel_order(s, app.cfg, order, "buyer cancelled", at_channel=True)
        s.commit()
        assert [c.purchase_order for c in cancellations.pending(s, "DS2")] == [po.number]
        assert cancellations.pending(s, "DS1") == []
        with pytest.raises(NotFound):
            cancellations.answer_request(s, "DS1", po.number, accept=True, actor="portal:mallory@ds1.example")
        assert cancellations.answer_request(s, "DS2", po.number, accept=True, note="ok",
                                            actor="portal:anna@ds2.example")
        s.commit()
        s.expire_all()
        assert s.get(PurchaseOrder, po.id).state == "cancelled" and cancellations.pending(s, "DS2") == []
        actors = set(s.scalars(select(Event.actor).where(Event.subject == "po_cancellation")))
        assert "portal:anna@ds2.example" in actors and len(actors) == 2  # who asked, who answered


def test_a_purchase_order_not_sent_yet_is_simply_cancelled(app):
    with app.session() as s:
        service.set_availability(s, "DS2", {"B-1": 5}, actor="test")
        f.product(s, "B-1")
        order = f.released(s, [f.Line(sku="B-1", quantity=1)], channel="phone")
        s.commit()
        routing.Router(s, app.cfg).run()
        s.commit()
        po = s.scalar(select(PurchaseOrder))
        assert po.state == "created"
        cancel_order(s, app.cfg, order, "buyer cancelled", at_channel=True)
        s.commit()
        s.expire_all()
        assert s.get(PurchaseOrder, po.id).state == "cancelled"
        assert s.scalar(select(PurchaseOrderCancellation)) is None


def test_a_line_rejected_after_the_cancellation_goes_nowhere(app):
    with app.session() as s:
        order, po = _sent(app, s, "DS1")
        service.set_availability(s, "DS2", {"B-1": 5}, actor="test")
        cancel_order(s, app.cfg, order, "buyer cancelled", at_channel=True)
        s.commit()
        service.reject_line(s, "DS1", po.number, 1, "out_of_stock", actor="test")
        s.commit()
        assert s.scalars(select(PurchaseOrder)).all() == [po]  # no new purchase order for a cancelled order


# --- the commands ----------------------------------------------------------------------------------------


def test_one_return_goes_back_to_a_dropshipper_through_the_commands(bare_workspace, tmp_path, smtp_server):
    ws = bare_workspace
    f.fixed_clock(T)
    ws.write_config(extra=sections(tmp_path) + _mail(smtp_server), company=COMPANY)
    app = ws.app()
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2")
        ext = order.external_id
    app.dispose()
    announced = json.loads(ws.ok("dropship", "return", "announce", ext, "--lines", "1:1", "--reason", "zu klein",
                                 "--json"))
    [made] = announced["returns"]
    assert made["partner"] == "DS2" and made["pieces"] == 1
    listed = json.loads(ws.ok("dropship", "return", "list", "--view", "open", "--json"))
    assert [r["return"] for r in listed] == [made["return"]]
    [label] = json.loads(ws.ok("dropship", "return", "label", made["return"], "--out", str(tmp_path / "papers"),
                               "--json"))
    assert label["partner"] == "DS2" and label["file"].endswith(f"{made['return']}-return-label.pdf")
    assert "Leipzig" in _pdf_text(Path(label["file"]))  # DS2's address is the receiver
    assert ws.run("dropship", "return", "label", "RT999999").code == 66
    (tmp_path / "a-file").write_text("", encoding="utf-8")  # a folder that cannot be made below it
    r = ws.run("dropship", "return", "label", made["return"], "--out", str(tmp_path / "a-file" / "papers"))
    assert r.code == 65 and "cannot write" in r.err and "a-file" in r.err
    ws.ok("dropship", "return", "confirm", made["return"], "--condition", "as_new")
    credited = json.loads(ws.ok("dropship", "return", "credit", "--json"))
    assert len(credited["credited"]) == 1
    [row] = json.loads(ws.ok("dropship", "return", "list", "--json"))
    assert row["state"] == "credited" and row["credit_note"]


def test_a_return_the_channel_reports_goes_to_the_dropshipper_and_the_rest_to_a_person(app):
    with app.session() as s:
        order, po, _ = _shipped_and_invoiced(app, s, "DS2", lines=("B-1",))
        partly, left = returns.announce_channel_return(s, app.cfg, order, whole=False, channel="Storefront",
                                                       now=clock.now())
        assert partly == [] and "without saying which pieces" in left and "--lines" in left
        made, left = returns.announce_channel_return(s, app.cfg, order, whole=True, channel="Storefront",
                                                     now=clock.now())
        s.commit()
        [rt] = made
        assert (rt.partner, rt.source, rt.state, left) == ("DS2", "channel:Storefront", "announced", "")
        assert [(ln.sku, ln.quantity) for ln in rt.lines] == [("B-1", 2)]  # every piece DS2 shipped
        # reported again (or after a person announced it): nothing new, and nobody is told that
        # pieces the dropshipper takes back come back to us
        again, left = returns.announce_channel_return(s, app.cfg, order, whole=True, channel="Storefront",
                                                      now=clock.now())
        assert (again, left) == ([], "")
