"""Dropshipping on a real database: routing to partners with fresh availability, purchase orders
sent, answered, shipped, re-routed and chased, through the services and the CLI's stages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.app import App
from caturactl.core import clock
from caturactl.core.errors import InputError, NotFound, StateError
from caturactl.core.events import Event
from caturactl.fulfilment import routing
from caturactl.fulfilment.dropship import outgoing, partner_stock, rerouting, service
from caturactl.fulfilment.dropship.inbox import Reader
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.fulfilment.models import DeliveryNote, ShippedParcel
from caturactl.orders.tickets import Ticket
from caturactl.outbox.models import OutboxMessage
from connectors.opentrans import OpenTrans
from tests import factories as f
from tests.dropship import config, dispatch, order_response

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # a Tuesday


@pytest.fixture
def app(migrated_database_url, tmp_path):
    f.fixed_clock(T)
    a = App(config(migrated_database_url, tmp_path))
    yield a
    a.dispose()


def _order(s, lines=("A-1", "B-1"), **kw):
    for sku in lines:
        f.product(s, sku)
    return f.released(s, [f.Line(sku=sku, quantity=1) for sku in lines], **kw)


def _route(app, s):
    r = routing.Router(s, app.cfg).run()
    return r


def _send(app, s):
    return outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())


def _pos(s, partner=None):
    q = select(PurchaseOrder).order_by(PurchaseOrder.id)
    if partner:
        q = q.where(PurchaseOrder.partner == partner)
    return s.scalars(q).all()


def test_a_line_we_do_not_stock_goes_to_the_dropshipper_and_the_rest_stays_ours(app):
    with app.session() as s:
        f.stock(s, "WH", "A-1", 5)
        service.set_availability(s, "DS1", {"B-1": 4}, actor="test")
        order = _order(s)
        s.commit()
        r = _route(app, s)
        assert r.routed == 1 and r.deliveries == 2
        notes = {n.location: n for n in s.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order.id))}
        assert set(notes) == {"WH", "DS1"}
        assert [ln.sku for ln in notes["WH"].lines] == ["A-1"]
        [po] = _pos(s)
        assert (po.partner, po.state, po.delivery_id) == ("DS1", "created", notes["DS1"].id)
        assert [(ln.sku, ln.quantity, ln.purchase_price, ln.state) for ln in po.lines] == \
            [("B-1", 1, f.money("7.50"), "open")]
        # one business day of lead time before the partner's parcel leaves
        assert notes["DS1"].ship_date > notes["WH"].ship_date
        # the partner's pieces are held by the purchase order: what may be ordered went down
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"]["B-1"] == 3


def test_an_order_that_may_not_be_split_goes_whole_to_the_dropshipper(app):
    app.cfg.locations["DS1"].split_with_own = False
    with app.session() as s:
        f.stock(s, "WH", "A-1", 5)
        service.set_availability(s, "DS1", {"A-1": 2, "B-1": 4}, actor="test")
        _order(s)
        s.commit()
        _route(app, s)
        [po] = _pos(s)
        assert sorted(ln.sku for ln in po.lines) == ["A-1", "B-1"]
        assert s.scalar(select(DeliveryNote.location).where(DeliveryNote.location == "WH")) is None


def test_a_stale_feed_counts_as_zero_and_the_order_waits(app):
    with app.session() as s:
        f.stock(s, "WH", "A-1", 5)
        service.set_availability(s, "DS1", {"B-1": 4}, actor="test", as_of=T - timedelta(hours=25))
        order = _order(s)
        s.commit()
        r = _route(app, s)
        assert r.waiting == [order.external_id] and _pos(s) == []
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"]["B-1"] == 0
        service.set_availability(s, "DS1", {"B-1": 4}, actor="test")  # a fresh feed
        s.commit()
        assert _route(app, s).routed == 1


def test_a_partner_that_may_not_serve_the_channel_gets_nothing(app):
    app.cfg.locations["DS1"].channels = ["shop"]
    with app.session() as s:
        f.stock(s, "WH", "A-1", 5)
        service.set_availability(s, "DS1", {"B-1": 4}, actor="test")
        _order(s)
        s.commit()
        assert _route(app, s).routed == 0 and _pos(s) == []


def test_sending_queues_the_opentrans_file_and_starts_the_deadline_in_business_hours(app, tmp_path):
    with app.session() as s:
        service.set_availability(s, "DS1", {"B-1": 4}, actor="test")
        _order(s, ("B-1",))
        s.commit()
        _route(app, s)
        r = _send(app, s)
        s.commit()
        [po] = _pos(s)
        assert r.files == [f"{po.number}.xml"] and po.state == "sent"
        # 09:00 UTC is 10:00 in Köln: 8 business hours end at 18:00 the same day (17:00 UTC)
        assert po.respond_by == datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc)
        assert po.delivery.state == "exported"
        keys = s.scalars(select(OutboxMessage.key).where(OutboxMessage.target == "ds1").order_by(OutboxMessage.id))
        # the papers for the parcel first, then the ORDER that names them
        assert list(keys) == [f"upload:ds1:{po.number}-delivery_note.pdf", f"upload:ds1:{po.number}-label.pdf",
                              f"upload:ds1:{po.number}.xml"]


def test_a_partner_on_the_portal_sees_only_its_own_purchase_orders(app):
    with app.session() as s:
        service.set_availability(s, "DS2", {"B-1": 4}, actor="test")
        _order(s, ("B-1",))
        s.commit()
        _route(app, s)
        _send(app, s)
        s.commit()
        [po] = _pos(s, "DS2")
        assert po.file_name == "" and po.state == "sent"
        assert [x.number for x in service.purchase_orders(s, "DS2")] == [po.number]
        assert service.count_purchase_orders(s, "DS2") == 1
        assert service.purchase_orders(s, "DS1", view="all") == []
        with pytest.raises(NotFound):
            service.purchase_order(s, "DS1", po.number)
        with pytest.raises(NotFound):
            service.accept_lines(s, "DS1", po.number, None, actor="portal:mallory@ds1.example")
        d = service.purchase_order(s, "DS2", po.number)
        assert d.ship_to.city == "Berlin" and not hasattr(d.ship_to, "email")


def _sent_po(app, s, partner="DS1", lines=("B-1",), **avail):
    service.set_availability(s, partner, avail or {sku: 5 for sku in lines}, actor="test")
    _order(s, lines)
    s.commit()
    _route(app, s)
    _send(app, s)
    s.commit()
    return _pos(s, partner)[-1]


def test_accept_then_ship_on_the_portal_confirms_the_delivery_note(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS2")
        service.accept_lines(s, "DS2", po.number, None, actor="portal:anna@ds2.example")
        s.commit()
        assert po.state == "accepted" and po.lines[0].state == "accepted"
        with pytest.raises(InputError, match="tracking"):
            service.add_parcel(s, "DS2", po.number, carrier="DPD", tracking="12345", lines=None,
                               actor="portal:anna@ds2.example")
        s.rollback()
        number = make_number("DPD", 42)
        service.add_parcel(s, "DS2", po.number, carrier="dpd", tracking=number, lines={1: 1},
                           actor="portal:anna@ds2.example")
        s.commit()
        s.expire_all()
        po = _pos(s, "DS2")[0]
        assert (po.state, po.lines[0].state) == ("closed", "shipped")  # every line shipped: closed
        assert po.shipped_at is not None and po.closed_at is not None
        parcel = s.scalar(select(ShippedParcel).where(ShippedParcel.delivery_id == po.delivery_id))
        assert (parcel.carrier, parcel.tracking_number) == ("DPD", number)
        assert po.delivery.state in ("confirmed", "shipped")
        actors = set(s.scalars(select(Event.actor).where(Event.subject.in_(["purchase_order", "purchase_line"]))))
        assert "portal:anna@ds2.example" in actors


def test_a_rejected_line_goes_to_the_next_dropshipper(app):
    with app.session() as s:
        service.set_availability(s, "DS2", {"B-1": 3}, actor="test")
        po = _sent_po(app, s, "DS1")
        service.reject_line(s, "DS1", po.number, 1, "out_of_stock", actor="portal:ben@ds1.example")
        s.commit()
        s.expire_all()
        first, second = _pos(s)
        assert (first.partner, first.state, first.lines[0].state, first.lines[0].reject_reason) == \
            ("DS1", "closed", "rejected", "out_of_stock")
        assert first.delivery.state == "cancelled"
        assert (second.partner, second.state, second.lines[0].sku) == ("DS2", "created", "B-1")
        with pytest.raises(StateError):
            service.accept_lines(s, "DS1", first.number, [1], actor="portal:ben@ds1.example")


def test_a_rejected_line_with_nowhere_to_go_becomes_a_ticket(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS1")
        service.reject_line(s, "DS1", po.number, 1, "discontinued", actor="cli:root")
        s.commit()
        t = s.scalar(select(Ticket).where(Ticket.kind == "dropship"))
        assert t is not None and t.external_ref == po.number and "B-1" in t.text
        assert len(_pos(s)) == 1


def test_no_answer_within_the_business_hours_sends_the_line_to_a_person(app):
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=timezone.utc)  # 16:00 in Köln
    f.fixed_clock(friday)
    with app.session() as s:
        po = _sent_po(app, s, "DS1")
        # 8 business hours from Friday 16:00: 2 on Friday, 6 on Monday -> Monday 14:00 local, 13:00 UTC
        assert po.respond_by == datetime(2026, 11, 30, 13, 0, tzinfo=timezone.utc)
        monday_morning = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
        assert rerouting.overdue(s, app.cfg, now=monday_morning).expired == []
        r = rerouting.overdue(s, app.cfg, now=datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc))
        s.commit()
        assert r.expired == [f"{po.number}/1"] and r.tickets == 1
        s.expire_all()
        po = _pos(s)[0]
        assert (po.state, po.lines[0].state) == ("closed", "expired")
        assert s.scalar(select(Ticket.kind).where(Ticket.external_ref == po.number)) == "dropship"


def test_no_answer_in_time_reroutes_to_own_stock_that_came_in(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS1")
        f.stock(s, "WH", "B-1", 2)
        s.commit()
        r = rerouting.overdue(s, app.cfg, now=po.respond_by + timedelta(minutes=1))
        s.commit()
        assert r.rerouted == 1
        wh = s.scalar(select(DeliveryNote).where(DeliveryNote.location == "WH"))
        assert wh is not None and wh.lines[0].sku == "B-1" and wh.state == "created"


def _drop(app, tmp_path: Path, name: str, content: bytes) -> None:
    out = tmp_path / "ds1" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(content)


def _read(app, s):
    return Reader(s, app.cfg, app.transport, OpenTrans(), now=clock.now()).run()


def test_opentrans_answers_and_dispatch_from_the_return_channel(app, tmp_path):
    with app.session() as s:
        po = _sent_po(app, s, "DS1", lines=("B-1", "C-1"))
        _drop(app, tmp_path, "answer.xml", order_response(po.number, {1: (1, ""), 2: (0, "out_of_stock")}))
        r = _read(app, s)
        assert (r.answers, r.rejected) == (2, [])
        s.expire_all()
        po = _pos(s, "DS1")[0]
        assert [ln.state for ln in po.lines] == ["accepted", "rejected"]
        assert po.state == "accepted"
        number = make_number("DHL", 7)
        f.fixed_clock(T + timedelta(hours=6))
        _drop(app, tmp_path, "dispatch.xml", dispatch(po.number, number, {1: 1}))
        r = _read(app, s)
        assert (r.parcels, r.rejected) == (1, [])
        s.expire_all()
        po = _pos(s, "DS1")[0]
        assert po.state == "closed" and po.parcels[0].tracking_number == number  # line 2 rejected, line 1 shipped
        assert sorted(p.name for p in (tmp_path / "ds1" / "out" / "archive").iterdir()) == ["answer.xml", "dispatch.xml"]


def test_a_bad_dispatch_file_changes_nothing_and_gets_a_ticket(app, tmp_path):
    with app.session() as s:
        po = _sent_po(app, s, "DS1")
        service.accept_lines(s, "DS1", po.number, None, actor="test")
        s.commit()
        _drop(app, tmp_path, "bad.xml", dispatch(po.number, "NOT-A-DHL-NUMBER", {1: 1}))
        r = _read(app, s)
        assert len(r.rejected) == 1 and "tracking" in r.rejected[0]
        s.expire_all()
        po = _pos(s, "DS1")[0]
        assert po.state == "accepted" and po.parcels == [] and po.lines[0].shipped == 0
        assert (tmp_path / "ds1" / "out" / "error" / "bad.xml").exists()
        assert s.scalar(select(Ticket.kind).where(Ticket.external_ref == "bad.xml")) == "confirmation_rejected"


def test_an_answer_naming_another_partners_purchase_order_is_refused(app, tmp_path):
    with app.session() as s:
        po = _sent_po(app, s, "DS2")
        _drop(app, tmp_path, "sneaky.xml", order_response(po.number, {1: (0, "other")}))
        r = _read(app, s)
        assert len(r.rejected) == 1 and "unknown purchase order" in r.rejected[0]
        s.expire_all()
        assert _pos(s, "DS2")[0].lines[0].state == "open"


def test_an_availability_csv_is_all_or_nothing(app):
    with app.session() as s:
        service.import_availability_csv(s, "DS1", b"sku;quantity\nB-1;4\nC-1;2\n", actor="test", filename="a.csv")
        s.commit()
        with pytest.raises(InputError) as e:
            service.import_availability_csv(s, "DS1", b"sku;quantity\nB-1;9\nC-1;lots\n", actor="test",
                                            filename="b.csv")
        assert e.value.where == "b.csv:3:quantity"
        s.rollback()
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"] == {"B-1": 4, "C-1": 2}
