"""Outbox: every side effect on the outside world waits here, written in the transaction that
wants it, with a deterministic idempotency key; a sender delivers it (fulfilment issue)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caturactl.core.db import Base, UTCDateTime, utcnow
from caturactl.core.lifecycle import Lifecycle


class OutboxStatus(str, enum.Enum):
    # Taken for a run and "sending" are not states: a run's claim is a lease on
    # ``next_attempt_at``, and a send in doubt is ``sending_at`` (see outbox.service).
    PENDING = "pending"  # waits for its next attempt (retried with backoff after an error)
    DONE = "done"  # arrived: sent, found at the remote side, or a person says it arrived
    FAILED = "failed"  # refused, given up after the attempts, or in doubt: a ticket is open


O = OutboxStatus
OUTBOX = Lifecycle("outbox", "OutboxMessage", OutboxStatus, {
    None: {O.PENDING},
    O.PENDING: {O.PENDING, O.DONE, O.FAILED},  # pending -> pending: a person makes it due now
    O.FAILED: {O.PENDING, O.DONE},  # retried, or a person says it arrived
    O.DONE: {O.PENDING},  # a person queues the same document again (an invoice resent)
}, describe=lambda m: f"outbox message {m.id}")
PENDING, DONE, FAILED = O.PENDING.value, O.DONE.value, O.FAILED.value


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # idempotency key
    kind: Mapped[str] = mapped_column(String(40))  # upload | email | amazon_confirm_shipment | ...
    target: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)  # OUTBOX
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set (and committed) just before the step that cannot be taken back, cleared with the
    # outcome: still set when the next attempt starts means a crash left the send in doubt.
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
