"""Export, confirmations and deadlines end to end: real transports, the fulfiller stand-in
answering, and Amazon confirmations at the SP-API stand-in."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from caturactl.core import clock
from caturactl.outbox.models import OutboxMessage
from caturactl.fulfilment.models import DeliveryNote, InboundFile, ShippedParcel, Stock
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.core.events import Event
from standins.fulfiller import FulfillerStandin
from tests import fulfilment


def _setup(ws, tmp_path, *, wh=None, ful=None, extra=""):
    return fulfilment.route_everything(ws, tmp_path, wh=wh, ful=ful, extra=extra)


def _counts(app) -> dict:
    with app.session() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (DeliveryNote, ShippedParcel, OutboxMessage, Event, Ticket, InboundFile)} | {
            "shipped_lines": s.scalar(select(func.sum(Stock.on_hand)))}


@pytest.mark.slow
def test_round_trip_over_folders_ends_with_amazon_knowing_every_parcel(workspace, tmp_path):
    ws = workspace
    routed = _setup(ws, tmp_path)
    assert routed["deliveries"] > 50
    dry = json.loads(ws.ok("ship", "export", "--dry-run", "--json"))
    assert dry["exported"] == routed["deliveries"] and not list((tmp_path / "wh").glob("in/*"))
    out = json.loads(ws.ok("ship", "export", "--json"))
    assert out["exported"] == routed["deliveries"] and out["upload"]["sent"] == out["files"]
    wh_files = sorted(p.name for p in (tmp_path / "wh" / "in").iterdir())
    assert any(n.startswith("DHL_L") and n.endswith(".csv") for n in wh_files)
    assert any(n.startswith("LS_L") and n.endswith(".pdf") for n in wh_files)
    assert all(n.startswith("ORD_L") for n in (p.name for p in (tmp_path / "ful" / "in").iterdir()))
    # Exporting again sends nothing: the notes are exported and the files are there.
    again = json.loads(ws.ok("ship", "export", "--json"))
    assert again["exported"] == 0 and again["upload"]["sent"] == 0

    now = ws.standin.now()  # Amazon refuses a ship date after its own clock
    warehouse = FulfillerStandin(tmp_path / "wh", seed=3, reply="csv", carrier="DHL", late_rate=0.0)
    fulfiller = FulfillerStandin(tmp_path / "ful", seed=4, reply="xml", carrier="DPD", partial_rate=0.3,
                                 multi_parcel_rate=0.3, late_rate=0.2)
    for _ in range(6):
        warehouse.work(now)
        fulfiller.work(now)
        r = ws.run("ship", "collect", "--json")
        assert r.code == 0, r.err + r.out
    app = ws.app()
    with app.session() as s:
        notes = s.scalars(select(DeliveryNote)).all()
        assert {n.state for n in notes} == {"shipped"}
        parcels = s.scalars(select(ShippedParcel)).all()
        assert len(parcels) >= len(notes) and all(p.channel_confirmed_at for p in parcels if p.items)
        multi = [n for n in notes if len(n.parcels) > 1]
        assert multi, "the fulfiller ships some deliveries in several parcels"
        assert s.scalar(select(func.count()).where(Order._state == "routed")) == 0
        routed_orders = {n.order.external_id for n in notes}
        numbers = {(p.delivery.order.external_id, p.tracking_number) for p in parcels if p.items}
        # Reserved stock went out with the parcels.
        assert s.scalar(select(func.sum(Stock.reserved))) == 0
    at_amazon = {(x["orderId"], x["trackingNumber"]) for x in ws.standin.shipments()}
    assert at_amazon == numbers
    status = {o["orderId"]: o["fulfillment"]["fulfillmentStatus"] for o in ws.standin.visible_orders()}
    assert {status[o] for o in routed_orders} == {"SHIPPED"}
    # The cockpit shows carrier and tracking.
    rows = json.loads(ws.ok("orders", "list", "--state", "shipped", "--json"))
    assert any(r["tracking"] and r["carrier"] for r in rows)
    shown = json.loads(ws.ok("deliveries", "show", multi[0].number, "--json"))
    assert len(shown["parcels"]) > 1 and shown["parcels"][0]["url"].startswith("https://")
    order = json.loads(ws.ok("orders", "show", shown["order"], "--json"))
    assert multi[0].number in [d["delivery"] for d in order["deliveries"]]
    assert "Delivery notes" in ws.ok("orders", "show", shown["order"])


def test_a_broken_confirmation_file_is_rejected_whole_and_changes_nothing(workspace, tmp_path):
    ws = workspace
    _setup(ws, tmp_path)
    ws.ok("ship", "export")
    first, second = sorted(p.name.removeprefix("DHL_").removesuffix(".csv")
                           for p in (tmp_path / "wh" / "in").iterdir() if p.name.startswith("DHL_"))[:2]
    (tmp_path / "wh" / "out").mkdir(exist_ok=True)
    bad = tmp_path / "wh" / "out" / "SHP_20261125_001.csv"
    # The first line is fine; the second has a wrong check digit. Neither may be applied.
    bad.write_text("order_id;delivery_id;carrier;tracking_number;shipped_at\n"
                   f"X;{first};DHL;00340434123456789012;2026-11-25T01:00:00+01:00\n"
                   f"X;{second};DHL;00340434123456789013;2026-11-25T01:00:00+01:00\n", encoding="utf-8")
    app = ws.app()
    before = _counts(app)
    r = ws.run("ship", "collect", "--json")
    assert r.code == 65
    result = json.loads(r.out)
    assert "SHP_20261125_001.csv:3:tracking_number" in result["rejected"][0]
    after = _counts(app)
    # Only the rejection itself is recorded: the file, its ticket and their events.
    assert after["ShippedParcel"] == before["ShippedParcel"] and after["OutboxMessage"] == before["OutboxMessage"]
    assert after["InboundFile"] == before["InboundFile"] + 1 and after["Ticket"] == before["Ticket"] + 1
    assert after["shipped_lines"] == before["shipped_lines"]
    assert not bad.exists() and (tmp_path / "wh" / "out" / "error" / bad.name).exists()
    with app.session() as s:
        t = s.scalars(select(Ticket).where(Ticket.kind == "confirmation_rejected")).one()
        assert "tracking_number" in t.text and "check digit" in t.text
    # The same broken content again is recognised and moved aside without a second ticket.
    (tmp_path / "wh" / "out" / bad.name).write_bytes((tmp_path / "wh" / "out" / "error" / bad.name).read_bytes())
    r = ws.run("ship", "collect", "--json")
    assert json.loads(r.out)["duplicates"] == 1 and _counts(app)["Ticket"] == after["Ticket"]


def test_unknown_delivery_and_path_tricks_are_refused(workspace, tmp_path):
    ws = workspace
    _setup(ws, tmp_path)
    ws.ok("ship", "export")
    out = tmp_path / "ful" / "out"
    out.mkdir(exist_ok=True)
    (out / "SHP_x.xml").write_text(
        '<?xml version="1.0"?>\n<confirmation xmlns="urn:caturactl:fulfilment:confirmation:1" version="1.0">\n'
        "<shipment><deliveryId>L999999</deliveryId><carrier>DPD</carrier>"
        "<shippedAt>2026-11-25T10:00:00+01:00</shippedAt>"
        "<parcel><trackingNumber>01234567890123</trackingNumber></parcel></shipment>\n</confirmation>\n",
        encoding="utf-8")
    r = ws.run("ship", "collect", "--json")
    assert r.code == 65 and "unknown delivery 'L999999'" in json.loads(r.out)["rejected"][0]


def test_overdue_deliveries_get_one_ticket_each_and_a_late_confirmation_still_counts(workspace, tmp_path):
    ws = workspace
    routed = _setup(ws, tmp_path)
    ws.ok("ship", "export")
    app = ws.app()
    from caturactl.fulfilment import shipping
    with app.session() as s:
        assert shipping.overdue(s, app.cfg).overdue == []  # nothing is due yet
        later = clock.now() + timedelta(days=10)
        r = shipping.overdue(s, app.cfg, now=later)
        assert len(r.overdue) == routed["deliveries"]
        assert shipping.overdue(s, app.cfg, now=later).overdue == []  # once only
        assert s.scalar(select(func.count()).select_from(Ticket).where(Ticket.kind == "overdue")) == len(r.overdue)
    FulfillerStandin(tmp_path / "wh", seed=1, reply="csv", late_rate=0.0, partial_rate=0.0).work(ws.standin.now())
    ws.ok("ship", "collect")
    with app.session() as s:
        states = dict(s.execute(select(DeliveryNote.location, func.min(DeliveryNote._state))
                                .group_by(DeliveryNote.location)).all())
        assert states["WH"] == "shipped" and states["FUL"] == "overdue"


@pytest.mark.slow
def test_over_real_sshd_and_ftps_an_outage_loses_nothing_and_sends_nothing_twice(
        workspace, tmp_path, sshd, ftps_server, monkeypatch):
    ws = workspace
    prefix = f"ship{os.getpid()}-{tmp_path.name}"
    wh_root = sshd.root / prefix
    wh_root.mkdir()
    wh = f"""
[transports.wh]
kind = "sftp"
host = "127.0.0.1"
port = {sshd.port}
user = "root"
key_file = "{sshd.client_key_file}"
host_key = "{sshd.host_key_line}"
outbound_dir = "{prefix}/in"
inbound_dir = "{prefix}/out"
timeout_seconds = 3
"""
    ful = f"""
[transports.ful]
kind = "ftps"
host = "127.0.0.1"
port = {ftps_server.port}
user = "demo"
password_env = "FUL_FTP_PASSWORD"
ca_file = "{ftps_server.ca_file}"
timeout_seconds = 3
"""
    monkeypatch.setenv("FUL_FTP_PASSWORD", "demo")
    routed = _setup(ws, tmp_path, wh=wh, ful=ful)
    sshd.stop()
    try:
        r = ws.run("ship", "export", "--json")
        assert r.code == 69  # the warehouse's server is down: its files wait in the outbox
        first = json.loads(r.out)
        assert first["exported"] == routed["deliveries"] and first["upload"]["retry_later"] > 0
        assert first["upload"]["sent"] == len(list((ftps_server.root / "in").iterdir()))
        waiting = json.loads(ws.ok("outbox", "list", "--status", "pending", "--json"))
        assert {m["target"] for m in waiting} == {"wh"} and all(m["attempts"] <= 1 for m in waiting)
    finally:
        sshd.start()
    # Back up: the due messages go out (the backoff is shortened by making them due now).
    app = ws.app()
    with app.session() as s:
        for m in s.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")):
            m.next_attempt_at = clock.now()
        s.commit()
    sent = json.loads(ws.ok("outbox", "send", "--json"))
    assert sent["sent"] == len(waiting) and sent["retry_later"] == 0
    names = sorted(p.name for p in (wh_root / "in").iterdir())
    assert len(names) == len(set(names)) == len(waiting) and not [n for n in names if n.endswith(".part")]
    # A message already sent cannot be sent again by mistake.
    r = ws.run("outbox", "retry", str(waiting[0]["id"]))
    assert r.code == 70 and "already sent" in r.err
    # The round trip closes over the same servers.
    now = ws.standin.now()
    FulfillerStandin(wh_root, seed=5, reply="csv", late_rate=0.0).work(now)
    FulfillerStandin(ftps_server.root, seed=6, reply="xml", carrier="DPD", late_rate=0.0).work(now)
    for _ in range(3):
        FulfillerStandin(wh_root, seed=5, reply="csv", late_rate=0.0).work(now)
        FulfillerStandin(ftps_server.root, seed=6, reply="xml", carrier="DPD", late_rate=0.0).work(now)
        ws.ok("ship", "collect")
    with app.session() as s:
        assert set(s.scalars(select(DeliveryNote._state))) == {"shipped"}
    assert list((wh_root / "out" / "archive").iterdir()) and list((ftps_server.root / "out" / "archive").iterdir())


def test_a_transport_password_is_refused_in_the_config_file(workspace, tmp_path):
    ws = workspace
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations()
                    + fulfilment.folder_transport("wh", tmp_path) + '[transports.ful]\nkind = "ftp"\n'
                    'host = "127.0.0.1"\nuser = "x"\npassword = "hunter2"\n')
    r = ws.run("deliveries", "list")
    assert r.code == 78 and "transports.ful.password" in r.err and "hunter2" not in r.err + r.out


@pytest.mark.parametrize("status, order_state, why", [
    ("CANCELLED", "cancelled", "cancelled at Amazon"),
    ("SHIPPED", "shipped", "shipped outside caturactl"),  # sent from somewhere else
])
def test_an_order_amazon_cancels_or_ships_after_routing_drops_its_notes_and_stock_and_no_file_goes_out(
        workspace, tmp_path, status, order_state, why):
    ws = workspace
    _setup(ws, tmp_path)
    app = ws.app()
    with app.session() as s:
        notes = s.scalars(select(DeliveryNote).order_by(DeliveryNote.id)).all()
        exported_order = notes[0].order.external_id
        created_order = next(n.order.external_id for n in notes if n.order.external_id != exported_order)
        reserved_before = s.scalar(select(func.sum(Stock.reserved)))
        released = sum(ln.quantity for n in notes if n.order.external_id in (exported_order, created_order)
                       for ln in n.lines)
    ws.ok("ship", "export", "--limit", "1")  # only the first note goes out
    for oid in (exported_order, created_order):
        ws.standin.change_order(oid, status=status)
    ws.standin.advance(timedelta(minutes=5))
    ws.ok("import", "amazon")
    with app.session() as s:
        for oid in (exported_order, created_order):
            order = s.scalars(select(Order).where(Order.external_id == oid)).one()
            assert order.state == order_state
            assert {n.state for n in s.scalars(select(DeliveryNote).where(DeliveryNote.order_id == order.id))} == \
                {"cancelled"}
        assert s.scalar(select(func.sum(Stock.reserved))) == reserved_before - released
        stop = s.scalars(select(Ticket).where(Ticket.kind == "stop_delivery")).all()
        assert [t.order.external_id for t in stop] == [exported_order]  # only the one a location has
        assert why in stop[0].text
    ws.ok("ship", "export")
    with app.session() as s:
        moot = s.scalars(select(DeliveryNote).join(Order).where(Order.external_id == created_order)).all()
        assert moot and all(n.exported_at is None and not n.file_name for n in moot)  # never sent


def test_a_fulfillers_stock_file_on_its_return_channel_sets_its_stock_all_or_nothing(workspace, tmp_path):
    ws = workspace
    _setup(ws, tmp_path)
    out = tmp_path / "ful" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "STOCK_20261125.csv").write_text("sku;available\nHG-1001;7\nHH-2001;0\n", encoding="utf-8")
    ws.ok("ship", "collect")
    rows = {r["sku"]: r for r in json.loads(ws.ok("stock", "list", "--location", "FUL", "--json"))}
    assert rows["HG-1001"]["on_hand"] == 7 and rows["HH-2001"]["on_hand"] == 0
    assert (out / "archive" / "STOCK_20261125.csv").exists()
    (out / "STOCK_20261126.csv").write_text("sku;available\nHG-1001;9\nHH-2001;-1\n", encoding="utf-8")
    r = ws.run("ship", "collect", "--json")
    assert r.code == 65 and "STOCK_20261126.csv:3:available" in json.loads(r.out)["rejected"][0]
    rows = {r["sku"]: r for r in json.loads(ws.ok("stock", "list", "--location", "FUL", "--json"))}
    assert rows["HG-1001"]["on_hand"] == 7  # the good line of the broken file was not applied


def test_collect_dry_run_reads_and_checks_but_stores_moves_and_sends_nothing(workspace, tmp_path):
    ws = workspace
    _setup(ws, tmp_path)
    ws.ok("ship", "export")
    FulfillerStandin(tmp_path / "wh", seed=9, reply="csv", late_rate=0.0).work(ws.standin.now())
    waiting = sorted(p.name for p in (tmp_path / "wh" / "out").iterdir() if p.is_file())
    app = ws.app()
    before = _counts(app)
    out = json.loads(ws.ok("ship", "collect", "--dry-run", "--json"))
    assert out["confirmations"] > 0 and out["parcels"] > 0 and out["dry_run"]
    assert _counts(app) == before and not ws.standin.shipments()
    assert sorted(p.name for p in (tmp_path / "wh" / "out").iterdir() if p.is_file()) == waiting
