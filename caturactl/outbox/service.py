"""The outbox sender: delivers what state changes asked the outside world to do.

A service writes an ``OutboxMessage`` with a deterministic key in the same transaction as the
state change that wants it (``enqueue``); nothing talks to a server inside that transaction. The
sender then takes due messages one by one, calls the handler for the message's kind (the
composition root wires handlers to adapters), and commits the outcome of each message on its
own: done (with the handler's follow-up, e.g. a delivery becoming shipped), retry later with
exponential backoff, or failed with a ticket.

A crash can fall between a send and the commit of its outcome. So a handler calls
``Attempt.sending()`` right before the step that cannot be taken back (the rename that makes an
upload visible, SMTP DATA, createFeed, the review request); that commits ``sending_at``. The next
attempt of a message whose ``sending_at`` is still set is *in doubt*, and its handler asks the
remote side first: is the file in the location's inbox or in the folders it moves read files
to, does Amazon's order show the package, did Amazon queue an invoice feed since then, does
Amazon still offer the review request. Where the remote side cannot tell (an e-mail; a location
that deletes what it read), the handler raises ``InDoubtError`` and a person decides with
``caturactl outbox done`` (it arrived) or ``caturactl outbox retry --resend`` (send it again).
In doubt means only that: an answer that refuses the send (SMTP 4xx or 5xx, Amazon's 429 or
4xx) says nothing arrived, so the mark is cleared and the message is retried or fails as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from caturactl.config import ShippingConfig
from caturactl.core import clock
from caturactl.core.errors import (CaturactlError, ConflictError, InDoubtError, NotFoundError, RefusedError,
                                   RejectedError, StateError, ThrottledError)
from caturactl.core.events import EventKind
from caturactl.core.lifecycle import move
from caturactl.outbox.models import DONE, FAILED, PENDING, OutboxMessage
from caturactl.orders.triage import Hold, close_tickets_about, open_ticket

CLAIM_SECONDS = 600  # a run that dies mid-send: its message is tried again after this


@dataclass
class Attempt:
    """One try of one message, as its handler sees it."""

    in_doubt: datetime | None  # an earlier attempt began sending then and never got an outcome
    _mark: Callable[[], None]
    marked: bool = False

    def sending(self) -> None:
        """Call right before the step that cannot be taken back: commits the mark, so a crash
        from here on leaves the message in doubt for the next attempt."""
        if not self.marked:
            self._mark()
            self.marked = True


# A handler sends the message, or returns what it found when the remote side already had it
# (in doubt after a crash, or delivered by a run that did not live to say so).
Handler = Callable[[OutboxMessage, Attempt], "str | None"]
FollowUp = Callable[[Session, OutboxMessage, datetime], None]


def enqueue(session: Session, key: str, kind: str, target: str, payload: dict) -> bool:
    """Queue one side effect in the caller's transaction; the same key twice is one message.
    True when this call queued it. The unique key is the claim: two runs queueing the same side
    effect at once (on PostgreSQL the second waits for the first to commit) make one message."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(OutboxMessage).values(key=key, kind=kind, target=target, payload=payload, status=PENDING)
            .on_conflict_do_nothing(index_elements=[OutboxMessage.key]).returning(OutboxMessage.id))
    # The row it returns says whether this call inserted: psycopg reports no rowcount (-1) here.
    return session.execute(stmt).first() is not None


@dataclass
class SendResult:
    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    skipped: int = 0  # not due yet
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 0 if not (self.failed or self.retry_later) else 69

    def as_dict(self) -> dict:
        return {"sent": self.sent, "retry_later": self.retry_later, "failed": self.failed,
                "errors": self.errors, "dry_run": self.dry_run}


class Sender:
    """Delivers due outbox messages through ``handlers`` (kind -> callable)."""

    def __init__(self, session: Session, cfg: ShippingConfig, handlers: Mapping[str, Handler],
                 follow_ups: Mapping[str, FollowUp] | None = None, *, now: Callable[[], datetime] | None = None,
                 on_close: Callable[[], None] | None = None):
        self.s, self.cfg = session, cfg
        self.handlers, self.follow_ups = handlers, follow_ups or {}
        self.now = now or clock.now
        self._on_close = on_close

    def close(self) -> None:
        """Let go of the connections the handlers opened."""
        if self._on_close:
            self._on_close()

    def due(self, kinds: set[str] | None = None, limit: int | None = None) -> list[OutboxMessage]:
        q = select(OutboxMessage).where(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= self.now())
        if kinds:
            q = q.where(OutboxMessage.kind.in_(sorted(kinds)))
        return list(self.s.scalars(q.order_by(OutboxMessage.id).limit(limit)))

    def run(self, *, kinds: set[str] | None = None, limit: int | None = None, dry_run: bool = False,
            progress: Callable[[int], None] | None = None) -> SendResult:
        """Try every due message once; each outcome is committed on its own."""
        r = SendResult(dry_run=dry_run)
        messages = self.due(kinds, limit)
        if dry_run:
            r.skipped = len(messages)
            return r
        throttled: set[str] = set()
        down: dict[str, str] = {}  # target -> the error that showed it unreachable in this run
        self.s.commit()
        for msg in messages:
            if not self._claim(msg):
                r.skipped += 1  # another run (a job, a person) is sending it right now
                continue
            if msg.kind in throttled:  # the remote said "later" for this kind: do not hammer it
                self._retry(msg, "not tried: the channel throttled an earlier message in this run", r, quiet=True)
            elif msg.target in down:  # one refused connection says enough about the next hundred
                self._retry(msg, f"not tried: {down[msg.target]}", r, quiet=True)
            else:
                try:
                    if not self._send_one(msg, r):
                        down[msg.target] = msg.last_error
                except ThrottledError:
                    throttled.add(msg.kind)
                except ConflictError as exc:  # a person answered for it (done, retry) while it was sent
                    self.s.rollback()
                    r.skipped += 1
                    r.errors.append(f"{msg.key}: {exc}")
            self.s.commit()
            if progress:
                progress(1)
        return r

    def _claim(self, msg: OutboxMessage) -> bool:
        """Take the message for this run: push its next attempt past CLAIM_SECONDS in its own
        transaction, if it is still due. Two runs at once (the scheduler's jobs, a person at the
        terminal) then never send the same message; a run that dies mid-send leaves the message
        to be retried once the claim has run out."""
        now = self.now()
        # CLAIM_SECONDS of real time: on a clock running N times fast (the demo, the benches)
        # that is N times as long on the clock, or another sender takes over a send in progress.
        held = timedelta(seconds=CLAIM_SECONDS * max(1.0, getattr(clock.current(), "speed", 1.0)))
        n = self.s.execute(update(OutboxMessage).where(OutboxMessage.id == msg.id, OutboxMessage.status == PENDING,
                                                       OutboxMessage.next_attempt_at <= now)
                           .values(next_attempt_at=now + held)
                           .execution_options(synchronize_session=False)).rowcount
        self.s.commit()
        if n != 1:
            self.s.expire(msg)
            return False
        # Read back what was claimed: another sender may have marked it "sending" (in doubt) or
        # counted attempts since this run listed it, and what this run writes must start from that.
        self.s.refresh(msg)
        return True

    def _send_one(self, msg: OutboxMessage, r: SendResult) -> bool:
        """Send one message; False when its target could not be reached (retry later)."""
        handler = self.handlers.get(msg.kind)
        msg.attempts += 1
        if handler is None:
            self._fail(msg, f"no handler for outbox kind {msg.kind!r}", r)
            return True
        attempt = Attempt(in_doubt=msg.sending_at, _mark=lambda: self._mark_sending(msg))
        try:
            found = handler(msg, attempt)
        except InDoubtError as exc:  # sending_at stays: it is what the person is asked about
            self._fail(msg, str(exc), r, hint=f"if it arrived: 'caturactl outbox done {msg.id}'; if not: "
                                              f"'caturactl outbox retry --resend {msg.id}'")
            return True
        except RejectedError as exc:  # a definite refusal: nothing arrived
            _not_in_doubt(msg, attempt)
            self._fail(msg, str(exc), r)
            return True
        except ThrottledError as exc:  # "later", from the remote side or our own rate: nothing went
            _not_in_doubt(msg, attempt)
            self._retry(msg, str(exc), r)
            raise
        except RefusedError as exc:  # answered "not now" (SMTP 4xx): nothing arrived, retry as usual
            _not_in_doubt(msg, attempt)
            self._retry_or_give_up(msg, exc, r)
            return True  # it answered: the target is there for the next message
        except CaturactlError as exc:  # remote down, timeouts, config problems a person may fix
            # sending_at stays as it is: an error after the mark (a timeout waiting for the
            # answer) leaves the send in doubt, and an earlier doubt is not resolved by failing.
            self._retry_or_give_up(msg, exc, r)
            return False
        if found:
            self._done(msg, f"not sent again: {found}", data={"found": True})
        else:
            self._done(msg, f"sent to {msg.target} (attempt {msg.attempts})")
        r.sent += 1
        return True

    def _retry_or_give_up(self, msg: OutboxMessage, exc: CaturactlError, r: SendResult) -> None:
        if msg.attempts >= self.cfg.outbox_max_attempts:
            self._fail(msg, f"gave up after {msg.attempts} attempts: {exc}", r)
        else:
            self._retry(msg, str(exc), r)

    def _mark_sending(self, msg: OutboxMessage) -> None:
        msg.sending_at = self.now()
        self.s.commit()

    def _done(self, msg: OutboxMessage, how: str, data: dict | None = None) -> None:
        now = self.now()
        msg.done_at, msg.last_error, msg.sending_at = now, "", None
        # The move first: a message a person answered for meanwhile gets no second follow-up.
        move(self.s, msg, DONE, f"{msg.kind} {msg.key} {how}", kind=EventKind.OUTBOX_SENT,
             outbox=msg.id, **(data or {}))
        close_tickets_about(self.s, "outbox_failed", msg.key, how)
        follow_up = self.follow_ups.get(msg.kind)
        if follow_up:
            follow_up(self.s, msg, now)

    def mark_done(self, msg: OutboxMessage, reason: str, *, force: bool = False) -> None:
        """A person says the message arrived (after an in-doubt ticket, or a file handed over by
        hand): done, with the follow-up a send would have had. Raises StateError when it is done,
        and, unless ``force``, when the remote side refused it (failed, and not in doubt)."""
        if msg.status == DONE:
            raise StateError(f"outbox message {msg.id} was already sent at {msg.done_at:%Y-%m-%d %H:%M} UTC")
        if msg.status == FAILED and msg.sending_at is None and not force:
            # Failed without a send in doubt: the remote side answered no (or never got it), so
            # "it arrived" is only true if a person delivered it another way and says so.
            said = (msg.last_error or "no reason given").splitlines()[0][:200]
            raise StateError(f"outbox message {msg.id} did not arrive: {msg.target} refused it or was not "
                             f"reached ({said}); "
                             f"fix that and 'caturactl outbox retry {msg.id}', or if you delivered it another "
                             f"way, say so with --force and --reason")
        self._done(msg, f"marked as arrived by a person{' (forced)' if force else ''}: {reason}")

    def _retry(self, msg: OutboxMessage, error: str, r: SendResult, quiet: bool = False) -> None:
        attempts = max(msg.attempts, 1)
        wait = min(self.cfg.outbox_backoff_seconds * 2 ** (attempts - 1), self.cfg.outbox_backoff_max_seconds)
        msg.last_error = error[:2000]
        msg.next_attempt_at = self.now() + timedelta(seconds=wait)
        r.retry_later += 1
        if not quiet:
            r.errors.append(f"{msg.key}: {error}")

    def _fail(self, msg: OutboxMessage, error: str, r: SendResult, *,
              hint: str = "") -> None:
        msg.last_error = error[:2000]
        order = _order_of(self.s, msg)
        hint = hint or f"fix it, then 'caturactl outbox retry {msg.id}'"
        open_ticket(self.s, "outbox_failed", [Hold("outbox_failed", f"{msg.kind} {msg.key} to {msg.target} failed: "
                                                                      f"{error}; {hint}")],
                    order=order, external_ref=msg.key[:100])
        move(self.s, msg, FAILED, f"{msg.key}: {error}", kind=EventKind.OUTBOX_FAILED, order=order, outbox=msg.id)
        r.failed += 1
        r.errors.append(f"{msg.key}: {error}")


def _not_in_doubt(msg: OutboxMessage, attempt: Attempt) -> None:
    # In doubt means only that we cannot know whether the remote side took it. A refusal it
    # answered to this attempt's send (or a send that never left) says it did not: the mark goes.
    # Without a mark of this attempt the error came before its send (a lookup, a full bucket),
    # and an earlier attempt's doubt stays: only a handler that looked and found nothing sends.
    if attempt.marked:
        msg.sending_at = None


def _order_of(session: Session, msg: OutboxMessage):
    from caturactl.fulfilment.models import DeliveryNote
    did = (msg.payload or {}).get("delivery_id")
    note = session.get(DeliveryNote, did) if did else None
    return note.order if note is not None else None


def find(session: Session, ref: str) -> OutboxMessage:
    """A message by id or key; raises NotFoundError."""
    msg = session.get(OutboxMessage, int(ref)) if ref.isdigit() else \
        session.scalar(select(OutboxMessage).where(OutboxMessage.key == ref))
    if msg is None:
        raise NotFoundError(f"no outbox message {ref!r}")
    return msg


def retry(session: Session, ref: str, *, resend: bool = False) -> OutboxMessage:
    """Make a failed (or waiting) message due now; raises StateError for a message already done.
    A message a crash left in doubt is checked at the remote side again, unless ``resend``: the
    person's word that it did not arrive."""
    msg = find(session, ref)
    if msg.status == DONE:
        raise StateError(f"outbox message {msg.id} was already sent at {msg.done_at:%Y-%m-%d %H:%M} UTC")
    # A fresh budget of attempts: the person fixed something (or wants to see it fail again).
    msg.next_attempt_at, msg.attempts = clock.now(), 0
    overruled = resend and msg.sending_at is not None
    if resend:
        msg.sending_at = None
    move(session, msg, PENDING, f"{msg.key}: queued again by a person"
         + (" (to be sent again even if it may have arrived)" if overruled else ""),
         kind=EventKind.OUTBOX_SENT, outbox=msg.id)
    return msg
