"""A send cut off by a crash: the next attempt asks the remote side before it sends again.

The state a SIGKILL leaves between a send and the commit of its outcome is a pending message
whose ``sending_at`` is set, while the remote side has (or has not) got it. These tests make
that state with real sends (roll the row of a message that really went out back to pending, as
its lost commit would have left it) and then run the real sender against the real servers:
the folder a location reads, the SMTP server, the SP-API stand-in. bench/chaos.py does the same
with real kills across a whole business day.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from caturactl.core import clock
from caturactl.outbox.models import OutboxMessage
from caturactl.billing.models import ReviewRequest
from caturactl.orders.tickets import Ticket
from caturactl.core.events import Event
from tests import fulfilment

READ_DIRS = 'read_dirs = ["done", "error"]\n'


def _cut_off(app, *, kind: str, target: str | None = None, status: str = "done", n: int = 1,
             key: str | None = None) -> list[int]:
    """Put ``n`` messages of ``kind`` back as a crash after their point of no return leaves them:
    pending, due, and marked as sending. Returns their ids."""
    now = clock.now()
    with app.session() as s:
        q = select(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.status == status)
        if target:
            q = q.where(OutboxMessage.target == target)
        if key:
            q = q.where(OutboxMessage.key == key)
        msgs = s.scalars(q.order_by(OutboxMessage.id).limit(n)).all()
        assert len(msgs) == n, f"only {len(msgs)} {status} {kind} message(s)"
        for m in msgs:
            m.status, m.done_at, m.next_attempt_at, m.sending_at = "pending", None, now, now - timedelta(seconds=1)
        s.commit()
        return [m.id for m in msgs]


def _message(app, msg_id: int) -> OutboxMessage:
    with app.session() as s:
        m = s.get(OutboxMessage, msg_id)
        s.expunge(m)
        return m


def _open_tickets(app) -> list[str]:
    with app.session() as s:
        return [t.text for t in s.scalars(select(Ticket).where(Ticket.kind == "outbox_failed",
                                                                  Ticket.status == "open"))]


def test_a_file_cut_off_by_a_crash_is_found_where_the_location_put_it(workspace, tmp_path):
    from standins.fulfiller import FulfillerStandin
    ws = workspace
    # The warehouse says where it moves read files; the fulfiller does not.
    fulfilment.route_everything(ws, tmp_path, wh=fulfilment.folder_transport("wh", tmp_path / "wh") + READ_DIRS)
    ws.ok("ship", "export")
    for folder in ("wh", "ful"):  # both locations read their files and move them to in/done
        FulfillerStandin(tmp_path / folder, seed=3, late_rate=1.0).work(ws.standin.now())
    read = {f: sorted(p.name for p in (tmp_path / f / "in" / "done").iterdir()) for f in ("wh", "ful")}
    assert read["wh"] and read["ful"] and not list((tmp_path / "wh" / "in").glob("DHL_*"))
    inbox = {f: sorted(p.name for p in (tmp_path / f / "in").glob("*.*")) for f in ("wh", "ful")}
    app = ws.app()
    [wh_msg] = _cut_off(app, kind="upload", key=f"upload:wh:{read['wh'][0]}")
    [ful_msg] = _cut_off(app, kind="upload", key=f"upload:ful:{read['ful'][0]}")

    r = ws.run("outbox", "send", "--json")
    assert r.code == 69 and json.loads(r.out)["sent"] == 1 and json.loads(r.out)["failed"] == 1
    # The warehouse's file was in in/done: done, and no second copy in the inbox.
    m = _message(app, wh_msg)
    assert m.status == "done" and m.sending_at is None
    with app.session() as s:
        said = [e.why for e in s.scalars(select(Event).where(Event.kind == "outbox_sent")) if (e.data or {}).get("found")]
    assert said == [f"upload {m.key} not sent again: {read['wh'][0]} is at wh already "
                    "(a crash cut off the send that delivered it)"]
    assert sorted(p.name for p in (tmp_path / "wh" / "in").glob("*.*")) == inbox["wh"]
    assert sorted(p.name for p in (tmp_path / "wh" / "in" / "done").iterdir()) == read["wh"]
    # The fulfiller's could have been read and deleted: a person decides, nothing is sent.
    m = _message(app, ful_msg)
    assert m.status == "failed" and m.sending_at is not None
    assert sorted(p.name for p in (tmp_path / "ful" / "in").glob("*.*")) == inbox["ful"]
    [ticket] = _open_tickets(app)
    assert "names no read_dirs" in ticket and f"caturactl outbox done {ful_msg}" in ticket \
        and f"outbox retry --resend {ful_msg}" in ticket
    # A plain retry asks again and gets the same answer; the person then says it arrived.
    assert ws.run("outbox", "retry", str(ful_msg)).code == 69
    assert sorted(p.name for p in (tmp_path / "ful" / "in").glob("*.*")) == inbox["ful"]
    r = ws.run("outbox", "done", str(ful_msg), "--reason", "the fulfiller has it in in/done", "--dry-run")
    assert r.code == 0 and _message(app, ful_msg).status == "failed"
    ws.ok("outbox", "done", str(ful_msg), "--reason", "the fulfiller has it in in/done")
    m = _message(app, ful_msg)
    assert m.status == "done" and m.sending_at is None and m.done_at is not None
    assert _open_tickets(app) == []
    r = ws.run("outbox", "done", str(ful_msg), "--reason", "again")
    assert r.code == 70 and "already sent" in r.err


def test_an_email_cut_off_by_a_crash_is_left_to_a_person(workspace, tmp_path, smtp_server):
    from standins.fulfiller import FulfillerStandin
    ws = workspace
    fulfilment.route_everything(ws, tmp_path, extra="[shipping]\nnotify_amazon_buyers = true\n[mail]\n"
                                                     f"host = \"127.0.0.1\"\nport = {smtp_server.port}\n"
                                                     "security = \"none\"\nfrom_address = \"shop@example.org\"\n")
    ws.ok("ship", "export", "--limit", "3")
    ws.standin.advance(timedelta(minutes=10))
    for folder, reply in (("wh", "csv"), ("ful", "xml")):
        FulfillerStandin(tmp_path / folder, reply=reply, late_rate=0.0, partial_rate=0.0,
                         multi_parcel_rate=0.0).work(ws.standin.now())
    ws.ok("ship", "collect")
    assert len(smtp_server.messages) == 3
    app = ws.app()
    first, second = _cut_off(app, kind="email", n=2)

    r = ws.run("outbox", "send", "--json")
    assert r.code == 69 and json.loads(r.out)["failed"] == 2
    assert len(smtp_server.messages) == 3  # nothing sent twice
    tickets = _open_tickets(app)
    assert len(tickets) == 2 and all("an e-mail cannot be looked up afterwards" in t for t in tickets)
    assert any(f"<outbox-{first}@caturactl>" in t for t in tickets)
    # The person finds the first in the mailbox, and not the second: that one goes again.
    ws.ok("outbox", "done", str(first), "--reason", "in the buyer's mailbox")
    r = ws.run("outbox", "retry", "--resend", str(second))
    assert r.code == 0, r.err + r.out
    with app.session() as s:
        assert s.scalar(select(Event.why).where(Event.kind == "outbox_sent").order_by(Event.id.desc()).offset(1)
                        .limit(1)).endswith("queued again by a person (to be sent again even if it may have arrived)")
    assert len(smtp_server.messages) == 4 and smtp_server.messages[-1]["Message-ID"] == f"<outbox-{second}@caturactl>"
    assert {_message(app, i).status for i in (first, second)} == {"done"} and _open_tickets(app) == []


@pytest.mark.slow
def test_a_shipment_confirmation_cut_off_by_a_crash_is_looked_up_at_amazon(workspace, tmp_path):
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    app = ws.app()
    with app.session() as s:
        confirmed = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "amazon_confirm_shipment")).all()
        assert confirmed and {m.status for m in confirmed} == {"done"}
    shipments = len(ws.standin.shipments())
    calls = ws.standin.stats()["calls"]
    cut = _cut_off(app, kind="amazon_confirm_shipment", n=2)

    r = ws.run("outbox", "send", "--json")
    assert r.code == 0 and json.loads(r.out)["sent"] == 2, r.err + r.out
    after = ws.standin.stats()["calls"]
    # Amazon's order showed both packages: asked twice, confirmed nothing again.
    assert after.get("getOrder", 0) - calls.get("getOrder", 0) == 2
    assert after["confirmShipment"] == calls["confirmShipment"]
    assert len(ws.standin.shipments()) == shipments
    assert all(_message(app, i).status == "done" and _message(app, i).sending_at is None for i in cut)


@pytest.mark.slow
def test_a_review_request_cut_off_by_a_crash_is_recorded_as_sent(workspace, tmp_path):
    from caturactl.orders import reviews
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path)
    ws.standin.advance(timedelta(days=9))
    app = ws.app()
    with app.session() as s:
        queued = reviews.queue_due(s, now=ws.standin.now()).queued
        s.commit()
    assert len(queued) >= 2
    ws.ok("outbox", "send")
    asked = len(ws.standin.solicitations())
    assert asked == len(queued)
    # A crash after Amazon sent the first request and before we noted it.
    [cut] = _cut_off(app, kind="review_request")
    with app.session() as s:
        order_pk = s.get(OutboxMessage, cut).payload["order_pk"]
        req = s.get(ReviewRequest, order_pk)
        req.status = "queued"
        s.commit()
    ws.ok("outbox", "send")
    assert len(ws.standin.solicitations()) == asked  # Amazon was not asked twice
    with app.session() as s:
        assert s.get(ReviewRequest, order_pk).status == "sent"
        assert s.get(OutboxMessage, cut).payload["found_after_crash"] is True


@pytest.mark.slow
def test_an_invoice_upload_cut_off_by_a_crash_is_looked_up_in_amazons_feeds(workspace, tmp_path):
    from standins.amazon.server import Fault
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra="[shipping]\noutbox_backoff_seconds = 0\n")
    app = ws.app()
    out = json.loads(ws.ok("invoices", "create", "--limit", "3", "--json"))
    assert out["delivery"]["sent"] == 3
    # createFeed answers 503: Amazon may have queued the feed before it failed, so the client does
    # not repeat it and the upload stays in doubt, exactly as a crash after the mark would leave it.
    ws.standin.add_fault(Fault(operation="createFeed", kind="status", status=503))
    r = ws.run("invoices", "create", "--limit", "1", "--json")
    fourth = json.loads(r.out)["numbers"][0]
    assert r.code == 69 and fourth not in {u["invoice_number"] for u in ws.standin.invoices()}
    assert "may have acted" in r.out + r.err
    with app.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"invoice_upload:{fourth}"))
        assert m.status == "pending" and m.sending_at is not None
        m.next_attempt_at = clock.now()
        s.commit()
    calls = ws.standin.stats()["calls"]
    ws.ok("outbox", "send")
    after = ws.standin.stats()["calls"]
    # Amazon listed no feed that our sent invoices do not account for: uploaded, once.
    assert after["getFeeds"] - calls.get("getFeeds", 0) == 1 and after["getFeed"] - calls.get("getFeed", 0) == 1
    assert [u["invoice_number"] for u in ws.standin.invoices()].count(fourth) == 1
    fed = {u["invoice_number"]: u["feed_id"] for u in ws.standin.invoices()}

    # A crash after createFeed went through: the feed Amazon lists is taken, nothing is uploaded.
    [cut] = _cut_off(app, kind="invoice_upload", key=f"invoice_upload:{fourth}")
    calls = ws.standin.stats()["calls"]
    ws.ok("outbox", "send")
    after = ws.standin.stats()["calls"]
    assert after["createFeed"] == calls["createFeed"] and after["createFeedDocument"] == calls["createFeedDocument"]
    assert len(ws.standin.invoices()) == 4
    m = _message(app, cut)
    assert m.status == "done" and m.payload["feed_id"] == fed[fourth] and m.payload["found_after_crash"] is True

    # Two cut off at once: Amazon lists two feeds nobody accounts for and cannot say whose is
    # whose, so a person looks; nothing is uploaded again.
    both = _cut_off(app, kind="invoice_upload", n=2)
    r = ws.run("outbox", "send", "--json")
    assert r.code == 69 and json.loads(r.out)["failed"] == 2
    assert len(ws.standin.invoices()) == 4
    tickets = _open_tickets(app)
    assert len(tickets) == 2 and all("2 invoice feed(s) since then that no sent invoice accounts for" in t
                                     for t in tickets)
    ws.ok("outbox", "done", *map(str, both), "--reason", "both are in Seller Central")
    assert {_message(app, i).status for i in both} == {"done"} and _open_tickets(app) == []


@pytest.mark.slow
def test_a_createfeed_whose_answer_never_comes_is_not_repeated_blindly(workspace, tmp_path):
    from standins.amazon.server import Fault
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra="[shipping]\noutbox_backoff_seconds = 0\n")
    # Amazon never answers (the client gives up after its 5 s timeout): the request may have
    # arrived, so the client does not send it again at once; the outbox asks Amazon first.
    ws.standin.add_fault(Fault(operation="createFeed", kind="hang", delay=8))
    r = ws.run("invoices", "create", "--limit", "1", "--json")
    [number] = json.loads(r.out)["numbers"]
    assert r.code == 69 and "may have reached Amazon" in r.out + r.err
    assert ws.standin.stats()["calls"]["createFeed"] == 1
    app = ws.app()
    with app.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"invoice_upload:{number}"))
        assert m.status == "pending" and m.sending_at is not None
        m.next_attempt_at = clock.now()
        s.commit()
    ws.ok("outbox", "send")
    assert [u["invoice_number"] for u in ws.standin.invoices()] == [number]
    assert ws.standin.stats()["calls"]["getFeeds"] == 1


@pytest.mark.slow
def test_an_interrupted_upload_whose_last_known_feed_amazon_no_longer_keeps_looks_back_90_days(workspace, tmp_path):
    from standins.amazon.server import Fault
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra="[shipping]\noutbox_backoff_seconds = 0\n")
    [first] = json.loads(ws.ok("invoices", "create", "--limit", "1", "--json"))["numbers"]
    ws.standin.advance(timedelta(days=91))  # Amazon keeps feeds 90 days: the anchor's feed is gone
    ws.standin.add_fault(Fault(operation="createFeed", kind="status", status=503))
    r = ws.run("invoices", "create", "--limit", "1", "--json")
    [second] = json.loads(r.out)["numbers"]
    app = ws.app()
    with app.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"invoice_upload:{second}"))
        assert r.code == 69 and m.sending_at is not None
        m.next_attempt_at = clock.now()
        s.commit()
    calls = ws.standin.stats()["calls"]
    ws.ok("outbox", "send")
    after = ws.standin.stats()["calls"]
    # getFeed on the anchor answered 404; the 90 days getFeeds still covers show no stray feed.
    assert after["getFeed"] - calls.get("getFeed", 0) == 1 and after["getFeeds"] - calls.get("getFeeds", 0) == 1
    assert [u["invoice_number"] for u in ws.standin.invoices()] == [first, second]
    assert _message(app, m.id).status == "done"


# --- a refusal after the mark is not a doubt ------------------------------------------------------


def _mail_workspace(ws, smtp_server, n: int = 1) -> list[int]:
    """A workspace that mails through ``smtp_server``, with ``n`` e-mails queued; their ids."""
    from caturactl.outbox.service import enqueue
    ws.write_config(extra="[shipping]\noutbox_backoff_seconds = 0\noutbox_max_attempts = 3\n[mail]\n"
                          f"host = \"127.0.0.1\"\nport = {smtp_server.port}\nsecurity = \"none\"\n"
                          "from_address = \"shop@example.org\"\n")
    app = ws.app()
    keys = [f"email:test:{i}" for i in range(n)]
    with app.session() as s:
        for i, key in enumerate(keys):
            enqueue(s, key, "email", "customer",
                    {"to": [f"kunde{i}@example.com"], "subject": f"Bestellung {i}", "body": "Hallo\n"})
        s.commit()
        return [s.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) for key in keys]


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_an_email_the_server_refuses_for_now_after_the_mark_is_retried_not_left_in_doubt(bare_workspace,
                                                                                          smtp_server, stage):
    ws = bare_workspace
    [msg_id] = _mail_workspace(ws, smtp_server)
    smtp_server.fail_next(450, stage=stage)  # greylisting: "try again later", after the mark
    r = ws.run("outbox", "send", "--json")
    assert r.code == 69 and json.loads(r.out)["retry_later"] == 1 and json.loads(r.out)["failed"] == 0
    m = _message(ws.app(), msg_id)
    assert m.status == "pending" and m.sending_at is None and "450" in m.last_error
    assert smtp_server.messages == [] and _open_tickets(ws.app()) == []
    # The next run sends it: no person is asked whether a crash cut it off.
    ws.ok("outbox", "send")
    assert [mail["Message-ID"] for mail in smtp_server.messages] == [f"<outbox-{msg_id}@caturactl>"]
    assert _message(ws.app(), msg_id).status == "done" and _open_tickets(ws.app()) == []


def test_an_email_the_server_refuses_for_good_after_the_mark_fails_without_doubt(bare_workspace, smtp_server):
    ws = bare_workspace
    first, second = _mail_workspace(ws, smtp_server, n=2)
    smtp_server.fail_next(550, stage="rcpt")
    r = ws.run("outbox", "send", "--json")
    assert r.code == 69 and json.loads(r.out)["failed"] == 1 and json.loads(r.out)["sent"] == 1
    m = _message(ws.app(), first)
    assert m.status == "failed" and m.sending_at is None
    [ticket] = _open_tickets(ws.app())
    assert "550" in ticket and "crash" not in ticket and f"outbox retry {first}" in ticket
    # A plain retry sends it: nothing is in doubt, so nothing has to be overruled with --resend.
    ws.ok("outbox", "retry", str(first))
    assert len(smtp_server.messages) == 2 and _message(ws.app(), first).status == "done"
    assert _message(ws.app(), second).status == "done"


@pytest.mark.slow
def test_an_invoice_upload_amazon_refuses_after_the_mark_is_not_in_doubt(workspace, tmp_path):
    from standins.amazon.server import Fault
    ws = workspace
    fulfilment.ship_everything(ws, tmp_path, extra="[shipping]\noutbox_backoff_seconds = 0\n")
    # 403 to createFeed, after the mark: Amazon answered without acting on it.
    ws.standin.add_fault(Fault(operation="createFeed", kind="status", status=403))
    r = ws.run("invoices", "create", "--limit", "1", "--json")
    [number] = json.loads(r.out)["numbers"]
    assert r.code == 69 and not ws.standin.invoices()
    app = ws.app()
    with app.session() as s:
        m = s.scalar(select(OutboxMessage).where(OutboxMessage.key == f"invoice_upload:{number}"))
        assert m.status == "pending" and m.sending_at is None
        m.next_attempt_at = clock.now()
        s.commit()
    calls = ws.standin.stats()["calls"]
    ws.ok("outbox", "send")
    after = ws.standin.stats()["calls"]
    # Sent again without asking getFeeds first: there was nothing to look for.
    assert after.get("getFeeds", 0) == calls.get("getFeeds", 0) and after.get("getFeed", 0) == calls.get("getFeed", 0)
    assert [u["invoice_number"] for u in ws.standin.invoices()] == [number]
