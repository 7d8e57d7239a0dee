"""Who is told what around dropshipping (issue 18, items 2 and 3): the buyer of a line that came
back from its partner and now waits for a person (only where the channel lets us mail its
buyers; a re-route that still ships needs no mail), a portal partner of its new purchase orders
(one mail per ``dropship send`` run), and a partner that reads CSV gets its purchase order as
CSV over SFTP to a real OpenSSH sshd."""

from __future__ import annotations

import csv
import io
import json
import os
import tomllib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from caturactl.app import App
from caturactl.config import Config
from caturactl.core import clock
from caturactl.fulfilment import routing, shipping
from caturactl.fulfilment.dropship import outgoing, rerouting, service
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.orders.tickets import Ticket
from caturactl.outbox.models import OutboxMessage
from caturactl.pipeline import send
from connectors.opentrans import OpenTrans
from tests import factories as f
from tests.dropship import sections
from tests.fulfilment import COMPANY
from tests.integration.test_dropship_cli import _no, _sftp

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # a Tuesday
PORTAL = "https://partner.test-handel.example/"


@pytest.fixture
def make_app(migrated_database_url, tmp_path, smtp_server):
    f.fixed_clock(T)
    made = []

    def make(ds2: str = "") -> App:
        text = (COMPANY + f'\n[database]\nurl = "{migrated_database_url}"\n[mail]\nhost = "127.0.0.1"\n'
                f'port = {smtp_server.port}\nsecurity = "none"\nfrom_address = "service@test-handel.example"\n'
                f'[portal]\npublic_url = "{PORTAL}"\n' + sections(tmp_path, ds2=ds2))
        made.append(App(Config.model_validate(tomllib.loads(text))))
        return made[-1]
    yield make
    for a in made:
        a.dispose()


def _sent(app, s, partner: str = "DS1", channel: str = "phone", **avail):
    """An order of one B-1 on ``channel`` routed to ``partner`` and sent; its purchase order."""
    service.set_availability(s, partner, avail or {"B-1": 5}, actor="test")
    f.product(s, "B-1")
    order = f.released(s, [f.Line(sku="B-1", quantity=1, title="Teekanne Blau")], channel=channel)
    s.commit()
    routing.Router(s, app.cfg).run()
    outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())
    s.commit()
    return s.scalar(select(PurchaseOrder).where(PurchaseOrder.order_id == order.id))


def _mails(s, like: str) -> list[OutboxMessage]:
    return list(s.scalars(select(OutboxMessage).where(OutboxMessage.key.like(like)).order_by(OutboxMessage.id)))


def test_a_rejected_line_that_goes_to_a_person_tells_the_buyer_of_the_delay(make_app, smtp_server):
    app = make_app()
    with app.session() as s:
        po = _sent(app, s)
        order = po.order
        service.reject_line(s, "DS1", po.number, 1, "out_of_stock", actor="cli:root")
        s.commit()
        assert s.scalar(select(Ticket.kind).where(Ticket.external_ref == po.number)) == "dropship"
        [row] = _mails(s, "email:delayed:%")
        assert row.key == f"email:delayed:{order.external_id}:{po.number}-1"
        assert send(app, s, {shipping.EMAIL}).sent >= 1
        s.commit()
    [mail] = [m for m in smtp_server.messages if "verzögert" in m["Subject"]]
    assert order.external_id in mail["Subject"] and mail["To"] == order.buyer_email
    body = mail.get_content()
    assert "1 × Teekanne Blau" in body and "nicht wie geplant" in body and "DS1" not in body


def test_a_line_nobody_answered_in_time_tells_the_buyer_once(make_app):
    app = make_app()
    with app.session() as s:
        po = _sent(app, s)
        r = rerouting.overdue(s, app.cfg, now=po.respond_by + timedelta(minutes=1))
        s.commit()
        assert r.tickets == 1
        rerouting.overdue(s, app.cfg, now=po.respond_by + timedelta(hours=2))
        s.commit()
        [row] = _mails(s, "email:delayed:%")
        assert row.payload["to"] == [po.order.buyer_email] and "Teekanne Blau" in row.payload["body"]


def test_a_buyer_the_channel_mails_itself_is_not_told(make_app):
    app = make_app()
    with app.session() as s:
        po = _sent(app, s, channel="amazon")
        service.reject_line(s, "DS1", po.number, 1, "discontinued", actor="cli:root")
        s.commit()
        assert s.scalar(select(Ticket.kind).where(Ticket.external_ref == po.number)) == "dropship"
        assert _mails(s, "email:delayed:%") == []


def test_a_line_re_routed_to_another_dropshipper_mails_nobody(make_app):
    app = make_app()
    with app.session() as s:
        service.set_availability(s, "DS2", {"B-1": 3}, actor="test")
        po = _sent(app, s)
        service.reject_line(s, "DS1", po.number, 1, "out_of_stock", actor="cli:root")
        s.commit()
        assert s.scalar(select(PurchaseOrder.partner).where(PurchaseOrder.id != po.id)) == "DS2"
        assert _mails(s, "email:delayed:%") == []


def test_a_portal_partner_gets_one_mail_per_run_listing_its_new_purchase_orders(make_app, smtp_server):
    app = make_app(ds2='notify_email = "orders@ds2.example"')
    with app.session() as s:
        service.set_availability(s, "DS2", {"B-1": 9}, actor="test")
        f.product(s, "B-1")
        for _ in range(2):
            f.released(s, [f.Line(sku="B-1", quantity=1)], channel="phone")
        s.commit()
        routing.Router(s, app.cfg).run()
        r = outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())
        s.commit()
        assert r.mailed == ["DS2"] and len(r.portal) == 2
        [row] = _mails(s, "email:partner:%")
        assert (row.key, row.target, row.payload["to"]) == (f"email:partner:DS2:{r.portal[0]}", "partner",
                                                            ["orders@ds2.example"])
        again = outgoing.send(s, app.cfg, OpenTrans(), now=clock.now())  # nothing new: no mail
        s.commit()
        assert again.mailed == [] and len(_mails(s, "email:partner:%")) == 1
        assert send(app, s, {shipping.EMAIL}).sent == 1
        s.commit()
    [mail] = smtp_server.messages
    body = mail.get_content()
    assert mail["To"] == "orders@ds2.example" and "Partnerportal" in mail["Subject"]
    assert all(number in body for number in r.portal) and "https://partner.test-handel.example" in body
    assert "2 neue Bestellungen" in body and "Berlin" not in body


def test_a_portal_partner_without_notify_email_gets_no_mail(make_app):
    app = make_app()
    with app.session() as s:
        _sent(app, s, "DS2")
        assert _mails(s, "email:partner:%") == []


def test_a_partner_that_reads_csv_gets_its_purchase_order_as_csv_over_sftp(bare_workspace, sshd, tmp_path):
    f.fixed_clock(T)
    prefix = f"dscsv{os.getpid()}-{next(_no)}"
    for folder in ("in", "out"):
        (sshd.root / prefix / folder).mkdir(parents=True)
    extra = sections(tmp_path, ds1_transport=_sftp(sshd, prefix), ds1='order_format = "csv"')
    bare_workspace.write_config(extra=extra, company=COMPANY)
    ws, app = bare_workspace, bare_workspace.app()
    with app.session() as s:
        f.product(s, "B-1")
        service.set_availability(s, "DS1", {"B-1": 3}, actor="test")
        order = f.released(s, [f.Line(sku="B-1", quantity=2, title="Teekanne Blau")])
        s.commit()
        buyer_email = order.buyer_email
    app.dispose()
    ws.ok("route")
    sent = json.loads(ws.ok("dropship", "send", "--json"))
    [name] = sent["files"]
    assert name.endswith(".csv") and sent["upload"]["sent"] == 3
    content = (sshd.root / prefix / "in" / name).read_bytes()
    [row] = list(csv.DictReader(io.StringIO(content.decode("utf-8")), delimiter=";"))
    assert (row["purchase_order"], row["line"], row["sku"], row["description"], row["quantity"],
            row["unit_price"], row["line_amount"], row["currency"]) == (
        name.removesuffix(".csv"), "1", "B-1", "Teekanne Blau", "2", "7.50", "15.00", "EUR")
    assert row["ship_city"] == "Berlin" and row["ship_country"] == "DE" and row["ship_street"]
    assert row["remark"].startswith("Streckengeschäft")
    assert row["papers"] == " ".join(sent["papers"])
    assert buyer_email.encode() not in content and b"\r\n" in content


@pytest.mark.parametrize("keys", ['order_format = "edifact"', 'notify_email = "orders at ds2"'])
def test_an_unknown_order_format_or_a_notify_email_that_is_no_address_fails_on_load(tmp_path, keys):
    text = COMPANY + '\n[database]\nurl = "sqlite://"\n' + sections(tmp_path, ds2=keys)
    with pytest.raises(ValueError, match=keys.split(" ")[0]):
        Config.model_validate(tomllib.loads(text))
