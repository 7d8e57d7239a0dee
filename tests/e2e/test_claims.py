"""Claims, not reads: two runs of the same stage at the same moment on PostgreSQL (as two jobs, or
a job and a person at the terminal) never do a thing twice. Each test starts real `caturactl`
processes together and checks the database afterwards. On SQLite one job runs at a time by
design (see README, "SQLite: one host, one job at a time"), so these run on PostgreSQL only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from caturactl.outbox.models import OutboxMessage
from caturactl.billing.models import Invoice
from caturactl.fulfilment.models import DeliveryLine, DeliveryNote, Stock
from caturactl.orders.models import Order
from tests import fulfilment
from tests.conftest import DB_KIND

ROOT = Path(__file__).resolve().parents[2]
OPEN_NOTES = ("created", "exported", "overdue", "partially_confirmed")

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(DB_KIND != "postgres", reason="SQLite runs one writer at a time by design")]


@pytest.fixture
def standin():
    # Few orders: each invoice is a PDF/A-3 and each upload keeps to createFeed's published rate.
    from standins.amazon import AmazonStandin
    s = AmazonStandin(orders=60, seed=11, day="2026-11-24", rate_scale=2000.0).start()
    yield s
    s.stop()


def _together(ws, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Start every command at once as its own caturactl process; wait for all."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # CATURACTL_CLOCK: the stand-in's clock
    procs = [subprocess.Popen([sys.executable, "-m", "caturactl", "--config", str(ws.config), *c], cwd=ws.path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    out = []
    for p, c in zip(procs, commands):
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(c, p.returncode, stdout, stderr))
    return out


def _reserved_matches_open_notes(s) -> None:
    open_qty = dict(((loc, sku), int(q)) for loc, sku, q in s.execute(
        select(DeliveryNote.location, DeliveryLine.sku, func.sum(DeliveryLine.quantity - DeliveryLine.shipped))
        .join(DeliveryNote, DeliveryNote.id == DeliveryLine.delivery_id)
        .where(DeliveryNote._state.in_(OPEN_NOTES)).group_by(DeliveryNote.location, DeliveryLine.sku)))
    reserved = {(st.location, st.sku): st.reserved for st in s.scalars(select(Stock)) if st.reserved}
    assert reserved == {k: v for k, v in open_qty.items() if v}
    assert all(st.reserved <= st.on_hand for st in s.scalars(select(Stock)))


@pytest.mark.slow
def test_two_invoice_runs_at_once_invoice_each_order_once_with_gap_free_numbers(workspace, tmp_path):
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    import json
    planned = json.loads(ws.ok("invoices", "create", "--dry-run", "--json"))["planned"]
    runs = _together(ws, ["invoices", "create"], ["invoices", "create"], ["invoices", "create"])
    assert all(r.returncode in (0, 69) for r in runs), [r.stderr for r in runs]  # 69: Amazon's upload rate
    app = ws.app()
    with app.session() as s:
        per_order = Counter(s.scalars(select(Invoice.order_id).where(Invoice.kind == "invoice")))
        assert per_order and max(per_order.values()) == 1
        assert len(per_order) == planned > 20  # and none forgotten: what one run skipped, another took
        seqs = sorted(s.scalars(select(Invoice.seq).where(Invoice.kind == "invoice")))
        assert seqs == list(range(1, len(seqs) + 1))
        uploads = Counter(s.scalars(select(OutboxMessage.key).where(OutboxMessage.kind == "invoice_upload")))
        assert len(uploads) == len(seqs)
        assert all(n.invoice_id is not None for n in s.scalars(select(DeliveryNote).where(
            DeliveryNote._state == "shipped")))


def test_two_routers_at_once_reserve_what_there_is_and_route_each_order_once(workspace, tmp_path):
    ws = workspace
    for folder in ("wh", "ful"):
        (tmp_path / folder).mkdir()
    ws.write_config(extra=fulfilment.carrier_section() + fulfilment.locations()
                    + fulfilment.folder_transport("wh", tmp_path / "wh")
                    + fulfilment.folder_transport("ful", tmp_path / "ful"), company=fulfilment.COMPANY)
    ws.load_catalogue()
    ws.ok("import", "amazon")
    skus = [p["sku"] for p in ws.standin.catalogue()]
    # Scarce stock: the two routers compete for the same pieces.
    ws.ok("stock", "import", "WH", str(fulfilment.stock_csv(tmp_path / "wh.csv", {s: 3 for s in skus})))
    ws.ok("stock", "import", "FUL", str(fulfilment.stock_csv(tmp_path / "ful.csv", {s: 2 for s in skus})))
    runs = _together(ws, ["route"], ["route"], ["route"])
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    app = ws.app()
    with app.session() as s:
        _reserved_matches_open_notes(s)
        routed = s.scalars(select(Order.id).where(Order._state == "routed")).all()
        with_notes = set(s.scalars(select(DeliveryNote.order_id)))
        assert routed and set(routed) == with_notes
        # No order line is promised twice.
        promised = Counter(s.scalars(select(DeliveryLine.order_line_id)))
        assert max(promised.values()) == 1


def test_an_export_and_an_import_cancelling_the_same_notes_never_both_win(workspace, tmp_path):
    from datetime import timedelta
    ws = workspace
    fulfilment.route_everything(ws, tmp_path)
    app = ws.app()
    with app.session() as s:
        orders = s.scalars(select(Order.external_id).where(Order._state == "routed").order_by(Order.id)).all()
    for oid in orders[: len(orders) // 2]:
        ws.standin.change_order(oid, status="CANCELLED")
    ws.standin.advance(timedelta(minutes=5))
    runs = _together(ws, ["ship", "export"], ["import", "amazon"], ["ship", "export"])
    assert all(r.returncode in (0, 69) for r in runs), [r.stderr for r in runs]
    with app.session() as s:
        for note in s.scalars(select(DeliveryNote)):
            order_state = note.order.state
            if order_state == "cancelled":
                assert note.state == "cancelled"
            files = s.scalars(select(OutboxMessage.key).where(OutboxMessage.key.like(f"%_{note.number}%"))).all()
            # A note is either exported (its files queued, once) or cancelled before any file existed.
            if note.exported_at is None:
                assert files == [] and note.state in ("created", "cancelled")
            else:
                assert len(files) == len(set(files)) >= 1
        _reserved_matches_open_notes(s)
        # A cancelled note that a location already had is a ticket to stop the parcel.
        from caturactl.orders.tickets import Ticket
        stop = {t.external_ref for t in s.scalars(select(Ticket).where(Ticket.kind == "stop_delivery"))}
        sent_then_cancelled = {n.number for n in s.scalars(select(DeliveryNote).where(
            DeliveryNote._state == "cancelled", DeliveryNote.exported_at.is_not(None)))}
        assert stop == sent_then_cancelled
