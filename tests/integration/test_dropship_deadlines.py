"""Dropship deadlines on a real database: availability dated by the partner's own clock, the
ship-by of accepted lines, unanswered lines of partly shipped purchase orders, and purchase
orders that close when every line is done."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.core import clock
from caturactl.fulfilment.dropship import partner_stock, rerouting, service
from caturactl.fulfilment.dropship.models import DropshipAvailability
from caturactl.orders.tickets import Ticket
from tests import factories as f
from tests.integration.test_dropship import T, _drop, _pos, _read, _sent_po, app  # noqa: F401 (fixture)

UTC = timezone.utc


def _figure(s, sku: str) -> DropshipAvailability:
    return s.scalar(select(DropshipAvailability).where(DropshipAvailability.partner == "DS1",
                                                       DropshipAvailability.sku == sku))


def test_an_availability_file_left_for_days_counts_from_the_partners_date_not_ours(app, tmp_path):
    two_days_ago = T - timedelta(days=2)
    _drop(app, tmp_path, "stock.csv", f"sku;quantity;as_of\nB-1;4;{two_days_ago.isoformat()}\n".encode())
    with app.session() as s:
        r = _read(app, s)
        s.commit()
        assert (r.availability, r.rejected) == (1, [])
        assert _figure(s, "B-1").as_of == two_days_ago
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"] == {"B-1": 0}  # older than 24 h


def test_an_uploaded_availability_file_counts_from_the_partners_date_too(app):
    two_days_ago = T - timedelta(days=2)
    with app.session() as s:
        service.import_availability_csv(s, "DS1", f"sku;quantity;as_of\nB-1;4;{two_days_ago.isoformat()}\n".encode(),
                                        actor="portal:test", filename="upload.csv", cfg=app.cfg)
        s.commit()
        assert _figure(s, "B-1").as_of == two_days_ago
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"] == {"B-1": 0}  # older than 24 h


def test_an_as_of_without_offset_is_the_partners_local_time_and_the_oldest_row_dates_the_file(app, tmp_path):
    # 08:00 in Köln (UTC+1 in November) is 07:00 UTC; the other row is younger
    _drop(app, tmp_path, "stock.csv", b"sku;quantity;as_of\nB-1;4;2026-11-24T08:00:00\nC-1;2;2026-11-24T09:30\n")
    with app.session() as s:
        _read(app, s)
        s.commit()
        assert _figure(s, "B-1").as_of == _figure(s, "C-1").as_of == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
        assert partner_stock.orderable(s, app.cfg, clock.now())["DS1"] == {"B-1": 4, "C-1": 2}


def test_an_availability_file_without_a_date_counts_from_when_we_read_it(app, tmp_path):
    _drop(app, tmp_path, "stock.csv", b"sku;quantity\nB-1;4\n")
    with app.session() as s:
        _read(app, s)
        s.commit()
        assert _figure(s, "B-1").as_of == clock.now()


@pytest.mark.parametrize("value, why", [("2026-11-25T09:00:00+00:00", "future"), ("yesterday", "ISO 8601")])
def test_an_availability_file_dated_in_the_future_or_unreadably_is_rejected_whole(app, tmp_path, value, why):
    _drop(app, tmp_path, "stock.csv", f"sku;quantity;as_of\nB-1;4;{value}\nC-1;2;{value}\n".encode())
    with app.session() as s:
        r = _read(app, s)
        s.commit()
        assert len(r.rejected) == 1 and why in r.rejected[0]
        assert _figure(s, "B-1") is None


def test_an_accepted_line_gets_a_ship_by_from_lead_time_and_cutoff_and_one_ticket_when_past_it(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS1")  # accepted Tuesday 10:00 in Köln, before the 14:00 cut-off
        service.accept_lines(s, "DS1", po.number, None, actor="test")
        s.commit()
        # ships Tuesday, plus 1 business day of lead time: due by the end of Wednesday (local)
        due = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
        assert po.lines[0].ship_by == due  # given at the acceptance, not at the next overdue run
        r = rerouting.overdue(s, app.cfg, now=due - timedelta(minutes=1))
        s.commit()
        assert (po.lines[0].ship_by, r.late, r.late_tickets) == (due, [], 0)
        r = rerouting.overdue(s, app.cfg, now=due + timedelta(minutes=1))
        s.commit()
        assert (r.late, r.late_tickets, r.expired) == ([f"{po.number}/1"], 1, [])
        again = rerouting.overdue(s, app.cfg, now=due + timedelta(hours=5))
        s.commit()
        assert (again.late, again.late_tickets) == ([f"{po.number}/1"], 0)
        [ticket] = s.scalars(select(Ticket).where(Ticket.external_ref == po.number)).all()
        assert (ticket.kind, ticket.reasons) == ("dropship", rerouting.LATE_REASON) and "B-1" in ticket.text
        s.expire_all()
        assert len(_pos(s)) == 1 and _pos(s)[0].lines[0].state == "accepted"  # not routed again


def test_a_purchase_order_shows_its_ship_by_day_even_when_its_partner_is_no_longer_configured(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS1")
        service.accept_lines(s, "DS1", po.number, None, actor="test")
        s.commit()
        assert [ln.ship_by for ln in service.purchase_order(s, "DS1", po.number).lines] == [
            datetime(2026, 11, 25).date()]  # the end of Wednesday in Köln
        del app.cfg.locations["DS1"]  # taken out of caturactl.toml; its purchase orders stay
        detail = service.purchase_order(s, "DS1", po.number)
        assert [ln.ship_by for ln in detail.lines] == [datetime(2026, 11, 25).date()]  # the merchant's zone


def test_a_line_accepted_after_the_cutoff_gets_a_day_more(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS1")
        f.fixed_clock(datetime(2026, 11, 24, 14, 30, tzinfo=UTC))  # 15:30 in Köln: after the cut-off
        service.accept_lines(s, "DS1", po.number, None, actor="test")
        s.commit()
        rerouting.overdue(s, app.cfg, now=clock.now())
        assert po.lines[0].ship_by == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)  # ships Wednesday, due Thursday


def test_an_unanswered_line_of_a_partly_shipped_purchase_order_expires_and_the_order_closes(app):
    with app.session() as s:
        po = _sent_po(app, s, "DS1", lines=("B-1", "C-1"))
        service.add_parcel(s, "DS1", po.number, carrier="DHL", tracking=make_number("DHL", 31), lines={1: 1},
                           actor="test")
        s.commit()
        assert (po.state, [ln.state for ln in po.lines]) == ("partially_shipped", ["shipped", "open"])
        r = rerouting.overdue(s, app.cfg, now=po.respond_by + timedelta(minutes=1))
        s.commit()
        assert r.expired == [f"{po.number}/2"]
        s.expire_all()
        po = _pos(s, "DS1")[0]
        assert (po.state, [ln.state for ln in po.lines]) == ("closed", ["shipped", "expired"])
        assert po.closed_at is not None and po.shipped_at is not None
