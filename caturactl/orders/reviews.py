"""Review requests: one per order of a channel that requests reviews, through the channel, only
inside the window the channel allows (``SalesChannel.review_window``; Amazon's is 5 days after the
earliest promised delivery to 30 days after the latest). The channel sends its own template, so
nothing we write can break its rules on buyer contact."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from caturactl import channels
from caturactl.core import clock
from caturactl.billing.models import ReviewRequest, ReviewStatus
from caturactl.orders.models import Order
from caturactl.core.events import EventKind
from caturactl.core.lifecycle import OrderState, move
from caturactl.outbox.service import enqueue

KIND = "review_request"


@dataclass
class ReviewResult:
    queued: list[str] = field(default_factory=list)
    not_yet: int = 0  # shipped, window not open yet
    dry_run: bool = False

    def as_dict(self) -> dict:
        return {"queued": len(self.queued), "not_yet": self.not_yet, "orders": self.queued, "dry_run": self.dry_run}


def queue_due(session: Session, *, now: datetime | None = None, dry_run: bool = False) -> ReviewResult:
    """Queue a request for every shipped order of a channel that requests reviews, inside the
    channel's window, that never had one."""
    now = now or clock.now()
    r = ReviewResult(dry_run=dry_run)
    asked = select(ReviewRequest.order_id)
    # Only orders whose window can still be open: the query does not grow with years of history.
    requesting = [c for c in channels.all_channels() if c.requests_reviews]
    closed_before = now - max((c.review_closes_after for c in requesting), default=timedelta(0))
    orders = session.scalars(select(Order).where(Order.channel.in_([c.name for c in requesting]),
                                                 Order._state == OrderState.SHIPPED.value,
                                                 Order.fulfilled_by == "MERCHANT", Order.id.not_in(asked),
                                                 or_(Order.deliver_by >= closed_before,
                                                     Order.deliver_from >= closed_before))
                             .order_by(Order.created_at)).all()
    for order in orders:
        w = channels.get(order.channel).review_window(order)
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
                session.add(ReviewRequest(order=order, status=ReviewStatus.QUEUED.value, at=now))
                item = channels.get(order.channel).review_request(order)
                enqueue(session, item.key, item.kind, item.target, item.payload)
        except IntegrityError:
            r.queued.pop()
    if not dry_run:
        session.commit()
    return r


def requested(session: Session, msg, now: datetime) -> None:
    """Outbox follow-up: note whether the channel sent the request or did not offer it."""
    req = session.get(ReviewRequest, msg.payload["order_pk"])
    if req is None or req.status != ReviewStatus.QUEUED.value:
        return  # nothing asked, or answered already: the first answer stands
    sent = bool((msg.payload or {}).get("sent"))
    req.at = now
    label = channels.get(req.order.channel).label
    move(session, req, ReviewStatus.SENT if sent else ReviewStatus.NOT_OFFERED,
         f"review request sent through {label}" if sent else
         f"{label} did not offer a review request for this order (outside its window or already asked)",
         kind=EventKind.REVIEW_REQUESTED)


def request_rows(session: Session, tz: ZoneInfo) -> list[dict]:
    """Every review request, oldest first: order, status, when (a local time)."""
    return [{"order": r.order.external_id, "status": r.status,
             "at": r.at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if r.at else ""}
            for r in session.scalars(select(ReviewRequest).options(selectinload(ReviewRequest.order))
                                     .order_by(ReviewRequest.at))]
