"""The dropshippers' part of ``make demo`` (standins/dropship_day.py) on a small day of Amazon
orders: routing sends the lines of the partners' products to DS1 (openTRANS over SFTP) and DS2
(the portal's service calls), a rejected line goes on to DS2, DS1's figures go stale, an
unanswered purchase order goes to a person, the parcels reach Amazon, a return goes back to DS2
and is credited, and the printed portal login works."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from caturactl.app import App
from caturactl.cli import main
from caturactl.config import load
from caturactl.core import clock
from caturactl.core.lifecycle import ReturnState
from caturactl.fulfilment.dropship import partner_stock
from caturactl.fulfilment.dropship.models import PurchaseOrder, PurchaseOrderLine
from caturactl.fulfilment.dropship.purchases import PurchaseCredit
from caturactl.fulfilment.dropship.returns import DropshipReturn
from caturactl.orders.tickets import Ticket
from caturactl.portal import auth
from standins.amazon import AmazonStandin
from standins.demo import PARTNER_PASSWORD_ENV, SPEED, at, configure, configure_fulfilment, write_stock
from standins.dropship_day import CLERK, CLERK_PASSWORD, DS1, DS2, REJECTED_SKU, DropshipDay
from standins.servers import SftpStandin, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DAY = date(2026, 11, 24)


class Terminal:
    """``caturactl`` run in this process, as the demo runs it, keeping everything printed."""

    def __init__(self, capsys):
        self.capsys, self.printed = capsys, []

    def run(self, *args: str, check: bool = True) -> int:
        self.printed.append(self.capsys.readouterr().out)
        code = main(list(args))
        out = self.capsys.readouterr()
        self.printed.append(f"$ caturactl {' '.join(args)}\n{out.out}")
        assert code == 0 or not check, f"caturactl {' '.join(args)} exited {code}: {out.err}{out.out}"
        return code

    def transcript(self) -> str:
        return "".join(self.printed) + self.capsys.readouterr().out


def _set_up(tmp_path, folder, standin, term, ftps, smtp) -> None:
    """The demo's setting up: its configuration, catalogue and stock."""
    with SftpStandin(tmp_path / "fulfiller-sftp") as sftp:
        term.run("init")
        configure(standin, folder)
        (tmp_path / "warehouse").mkdir()
        configure_fulfilment(sftp, ftps, smtp, tmp_path / "warehouse", folder)
        # This shortened day ships none of our own parts, so an order is invoiced per delivery
        # note here (the demo's day ships them: one invoice per order).
        cfg = folder / "caturactl.toml"
        text = cfg.read_text(encoding="utf-8")
        assert '\nper = "order"' in text
        cfg.write_text(text.replace('\nper = "order"', '\nper = "delivery"', 1), encoding="utf-8")
        (folder / "products.csv").write_text(standin.catalogue_csv(), encoding="utf-8")
        term.run("products", "import", "products.csv")
        write_stock([p["sku"] for p in standin.catalogue()], folder)
        for code in ("WH", "FUL", "PARTNER"):
            term.run("stock", "import", code, f"stock-{code}.csv")


def test_the_demo_day_routes_to_both_dropshippers_reroutes_a_rejection_and_credits_a_return(
        tmp_path, ftps_server, smtp_server, capsys, monkeypatch):
    folder = tmp_path / "demo"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv(PARTNER_PASSWORD_ENV, "demo")
    term = Terminal(capsys)
    with AmazonStandin(orders=300, seed=1, day=DAY, port=free_port(), rate_scale=SPEED,
                       start=at(DAY, "05:30")) as standin, clock.using(standin.clock):
        _set_up(tmp_path, folder, standin, term, ftps_server, smtp_server)
        with DropshipDay(tmp_path / "servers", folder, run=term.run, advance=standin.advance) as ds:
            ds.configure()
            ds.before_the_day()
            standin.advance(at(DAY, "18:00") - standin.now())  # the day, in one import and one routing
            term.run("import", "amazon")
            term.run("route")
            standin.advance(at(DAY, "23:01") - standin.now())
            ds.next_day()
            app = App(load(folder / "caturactl.toml", environ={}))
            with app.session() as s:
                fresh = {(r["partner"], r["fresh"]) for r in partner_stock.stock_rows(s, app.cfg, clock.now())}
            standin.advance(timedelta(days=21))
            ds.weeks_after()
        shipped_at_amazon = {p["trackingNumber"] for p in standin.shipments()}
    printed = term.transcript()

    assert fresh == {(DS1, False), (DS2, True)}  # DS1's file went stale overnight, DS2 counted again
    with app.session() as s:
        pos = s.scalars(select(PurchaseOrder)).all()
        assert {po.partner for po in pos} == {DS1, DS2}
        [rejected] = s.scalars(select(PurchaseOrderLine).where(PurchaseOrderLine._state == "rejected")).all()
        assert (rejected.purchase_order.partner, rejected.sku, rejected.reject_reason) == (DS1, REJECTED_SKU,
                                                                                            "out_of_stock")
        again = [po for po in pos if po.partner == DS2 and po.order_id == rejected.purchase_order.order_id]
        assert [ln.sku for po in again for ln in po.lines] == [REJECTED_SKU]
        assert again[0].state == "closed"  # shipped, every line done
        assert f"rejected and routed again: {rejected.purchase_order.number} line {rejected.line_no} " \
               f"({REJECTED_SKU}) -> {again[0].number}" in printed
        [expired] = s.scalars(select(PurchaseOrderLine).where(PurchaseOrderLine._state == "expired")).all()
        assert s.scalar(select(Ticket).where(Ticket.kind == "dropship",
                                             Ticket.external_ref == expired.purchase_order.number)) is not None
        ds1_tracking = {p.tracking_number for po in pos if po.partner == DS1 for p in po.parcels}
        ds2_tracking = {p.tracking_number for po in pos if po.partner == DS2 for p in po.parcels}
        assert ds1_tracking and ds2_tracking
        [rt] = s.scalars(select(DropshipReturn)).all()
        assert (rt.partner, rt.state, rt.condition) == (DS2, ReturnState.CREDITED.value, "as_new")
        assert rt.credit_note
        assert (folder / "papers" / f"{rt.number}-return-label.pdf").read_bytes().startswith(b"%PDF")
        assert s.scalar(select(PurchaseCredit.gross).where(PurchaseCredit.partner == DS2)) > 0
        assert auth.login(s, CLERK, CLERK_PASSWORD, "127.0.0.1").partner == DS2
    app.dispose()
    # Every parcel the partners sent reached Amazon's confirmShipment (the test's orders are all Amazon's).
    assert ds1_tracking | ds2_tracking <= shipped_at_amazon
    assert f"log in:    {CLERK}  /  {CLERK_PASSWORD}" in printed
    assert "portal serve" in printed and "http://127.0.0.1:8765/login" in printed
