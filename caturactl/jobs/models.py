"""Scheduled job runs: one row per slot (a job and the time it was due).

The row is the slot's claim. ``UNIQUE (job, slot_at)`` is what makes a slot run once however
many daemons race for it; ``lease_until`` is how long the runner's claim holds without a
heartbeat, after which another runner may take the slot over (``attempt`` counts take-overs).
Rows are history too: ``caturactl jobs history`` reads them, and old ones are pruned.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from caturactl.core.db import UTCDateTime, Base, utcnow
from caturactl.core.lifecycle import Lifecycle


class JobRunState(str, enum.Enum):
    # A take-over after a lost lease is no move: the run stays running, with ``attempt`` + 1.
    RUNNING = "running"  # claimed; its runner holds the lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # exit code, timeout, signal, or lost: its runner died and a newer slot ran


JOB_RUN = Lifecycle("job_run", "JobRun", JobRunState, {
    None: {JobRunState.RUNNING},
    JobRunState.RUNNING: {JobRunState.SUCCEEDED, JobRunState.FAILED},
    JobRunState.SUCCEEDED: set(),
    JobRunState.FAILED: set(),
}, attribute="state", describe=lambda r: f"job run {r.job} {r.slot_at:%Y-%m-%d %H:%M}")
RUNNING, SUCCEEDED, FAILED = (s.value for s in JobRunState)


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot_at", name="uq_job_runs_slot"),
                      Index("ix_job_runs_job_started", "job", "started_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was due (a manual run: when asked)
    trigger: Mapped[str] = mapped_column(String(10), default="schedule")  # schedule | manual
    state: Mapped[str] = mapped_column(String(10), default=RUNNING, index=True)  # JOB_RUN
    attempt: Mapped[int] = mapped_column(default=1)  # > 1: taken over after a runner's lease ran out
    runner: Mapped[str] = mapped_column(String(120))  # host:pid:token of the claim holder
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int | None]
    command: Mapped[str] = mapped_column(Text, default="")
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_code: Mapped[int | None]
    summary: Mapped[str] = mapped_column(String(300), default="")  # the command's last line of output
    output: Mapped[str] = mapped_column(Text, default="")  # the tail of what it printed
    error: Mapped[str] = mapped_column(Text, default="")  # timeout, lost lease, earlier attempts
