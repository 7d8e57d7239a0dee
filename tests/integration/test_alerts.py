"""'alerts check' says what needs a person now and exits 3 when anything does, 0 when nothing does,
so a timer can mail its output. Real data from the real commands; time moves by passing ``now``
to the service or by ageing a row, never by patching the code."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from caturactl.core import clock
from caturactl.views import alerts
from caturactl.cli.alerts import COLUMNS, NEEDS_A_PERSON
from caturactl.outbox.models import OutboxMessage
from caturactl.fulfilment.models import DeliveryNote
from caturactl.orders.tickets import Ticket
from tests import fulfilment

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "settlement_v2_flatfile_DE_composed.tsv"
KEYS = [c.key for c in COLUMNS]


def _now() -> datetime:
    return clock.now()


def test_a_clean_database_needs_nobody(bare_workspace):
    ws = bare_workspace
    r = ws.run("alerts", "check")
    assert r.code == 0 and "nothing needs a person" in r.out
    r = ws.run("alerts", "check", "--json")
    assert r.code == 0 and json.loads(r.out) == []


def test_an_aged_ticket_needs_a_person(workspace):
    ws = workspace
    ws.load_catalogue()
    ws.ok("import", "amazon")
    open_tickets = json.loads(ws.ok("tickets", "list", "--json"))
    assert open_tickets  # triage held some orders
    # Fresh tickets are in someone's normal day: nothing to mail yet.
    assert ws.run("alerts", "check").code == 0
    r = ws.run("alerts", "check", "--ticket-hours", "0", "--json")
    assert r.code == NEEDS_A_PERSON
    rows = json.loads(r.out)
    assert all(list(a) == KEYS for a in rows)
    assert sorted(a["subject"] for a in rows) == sorted(t["ticket"] for t in open_tickets)
    assert {a["kind"] for a in rows} == {"ticket"}
    # One ticket two days old: only it is reported, with the table for people and exit 3.
    app = ws.app()
    oldest = open_tickets[0]["ticket"]
    with app.session() as s:
        s.execute(update(Ticket).where(Ticket.id == int(oldest[1:])).values(created_at=_now() - timedelta(days=2)))
        s.commit()
    r = ws.run("alerts", "check")
    assert r.code == NEEDS_A_PERSON and oldest in r.out and "Needs a person (1)" in r.out
    # Resolved, it needs nobody any more.
    ws.ok("tickets", "resolve", oldest, "--cancel", "--note", "buyer asked to cancel")
    assert ws.run("alerts", "check").code == 0
    # The service answers for any moment: three days on, every open ticket is overdue for a person.
    with app.session() as s:
        later = alerts.check(s, app.cfg, _now() + timedelta(days=3))
    assert len(later) == len(open_tickets) - 1


def test_passed_deadlines_and_failed_messages_need_a_person(workspace, tmp_path):
    ws = workspace
    share = tmp_path / "wh-share"  # the warehouse's share is not mounted: uploads fail
    (tmp_path / "ful").mkdir()
    ws.write_config(extra="[shipping]\noutbox_max_attempts = 1\noutbox_backoff_seconds = 0\n"
                    + fulfilment.carrier_section() + fulfilment.locations()
                    + fulfilment.folder_transport("wh", share) + fulfilment.folder_transport("ful", tmp_path / "ful"))
    ws.load_catalogue()
    ws.ok("import", "amazon")
    skus = [p["sku"] for p in ws.standin.catalogue()]
    ws.ok("stock", "import", "WH", str(fulfilment.stock_csv(tmp_path / "wh.csv", {s: 50 for s in skus[::2]})))
    ws.ok("stock", "import", "FUL", str(fulfilment.stock_csv(tmp_path / "ful.csv", {s: 50 for s in skus})))
    ws.ok("route")
    ws.run("ship", "export")
    app = ws.app()
    with app.session() as s:
        failed = s.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "failed")).all()
        exported = s.scalars(select(DeliveryNote.id).where(DeliveryNote._state == "exported")).all()
        last_deadline = max(s.scalars(select(DeliveryNote.deadline_at).where(DeliveryNote.deadline_at.is_not(None))))
    assert failed and exported
    rows = json.loads(ws.run("alerts", "check", "--json").out)
    assert sorted(a["subject"] for a in rows if a["kind"] == "outbox_failed") == [f"outbox {i}" for i in failed]
    assert not [a for a in rows if a["kind"] == "deadline_passed"]  # no deadline has passed yet
    # After the last deadline every note still waiting for its confirmation is reported once.
    with app.session() as s:
        later = alerts.check(s, app.cfg, last_deadline + timedelta(minutes=1), ticket_hours=10_000)
    late = [a for a in later if a.kind == "deadline_passed"]
    assert len(late) == len(exported) and len({a.subject for a in late}) == len(late)
    assert all(a.since <= last_deadline for a in late)


def test_open_settlement_differences_need_a_person(bare_workspace):
    ws = bare_workspace
    ws.ok("settlement", "import", str(SAMPLE))
    diffs = json.loads(ws.ok("settlement", "differences", "--json"))
    r = ws.run("alerts", "check", "--json")
    assert r.code == NEEDS_A_PERSON
    [alert] = json.loads(r.out)  # one line per settlement, not one per order
    assert alert["kind"] == "settlement_difference" and alert["subject"] == diffs[0]["settlement"]
    assert alert["detail"].startswith(f"{len(diffs)} open difference(s)")


def test_checks_are_a_list_a_later_check_joins(bare_workspace):
    ws = bare_workspace
    app = ws.app()
    ran = []

    def job_not_run(session, cfg, now, limits):
        ran.append(limits.ticket_hours)
        yield alerts.Alert("job_not_run", "import", "no run since yesterday", now - timedelta(hours=25))

    with app.session() as s:
        assert alerts.check(s, app.cfg, _now()) == []
        found = alerts.check(s, app.cfg, _now(), ticket_hours=6, checks=[*alerts.CHECKS, job_not_run])
    assert [a.kind for a in found] == ["job_not_run"] and ran == [6]
