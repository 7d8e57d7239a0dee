"""Job runs as people and scripts read them: the last run per job, history rows, one run."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caturactl.jobs.models import JobRun


def _local(value, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def last_runs(session: Session) -> dict[str, JobRun]:
    """Each job's newest run (by slot), in one query."""
    newest = select(JobRun.job, func.max(JobRun.slot_at).label("slot_at")).group_by(JobRun.job).subquery()
    q = select(JobRun).join(newest, (newest.c.job == JobRun.job) & (newest.c.slot_at == JobRun.slot_at))
    return {r.job: r for r in session.scalars(q)}


def history_rows(session: Session, tz: ZoneInfo, *, job: str | None = None, state: str | None = None,
                 limit: int | None = 50) -> list[dict]:
    q = select(JobRun)
    if job:
        q = q.where(JobRun.job == job)
    if state:
        q = q.where(JobRun.state == state)
    q = q.order_by(JobRun.slot_at.desc(), JobRun.id.desc()).limit(limit)
    return [{"id": r.id, "job": r.job, "slot": _local(r.slot_at, tz) + (" (manual)" if r.trigger == "manual" else ""),
             "state": r.state, "attempt": r.attempt, "host": r.host, "started": _local(r.started_at, tz),
             "seconds": round((r.finished_at - r.started_at).total_seconds(), 1) if r.finished_at else None,
             "exit_code": r.exit_code, "summary": r.summary,
             "error": r.error.splitlines()[-1] if r.error else ""} for r in session.scalars(q)]


def run_record(r: JobRun, tz: ZoneInfo) -> dict:
    return {"id": r.id, "job": r.job, "slot": _local(r.slot_at, tz), "trigger": r.trigger, "state": r.state,
            "attempt": r.attempt, "host": r.host, "pid": r.pid, "runner": r.runner, "command": r.command,
            "started": _local(r.started_at, tz), "finished": _local(r.finished_at, tz),
            "lease_until": _local(r.lease_until, tz), "exit_code": r.exit_code, "summary": r.summary,
            "error": r.error, "output": r.output}
