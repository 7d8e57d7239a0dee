"""Job runs as people and scripts read them: the last run per job, history rows, one run."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caturactl.core.errors import NotFoundError
from caturactl.jobs.models import JobRun
from caturactl.jobs.spec import JobsFile, format_duration


def _local(value, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""


def last_runs(session: Session) -> dict[str, JobRun]:
    """Each job's newest run (by slot), in one query."""
    newest = select(JobRun.job, func.max(JobRun.slot_at).label("slot_at")).group_by(JobRun.job).subquery()
    q = select(JobRun).join(newest, (newest.c.job == JobRun.job) & (newest.c.slot_at == JobRun.slot_at))
    return {r.job: r for r in session.scalars(q)}


def job_rows(session: Session, spec: JobsFile, tz: ZoneInfo, now: datetime) -> list[dict]:
    """Each job of ``spec``: schedule, command, timeout, its last run and result, its next run after
    ``now`` (none when disabled)."""
    last = last_runs(session)
    rows = []
    for name, job in spec.jobs.items():
        r = last.get(name)
        result = ""
        if r is not None and r.state != "failed":
            result = r.state
        elif r is not None:
            result = f"failed ({r.error.splitlines()[-1] if r.error else f'exit {r.exit_code}'})"
        rows.append({"job": name, "schedule": job.schedule.text + ("" if job.enabled else " (disabled)"),
                     "command": job.command, "timeout": format_duration(job.timeout),
                     "last_run": _local(r.slot_at, tz) if r else "", "last_result": result,
                     "next_run": _local(job.schedule.after(now, tz), tz) if job.enabled else ""})
    return rows


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


def run_output(session: Session, run_id: int) -> str:
    """The tail of what run ``run_id`` printed; "" when it printed nothing or there is no such run."""
    r = session.get(JobRun, run_id)
    return r.output if r else ""


def find_run(session: Session, run_id: int, tz: ZoneInfo) -> dict:
    """Run ``run_id`` as ``jobs show`` prints it (``run_record``); raises NotFoundError."""
    r = session.get(JobRun, run_id)
    if r is None:
        raise NotFoundError(f"no job run {run_id}")
    return run_record(r, tz)


def run_record(r: JobRun, tz: ZoneInfo) -> dict:
    return {"id": r.id, "job": r.job, "slot": _local(r.slot_at, tz), "trigger": r.trigger, "state": r.state,
            "attempt": r.attempt, "host": r.host, "pid": r.pid, "runner": r.runner, "command": r.command,
            "started": _local(r.started_at, tz), "finished": _local(r.finished_at, tz),
            "lease_until": _local(r.lease_until, tz), "exit_code": r.exit_code, "summary": r.summary,
            "error": r.error, "output": r.output}
