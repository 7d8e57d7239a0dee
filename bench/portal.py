"""Benchmark of the partner portal with many open purchase orders.

    python bench/portal.py [--orders 10000] [--requests 200] [--db URL] [--seed 5]

Figures go to stdout as ``name: value`` lines, nothing else (progress goes to stderr).

A fresh database (SQLite in a temporary folder unless ``--db`` names another, empty one) gets
``--orders`` open purchase orders of one partner (DS1), built directly: one made the way
tests/portal_data.py makes them (a released order routed to DS1, its purchase order sent), then
copied row by row with Core INSERTs (orders, lines, delivery notes, purchase orders), ids and
numbers shifted, each a minute older than the last. The portal runs under a real uvicorn on a
loopback port; one logged-in httpx client (keep-alive, as a browser) then measures, one run:

- ``order_list_*``: ``GET /orders?view=open&page=N`` for random pages of 25 (the tabs count
  every view on each request);
- ``tracking_*``: a tracking number for a different purchase order each time, posted the way
  htmx posts it (the order's body comes back; the parcel is stored, the line shipped, the
  channel's confirmation queued);

each as median and 95th percentile in milliseconds over ``--requests`` requests.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import Table, insert, select  # noqa: E402

from carriers.tracking import make_number  # noqa: E402
from caturactl.core.db import Base, make_engine  # noqa: E402
from caturactl.fulfilment.dropship.models import PurchaseOrder, po_number  # noqa: E402
from caturactl.migrations.apply import upgrade  # noqa: E402
from tests import factories, portal_data  # noqa: E402

EMAIL = "bench@ds1.example"
# Copied per purchase order, parents first; a foreign key into one of them is shifted with it.
CLONED = ("orders", "order_lines", "deliveries", "delivery_lines", "purchase_orders", "purchase_order_lines")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fill(app, n: int) -> list[str]:
    """``n`` open purchase orders of DS1 and a user; returns their numbers."""
    with app.work() as s:
        portal_data.user(s, app.cfg, "DS1", EMAIL)
        portal_data.purchase_order(s, app.cfg, "DS1", [("TOOL-1", 2)])
    tables = [Base.metadata.tables[name] for name in CLONED]
    with app.engine.begin() as conn:
        # The database is fresh: the template's rows are the only ones in these tables.
        rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in tables}
        step = {t.name: max(r["id"] for r in rows[t.name]) for t in tables}
        for start in range(1, n, 2000):
            batch = range(start, min(n, start + 2000))
            for t in tables:
                conn.execute(insert(t), [_copy(t, r, k, step) for k in batch for r in rows[t.name]])
            note(f"filled {min(n, start + 2000)} of {n}")
    with app.session() as s:
        return list(s.scalars(select(PurchaseOrder.number).order_by(PurchaseOrder.id)))


def _copy(t: Table, row: dict, k: int, step: dict[str, int]) -> dict:
    out = dict(row)
    out["id"] = row["id"] + k * step[t.name]
    for column in t.columns:
        for fk in column.foreign_keys:
            target = fk.column.table.name
            if target in step and row[column.name] is not None:
                out[column.name] = row[column.name] + k * step[target]
    if t.name == "orders":
        out["external_id"] = f"BENCH-{k:07d}"
    if "created_at" in out and out["created_at"] is not None:
        out["created_at"] = row["created_at"] - timedelta(minutes=k)
    if t.name == "purchase_orders":
        out["number"] = po_number(out["id"])
    return out


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def timed(call) -> float:
    start = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code}\n"
                         f"{response.text[:2000]}")
    return elapsed


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--db", help="an empty database to use (default: SQLite in a temporary folder)")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/portal.db"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        factories.fixed_clock()
        app = portal_data.app(url)
        started = time.perf_counter()
        numbers = fill(app, args.orders)
        fill_s = time.perf_counter() - started
        with portal_data.served(app) as base:
            with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
                token = csrf(client.get("/login").text)
                r = client.post("/login", data={"email": EMAIL, "password": portal_data.PASSWORD, "csrf": token})
                assert r.status_code == 303, r.text
                pages = -(-len(numbers) // app.cfg.portal.page_size)
                listing = [timed(lambda: client.get("/orders", params={"view": "open", "page": rng.randint(1, pages)}))
                           for _ in range(args.requests)]
                token = csrf(client.get(f"/orders/{numbers[0]}").text)
                chosen = rng.sample(numbers, min(args.requests, len(numbers)))
                tracking = [timed(lambda: client.post(
                    f"/orders/{number}/parcels", data={"carrier": "DHL", "tracking": make_number("DHL", 1000 + i)},
                    headers={"HX-Request": "true", "X-CSRF-Token": token})) for i, number in enumerate(chosen)]
        with app.session() as s:
            shipped = s.scalar(select(PurchaseOrder).where(PurchaseOrder.number == chosen[-1])).state
        app.dispose()
    print(f"database: {url.split(':')[0]}")
    print(f"open_purchase_orders: {len(numbers)}")
    print(f"fill_s: {fill_s:.1f}")
    print(f"order_list_requests: {len(listing)}")
    print(f"order_list_median_ms: {statistics.median(listing):.1f}")
    print(f"order_list_p95_ms: {p95(listing):.1f}")
    print(f"tracking_requests: {len(tracking)}")
    print(f"tracking_median_ms: {statistics.median(tracking):.1f}")
    print(f"tracking_p95_ms: {p95(tracking):.1f}")
    print(f"last_tracked_order_state: {shipped}")


if __name__ == "__main__":
    main()
