"""Export, confirmations and deadlines end to end: real transports, the fulfiller stand-in
answering, and Amazon confirmations at the SP-API stand-in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from caturactl.model import DeliveryNote, Event, InboundFile, Order, OutboxMessage, ShippedParcel, Stock, Ticket
from standins.fulfiller import FulfillerStandin
from tests import fulfilment


def _setup(ws, tmp_path, *, wh=None, ful=None, extra=""):
    for folder in ("wh", "ful"):  # the shares exist; the transport creates in/ and out/ itself
        (tmp_path / folder).mkdir(exist_ok=True)
    wh = wh or fulfilment.folder_transport("wh", tmp_path / "wh")
    ful = ful or fulfilment.folder_transport("ful", tmp_path / "ful")
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations() + wh + ful + extra)
    ws.load_catalogue()
    ws.ok("import", "amazon")
    skus = [p["sku"] for p in ws.standin.catalogue()]
    ws.ok("stock", "import", "WH", str(fulfilment.stock_csv(tmp_path / "wh.csv", {s: 30 for s in skus[::2]})))
    ws.ok("stock", "import", "FUL", str(fulfilment.stock_csv(tmp_path / "ful.csv", {s: 30 for s in skus})))
    return json.loads(ws.ok("route", "--json"))


def _counts(app) -> dict:
    with app.session() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (DeliveryNote, ShippedParcel, OutboxMessage, Event, Ticket, InboundFile)} | {
            "shipped_lines": s.scalar(select(func.sum(Stock.on_hand)))}


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
    from caturactl import shipping
    with app.session() as s:
        assert shipping.overdue(s, app.cfg).overdue == []  # nothing is due yet
        later = datetime.now(timezone.utc) + timedelta(days=10)
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
