"""Review requests: one per Amazon order, through the Solicitations API, only inside the window
Amazon allows: from 5 days after the earliest promised delivery to 30 days after the latest
(reference/amazon/customer-contact.md §1). Amazon sends its own template, so nothing we write can
break its rules on buyer contact."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.core import clock
from caturactl.billing.models import ReviewRequest
from caturactl.orders.models import Order
from caturactl.core.events import EventKind, record
from caturactl.core.lifecycle import OrderState
from caturactl.outbox.service import enqueue

KIND = "review_request"
OPENS_AFTER = timedelta(days=5)
CLOSES_AFTER = timedelta(days=30)


def window(order: Order) -> tuple[datetime, datetime] | None:
    """(first, last) moment Amazon accepts a review request for ``order``; None without dates."""
    earliest = order.deliver_from or order.deliver_by
    latest = order.deliver_by or order.deliver_from
    if earliest is None or latest is None:
        return None
    return earliest + OPENS_AFTER, latest + CLOSES_AFTER


@dataclass
class ReviewResult:
    queued: list[str] = field(default_factory=list)
    not_yet: int = 0  # shipped, window not open yet
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"queued": len(self.queued), "not_yet": self.not_yet, "orders": self.queued, "dry_run": self.dry_run}


def queue_due(session: Session, *, now: datetime | None = None, dry_run: bool = False) -> ReviewResult:
    """Queue a request for every shipped Amazon order inside its window that never had one."""
    now = now or clock.now()
    r = ReviewResult(dry_run=dry_run)
    asked = select(ReviewRequest.order_id)
    # Only orders whose window can still be open: the query does not grow with years of history.
    closed_before = now - CLOSES_AFTER
    orders = session.scalars(select(Order).where(Order.channel.in_(channels.names("requests_reviews")),
                                                 Order._state == OrderState.SHIPPED.value,
                                                 Order.fulfilled_by == "MERCHANT", Order.id.not_in(asked),
                                                 or_(Order.deliver_by >= closed_before,
                                                     Order.deliver_from >= closed_before))
                             .order_by(Order.created_at)).all()
    for order in orders:
        w = window(order)
        if w is None or now > w[1]:
            continue
        if now < w[0]:
            r.not_yet += 1
            continue
        r.queued.append(order.external_id)
        if dry_run:
            continue
        try:  # the order's row in review_requests is the claim: another run may queue it first
            with session.begin_nested():
                session.add(ReviewRequest(order=order, status="queued", at=now))
                item = channels.get(order.channel).review_request(order)
                enqueue(session, item.key, item.kind, item.target, item.payload)
        except IntegrityError:
            r.queued.pop()
    if not dry_run:
        session.commit()
    return r


def requested(session: Session, msg, now: datetime) -> None:
    """Outbox follow-up: note whether Amazon sent the request or did not offer it."""
    req = session.get(ReviewRequest, msg.payload["order_pk"])
    if req is None:
        return
    sent = bool((msg.payload or {}).get("sent"))
    req.status, req.at = ("sent" if sent else "not_offered"), now
    record(session, EventKind.REVIEW_REQUESTED, "review request sent through Amazon" if sent else
           "Amazon did not offer a review request for this order (outside its window or already asked)",
           order=req.order)
