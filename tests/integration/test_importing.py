"""Import against the SP-API stand-in over HTTP with the real sp_api client, on the database under test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from caturactl.customers.models import Customer
from caturactl.orders.models import Order
from caturactl.orders.tickets import Ticket
from caturactl.core.cursors import Cursor, RateBudget
from caturactl.core.events import Event
from standins.amazon import Fault


def _db(ws):
    app = ws.app()
    return app, app._sessions()


def _visible_ids(standin) -> set[str]:
    return {o["orderId"] for o in standin.visible_orders()}


def _import_json(ws, *args) -> tuple[int, dict]:
    r = ws.run("import", "amazon", "--json", *args)
    return r.code, json.loads(r.out)


def test_import_pages_through_every_order_once(workspace, standin):
    workspace.load_catalogue()
    code, summary = _import_json(workspace)
    assert code == 0
    visible = _visible_ids(standin)
    assert len(visible) > 200  # more than two pages of 100
    assert summary["pages"] == 3 and summary["calls"] == 3  # one call per page: no per-order calls
    assert summary["new"] == len(visible) and summary["failed"] == 0
    app, s = _db(workspace)
    ids = s.scalars(select(Order.external_id)).all()
    assert sorted(ids) == sorted(visible)
    assert standin.stats()["calls"].get("getOrder", 0) == 0
    counts = Counter(s.scalars(select(Order._state)))
    assert counts["released"] > 150 and counts["on_hold"] > 10
    assert summary["released"] == counts["released"] and summary["held"] == counts["on_hold"]
    cursor = s.scalar(select(Cursor))
    assert cursor.watermark is not None and cursor.page_token is None
    # every state was reached through transitions that left events: new -> imported -> ...
    for order in s.scalars(select(Order).limit(20)):
        moves = s.execute(select(Event.from_state, Event.to_state).where(
            Event.order_id == order.id, Event.kind == "state_changed").order_by(Event.id)).all()
        assert moves[0] == ("", "imported") and moves[-1][1] == order.state
        assert all(a == b for (_, a), (b, _) in zip(moves, moves[1:]))
    s.close()


def test_reimport_of_the_same_orders_is_a_noop(workspace, standin):
    workspace.load_catalogue()
    assert _import_json(workspace)[0] == 0
    app, s = _db(workspace)
    events_before = s.scalar(select(func.count()).select_from(Event))
    s.close()
    code, summary = _import_json(workspace, "--since", "2026-11-23T00:00:00Z")
    assert code == 0
    assert summary["new"] == 0 and summary["updated"] == 0 and summary["unchanged"] == summary["fetched"] > 200
    app, s = _db(workspace)
    assert s.scalar(select(func.count()).select_from(Event)) == events_before
    s.close()


def test_duplicate_pages_store_each_order_once(workspace, standin):
    workspace.load_catalogue()
    standin.add_fault(Fault(operation="searchOrders", kind="duplicate_page", count=1))
    code, summary = _import_json(workspace)
    assert code == 0
    assert summary["fetched"] == summary["new"] + summary["unchanged"] and summary["unchanged"] == 100
    app, s = _db(workspace)
    ids = s.scalars(select(Order.external_id)).all()
    assert len(ids) == len(set(ids)) == len(_visible_ids(standin))
    s.close()


def test_a_short_429_storm_is_ridden_out_with_backoff(workspace, standin):
    workspace.load_catalogue()
    standin.add_fault(Fault(operation="searchOrders", kind="throttle", count=3))
    code, summary = _import_json(workspace)
    assert code == 0
    assert summary["throttled"] == 3 and summary["retries"] == 3
    assert summary["new"] == len(_visible_ids(standin))


def test_5xx_and_malformed_answers_are_retried(workspace, standin):
    workspace.load_catalogue()
    standin.add_fault(Fault(operation="searchOrders", kind="status", status=503, count=1))
    standin.add_fault(Fault(operation="searchOrders", kind="malformed", count=1))
    standin.add_fault(Fault(operation="searchOrders", kind="status", status=500, count=1))
    code, summary = _import_json(workspace)
    assert code == 0 and summary["retries"] == 3
    assert summary["new"] == len(_visible_ids(standin))


def test_a_long_429_storm_stops_cleanly_and_the_next_run_resumes(workspace, standin):
    workspace.load_catalogue()
    # Let the first page through, then refuse everything for longer than max_retries.
    standin.add_fault(Fault(operation="searchOrders", kind="slow", delay=0.0, count=1))
    standin.add_fault(Fault(operation="searchOrders", kind="throttle", count=50))
    code, summary = _import_json(workspace)
    assert code == 75  # EX_TEMPFAIL: run again later
    assert summary["pages"] == 1 and summary["new"] == 100 and "throttled" in summary["stopped_by"]
    app, s = _db(workspace)
    cursor = s.scalar(select(Cursor))
    assert cursor.page_token and cursor.watermark is None  # resumable from page 2
    # The storm drained Amazon's bucket; that is remembered, not the full burst of before.
    assert s.get(RateBudget, "searchOrders").tokens < 1
    s.close()
    standin.clear_faults()
    code, summary = _import_json(workspace)
    assert code == 0 and summary["resumed"] and summary["new"] == len(_visible_ids(standin)) - 100
    app, s = _db(workspace)
    assert s.scalar(select(func.count()).select_from(Order)) == len(_visible_ids(standin))
    s.close()


def test_an_order_cancelled_after_import_is_cancelled_with_the_reason(workspace, standin):
    workspace.load_catalogue()
    assert _import_json(workspace)[0] == 0
    late = [o.order_id for o in standin.marketplace.generated() if "late_cancel" in o.tags]
    assert late
    standin.advance(timedelta(days=2))
    code, summary = _import_json(workspace)
    assert code == 0 and summary["cancelled"] >= len(late)
    app, s = _db(workspace)
    for oid in late:
        order = s.scalar(select(Order).where(Order.external_id == oid))
        assert order.state == "cancelled"
        why = s.scalars(select(Event.why).where(Event.order_id == order.id, Event.to_state == "cancelled")).one()
        assert "cancelled at Amazon after import" in why
        # Amazon hides the address of a cancelled order; that is no change of address.
        news = s.scalars(select(Event.why).where(Event.order_id == order.id, Event.kind == "order_updated")).one()
        assert "status" in news and "address" not in news, news
        assert order.ship_line1
        assert not s.scalars(select(Ticket).where(Ticket.order_id == order.id, Ticket.status == "open")).all()
    s.close()


def test_a_changed_address_updates_the_order_and_says_why(workspace, standin):
    workspace.load_catalogue()
    assert _import_json(workspace)[0] == 0
    app, s = _db(workspace)
    order = s.scalar(select(Order).where(Order._state == "released", Order.ship_country == "DE").limit(1))
    oid = order.external_id
    s.close()
    standin.change_order(oid, address={"addressLine2": "Hinterhaus, 2. OG"})
    standin.advance(timedelta(minutes=5))
    code, summary = _import_json(workspace)
    assert code == 0 and summary["updated"] == 1
    app, s = _db(workspace)
    order = s.scalar(select(Order).where(Order.external_id == oid))
    assert order.ship_line2 == "Hinterhaus, 2. OG"
    ev = s.scalars(select(Event).where(Event.order_id == order.id, Event.kind == "order_updated")).one()
    assert "address line2 changed" in ev.why
    s.close()


def test_a_delivery_instruction_added_later_puts_a_released_order_on_hold(workspace, standin):
    workspace.load_catalogue()
    assert _import_json(workspace)[0] == 0
    app, s = _db(workspace)
    oid = s.scalar(select(Order.external_id).where(Order._state == "released").limit(1))
    s.close()
    standin.change_order(oid, instruction="Bitte beim Nachbarn abgeben")
    standin.advance(timedelta(minutes=5))
    assert _import_json(workspace)[0] == 0
    app, s = _db(workspace)
    order = s.scalar(select(Order).where(Order.external_id == oid))
    assert order.state == "on_hold" and "Nachbarn" in order.hold_reason
    s.close()


def test_a_broken_order_gets_a_ticket_and_the_rest_import(workspace, standin):
    workspace.load_catalogue()
    victim = sorted(_visible_ids(standin))[7]
    standin.change_order(victim, break_field="orderItems[0].quantityOrdered")
    standin.advance(timedelta(minutes=5))  # Amazon answers only what changed before now - 2 min
    code, summary = _import_json(workspace)
    assert code == 0 and summary["failed"] == 1
    assert summary["new"] == len(_visible_ids(standin)) - 1
    assert "orderItems[0].quantityOrdered" in summary["failures"][0]
    app, s = _db(workspace)
    assert s.scalar(select(Order).where(Order.external_id == victim)) is None
    t = s.scalars(select(Ticket).where(Ticket.kind == "import_failed")).one()
    assert t.external_ref == victim and "quantityOrdered" in t.text
    s.close()
    # The same broken answer on the next run does not open a second ticket.
    _import_json(workspace, "--since", "2026-11-23T00:00:00Z")
    app, s = _db(workspace)
    assert s.scalar(select(func.count()).select_from(Ticket).where(Ticket.kind == "import_failed")) == 1
    s.close()


def test_repeat_buyers_are_one_customer(workspace, standin):
    workspace.load_catalogue()
    assert _import_json(workspace)[0] == 0
    app, s = _db(workspace)
    gen = standin.marketplace.generated()
    assert any("repeat_buyer" in o.tags for o in gen)
    # Every order with the same relay e-mail belongs to one customer.
    by_email: dict[str, set[int]] = {}
    for email, cid in s.execute(select(Order.buyer_email, Order.customer_id).where(Order.buyer_email != "")):
        by_email.setdefault(email, set()).add(cid)
    assert by_email and all(len(c) == 1 for c in by_email.values())
    assert any(n > 1 for n in Counter(s.scalars(select(Order.buyer_email).where(Order.buyer_email != ""))).values())
    reasons = Counter(r.split(" ")[0] for r in s.scalars(select(Order.match_reason)))
    assert reasons["e-mail"] > 10 and reasons["address"] > 0
    # A buyer with a new relay address but the same house (written differently) is found by address.
    for o in gen:
        if "repeat_buyer_variant" not in o.tags or o.fulfilled_by != "MERCHANT":
            continue
        order = s.scalar(select(Order).where(Order.external_id == o.order_id))
        if order is not None and order.customer_id is not None and order.state != "cancelled":
            assert order.match_reason.startswith("address"), (o.address, order.match_reason)
    customers = s.scalar(select(func.count()).select_from(Customer))
    matched = s.scalar(select(func.count()).select_from(Order).where(Order.customer_id.is_not(None)))
    assert customers < matched
    s.close()


def test_a_killed_import_resumes_and_imports_each_order_once(workspace, standin):
    workspace.load_catalogue()
    standin.add_fault(Fault(operation="searchOrders", kind="slow", delay=0.0, count=2))
    standin.add_fault(Fault(operation="searchOrders", kind="hang", delay=60.0, count=1))
    env = dict(os.environ, CATURACTL_CONFIG=str(workspace.config))
    proc = subprocess.Popen([sys.executable, "-c", "from caturactl.cli import entry; entry()", "import", "amazon"],
                            env=env, cwd=workspace.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    app, s = _db(workspace)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s.rollback()
        if s.scalar(select(func.count()).select_from(Order)) >= 200:
            break
        time.sleep(0.05)
    s.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    app, s = _db(workspace)
    assert s.scalar(select(func.count()).select_from(Order)) == 200  # two pages committed, killed on the third
    s.close()
    standin.clear_faults()
    code, summary = _import_json(workspace)
    assert code == 0 and summary["resumed"]
    app, s = _db(workspace)
    ids = s.scalars(select(Order.external_id)).all()
    assert sorted(ids) == sorted(_visible_ids(standin))
    created = Counter(s.scalars(select(Event.order_id).where(Event.to_state == "imported")))
    assert set(created.values()) == {1}
    s.close()


def test_wrong_credentials_give_one_line_and_exit_78(workspace, monkeypatch):
    monkeypatch.setenv("CATURACTL_AMAZON_CLIENT_SECRET", "wrong")
    # sp_api caches access tokens per refresh token for the whole process: use one not seen yet.
    monkeypatch.setenv("CATURACTL_AMAZON_REFRESH_TOKEN", "standin-refresh-wrong-secret-test")
    r = workspace.run("import", "amazon")
    assert r.code == 78
    assert "Login with Amazon refused the credentials: invalid_" in r.err
    assert "Traceback" not in r.err + r.out and "wrong" not in r.err


def test_an_unreachable_amazon_gives_one_line_and_changes_nothing(bare_workspace, monkeypatch):
    monkeypatch.setenv("CATURACTL_AMAZON_REFRESH_TOKEN", "standin-refresh-unreachable-test")
    r = bare_workspace.run("import", "amazon")
    assert r.code == 69 and "cannot reach Login with Amazon" in r.err
    assert "Traceback" not in r.err + r.out
    app = bare_workspace.app()
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert s.scalar(select(func.count()).select_from(Cursor)) == 0


def test_dry_run_stores_nothing(workspace, standin):
    workspace.load_catalogue()
    code, summary = _import_json(workspace, "--dry-run")
    assert code == 0 and summary["dry_run"] and summary["new"] > 200
    app, s = _db(workspace)
    assert s.scalar(select(func.count()).select_from(Order)) == 0
    assert s.scalar(select(func.count()).select_from(Cursor)) == 0
    s.close()


def test_an_order_failing_while_stored_is_skipped_alone(workspace, standin):
    """A failure inside the page's single savepoint redoes the page order by order."""
    workspace.load_catalogue()
    victim = sorted(o["orderId"] for o in standin.visible_orders()
                    if o["fulfillment"]["fulfilledBy"] == "MERCHANT" and o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED")[3]
    standin.change_order(victim, break_field="fulfillment.fulfillmentStatus", break_value="TELEPORTED")
    standin.advance(timedelta(minutes=5))
    code, summary = _import_json(workspace)
    assert code == 0 and summary["failed"] == 1, summary
    assert "fulfillmentStatus" in summary["failures"][0] and "TELEPORTED" in summary["failures"][0]
    visible = _visible_ids(standin)
    assert summary["new"] == len(visible) - 1
    app, s = _db(workspace)
    assert sorted(s.scalars(select(Order.external_id))) == sorted(visible - {victim})
    assert s.scalars(select(Ticket.external_ref).where(Ticket.kind == "import_failed")).all() == [victim]
    # counts were not doubled by the second pass over the page
    assert summary["released"] + summary["held"] + summary["shipped"] + summary["cancelled"] + summary["pending"] \
        == summary["new"]
    s.close()


def test_a_pending_order_waits_and_is_triaged_once_amazon_releases_it(tmp_path, database_url, capsys, monkeypatch):
    from datetime import datetime, timezone

    from standins.amazon import AmazonStandin
    from tests.conftest import Workspace
    s = AmazonStandin(orders=2000, seed=11, day="2026-11-24", rate_scale=500.0,
                      start=datetime(2026, 11, 24, 13, 0, tzinfo=timezone.utc)).start()
    try:
        ws = Workspace(tmp_path, database_url, s, capsys, monkeypatch)
        ws.ok("db", "upgrade")
        ws.load_catalogue()
        code, first = _import_json(ws)
        assert code == 0 and first["pending"] >= 1
        app, db = _db(ws)
        pending = db.scalars(select(Order.external_id).where(Order._state == "pending")).all()
        assert pending and all(o.customer_id is None for o in db.scalars(select(Order).where(Order._state == "pending")))
        db.close()
        s.advance(timedelta(hours=3))
        code, second = _import_json(ws)
        assert code == 0
        app, db = _db(ws)
        for oid in pending:
            order = db.scalar(select(Order).where(Order.external_id == oid))
            if order.remote_status == "CANCELLED":
                continue
            assert order.state in ("released", "on_hold") and order.customer_id is not None, oid
            moves = db.scalars(select(Event.to_state).where(Event.order_id == order.id, Event.kind == "state_changed")
                               .order_by(Event.id)).all()
            assert moves[:2] == ["imported", "pending"]
        db.close()
    finally:
        s.stop()


def test_a_time_budget_stops_after_a_page_and_the_next_run_resumes(workspace, standin):
    workspace.load_catalogue()
    code, summary = _import_json(workspace, "--max-minutes", "0")
    assert code == 0 and summary["pages"] == 1 and summary["new"] == 100
    assert not summary["complete"] and "the next run resumes at page 2" in summary["stopped_by"]
    code, summary = _import_json(workspace)
    assert code == 0 and summary["resumed"] and summary["complete"]
    assert summary["new"] == len(_visible_ids(standin)) - 100
    code, summary = _import_json(workspace, "--max-minutes", "0")  # nothing left: one page, complete
    assert code == 0 and summary["complete"] and summary["new"] == 0


def test_a_value_too_long_for_its_column_is_one_ticket_naming_the_field_on_both_databases(workspace, standin):
    workspace.load_catalogue()
    assert _import_json(workspace)[0] == 0
    app, s = _db(workspace)
    oid = s.scalar(select(Order.external_id).where(Order._state == "released").limit(1))
    s.close()
    # A three-letter country code for a two-letter column: PostgreSQL refused it with a database
    # error that stopped every import at that page; SQLite stored it.
    standin.change_order(oid, address={"countryCode": "DEU", "addressLine2": "Hinterhaus"})
    standin.advance(timedelta(minutes=5))
    code, summary = _import_json(workspace)
    assert code != 1 and summary["failed"] == 1
    assert any("order.ship_country" in f and "at most 2 fit" in f for f in summary["failures"])
    app, s = _db(workspace)
    order = s.scalar(select(Order).where(Order.external_id == oid))
    assert order.ship_country != "DEU" and order.ship_line2 != "Hinterhaus"  # nothing of it stored
    t = s.scalars(select(Ticket).where(Ticket.external_ref == oid, Ticket.kind == "import_failed")).one()
    assert "order.ship_country" in t.text
    s.close()
    # The next run goes on past it.
    standin.advance(timedelta(minutes=5))
    code, _ = _import_json(workspace)
    assert code != 1
