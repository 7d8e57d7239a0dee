"""Benchmark of a whole business day, command by command, on SQLite and on PostgreSQL.

    python bench/day.py [--orders 10000] [--rate-scale 50000] [--databases sqlite,postgres] [--keep DIR]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

The day is ``bench/businessday.py``'s: ``--orders`` Amazon orders placed over one day at the
SP-API stand-in, then the real ``caturactl`` commands a timer would run, each a subprocess
timed from start to exit (interpreter start included): import amazon, route, ship export,
ship collect (after each of ``--rounds`` rounds in which the three locations answer; the
figure is the sum of the rounds), outbox send, invoices create, invoices feeds, reviews
request, settlement fetch, export bookings. The stand-ins' rate limits run ``--rate-scale``
times faster than Amazon's published ones, and caturactl's client keeps to the same scale
(``[amazon] rate_scale``), so the day measures our work rather than Amazon's waiting.

The same day (same seed, same orders) runs once on SQLite and once on a PostgreSQL server
started for the run (tests/pg.py; ``fsync=off``, as in the tests); without PostgreSQL
installed it says so and runs SQLite only. For each stage it prints
``sqlite_<stage>_seconds``, ``postgres_<stage>_seconds`` and ``ratio_<stage>`` (PostgreSQL
divided by SQLite), then the totals and ``ratio_total``; ``<db>_outside_world_seconds`` is the
time the stand-ins took for their own steps (fulfillers, Amazon's settlement), not in the
totals; a few counts per database show that both did the same work.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from bench.businessday import BusinessDay, create_database, fresh_root  # noqa: E402
from caturactl.app import App  # noqa: E402
from caturactl.config import load  # noqa: E402
from caturactl.billing.models import Invoice, ReviewRequest  # noqa: E402
from caturactl.fulfilment.models import DeliveryNote
from caturactl.orders.models import Order
from tests.pg import PostgresServer  # noqa: E402


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def out(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def run_day(label: str, root: Path, database_url: str | None, args) -> tuple[dict[str, float], dict[str, int], float]:
    """(seconds per stage group, counts, outside-world seconds) of one day in ``root``."""
    times: dict[str, float] = {}
    outside = 0.0
    note(f"{label}: setting up {args.orders} orders in {root}")
    with BusinessDay(root, orders=args.orders, database_url=database_url, seed=args.seed,
                     rate_scale=args.rate_scale, rounds=args.rounds, jobs=args.jobs) as day:
        for stage in day.stages():
            t0 = time.perf_counter()
            day.prepare(stage)
            outside += time.perf_counter() - t0
            if not stage.is_command:
                continue
            code, seconds = day.run(stage)
            if code not in stage.ok:
                raise SystemExit(f"day: {label}: caturactl {' '.join(stage.args)} exited {code} (see {day.log})")
            times[stage.group] = times.get(stage.group, 0.0) + seconds
            note(f"{label}: {stage.name} {seconds:.1f}s")
        app = App(load(root / "caturactl.toml"))
        try:
            with app.session() as s:
                counts = {
                    "orders": s.scalar(select(func.count()).select_from(Order)),
                    "deliveries": s.scalar(select(func.count()).select_from(DeliveryNote)),
                    "invoices": s.scalar(select(func.count()).select_from(Invoice)),
                    "review_requests": s.scalar(select(func.count()).select_from(ReviewRequest)),
                }
        finally:
            app.dispose()
        counts["parcels_confirmed_at_amazon"] = len(day.standin.shipments())
        counts["invoices_uploaded_to_amazon"] = len(day.standin.invoices())
    return times, counts, outside


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate-scale", type=float, default=50_000.0,
                   help="how much faster than Amazon's published rates the stand-in and client run")
    p.add_argument("--rounds", type=int, default=4, help="rounds in which the locations answer")
    p.add_argument("--jobs", type=int, default=2, help="invoices create --jobs")
    p.add_argument("--databases", default="sqlite,postgres")
    p.add_argument("--keep", type=Path, help="keep the workspaces in this folder (default: a temporary one)")
    args = p.parse_args()
    wanted = [d.strip() for d in args.databases.split(",") if d.strip()]
    base = args.keep or Path(tempfile.mkdtemp(prefix="caturactl-day-"))
    base.mkdir(parents=True, exist_ok=True)

    results: dict[str, tuple[dict[str, float], dict[str, int], float]] = {}
    if "sqlite" in wanted:
        results["sqlite"] = run_day("sqlite", fresh_root(base, "sqlite"), None, args)
    if "postgres" in wanted:
        server = PostgresServer()
        if not server.available:
            out("postgres", "not installed (initdb not found): SQLite only")
        else:
            server.start()
            try:
                url = create_database(server.url(), "businessday")
                results["postgres"] = run_day("postgres", fresh_root(base, "postgres"), url, args)
            finally:
                server.stop()

    out("orders", args.orders)
    out("rate_scale", f"{args.rate_scale:g}")
    groups = list(next(iter(results.values()))[0]) if results else []
    for db, (times, counts, outside) in results.items():
        for g in groups:
            out(f"{db}_{g}_seconds", f"{times[g]:.2f}")
        out(f"{db}_total_seconds", f"{sum(times.values()):.2f}")
        out(f"{db}_outside_world_seconds", f"{outside:.2f}")
        for k, v in counts.items():
            out(f"{db}_{k}", v)
    if "sqlite" in results and "postgres" in results:
        lite, pg = results["sqlite"][0], results["postgres"][0]
        for g in groups:
            out(f"ratio_{g}", f"{pg[g] / lite[g]:.2f}")
        out("ratio_total", f"{sum(pg.values()) / sum(lite.values()):.2f}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
