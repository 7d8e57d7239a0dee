"""What became of the invoices uploaded to Amazon (Feeds API, UPLOAD_VAT_INVOICE): the feed an
upload queued before a crash cut it off, and Amazon's verdict on each feed (getFeed), a refused
invoice becoming a ticket with Amazon's report. ``AmazonChannel.check_uploads`` runs the verdicts
(``caturactl invoices feeds``); the outbox handler of the upload asks
``feed_of_interrupted_upload`` before it sends again (connectors/amazon/outbox.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from caturactl.billing.models import Invoice
from caturactl.core import clock
from caturactl.core.errors import InDoubtError, RejectedError, ThrottledError
from caturactl.core.events import EventKind, record
from caturactl.orders.triage import Hold, open_ticket
from caturactl.outbox.models import OutboxMessage
from connectors.amazon.channel import INVOICE_UPLOAD as UPLOAD

FEED_KEYS = ("feed_id", "feed_status", "found_after_crash")  # what an upload learnt about its feed


def without_feed(payload: dict) -> dict:
    """An upload's payload for sending again: its feed and that feed's verdict go, the feed's id
    is kept among ``earlier_feeds`` (Amazon still lists it: it is not the feed of a new send)."""
    earlier = list(payload.get("earlier_feeds", []))
    if payload.get("feed_id") and payload["feed_id"] not in earlier:
        earlier.append(payload["feed_id"])
    kept = {k: v for k, v in payload.items() if k not in FEED_KEYS}
    return {**kept, "earlier_feeds": earlier} if earlier else kept


FEED_RETENTION = timedelta(days=90)  # "Feeds are retained for a maximum of 90 days" (feeds_2021-06-30.json)


def feed_of_interrupted_upload(session: Session, uploader, msg, marked_at: datetime) -> str | None:
    """The feed an upload queued before a crash cut it off (marked at ``marked_at`` on our
    clock), or None when it queued none; raises InDoubtError when Amazon's list cannot say.

    Amazon's clock and ours differ, and a feed does not say which invoice it carries. So the
    anchor is the newest upload that was done before the mark: its feed was queued before ours
    could have been, and getFeed gives its time on Amazon's clock. Every invoice feed Amazon
    lists from then on is accounted for by an upload we know, except the one this crash left
    behind, if any. Assumes only caturactl uploads invoices for this seller account."""
    done = select(OutboxMessage).where(OutboxMessage.kind == UPLOAD, OutboxMessage.status == "done")
    # At or before: on a clock that stands still (tests, benches) the two may share an instant.
    anchor = session.scalars(done.where(OutboxMessage.done_at <= marked_at, OutboxMessage.id != msg.id)
                             .order_by(OutboxMessage.done_at.desc()).limit(20)).all()
    anchor_feed = next((m.payload.get("feed_id") for m in anchor if m.payload.get("feed_id")), None)
    since = None
    if anchor_feed is not None:
        try:
            since = uploader.feed_created(anchor_feed)
            known_since = min(m.done_at for m in anchor) - timedelta(days=1)
        except RejectedError:  # older than Amazon keeps feeds (90 days): gone from getFeeds too
            since = None
    if since is None:  # getFeeds' own reach: Amazon keeps feeds 90 days
        since = known_since = clock.now() - FEED_RETENTION
    known = {m.payload.get("feed_id") for m in session.scalars(done.where(OutboxMessage.done_at >= known_since))}
    # An invoice sent once more ('invoices resend') accounts for the feeds of its earlier sends.
    resent = select(OutboxMessage).where(OutboxMessage.kind == UPLOAD, (OutboxMessage.status != "done")
                                         | (OutboxMessage.done_at >= known_since))
    known.update(f for m in session.scalars(resent) for f in m.payload.get("earlier_feeds", ()))
    try:
        listed = uploader.uploads_since(since)
    except RejectedError as exc:  # the list cannot be read: that says nothing about the upload
        raise InDoubtError(f"a crash interrupted this upload at {marked_at:%Y-%m-%d %H:%M:%S} UTC, and Amazon "
                           f"refused the list of invoice feeds: {exc}") from None
    unknown = [feed_id for feed_id, _ in listed if feed_id not in known]
    if not unknown:
        return None
    others = session.scalars(select(OutboxMessage.key).where(
        OutboxMessage.kind == UPLOAD, OutboxMessage.id != msg.id, OutboxMessage.status != "done",
        OutboxMessage.sending_at.is_not(None))).all()
    if len(unknown) == 1 and not others:
        return unknown[0]
    raise InDoubtError(f"a crash interrupted this upload at {marked_at:%Y-%m-%d %H:%M:%S} UTC, and Amazon lists "
                       f"{len(unknown)} invoice feed(s) since then that no sent invoice accounts for "
                       f"({', '.join(unknown[:5])})" + (f" while {len(others)} other upload(s) are in doubt too"
                                                          if others else "")
                       + f"; look for invoice {msg.payload.get('metadata', {}).get('InvoiceNumber', '')} of order "
                         f"{msg.payload.get('order_id')} in Seller Central")


def check_feeds(session: Session, uploader, *, limit: int = 100) -> dict[str, int]:
    """Ask Amazon how the uploaded invoices fared (getFeed); a refused one gets a ticket with
    Amazon's report. Stops early when Amazon says "later" (the next run continues)."""
    counts = {"checked": 0, "accepted": 0, "rejected": 0, "waiting": 0}
    # Amazon judges a feed within minutes; looking back 60 days covers any backlog of runs and
    # keeps the query from growing with years of uploads.
    since = clock.now() - timedelta(days=60)
    msgs = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == UPLOAD, OutboxMessage.status == "done",
                                                       OutboxMessage.done_at >= since)
                           .order_by(OutboxMessage.id)).all()
    for m in [m for m in msgs if m.payload.get("feed_id") and not m.payload.get("feed_status")][:limit]:
        try:
            status, report = uploader.feed_outcome(m.payload["feed_id"])
        except ThrottledError:
            break
        counts["checked"] += 1
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            counts["waiting"] += 1
            continue
        m.payload = {**m.payload, "feed_status": status}
        inv = session.get(Invoice, m.payload["invoice_id"])
        if status == "DONE":
            counts["accepted"] += 1
            record(session, EventKind.INVOICED, f"{inv.number} accepted by Amazon (feed {m.payload['feed_id']})",
                   order=inv.order)
        else:
            counts["rejected"] += 1
            open_ticket(session, "invoice_rejected", [Hold("invoice_rejected", (
                f"Amazon refused invoice {inv.number} (feed {m.payload['feed_id']}, {status}): "
                f"{report.strip()[:500]}"))], order=inv.order, external_ref=inv.number)
        session.commit()
    return counts
