"""The outbox sender: retries with backoff, a message that keeps failing or is refused becomes a
ticket, and 'outbox retry' sends it again. Real transports and the SP-API stand-in."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select

from caturactl.outbox.models import OutboxMessage
from caturactl.orders.tickets import Ticket
from tests import fulfilment


def _workspace(ws, tmp_path, *, shipping: str, wh_path=None, carriers_extra: str = ""):
    (tmp_path / "ful").mkdir(exist_ok=True)
    ws.write_config(extra=f"[shipping]\n{shipping}\n" + fulfilment.carrier_section().replace(
        'carrier = "DHL"\nservice = "V01PAK"', 'carrier = "DHL"\nservice = "V01PAK"' + carriers_extra)
        + fulfilment.locations() + fulfilment.folder_transport("wh", wh_path or tmp_path / "wh")
        + fulfilment.folder_transport("ful", tmp_path / "ful"))
    ws.load_catalogue()
    ws.ok("import", "amazon")
    skus = [p["sku"] for p in ws.standin.catalogue()]
    ws.ok("stock", "import", "WH", str(fulfilment.stock_csv(tmp_path / "wh.csv", {s: 50 for s in skus})))
    ws.ok("route")


def test_a_message_that_keeps_failing_becomes_a_ticket_and_retry_sends_it(workspace, tmp_path):
    ws = workspace
    share = tmp_path / "wh-share"  # not mounted yet
    _workspace(ws, tmp_path, shipping="outbox_max_attempts = 2\noutbox_backoff_seconds = 0", wh_path=share)
    r = ws.run("ship", "export", "--limit", "2", "--json")
    assert r.code == 69 and json.loads(r.out)["upload"]["retry_later"] > 0
    r = ws.run("outbox", "send", "--json")
    out = json.loads(r.out)
    assert r.code == 69 and out["failed"] >= 1
    failed = json.loads(ws.ok("outbox", "list", "--status", "failed", "--json"))
    assert failed and all("gave up after 2 attempts" in m["last_error"] for m in failed)
    app = ws.app()
    with app.session() as s:
        tickets = s.scalars(select(Ticket).where(Ticket.kind == "outbox_failed")).all()
        assert len(tickets) == len(failed) and all(t.order is not None for t in tickets)
    share.mkdir()
    r = ws.run("outbox", "retry", "--all-failed")
    assert r.code == 0, r.err + r.out
    # The failed message and the ones that waited behind it (not tried while the share was
    # missing) all arrive, each once.
    every = json.loads(ws.ok("outbox", "list", "--status", "all", "--json"))
    assert {m["status"] for m in every} == {"done"}
    assert sorted(p.name for p in (share / "in").iterdir()) == sorted(m["key"].split(":", 2)[2] for m in every)
    shown = json.loads(ws.ok("outbox", "show", str(failed[0]["id"]), "--json"))
    assert shown["status"] == "done" and shown["payload"]["content_b64"].startswith("<")


@pytest.mark.slow
def test_amazon_refusing_a_confirmation_is_a_ticket_at_once_not_a_retry(workspace, tmp_path):
    from datetime import timedelta
    from standins.fulfiller import FulfillerStandin
    ws = workspace
    (tmp_path / "wh").mkdir()
    # A carrier code Amazon does not know: Amazon answers 400, which no retry will fix.
    _workspace(ws, tmp_path, shipping="", carriers_extra='\namazon_carrier_code = "Brieftaube"')
    ws.ok("ship", "export")
    ws.standin.advance(timedelta(minutes=10))
    FulfillerStandin(tmp_path / "wh", reply="csv", late_rate=0.0, partial_rate=0.0).work(ws.standin.now())
    r = ws.run("ship", "collect", "--json")
    out = json.loads(r.out)
    assert r.code == 69 and out["channel"]["failed"] > 0 and out["channel"]["retry_later"] == 0
    assert "Brieftaube" in out["channel"]["errors"][0]
    app = ws.app()
    with app.session() as s:
        failed = s.scalars(select(OutboxMessage).where(OutboxMessage.status == "failed")).all()
        assert failed and all(m.attempts == 1 and m.kind == "amazon_confirm_shipment" for m in failed)
        assert s.scalar(select(Ticket).where(Ticket.kind == "outbox_failed")) is not None
    assert not ws.standin.shipments()
    # Someone fixes the carrier code in caturactl.toml; the retry uses it.
    ws.config.write_text(ws.config.read_text(encoding="utf-8").replace('amazon_carrier_code = "Brieftaube"', ""),
                         encoding="utf-8")
    r = ws.run("outbox", "retry", "--all-failed")
    assert r.code == 0, r.err + r.out
    assert len(ws.standin.shipments()) == len(failed)
    with app.session() as s:
        assert s.scalar(select(OutboxMessage).where(OutboxMessage.status != "done")) is None
        # The tickets that reported the refusal close themselves once the message went out.
        assert {t.status for t in s.scalars(select(Ticket).where(Ticket.kind == "outbox_failed"))} == {"resolved"}


def test_outbox_listing_keys_match_the_table(workspace, tmp_path):
    ws = workspace
    (tmp_path / "wh").mkdir()
    _workspace(ws, tmp_path, shipping="")
    ws.ok("ship", "export", "--limit", "1")
    rows = json.loads(ws.ok("outbox", "list", "--status", "all", "--json"))
    assert rows and set(rows[0]) == {"id", "kind", "target", "key", "status", "attempts", "next_attempt", "done",
                                     "last_error"}
    shutil.rmtree(tmp_path / "wh")


def test_buyers_get_a_shipping_mail_with_the_tracking_link_only_when_configured(workspace, tmp_path, smtp_server):
    from datetime import timedelta
    from standins.fulfiller import FulfillerStandin
    ws = workspace
    (tmp_path / "wh").mkdir()
    _workspace(ws, tmp_path, shipping=f"notify_amazon_buyers = true\n[mail]\nhost = \"127.0.0.1\"\n"
                                      f"port = {smtp_server.port}\nsecurity = \"none\"\n"
                                      f"from_address = \"shop@example.org\"")
    ws.ok("ship", "export", "--limit", "3")
    ws.standin.advance(timedelta(minutes=10))
    FulfillerStandin(tmp_path / "wh", reply="csv", late_rate=0.0, partial_rate=0.0,
                     multi_parcel_rate=0.0).work(ws.standin.now())
    ws.ok("ship", "collect")
    assert len(smtp_server.messages) == 3
    mail = smtp_server.messages[0]
    body = mail.get_content()
    assert "@marketplace.amazon." in mail["To"]  # the relay address Amazon gave us
    # in the buyer's language (German or English by the delivery country), with the number and the link
    assert "00340434" in body and "https://www.dhl.de/" in body and "piececode=" in body
    assert ("Sendungsnummer" in body) == (mail["Subject"].startswith("Ihre Bestellung"))
    assert mail["Message-ID"].startswith("<outbox-")


def test_enqueue_says_whether_it_queued_on_either_database(migrated_database_url):
    """The same key twice is one message, and the caller learns which call queued it (psycopg
    reports no row count for INSERT ... ON CONFLICT DO NOTHING: the answer must not depend on it)."""
    from caturactl.core.db import make_engine, make_sessionmaker
    from caturactl.outbox.service import enqueue
    engine = make_engine(migrated_database_url)
    try:
        with make_sessionmaker(engine)() as s:
            assert [enqueue(s, "k1", "email", "t", {}), enqueue(s, "k1", "email", "t", {}),
                    enqueue(s, "k2", "email", "t", {})] == [True, False, True]
    finally:
        engine.dispose()


def test_a_rate_budget_is_kept_by_one_upsert_so_two_processes_never_both_insert_it(migrated_database_url):
    """Two collectors finishing at once both found no row and both inserted it (a unique
    violation seen on PostgreSQL): keeping a budget is one statement that inserts or updates."""
    from datetime import datetime, timezone

    from sqlalchemy import event

    from caturactl.core.cursors import keep_budget, stored_budgets
    from caturactl.core.db import make_engine, make_sessionmaker
    engine = make_engine(migrated_database_url)
    at = datetime(2026, 12, 5, 2, 20, tzinfo=timezone.utc)
    statements = []
    try:
        sessions = make_sessionmaker(engine)
        def seen(conn, cursor, statement, *rest):
            statements.append(statement)
        with sessions() as s:
            event.listen(engine, "before_cursor_execute", seen)
            keep_budget(s, "confirmShipment", 10.0, at)
            keep_budget(s, "confirmShipment", 3.5, at)
            s.commit()
            event.remove(engine, "before_cursor_execute", seen)
        writes = [q for q in statements if q.lstrip().upper().startswith(("INSERT", "UPDATE", "SELECT"))]
        assert len(writes) == 2 and all("ON CONFLICT" in q.upper() for q in writes), writes
        with sessions() as s:
            assert stored_budgets(s)["confirmShipment"][0] == 3.5
    finally:
        engine.dispose()
